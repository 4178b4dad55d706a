"""The Xplique-style front-end's input layouts: which axes of an input a patch spans, and the
engine geometry that follows (design §2, §7).

| input (data_format)               | family      | patch over      | maps                 |
|-----------------------------------|-------------|-----------------|----------------------|
| (N, W)                            | tabular     | W               | (N, W)               |
| (N, T, W)                         | time series | T, W            | (N, T, W)            |
| (N, H, W, C) channels_last        | images      | H, W (all C)    | (N, H, W, 1)         |
| (N, C, H, W) channels_first       | images      | H, W (all C)    | (N, 1, H, W)         |
| (N, D, H, W, C) channels_last     | volumes     | D, H, W (all C) | (N, D, H, W, 1)      |
| (N, C, D, H, W) channels_first    | volumes     | D, H, W (all C) | (N, 1, D, H, W)      |

A channel axis is covered in full by every window, so the maps keep it with length 1; the
maps of a channels-first input equal those of its channels-last transpose.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from fastocclusion.engine.geometry import WindowGeometry

DATA_FORMATS = ("channels_last", "channels_first")
FAMILY_BY_RANK = {2: "tabular", 3: "time series", 4: "images", 5: "volumes"}


@dataclass(frozen=True)
class InputLayout:
    """How one batch of inputs is read: its family, the sample axes a patch spans and the
    channel axis (images and volumes), in sample-axis numbering (the batch axis excluded)."""

    family: str
    shape: tuple[int, ...]  # the inputs' shape, (N, ...)
    spatial_axes: tuple[int, ...]
    channel_axis: int | None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.shape[1:]


def input_layout(shape: tuple[int, ...], data_format: str) -> InputLayout:
    """The layout of inputs of ``shape``; ValueError naming ``inputs`` for another rank."""
    family = FAMILY_BY_RANK.get(len(shape))
    if family is None:
        raise ValueError(
            f"inputs: shape {shape} (rank {len(shape)}) is invalid, expected (N, W) tabular, "
            "(N, T, W) time series, (N, H, W, C) images or (N, D, H, W, C) volumes "
            "(channels first with data_format='channels_first')"
        )
    rank = len(shape) - 1
    if family in ("tabular", "time series"):
        return InputLayout(family, shape, tuple(range(rank)), None)
    if data_format == "channels_first":
        return InputLayout(family, shape, tuple(range(1, rank)), 0)
    return InputLayout(family, shape, tuple(range(rank - 1)), rank - 1)


def spatial_sizes(value: tuple[int, ...], layout: InputLayout, name: str) -> tuple[int, ...]:
    """A patch size or stride (one int per spatial axis, or one int for all) for this
    layout; ValueError naming ``name`` otherwise."""
    spatial = len(layout.spatial_axes)
    if len(value) == 1:
        return value * spatial
    if len(value) != spatial:
        axes = {1: "one int", 2: "an int or two ints", 3: "an int or three ints"}[spatial]
        raise ValueError(
            f"{name}: {value if len(value) > 1 else value[0]} is invalid for {layout.family} "
            f"{layout.shape}, expected {axes} (one per patch axis)"
        )
    return value


def check_region(region: object, layout: InputLayout) -> tuple[tuple[int, int], ...] | None:
    """None, or one (begin, end) pair of ints per spatial axis with 0 <= begin < end <= the
    axis's length; ValueError naming ``region`` otherwise."""
    if region is None:
        return None
    spatial = len(layout.spatial_axes)
    try:
        pairs = tuple((int(b), int(e)) for b, e in region)  # type: ignore[union-attr]
        ints = all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool)
            for pair in region  # type: ignore[union-attr]
            for v in pair
        )
    except (TypeError, ValueError):
        pairs, ints = (), False
    if not ints or len(pairs) != spatial:
        raise ValueError(
            f"region: {region!r} is invalid for {layout.family} {layout.shape}, expected "
            f"{spatial} (begin, end) pairs of ints (one per patch axis)"
        )
    for (begin, end), axis in zip(pairs, layout.spatial_axes):
        length = layout.sample_shape[axis]
        if not 0 <= begin < end <= length:
            raise ValueError(
                f"region: ({begin}, {end}) along axis {axis + 1} is invalid, expected "
                f"0 <= begin < end <= {length}"
            )
    return pairs


def window_geometry(
    layout: InputLayout,
    patch: tuple[int, ...],
    stride: tuple[int, ...],
    edges: str,
    region: tuple[tuple[int, int], ...] | None = None,
) -> WindowGeometry:
    """The engine's windows for this layout: the patch on the spatial axes, the whole
    channel axis (collapsed in the maps); within ``region`` (one (begin, end) pair per
    spatial axis, checked by check_region) when given. ValueError naming patch_size for a
    patch larger than the input (or the region)."""
    if layout.family == "tabular" and (len(patch) != 1 or len(stride) != 1):
        raise ValueError(
            f"patch_size/patch_stride: {patch}/{stride} is invalid for tabular inputs "
            f"{layout.shape}, expected ints (one patch axis)"
        )
    patch = spatial_sizes(patch, layout, "patch_size")
    stride = spatial_sizes(stride, layout, "patch_stride")
    sample = layout.sample_shape
    window, steps = list(sample), list(sample)
    spans = [(0, length) for length in sample]
    for index, (axis, size, step) in enumerate(zip(layout.spatial_axes, patch, stride)):
        length = sample[axis]
        if size > length:
            raise ValueError(
                f"patch_size: {size} along axis {axis + 1} is larger than the input "
                f"(shape {layout.shape}, length {length}), expected <= {length}"
            )
        if region is not None:
            spans[axis] = region[index]
            if size > spans[axis][1] - spans[axis][0]:
                raise ValueError(
                    f"patch_size: {size} along axis {axis + 1} is larger than the region "
                    f"{spans[axis]}, expected <= {spans[axis][1] - spans[axis][0]}"
                )
        window[axis], steps[axis] = size, step
    collapsed = () if layout.channel_axis is None else (layout.channel_axis,)
    return WindowGeometry(
        sample,
        tuple(window),
        tuple(steps),
        edges,
        collapsed_axes=collapsed,
        region=None if region is None else tuple(spans),
    )


def sample_baseline(baseline: np.ndarray, layout: InputLayout) -> np.ndarray:
    """The baseline as the kernels take it: a 0-d scalar, or one float32 array of one
    input's shape: a per-channel vector (C,) of images or volumes along their channel axis,
    or any array broadcastable to one input. ValueError naming occlusion_value otherwise."""
    if baseline.ndim == 0:
        return np.array(baseline, dtype=np.float32)  # ascontiguousarray would make it 1-D
    sample = layout.sample_shape
    channels = sample[layout.channel_axis] if layout.channel_axis is not None else None
    if layout.channel_axis is not None and baseline.shape == (channels,):
        shape = [1] * len(sample)
        shape[layout.channel_axis] = channels
        baseline = baseline.reshape(shape)
    try:
        full = np.broadcast_to(baseline, sample)
    except ValueError:
        per_channel = f"({channels},) per channel, or " if channels is not None else ""
        raise ValueError(
            f"occlusion_value: shape {baseline.shape} is invalid for inputs {layout.shape}, "
            f"expected a scalar, {per_channel}an array broadcastable to {sample}"
        ) from None
    return np.ascontiguousarray(full, dtype=np.float32)


def classes_in_layout(
    per_class: np.ndarray, layout: InputLayout, map_shape: tuple[int, ...]
) -> np.ndarray:  # fmt: skip
    """``explain_classes``' maps, (N, classes, *map_shape), in the input's layout: the class
    axis in place of the channel axis (images, volumes), or last (tabular, time series).

    >>> classes_in_layout(np.zeros((2, 3, 4, 5, 1)), input_layout((2, 4, 5, 3),
    ...                   "channels_last"), (4, 5, 1)).shape
    (2, 4, 5, 3)
    """
    n, count = per_class.shape[:2]
    if layout.channel_axis is None:
        flat = per_class.reshape((n, count, -1)).swapaxes(1, 2)
        return flat.reshape((n,) + map_shape + (count,))
    moved = per_class.swapaxes(1, 2 + layout.channel_axis)
    return moved.reshape(
        (n,)
        + tuple(
            count if axis == layout.channel_axis else length
            for axis, length in enumerate(map_shape)
        )
    )
