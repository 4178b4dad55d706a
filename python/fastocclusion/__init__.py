"""fastocclusion: occlusion sensitivity maps where the model calls are the only cost.

Importing this package is light: TensorFlow, PyTorch and the CUDA module load only when
first needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ClassIndices",
    "Occlusion",
    "Tasks",
    "TorchCallable",
    "__version__",
    "get_num_threads",
    "set_num_threads",
]

_LAZY = {
    "ClassIndices": "fastocclusion.engine.objective",
    "Occlusion": "fastocclusion.xplique",
    "Tasks": "fastocclusion.tasks",
    "TorchCallable": "fastocclusion.backends.torch",
}

if TYPE_CHECKING:  # pragma: no cover
    from fastocclusion.backends.torch import TorchCallable
    from fastocclusion.engine.objective import ClassIndices
    from fastocclusion.tasks import Tasks
    from fastocclusion.xplique import Occlusion


def set_num_threads(threads: int) -> None:
    """Caps the threads fastocclusion's CPU kernels use (batch filling, map accumulation);
    0 restores the default, the machine's hardware concurrency. The model's own threads are
    its framework's (``tf.config.threading``, ``torch.set_num_threads``). Takes effect on
    the next kernel call, in every thread."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(
            f"threads: {threads!r} is invalid, expected an integer >= 0 (0: the default)"
        )
    from fastocclusion import _core

    _core.set_num_threads(min(threads, 2**31 - 1))


def get_num_threads() -> int:
    """The threads fastocclusion's CPU kernels may use (see ``set_num_threads``)."""
    from fastocclusion import _core

    return int(_core.num_threads())


def _version() -> str:
    """The installed distribution's version: pyproject.toml is the one version source (the
    build passes it to CMake; the wheel's metadata carries it here)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fastocclusion")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastocclusion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
