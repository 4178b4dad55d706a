"""An independent NumPy oracle of design §7: occlusion maps over N-d windows, by loops over the
windows' anchors. Nothing here calls fastocclusion. Slow on purpose; obviously correct is the
point."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np


def anchors(
    length: int, window: int, stride: int, edges: str, region: tuple[int, int] | None = None
) -> list[tuple[int, int]]:
    """(begin, end) of the windows along one axis: valid anchors 0, s, 2s, ... while the
    window fits; "cover" adds one clipped window at the next stride step when the far edge
    is left uncovered and that step starts inside the axis. Within a region (begin, end):
    the same, counted from its begin and fitting before its end."""
    start, stop = region if region is not None else (0, length)
    spans = [(a, a + window) for a in range(start, stop - window + 1, stride)]
    if edges == "cover":
        last = spans[-1][0]
        if last + window < stop and last + stride < stop:
            spans.append((last + stride, stop))
    return spans


def window_boxes(
    shape: Sequence[int],
    window: Sequence[int],
    stride: Sequence[int],
    edges: str,
    region: Sequence[tuple[int, int]] | None = None,
) -> list[tuple[slice, ...]]:
    """Every window of one sample as a tuple of slices, row-major (first axis outer)."""
    regions = list(region) if region is not None else [None] * len(shape)
    per_axis = [anchors(n, w, s, edges, r) for n, w, s, r in zip(shape, window, stride, regions)]
    return [tuple(slice(b, e) for b, e in combo) for combo in itertools.product(*per_axis)]


def occlusion_nd(
    model: Callable[[np.ndarray], np.ndarray],
    inputs: np.ndarray,
    targets: np.ndarray,
    window: Sequence[int],
    stride: Sequence[int],
    baseline: np.ndarray,
    edges: str = "valid",
    reduction: str = "sum",
    region: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Maps (N, *sample shape) float64 of sum(model(x) * target): for every window, the
    drop of the score when the window is set to ``baseline`` (broadcast to one sample),
    credited to every element of the window (sum, or mean over the covering windows)."""
    inputs = np.asarray(inputs, np.float32)
    sample = inputs.shape[1:]
    baseline = np.broadcast_to(np.asarray(baseline, np.float32), sample)
    boxes = window_boxes(sample, window, stride, edges, region)
    maps = np.zeros(inputs.shape, np.float64)
    counts = np.zeros(sample, np.float64)
    for box in boxes:
        counts[box] += 1.0
    for i, x in enumerate(inputs):
        target = np.asarray(targets[i], np.float64)
        base = float(np.sum(np.asarray(model(x[None]), np.float64)[0] * target))
        occluded = np.repeat(x[None], len(boxes), axis=0)
        for j, box in enumerate(boxes):
            occluded[(j,) + box] = baseline[box]
        scores = np.sum(np.asarray(model(occluded), np.float64) * target, axis=-1)
        for box, score in zip(boxes, scores):
            maps[(i,) + box] += base - score
    if reduction == "mean":
        maps = np.divide(maps, counts, out=np.zeros_like(maps), where=counts > 0)
    return maps
