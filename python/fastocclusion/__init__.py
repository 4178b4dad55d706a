"""fastocclusion: occlusion sensitivity maps where the model calls are the only cost.

Importing this package is light: TensorFlow, PyTorch and the CUDA module load only when
first needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Occlusion", "Tasks", "TorchCallable", "__version__", "get_num_threads",
           "set_num_threads"]

_LAZY = {
    "Occlusion": "fastocclusion.occlusion",
    "Tasks": "fastocclusion.tasks",
    "TorchCallable": "fastocclusion.torch_backend",
}

if TYPE_CHECKING:  # pragma: no cover
    from fastocclusion.occlusion import Occlusion
    from fastocclusion.tasks import Tasks
    from fastocclusion.torch_backend import TorchCallable


def set_num_threads(threads: int) -> None:
    """Caps the threads fastocclusion's CPU kernels use (batch filling, map accumulation);
    0 restores the default, the machine's hardware concurrency. The model's own threads are
    its framework's (``tf.config.threading``, ``torch.set_num_threads``). Takes effect on
    the next kernel call, in every thread."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads: {threads!r} is invalid, expected an integer >= 0 "
                         "(0: the default)")
    from fastocclusion import _core

    _core.set_num_threads(min(threads, 2**31 - 1))


def get_num_threads() -> int:
    """The threads fastocclusion's CPU kernels may use (see ``set_num_threads``)."""
    from fastocclusion import _core

    return int(_core.num_threads())


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastocclusion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
