"""The two fillers of a sweep (see protocols.Filler): batches in host memory filled by the
C++ kernels, or in CUDA device memory filled by the CUDA kernels.

Both keep one persistent batch buffer and an incremental fill state: a slot that keeps its
input only gets its previous window restored and the new one written.

Baselines (``baseline_kind``): "auto", the ``baseline`` array as the kernels read it by its
shape ((), one input's shape, or one per input); "window_mean", each window set to the mean
of its input over the window's box (computed once by the kernels, ``baseline`` unused);
"window_mean_scale", each window multiplied by that mean (MONAI 1.6's "mean_patch");
"window_mask", each window multiplied by ``baseline``, an array of the window's shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastocclusion import _core
from fastocclusion.engine.protocols import DeviceArrays
from fastocclusion.types import BatchBuffer

# The kernels' baseline_kind of each engine baseline kind.
_KERNEL_KINDS = {
    "auto": "auto",
    "window_mean": "per_window",
    "window_mean_scale": "per_window_scale",
    "window_mask": "window_mask",
}


class HostFiller:
    """Batches in a 64-byte-aligned host buffer, which the backend hands to the model
    without a copy (DLPack or a NumPy view). Bookkeeping in NumPy.

    Batches have the inputs' dtype: float32 in a ``_core.HostBuffer``; any other dtype the
    kernels copy (float64, integers, float16, bfloat16 as its bits in int16: see
    ``_core.fill_occluded_batch``) in an aligned NumPy array, with the baseline in that
    dtype too. ``buffer`` may be given to reuse the buffer of an earlier sweep of the same
    shape and dtype (a fresh one costs a zeroing and page faults)."""

    def __init__(
        self,
        inputs: np.ndarray,
        grid: Any,
        baseline: np.ndarray | None,
        batch: int,
        buffer: BatchBuffer = None,
        baseline_kind: str = "auto",
    ) -> None:
        shape = (batch,) + inputs.shape[1:]
        self.inputs = inputs
        self.grid = grid
        self._kind = _KERNEL_KINDS[baseline_kind]
        if baseline_kind.startswith("window_mean"):
            baseline = _core.window_means(inputs, grid)
        self.baseline = baseline
        fits = buffer is not None and buffer.shape == shape
        if inputs.dtype == np.float32:
            fits = fits and isinstance(buffer, _core.HostBuffer)
            self.buffer = buffer if fits else _core.HostBuffer(shape)
        else:
            fits = fits and getattr(buffer, "dtype", None) == inputs.dtype
            self.buffer = buffer if fits else aligned_zeros(shape, inputs.dtype)
        self._view = np.asarray(self.buffer)
        self._state = _core.IncrementalFillState()
        self._deltas: np.ndarray | None = None
        #: The (input, window) pairs the stream walks ((P, 2) int64), None: every window of
        #: every input (set by build_sweep for a sweep of some windows only).
        self.pairs: np.ndarray | None = None

    def load_unperturbed(self, start: int, count: int) -> None:
        self._view[:count] = self.inputs[start : start + count]
        self._state.reset()  # the slots no longer hold what the fill state believes

    def fill(self, start: int, count: int, stride: int) -> None:
        _core.fill_occluded_batch(
            self.inputs,
            self.grid,
            self.baseline,
            start,
            count,
            self._view,
            self._state,
            stride=stride,
            baseline_kind=self._kind,
            pairs=self.pairs,
        )

    def asarray(self, values: np.ndarray) -> np.ndarray:
        return values

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def concatenate(self, arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays)

    def deltas(self, planes: int = 1) -> np.ndarray:
        shape = delta_shape(len(self.inputs), self.grid, self.pairs, planes)
        self._deltas = np.empty(math.prod(shape), np.float64)
        return self._deltas

    def maps(self, reduction: str, collapsed_axes: tuple[int, ...]) -> np.ndarray:
        assert self._deltas is not None, "deltas() first"
        deltas = self._deltas.reshape((-1,) + tuple(self.grid.counts))
        return _core.accumulate_window_deltas(deltas, self.grid, reduction, collapsed_axes)

    def blend(self, importance: np.ndarray, collapsed_axes: tuple[int, ...]) -> np.ndarray:
        assert self._deltas is not None, "deltas() first"
        values = self._deltas.reshape((-1,) + tuple(self.grid.counts))
        return _core.blend_window_values(values, self.grid, importance, collapsed_axes)


def delta_shape(n: int, grid: Any, pairs: Any, planes: int) -> tuple[int, ...]:
    """The shape of a sweep's window deltas (Filler.deltas, flattened there in stream
    order): (n * planes, *grid.counts) for every window of ``n`` inputs, (P * planes,) for
    a sweep of P (input, window) ``pairs``.

    >>> delta_shape(2, _core.WindowGrid((4, 4), (2, 2), (2, 2)), None, 1)
    (2, 2, 2)
    """
    if pairs is None:
        return (n * planes,) + tuple(grid.counts)
    return (len(pairs) * planes,)


def aligned_zeros(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A zeroed C-contiguous NumPy array whose data is 64-byte aligned (as a
    ``_core.HostBuffer``'s), of any dtype.

    >>> aligned_zeros((2, 3), np.float64).ctypes.data % 64
    0
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(nbytes + 64, np.uint8)
    offset = -raw.ctypes.data % 64
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


def load_cuda_module() -> Any:
    """fastocclusion._cuda, or None when fastocclusion was built without it."""
    import importlib

    try:
        return importlib.import_module("fastocclusion._cuda")
    except ModuleNotFoundError as error:  # only a missing module; a broken one raises
        if error.name != "fastocclusion._cuda":
            raise
        return None


class DeviceFiller:
    """Batches in CUDA device memory (``_cuda.DeviceBuffer``), filled by the CUDA kernels on
    the model's stream; the inputs are uploaded once, the deltas are computed and
    accumulated on the device, and only the maps are handed back (as a device array).

    Batches have the inputs' dtype, as on the host: float32, or any dtype the kernels copy
    (float64, float16, bfloat16 as its bits, integers), the baseline in that dtype too; the
    "window_mean" baselines need float32 or float64 inputs (the means have their dtype).

    Memory on the device: the inputs (N x input), the baseline when it is an array (N * K
    window means for "window_mean"), one batch buffer (batch x input), N * K float64 deltas
    (P for a sweep of P pairs) and the N maps."""

    def __init__(
        self,
        inputs: np.ndarray,
        grid: Any,
        baseline: np.ndarray | None,
        batch: int,
        arrays: DeviceArrays,
        baseline_kind: str = "auto",
    ) -> None:
        cuda = load_cuda_module()
        if cuda is None:
            raise ValueError(
                "device: the GPU sweep needs fastocclusion._cuda, which this build does not have"
            )
        self._cuda = cuda
        self.grid = grid
        self.arrays = arrays
        self.n = len(inputs)
        index, stream = arrays.device_index, arrays.stream
        self._stream = stream
        self._inputs = cuda.DeviceBuffer.from_host(np.ascontiguousarray(inputs), index)
        self._kind = _KERNEL_KINDS[baseline_kind]
        if baseline_kind.startswith("window_mean"):
            self._baseline = cuda.window_means(self._inputs, grid, stream=stream)
        elif baseline_kind == "auto" and np.ndim(baseline) == 0:
            # By value: a number for float32/float64, else a 0-d array of the inputs' dtype.
            scalar = np.asarray(baseline)
            floats = inputs.dtype in (np.float32, np.float64)
            self._baseline = float(scalar) if floats else scalar
        else:
            self._baseline = cuda.DeviceBuffer.from_host(np.ascontiguousarray(baseline), index)
        self.buffer = cuda.DeviceBuffer((batch,) + inputs.shape[1:], inputs.dtype.name, index)
        self._state = cuda.IncrementalFillState()
        self._inputs_view = arrays.view(self._inputs)
        self._batch_view = arrays.view(self.buffer)
        self._deltas: Any = None
        #: The (input, window) pairs the stream walks ((P, 2) int64), None: every window of
        #: every input (set by build_sweep for a sweep of some windows only); uploaded once,
        #: at the first fill, as a _cuda.StreamPairs.
        self.pairs: np.ndarray | None = None
        self._device_pairs: Any = None

    def load_unperturbed(self, start: int, count: int) -> None:
        self._batch_view[:count] = self._inputs_view[start : start + count]
        self._state.reset()

    def fill(self, start: int, count: int, stride: int) -> None:
        if self.pairs is not None and self._device_pairs is None:
            self._device_pairs = self._cuda.StreamPairs(self.pairs, self.arrays.device_index)
        self._cuda.fill_occluded_batch(
            self._inputs,
            self.grid,
            self._baseline,
            start,
            count,
            self.buffer,
            self._state,
            stride=stride,
            baseline_kind=self._kind,
            stream=self._stream,
            pairs=self._device_pairs,
        )

    def asarray(self, values: np.ndarray) -> Any:
        return self.arrays.asarray(values)

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.arrays.empty(shape, dtype)

    def concatenate(self, arrays: list[Any]) -> Any:
        return self.arrays.concatenate(arrays)

    def deltas(self, planes: int = 1) -> Any:
        shape = delta_shape(self.n, self.grid, self.pairs, planes)
        self._deltas = self._cuda.DeviceBuffer(shape, "float64", self.arrays.device_index)
        return self.arrays.view(self._deltas).reshape(-1)

    def maps(self, reduction: str, collapsed_axes: tuple[int, ...]) -> Any:
        assert self._deltas is not None, "deltas() first"
        maps = self._cuda.accumulate_window_deltas(
            self._deltas, self.grid, reduction, collapsed_axes, stream=self._stream
        )
        return self.arrays.view(maps)

    def blend(self, importance: np.ndarray, collapsed_axes: tuple[int, ...]) -> Any:
        assert self._deltas is not None, "deltas() first"
        maps = self._cuda.blend_window_values(
            self._deltas, self.grid, importance, collapsed_axes, stream=self._stream
        )
        return self.arrays.view(maps)
