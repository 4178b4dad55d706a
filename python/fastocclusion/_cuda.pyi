"""
fastocclusion CUDA kernels: device buffers, occluded batch filling, map accumulation
"""
from __future__ import annotations
import collections.abc
import fastocclusion._core
import numpy
import typing
__all__: list[str] = ['CudaError', 'CudaOutOfMemoryError', 'DeviceBuffer', 'IncrementalFillState', 'StreamPairs', 'accumulate_window_deltas', 'blend_window_values', 'device_count', 'driver_version', 'fill_occluded_batch', 'gather_windows', 'is_available', 'runtime_version', 'splice_windows', 'synchronize', 'window_means']
class CudaError(RuntimeError):
    pass
class CudaOutOfMemoryError(CudaError):
    pass
class DeviceBuffer:
    """
    A zeroed buffer in device memory (256-byte aligned, row-major) of one of NumPy's
    number dtypes: float32, float64, float16, int8..int64, uint8..uint64 or bool
    (bfloat16 as its bits: int16 or uint16). PyTorch, CuPy and JAX view it without a copy
    through DLPack.
    """
    @staticmethod
    def from_host(array: numpy.ndarray, device: typing.SupportsInt | typing.SupportsIndex = 0) -> DeviceBuffer:
        """
        A new buffer of the array's dtype holding a copy of it (synchronous).
        """
    def __dlpack__(self, *, stream: typing.Any = None, max_version: typing.Any = None, dl_device: typing.Any = None, copy: typing.Any = None) -> typing.Any:
        ...
    def __dlpack_device__(self) -> tuple[int, int]:
        ...
    def __init__(self, shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], dtype: str = 'float32', device: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        shape: >= 1 sizes, each >= 1; dtype: a str, 'float32' (default), 'float64', 'float16', 'int8'..'int64', 'uint8'..'uint64' or 'bool'; zeroed (synchronous).
        """
    def __repr__(self) -> str:
        ...
    def copy_from_host(self, array: numpy.ndarray, stream: typing.Any = None) -> None:
        """
        Copy a C-contiguous array of the same dtype and shape in (synchronous).
        """
    def to_host(self, stream: typing.Any = None) -> numpy.ndarray:
        """
        A NumPy copy, after the work enqueued on the buffer (synchronous).
        """
    @property
    def data_ptr(self) -> int:
        ...
    @property
    def device(self) -> int:
        ...
    @property
    def dtype(self) -> str:
        ...
    @property
    def nbytes(self) -> int:
        ...
    @property
    def ndim(self) -> int:
        ...
    @property
    def shape(self) -> tuple:
        ...
    @property
    def size(self) -> int:
        ...
class IncrementalFillState:
    """
    What each slot of a persistent device batch holds (kept on the host), for incremental fills.
    """
    def __init__(self) -> None:
        ...
    def reset(self) -> None:
        """
        Forget what every slot holds: the next fill is a full one.
        """
class StreamPairs:
    """
    The (input, window) pairs of a sweep of some windows only (a drill-down's), for
    fill_occluded_batch(pairs=...): a host copy (checked and planned on the host) and a
    device copy (read by the kernels), made once (synchronous upload).
    """
    def __init__(self, pairs: numpy.ndarray, device: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        """
        pairs: int64 (P, 2), P >= 1, rows (input, window).
        """
    @property
    def count(self) -> int:
        ...
    @property
    def device(self) -> int:
        ...
def accumulate_window_deltas(deltas: typing.Any, grid: fastocclusion._core.WindowGrid, reduction: str = 'sum', collapsed_axes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] = [], out: DeviceBuffer = None, *, stream: typing.Any = None) -> DeviceBuffer:
    """
    Sensitivity maps (N, *map shape) as a float32 DeviceBuffer from window deltas
    (N, *grid.counts) float64 (a host ndarray or a DeviceBuffer); synchronous. The map
    shape is grid.shape with the collapsed axes of length 1 (as _core's).
    """
def blend_window_values(values: typing.Any, grid: fastocclusion._core.WindowGrid, importance: numpy.ndarray, collapsed_axes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] = [], out: DeviceBuffer = None, *, stream: typing.Any = None) -> DeviceBuffer:
    """
    Maps (N, *map shape) as a float32 DeviceBuffer blending per-window values
    (N, *grid.counts) float64 (a host ndarray or a DeviceBuffer) with window-shaped
    weights (importance: a host float32 ndarray, finite > 0, of grid.window with 1 on
    the collapsed axes); synchronous; as _core's, bit for bit.
    """
def device_count() -> int:
    """
    Number of usable CUDA devices; 0 without a driver.
    """
def driver_version() -> int:
    """
    CUDA version the installed driver supports, 0 without a driver.
    """
def fill_occluded_batch(inputs: DeviceBuffer, grid: fastocclusion._core.WindowGrid, baseline: typing.Any, start: typing.SupportsInt | typing.SupportsIndex, count: typing.SupportsInt | typing.SupportsIndex, out: DeviceBuffer, state: IncrementalFillState = None, *, stride: typing.SupportsInt | typing.SupportsIndex = 1, baseline_kind: str = 'auto', stream: typing.Any = None, pairs: StreamPairs = None) -> None:
    """
    Enqueue occluded samples of the (input, window) stream into out[:count] (asynchronous): slot j
    gets stream index start + j*stride (stride 1: the slice [start, start+count)).
    inputs: a DeviceBuffer (N, *grid.shape) of any dtype, whose values are copied bit
    for bit (bfloat16 as its bits: int16 or uint16); grid: a _core.WindowGrid;
    baseline, of the inputs' dtype: a scalar (a number for float32/float64 inputs, else a
    0-d host array of that dtype) or a DeviceBuffer of grid.shape or (N, *grid.shape)
    (baseline_kind 'auto'), of (N, *grid.counts) ('per_window', 'per_window_scale') or
    grid.window ('window_mask'), as _core's ('per_window_scale' and 'window_mask'
    multiply: float32/float64 only);
    out: a DeviceBuffer (B, *grid.shape) of the inputs' dtype, B >= count; state: an
    IncrementalFillState for incremental fills; stream: see the module doc; pairs: a
    StreamPairs, whose pairs replace the grid's stream (slot j gets pair start + j*stride).
    """
def gather_windows(maps: typing.Any, map_index: numpy.ndarray, origins: numpy.ndarray, size: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], out: typing.Any, patches: typing.Any = None, patch_origins: numpy.ndarray | None = None, *, pad_value: typing.SupportsFloat | typing.SupportsIndex = 0.0, stream: typing.Any = None) -> None:
    """
    _core.gather_windows on a CUDA device, bit for bit: out[j] (C, *size) is map
    maps[map_index[j]] read from origins[j] (pad_value outside the map) with patches[j]
    in place of the map inside slot j's box at patch_origins[j]. maps (M, C, *map) over
    1 to 3 axes, patches (count, C, *box) and out (count, C, *size): C-contiguous
    float32 or float64 CUDA arrays of one dtype and device, read through DLPack (a
    torch.Tensor, a CuPy array, a DeviceBuffer); map_index (count,), origins and
    patch_origins (count, axes): host int64 NumPy arrays. Enqueued on `stream` (None:
    the legacy default stream); returns without waiting.
    
    >>> _cuda.gather_windows(maps, index, origins, (4, 4), out, stream=torch_stream)
    """
def is_available() -> bool:
    """
    True when a CUDA driver and at least one device are usable; never raises.
    """
def runtime_version() -> int:
    """
    CUDA runtime version this module was built with, e.g. 13000.
    """
def splice_windows(maps: typing.Any, map_index: numpy.ndarray, patches: typing.Any, origins: numpy.ndarray, out: typing.Any, *, stream: typing.Any = None) -> None:
    """
    _core.splice_windows on a CUDA device with no state, bit for bit: out[j] =
    maps[map_index[j]] with patches[j] (C, *box) written at origins[j] (a box inside the
    map), every element of slot j written, for j < count (later slots keep their
    content). maps (M, C, *map), patches (count, C, *box), out (B, C, *map) with
    B >= count: C-contiguous float32 or float64 CUDA arrays of one dtype and device
    (DLPack); map_index (count,), origins (count, axes): host int64 NumPy arrays.
    Enqueued on `stream`; returns without waiting.
    
    >>> _cuda.splice_windows(maps, index, patches, origins, out, stream=torch_stream)
    """
def synchronize(stream: typing.Any = None, device: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
    """
    Wait until the work enqueued on `stream` (default: the legacy default stream) of `device` is done.
    """
def window_means(inputs: DeviceBuffer, grid: fastocclusion._core.WindowGrid, *, stream: typing.Any = None) -> DeviceBuffer:
    """
    The mean of every window's box per input (inputs: a float32 or float64 DeviceBuffer),
    a DeviceBuffer (N, *grid.counts) of the inputs' dtype
    (asynchronous): the values of 'per_window' and 'per_window_scale' (MONAI's
    mean_patch), as _core's.
    """
