"""fastocclusion: occlusion sensitivity maps where the model calls are the only cost.

Importing this package is light: TensorFlow, PyTorch and the CUDA module load only when
first needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Occlusion", "Tasks", "TorchCallable", "__version__"]

_LAZY = {
    "Occlusion": "fastocclusion.occlusion",
    "Tasks": "fastocclusion.tasks",
    "TorchCallable": "fastocclusion.torch_backend",
}

if TYPE_CHECKING:  # pragma: no cover
    from fastocclusion.occlusion import Occlusion
    from fastocclusion.tasks import Tasks
    from fastocclusion.torch_backend import TorchCallable


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastocclusion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
