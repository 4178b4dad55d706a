"""Where an occlusion window can change a CNN's feature maps (design §8): the boxes of exact
incremental inference, per window and layer.

An occluded sample differs from its unoccluded input only inside the window's box. A local
layer (convolution, pooling: a kernel, a stride, a padding, a dilation per axis) changes
its output only where its receptive field meets a changed input position, so each feature
map gets a box per window that holds every changed position. Recomputing a layer over that
box needs the input window under it (the box grown by the kernel's halo, reaching past the
map where the layer pads). Boxes of one map share one size (the largest any window needs,
the box moved inward at the map's edges), so the boxes of a batch's slots stack into one
tensor and one layer call computes them all. Maps have one to three axes besides their
channels (time; rows, columns; depth, rows, columns): a box has a begin and a length per
axis.

Framework-neutral: a backend describes its layers by their numbers and gets the boxes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The default switch-back share: a layer whose changed box covers more than this share of
#: its output map (and every layer after it) runs in full on the spliced maps. Measured
#: (``benchmarks/bench_incremental.py --calibrate``, CPU, batch 32, VGG-16 and ResNet-18 at
#: 224x224, patches 16/8 and 32/16): a convolution over the stacked boxes of a batch costs
#: about its share of the full layer's time, plus the halo and the gathers, so switching
#: too early (20-40 %) leaves 10-80 % on the table, and running boxes past ~80 % of the map
#: costs more than the full layer; at 70 % the time per call was within 7 % of the best
#: share on all four (the best lay at 60-80 %).
DEFAULT_SWITCH_SHARE = 0.7
#: Keras on TensorFlow: its convolutions over stacked boxes run at 88-100 % of the full
#: layer's rate per multiply-add (oneDNN, 64 to 512 channels), so boxes pay further.
#: Measured as above (seconds per call at 60/70/80/90/100 %): VGG-16 patch 16 0.587,
#: 0.558, 0.542, 0.541, 0.542; patch 32 0.799, 0.791, 0.773, 0.776, 0.780; Keras's
#: ResNet50 (random weights) patch 16 0.768, 0.774, 0.770, 0.756, 0.802; patch 32 0.979,
#: 0.898, 0.912, 0.898, 1.060. A whole VGG-16 explain (patch 16 stride 8): 17.1 s at 80 %
#: against 18.1 s at 70 %.
DEFAULT_SWITCH_SHARE_KERAS = 0.8

#: incremental="auto" keeps the normal sweep when the plan saves less than this share of
#: the model's multiply-adds (the gathers, splices and per-layer calls would eat it) ...
AUTO_MIN_SAVED_SHARE = 0.25
#: ... or when a full model call holds fewer multiply-adds than the framework's floor,
#: where the per-layer work of an incremental call (Python, the framework's dispatch, the
#: gathers) weighs as much as the layers. PyTorch, measured on a two-conv CNN at batch 32
#: (bench_torch's small_cnn): even at 1.3e7 per call (16x16 images), 1.8x faster at 2.9e7
#: (24x24), 3x at 5.2e7 (32x32).
AUTO_MIN_CALL_MACS = 2e7
#: Keras on TensorFlow (eager layer calls: ~1-3 ms per layer and call on CPU), measured
#: per call (batch 64 or 32) on CNNs of 3 to 17 incremental layers: 0.4x at 7e7 (a two-conv
#: CNN, 32x32), 1.0x at 1.5e9 (the same at 128x128), 0.6x at 2.5e9 (VGG-16 at 64x64, a
#: quarter of its widths), 1.9x at 3.1e10 (at 112x112, half its widths), 5.8x at 5e11
#: (VGG-16 at 224x224).
AUTO_MIN_CALL_MACS_KERAS = 1e10
#: On a GPU the per-layer costs are not measured here: no floor decides, "auto" measures
#: the sweep's calls (see AUTO_MEASURE_RANGE) wherever the multiply-adds saved suffice.
AUTO_MIN_CALL_MACS_UNMEASURED = math.inf
#: ... or when the kept activations (N x the stored maps) and the spliced buffers (batch x
#: the materialised maps) would take more bytes than this.
AUTO_MAX_KEPT_BYTES = 2 << 30
#: Below the floor but within this factor of it, the multiply-adds do not decide: "auto"
#: measures an incremental and a full call of the sweep's second batch and keeps the
#: faster (the floors are medians over models whose per-layer costs differ: a Keras CNN of
#: four 3x3 convolutions at 64x64 ran 3x faster incrementally below its floor).
AUTO_MEASURE_RANGE = 100.0


@dataclass(frozen=True, eq=False)
class Regions:
    """One box per occlusion window over a map of one to three axes (time; rows, columns;
    depth, rows, columns): window k's box starts at ``begin[k]`` and has the common
    ``size``. For changed regions the boxes lie inside the map of ``shape``; for input
    windows they may reach past it (the padding)."""

    begin: np.ndarray  # (K, axes) int64
    size: tuple[int, ...]
    shape: tuple[int, ...]

    @property
    def axes(self) -> int:
        """The map's axes (besides its channels)."""
        return len(self.shape)

    @property
    def share(self) -> float:
        """The share of the map one box covers."""
        return math.prod(self.size) / math.prod(self.shape)

    def same_boxes(self, other: Regions) -> bool:
        """True when every window has the same box in both."""
        return (
            self.size == other.size
            and self.shape == other.shape
            and np.array_equal(self.begin, other.begin)
        )


@dataclass(frozen=True, eq=False)
class IncrementalRequest:
    """What a sweep asks of a backend's exact incremental inference: ``regions``, the
    windows' boxes over the map axes of its samples (one to three: time; rows, columns;
    depth, rows, columns), the channels last when ``channels_last`` ((H, W, C)), else first
    ((C, H, W)); ``n`` inputs; ``batch`` samples per model call; ``switch_share``: a layer
    whose changed box covers more than this share of its map runs in full from there on
    (None: the framework's default, ``TensorOps.switch_share``); ``required``
    (incremental=True): a ValueError naming the first unsupported layer or option instead
    of (None, why); ``truncation``: None (exact), or the projective-field share past which
    boxes are cut (``truncated_regions``: approximate)."""

    regions: Regions
    n: int
    batch: int
    switch_share: float | None
    required: bool
    channels_last: bool
    truncation: float | None = None


def window_regions(grid: Any, axes: Sequence[int]) -> Regions:
    """The occlusion windows' boxes over ``axes`` (one to three) of a ``_core.WindowGrid``'s
    sample (windows enumerated row-major over all the grid's axes, as the sweep's stream
    is)."""
    counts = tuple(grid.counts)
    index = np.indices(counts).reshape(len(counts), -1)  # (rank, K): each window's position
    begin = np.empty((index.shape[1], len(axes)), dtype=np.int64)
    size = []
    for column, axis in enumerate(axes):
        spans = np.asarray(grid.spans(axis), dtype=np.int64).reshape(-1, 2)  # (anchor, extent)
        anchors, extents = spans[index[axis], 0], spans[index[axis], 1]
        length = int(grid.shape[axis])
        common = int(extents.max())
        begin[:, column] = np.clip(anchors, 0, length - common)
        size.append(common)
    return Regions(begin, tuple(size), tuple(int(grid.shape[axis]) for axis in axes))


@dataclass(frozen=True)
class LocalLayer:
    """A layer whose output at position o reads inputs o * stride - padding + i * dilation,
    i < kernel, per map axis; ``padding`` is the padding before the first position
    (PyTorch's left/top/front padding)."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]


def local_regions(
    regions: Regions, layer: LocalLayer, out_shape: tuple[int, ...]
) -> tuple[Regions, Regions]:
    """(the output map's changed boxes, the input windows that compute them) of a local
    layer whose input changes only inside ``regions``: per window, every output position
    whose receptive field meets the input box (clipped to the map, one common size, moved
    inward at the edges), and the input positions those outputs read."""
    out_begin = np.empty_like(regions.begin)
    out_size = []
    for axis in range(regions.axes):
        k, s = layer.kernel[axis], layer.stride[axis]
        p, d = layer.padding[axis], layer.dilation[axis]
        length = out_shape[axis]
        first = regions.begin[:, axis]
        last = first + regions.size[axis] - 1
        lo = np.maximum(-((-(first + p - d * (k - 1))) // s), 0)  # ceil division
        hi = np.minimum((last + p) // s, length - 1)
        size = int(max(1, min(length, int((hi - lo + 1).max()))))
        out_begin[:, axis] = np.clip(lo, 0, length - size)
        out_size.append(size)
    out = Regions(out_begin, tuple(out_size), out_shape)
    return out, input_windows(out, layer, regions.shape)


def input_windows(out: Regions, layer: LocalLayer, in_shape: tuple[int, ...]) -> Regions:
    """The input windows (over a map of ``in_shape``; they may reach past it where the
    layer pads) that a local layer reads to compute its output boxes ``out``."""
    begin = np.empty_like(out.begin)
    size = []
    for axis in range(out.axes):
        k, s = layer.kernel[axis], layer.stride[axis]
        p, d = layer.padding[axis], layer.dilation[axis]
        begin[:, axis] = out.begin[:, axis] * s - p
        size.append((out.size[axis] - 1) * s + d * (k - 1) + 1)
    return Regions(begin, tuple(size), in_shape)


def truncated_regions(regions: Regions, share: float) -> Regions:
    """Projective-field truncation (approximate, Krypton's tau): along every axis where the
    boxes are longer than ``share`` (in (0, 1]) of the map, the central
    ``max(1, round(share * length))`` positions of each box; the rest of the box is taken
    as unchanged. The boxes as they are when none is that long."""
    begin = regions.begin.copy()
    size = list(regions.size)
    for axis, length in enumerate(regions.shape):
        cap = max(1, round(share * length))
        if size[axis] > cap:
            begin[:, axis] += (size[axis] - cap) // 2
            size[axis] = cap
    if tuple(size) == regions.size:
        return regions
    return Regions(begin, tuple(size), regions.shape)


def hull_regions(parts: Sequence[Regions], shape: tuple[int, ...]) -> Regions:
    """Boxes holding every part's box (the changed region of a sum or a concatenation of
    maps of ``shape``)."""
    begin = np.empty_like(parts[0].begin)
    size = []
    for axis in range(len(shape)):
        lo = np.min([r.begin[:, axis] for r in parts], axis=0)
        hi = np.max([r.begin[:, axis] + r.size[axis] for r in parts], axis=0)
        common = int(min(shape[axis], int((hi - lo).max())))
        begin[:, axis] = np.clip(lo, 0, shape[axis] - common)
        size.append(common)
    return Regions(begin, tuple(size), shape)


def shifted_regions(regions: Regions, offset: tuple[int, ...], shape: tuple[int, ...]) -> Regions:
    """The boxes moved by ``offset`` (per axis) into a map of ``shape`` (zero padding
    of ``offset`` before the map: the box keeps its size)."""
    return Regions(regions.begin + np.asarray(offset, dtype=np.int64), regions.size, shape)


def auto_declines(
    full_macs: int, incremental_macs: int, batch: int, kept_bytes: int,
    min_call_macs: float = AUTO_MIN_CALL_MACS,
) -> str | None:  # fmt: skip
    """Why incremental="auto" keeps the normal sweep for a plan computing
    ``incremental_macs`` of a model's ``full_macs`` multiply-adds per sample (0: unknown)
    and keeping ``kept_bytes`` of activations, or None. ``min_call_macs``: the framework's
    floor per full call (AUTO_MIN_CALL_MACS, AUTO_MIN_CALL_MACS_KERAS)."""
    if kept_bytes > AUTO_MAX_KEPT_BYTES:
        return f"it would keep {kept_bytes / 2**30:.1f} GiB of activations"
    if full_macs <= 0:
        return None
    saved = 1.0 - incremental_macs / full_macs
    if saved < AUTO_MIN_SAVED_SHARE:
        return f"it would save only {saved:.0%} of the multiply-adds"
    if full_macs * batch < min_call_macs:
        return f"a model call of {full_macs * batch:.2g} multiply-adds is too cheap to split"
    return None


def auto_measures(
    full_macs: int, incremental_macs: int, batch: int, kept_bytes: int,
    min_call_macs: float = AUTO_MIN_CALL_MACS,
) -> bool:  # fmt: skip
    """Whether "auto" should measure rather than decline (see ``auto_declines``): the only
    reason to decline is the floor per call, and the call is within AUTO_MEASURE_RANGE of
    it or the floor is AUTO_MIN_CALL_MACS_UNMEASURED."""
    if kept_bytes > AUTO_MAX_KEPT_BYTES or full_macs <= 0:
        return False
    if 1.0 - incremental_macs / full_macs < AUTO_MIN_SAVED_SHARE:
        return False
    if math.isinf(min_call_macs):  # AUTO_MIN_CALL_MACS_UNMEASURED
        return True
    return min_call_macs / AUTO_MEASURE_RANGE <= full_macs * batch < min_call_macs


def no_scorer(reason: str, required: bool) -> tuple[None, str]:
    """(None, the note) of a sweep that cannot run incrementally because of ``reason`` ("the
    argument: why"); ValueError naming ``incremental`` when it was required (True)."""
    if required:
        raise ValueError(f"incremental: True is invalid here, {reason}")
    return None, f"normal sweep: {reason}"
