"""
fastocclusion compiled core: window grids, occluded batch filling, map accumulation
"""
from __future__ import annotations
import collections.abc
import numpy
import typing
__all__: list[str] = ['BUFFER_ALIGNMENT', 'HostBuffer', 'IncrementalFillState', 'SpliceState', 'WindowGrid', 'accumulate_window_deltas', 'blend_window_values', 'fill_occluded_batch', 'gather_windows', 'num_threads', 'set_num_threads', 'splice_windows', 'window_means']
class WindowGrid:
    """
    The windows of an occlusion sweep over the axes of one sample (design §2, §5, §7):
    per axis a window length, a stride and an edge mode ('valid', 'cover' or 'shift'); windows are
    enumerated in row-major order of their anchors (first axis outer).
    """
    def __eq__(self, arg0: WindowGrid) -> bool:
        ...
    def __getstate__(self) -> tuple[list[int], tuple, tuple, tuple, tuple]:
        ...
    def __hash__(self) -> int:
        ...
    def __init__(self, shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], window: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], stride: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], edges: typing.Any = 'valid', region: collections.abc.Sequence[tuple[typing.SupportsInt | typing.SupportsIndex, typing.SupportsInt | typing.SupportsIndex]] | None = None) -> None:
        """
        shape: one sample's shape (1 to 5 axes); window, stride: one size per axis;
        edges: 'valid' | 'cover' | 'shift' (the last window moved back to end at the edge, as
        MONAI's sliding windows), or one per axis; region: None (the whole sample) or
        one (begin, end) pair per axis: the windows lie in that box, anchored at begin.
        """
    def __repr__(self) -> str:
        ...
    def __setstate__(self, arg0: tuple) -> None:
        ...
    def spans(self, axis: typing.SupportsInt | typing.SupportsIndex) -> list[tuple[int, int]]:
        """
        (anchor, extent) of every window position along `axis`
        """
    def window_box(self, k: typing.SupportsInt | typing.SupportsIndex) -> tuple:
        """
        ((begin, end) per axis) of window k
        """
    @property
    def counts(self) -> tuple:
        """
        windows per axis
        """
    @property
    def edges(self) -> tuple:
        ...
    @property
    def num_windows(self) -> int:
        ...
    @property
    def rank(self) -> int:
        ...
    @property
    def region(self) -> tuple:
        """
        (begin, end) of the windows' box per axis
        """
    @property
    def sample_size(self) -> int:
        ...
    @property
    def shape(self) -> tuple:
        ...
    @property
    def stride(self) -> tuple:
        ...
    @property
    def window(self) -> tuple:
        ...
class HostBuffer:
    """
    A 64-byte-aligned, zeroed float32 buffer; NumPy views it by the buffer protocol,
    TensorFlow/PyTorch by DLPack, without a copy.
    """
    def __dlpack__(self, *, stream: typing.Any = None, max_version: typing.Any = None, dl_device: typing.Any = None, copy: typing.Any = None) -> typing.Any:
        ...
    def __dlpack_device__(self) -> tuple[int, int]:
        ...
    def __init__(self, shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex]) -> None:
        ...
    @property
    def data_ptr(self) -> int:
        ...
    @property
    def nbytes(self) -> int:
        ...
    @property
    def shape(self) -> tuple:
        ...
class IncrementalFillState:
    """
    What each slot of a persistent batch holds, for incremental fills.
    """
    def __init__(self) -> None:
        ...
    def reset(self) -> None:
        """
        Forget what every slot holds: the next fill is a full one.
        """
class SpliceState:
    """
    What each slot of a persistent spliced buffer holds (splice_windows).
    """
    def __init__(self) -> None:
        ...
    def reset(self) -> None:
        """
        Forget what every slot holds: the next fill is a full one.
        """
def accumulate_window_deltas(deltas: numpy.ndarray, grid: WindowGrid, reduction: str = 'sum', collapsed_axes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] = [], out: numpy.ndarray | None = None) -> numpy.ndarray:
    """
    Sensitivity maps (N, *map shape) float32 from window deltas (N, *grid.counts) float64.
    The map shape is grid.shape with the collapsed axes of length 1 (only axes one window
    covers in full may be collapsed: images (H, W, C) with windows (ph, pw, C) give
    (H, W, 1) maps with collapsed_axes=(2,)).
    """
def blend_window_values(values: numpy.ndarray, grid: WindowGrid, importance: numpy.ndarray, collapsed_axes: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] = [], out: numpy.ndarray | None = None) -> numpy.ndarray:
    """
    Maps (N, *map shape) float32 blending per-window values (N, *grid.counts) float64 with
    window-shaped weights: at x, sum importance[x - anchor] * value / sum importance[x -
    anchor] over the windows covering x (0 where none). importance float32, finite > 0, of
    shape grid.window with 1 on the collapsed axes (MONAI's gaussian blending; a constant
    importance is accumulate_window_deltas(..., 'mean')).
    """
def fill_occluded_batch(inputs: numpy.ndarray, grid: WindowGrid, baseline: numpy.ndarray, start: typing.SupportsInt | typing.SupportsIndex, count: typing.SupportsInt | typing.SupportsIndex, out: numpy.ndarray, state: IncrementalFillState = None, *, stride: typing.SupportsInt | typing.SupportsIndex = 1, baseline_kind: str = 'auto', pairs: numpy.ndarray | None = None) -> None:
    """
    Write occluded samples of the (input, window) stream into out[:count]: slot j gets
    stream index start + j*stride (stride 1: the slice [start, start+count)) of the
    grid's stream (index s: input s // K, window s % K) or of pairs ((P, 2) int64:
    index s is (input, window) pairs[s]).
    inputs (N, *grid.shape): float32, float64, or any dtype of 1, 2, 4 or 8 bytes (integers,
    bool, float16, bfloat16 as its int16 or uint16 bits), whose values are copied bit for bit; baseline
    and out of the inputs' dtype. baseline by baseline_kind: 'auto': (),
    grid.shape or (N, *grid.shape); 'per_window': (N, *grid.counts), one value per input
    and window (e.g. window_means); 'per_window_scale': the same shape, the box gets the
    input times its window's value; 'window_mask': grid.window, the box gets the input
    times the mask (these two: float32 or float64 only); out (B, *grid.shape), B >= count;
    state: an
    IncrementalFillState for incremental fills (only the previous and the new window of a
    slot are rewritten).
    """
def gather_windows(maps: numpy.ndarray, map_index: numpy.ndarray, origins: numpy.ndarray, size: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], out: numpy.ndarray | None = None, patches: numpy.ndarray | None = None, patch_origins: numpy.ndarray | None = None, *, pad_value: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> numpy.ndarray:
    """
    Windows of channels-first feature maps, one per slot: out[j] (C, *size) is map
    maps[map_index[j]] read from origins[j] (one position per map axis; any int64, the
    window may reach past the map), pad_value outside the map, and patches[j] (C, *box)
    in place of the map inside slot j's patch box at patch_origins[j] (inside the map).
    maps (M, C, *map) over 1 to 3 axes (time; rows, columns; depth, rows, columns),
    float32 or float64 (patches and out the same dtype); map_index (count,) int64;
    origins, patch_origins (count, axes) int64; size: the window's length per axis;
    out (count, C, *size) or None (a new array). Returns out.
    """
def num_threads() -> int:
    """
    Threads the CPU kernels may use.
    """
def set_num_threads(threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Set the threads the CPU kernels may use (< 1: hardware concurrency).
    """
def splice_windows(maps: numpy.ndarray, map_index: numpy.ndarray, patches: numpy.ndarray, origins: numpy.ndarray, out: numpy.ndarray, state: SpliceState = None) -> None:
    """
    Dense maps with patches spliced in: out[j] = maps[map_index[j]] with patches[j]
    (C, *box) written at origins[j] (a box inside the map), for j < count; slots past
    count keep their content. maps (M, C, *map) over 1 to 3 axes, float32 or float64;
    patches (count, C, *box) and out (B, C, *map), B >= count, of the same dtype;
    map_index (count,) int64; origins (count, axes) int64. state: a SpliceState for a
    persistent out (a slot that keeps its map gets only its previous box restored and
    the new patch written).
    """
def window_means(inputs: numpy.ndarray, grid: WindowGrid, out: numpy.ndarray | None = None) -> numpy.ndarray:
    """
    The mean of every window's box per input, (N, *grid.counts) of the inputs' dtype
    (float64 sums): the values of 'per_window' and 'per_window_scale' (MONAI's
    mean_patch). inputs (N, *grid.shape) float32 or float64; out of the same dtype.
    """
BUFFER_ALIGNMENT: int = 64
