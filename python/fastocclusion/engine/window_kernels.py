"""The feature-map window kernels of exact incremental inference (design §8) over the
arrays a framework's tensors are read as: NumPy arrays in host memory (``HostWindowKernels``,
fastocclusion._core) or a device's own arrays (a backend's, e.g. CUDA tensors through
fastocclusion._cuda: backends/torch/incremental/device.py).

Both gather windows of kept maps with the slots' boxes spliced in, and splice boxes into
dense per-slot copies of the kept maps; maps are (M, C, *axes) over one to three axes,
float32 or float64, and the per-slot indices and origins are host int64 NumPy arrays.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from fastocclusion import _core

__all__ = ["HostWindowKernels", "WindowKernels"]


class WindowKernels(Protocol):
    """The gather and splice kernels over one kind of array (see the module docstring)."""

    def gather(
        self,
        maps: Any,
        map_index: np.ndarray,
        origins: np.ndarray,
        size: tuple[int, ...],
        patches: Any,
        patch_origins: np.ndarray | None,
        pad_value: float,
        out: Any = None,
    ) -> Any:
        """``out`` (a new array when None), (count, C, *size): slot j's window of
        maps[map_index[j]] from origins[j], ``pad_value`` outside the map, patches[j] over
        its box at patch_origins[j] (no patches: None for both)."""

    def splice(
        self,
        maps: Any,
        map_index: np.ndarray,
        patches: Any,
        origins: np.ndarray,
        out: Any,
        state: Any,
    ) -> None:
        """out[j] = maps[map_index[j]] with patches[j] at origins[j], j < count; ``state``
        (``splice_state``) tracks what a persistent ``out`` holds between calls."""

    def splice_state(self) -> Any:
        """A new state for one persistent splice buffer."""


class HostWindowKernels:
    """WindowKernels on C-contiguous NumPy arrays (fastocclusion._core; the splice
    rewrites only the boxes a slot changes, by its SpliceState).

    >>> maps = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> one = np.zeros(1, np.int64)
    >>> HostWindowKernels().gather(maps, one, np.ones((1, 2), np.int64), (2, 2), None, None, 0.0)
    array([[[[ 5.,  6.],
             [ 9., 10.]]]], dtype=float32)
    """

    def gather(
        self,
        maps: np.ndarray,
        map_index: np.ndarray,
        origins: np.ndarray,
        size: tuple[int, ...],
        patches: np.ndarray | None,
        patch_origins: np.ndarray | None,
        pad_value: float,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        return _core.gather_windows(
            maps, map_index, origins, size, out, patches, patch_origins, pad_value=pad_value
        )

    def splice(
        self,
        maps: np.ndarray,
        map_index: np.ndarray,
        patches: np.ndarray,
        origins: np.ndarray,
        out: np.ndarray,
        state: Any,
    ) -> None:
        _core.splice_windows(maps, map_index, patches, origins, out, state)

    def splice_state(self) -> Any:
        return _core.SpliceState()
