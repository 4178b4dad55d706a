"""An independent, deliberately plain NumPy implementation of design §1-§3 and §5.

It is the oracle of the Python tests: written from the design alone (docs/design.md), with
Python loops over patches, boxes and pixels, float64 accumulation, and no import of
fastocclusion. Speed is not a goal; obviousness is.

Shapes (design §2):
    images      (N, H, W, C) -> maps (N, H, W, 1), 2-D patch over H and W, all channels
    time series (N, T, W)    -> maps (N, T, W),    2-D patch over T and W
    tabular     (N, W)       -> maps (N, W),       1-D patch over W
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

ModelFn = Callable[[np.ndarray], np.ndarray]

# ---------------------------------------------------------------------------------------
# Geometry (design §2, §5)


def axis_anchors(
    length: int, patch: int, stride: int, edges: str = "valid"
) -> list[tuple[int, int]]:
    """(anchor, extent) of every patch along one axis.

    valid: anchors i * stride for i = 0 .. ceil((length - patch + 1) / stride) - 1.
    cover: the valid anchors plus, when the valid patches leave the far edge uncovered, one
    more anchor at the next stride step if it starts inside the axis, clipped to the axis.
    """
    if length < 1 or patch < 1 or stride < 1 or patch > length:
        raise ValueError(f"invalid axis: length={length}, patch={patch}, stride={stride}")
    if edges not in ("valid", "cover"):
        raise ValueError(f"edges={edges!r}")
    count = math.ceil((length - patch + 1) / stride)
    anchors = [i * stride for i in range(count)]
    if edges == "cover":
        last_end = anchors[-1] + patch
        following = anchors[-1] + stride
        if last_end < length and following < length:
            anchors.append(following)
    return [(a, min(patch, length - a)) for a in anchors]


def patch_boxes(
    height: int, width: int, patch: tuple[int, int], stride: tuple[int, int], edges: str = "valid"
) -> list[tuple[int, int, int, int]]:
    """(row0, row1, col0, col1) of every patch of an (height, width) plane, row-major."""
    rows = axis_anchors(height, patch[0], stride[0], edges)
    cols = axis_anchors(width, patch[1], stride[1], edges)
    return [(r, r + er, c, c + ec) for r, er in rows for c, ec in cols]


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    first, second = value
    return int(first), int(second)


def plane_geometry(
    input_shape: Sequence[int], patch_size, patch_stride
) -> tuple[int, int, tuple[int, int], tuple[int, int]]:
    """(height, width, patch, stride) of the plane the patches slide over, per design §2."""
    rank = len(input_shape)
    if rank == 4:
        return input_shape[1], input_shape[2], _pair(patch_size), _pair(patch_stride)
    if rank == 3:
        return input_shape[1], input_shape[2], _pair(patch_size), _pair(patch_stride)
    if rank == 2:
        return 1, input_shape[1], (1, int(patch_size)), (1, int(patch_stride))
    raise ValueError(f"rank {rank} is not an input rank of design §2")


# ---------------------------------------------------------------------------------------
# Occlusion of one input


def broadcast_baseline(occlusion_value, sample_shape: Sequence[int]) -> np.ndarray:
    """The baseline as a float32 array of one input's shape (scalar, per-channel, full)."""
    value = np.asarray(occlusion_value, dtype=np.float32)
    return np.broadcast_to(value, tuple(sample_shape)).copy()


def occlude(sample: np.ndarray, box: tuple[int, int, int, int], baseline: np.ndarray) -> np.ndarray:
    """A copy of one input (without its batch axis) with the patch `box` set to `baseline`."""
    r0, r1, c0, c1 = box
    out = np.array(sample, dtype=np.float32, copy=True)
    if out.ndim == 3:  # image (H, W, C): all channels at once
        out[r0:r1, c0:c1, :] = baseline[r0:r1, c0:c1, :]
    elif out.ndim == 2:  # time series (T, W)
        out[r0:r1, c0:c1] = baseline[r0:r1, c0:c1]
    elif out.ndim == 1:  # tabular (W,), the plane is (1, W)
        assert (r0, r1) == (0, 1)
        out[c0:c1] = baseline[c0:c1]
    else:
        raise ValueError(f"sample rank {out.ndim}")
    return out


# ---------------------------------------------------------------------------------------
# Operators (design §3): each maps (model outputs as float64, targets as float64) to one score
# per sample, looping over samples.


def score_predictions(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """None / classification / regression: sum(f(x) * y, axis=-1)."""
    return np.sum(outputs * targets, axis=-1)


def score_segmentation(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """sum(f(x) * mask) / count_nonzero(mask), per sample."""
    scores = np.empty(len(outputs))
    for i in range(len(outputs)):
        scores[i] = np.sum(outputs[i] * targets[i]) / np.count_nonzero(targets[i])
    return scores


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """intersection / (union + 1e-4) of two (x1, y1, x2, y2) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / (union + 1e-4)


def class_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """dot(a, b) / (|a| * |b| + 1e-4)."""
    return float(np.dot(a, b)) / (float(np.linalg.norm(a)) * float(np.linalg.norm(b)) + 1e-4)


DETECTION_FACTORS = {  # which of (objectness, class similarity) multiply the IoU
    "object detection": (True, True),
    "object detection box position": (False, False),
    "object detection box proba": (True, False),
    "object detection box class": (False, True),
}


def detection_score(predicted: np.ndarray, target: np.ndarray, variant: str) -> float:
    """D-RISE score of one image: predicted (B, 4+1+K), target (4+1+K,) or (B', 4+1+K)."""
    use_objectness, use_class = DETECTION_FACTORS[variant]
    target = target.reshape(-1, target.shape[-1])
    target_boxes = [t for t in target if np.any(t != 0)]
    predicted_boxes = [p for p in predicted if np.any(p != 0)]
    if not target_boxes or not predicted_boxes:
        return 0.0
    per_target = []
    for t in target_boxes:
        best = -math.inf
        for p in predicted_boxes:
            value = box_iou(t[:4], p[:4])
            if use_objectness:
                value *= p[4]
            if use_class:
                value *= class_similarity(t[5:], p[5:])
            best = max(best, value)
        per_target.append(best)
    return float(np.mean(per_target))


def make_detection_scorer(variant: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def score(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return np.array(
            [detection_score(outputs[i], targets[i], variant) for i in range(len(outputs))]
        )

    return score


OPERATOR_SCORERS = {
    None: score_predictions,
    "classification": score_predictions,
    "regression": score_predictions,
    "semantic segmentation": score_segmentation,
    **{name: make_detection_scorer(name) for name in DETECTION_FACTORS},
}

# A custom operator is given to the reference as a function (outputs, targets) -> scores.
Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def resolve_scorer(operator: str | Scorer | None) -> Scorer:
    if operator is None or isinstance(operator, str):
        return OPERATOR_SCORERS[operator]
    return operator


# ---------------------------------------------------------------------------------------
# The whole method (design §1)


def one_hot_argmax(outputs: np.ndarray) -> np.ndarray:
    """One-hot of the top class along the last axis (targets=None, design §3)."""
    hot = np.zeros(outputs.shape, dtype=np.float32)
    index = np.argmax(outputs, axis=-1)
    np.put_along_axis(hot, index[..., None], 1.0, axis=-1)
    return hot


def model_outputs(model_fn: ModelFn, batch: np.ndarray) -> np.ndarray:
    return np.asarray(model_fn(np.ascontiguousarray(batch, dtype=np.float32)), dtype=np.float64)


def reference_scores(
    model_fn: ModelFn, inputs: np.ndarray, targets: np.ndarray | None, operator=None
) -> np.ndarray:
    """Scores g(f, x, y) of the unperturbed inputs (float64, one per sample)."""
    inputs = np.asarray(inputs, dtype=np.float32)
    outputs = model_outputs(model_fn, inputs)
    if targets is None:
        targets = one_hot_argmax(outputs)
    return resolve_scorer(operator)(outputs, np.asarray(targets, dtype=np.float64))


def reference_occlusion(
    model_fn: ModelFn,
    inputs: np.ndarray,
    targets: np.ndarray | None,
    operator: str | Scorer | None = None,
    patch_size=3,
    patch_stride=3,
    occlusion_value=0.0,
    edges: str = "valid",
    reduction: str = "sum",
) -> np.ndarray:
    """Occlusion sensitivity maps of `inputs` per design §1-§3, §5, as float32.

    model_fn maps a float32 NumPy batch to NumPy outputs. operator is None, a task name of
    design §3 (lower case, e.g. "semantic segmentation") or a scorer (outputs, targets) -> scores
    over NumPy arrays. occlusion_value is anything broadcastable to one input.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    height, width, patch, stride = plane_geometry(inputs.shape, patch_size, patch_stride)
    boxes = patch_boxes(height, width, patch, stride, edges)
    scorer = resolve_scorer(operator)
    baseline = broadcast_baseline(occlusion_value, inputs.shape[1:])

    if targets is None:
        targets = one_hot_argmax(model_outputs(model_fn, inputs))
    targets = np.asarray(targets, dtype=np.float64)

    maps = np.zeros((len(inputs), height, width), dtype=np.float64)
    counts = np.zeros((height, width), dtype=np.float64)
    for r0, r1, c0, c1 in boxes:
        counts[r0:r1, c0:c1] += 1.0
    for n in range(len(inputs)):
        target = targets[n : n + 1]
        base = scorer(model_outputs(model_fn, inputs[n : n + 1]), target)[0]
        occluded = np.stack([occlude(inputs[n], box, baseline) for box in boxes])
        outputs = model_outputs(model_fn, occluded)
        scores = scorer(outputs, np.repeat(target, len(boxes), axis=0))
        for (r0, r1, c0, c1), score in zip(boxes, scores):
            maps[n, r0:r1, c0:c1] += base - score
    if reduction == "mean":
        maps = np.divide(maps, counts, out=np.zeros_like(maps), where=counts > 0)
    elif reduction != "sum":
        raise ValueError(f"reduction={reduction!r}")

    if inputs.ndim == 4:
        return maps[..., None].astype(np.float32)
    if inputs.ndim == 2:
        return maps[:, 0, :].astype(np.float32)
    return maps.astype(np.float32)


def reference_coverage(input_shape: Sequence[int], patch_size, patch_stride, edges="valid") -> int:
    """The largest number of patches covering one position (for tolerances)."""
    height, width, patch, stride = plane_geometry(input_shape, patch_size, patch_stride)
    counts = np.zeros((height, width), dtype=np.int64)
    for r0, r1, c0, c1 in patch_boxes(height, width, patch, stride, edges):
        counts[r0:r1, c0:c1] += 1
    return int(counts.max())


# ---------------------------------------------------------------------------------------
# Building blocks mirrored by the compiled core, on its NHWC view (for the core tests)


def reference_stream(
    inputs: np.ndarray,
    boxes: list[tuple[int, int, int, int]],
    baseline: np.ndarray,
    start: int,
    count: int,
) -> np.ndarray:
    """Samples [start, start + count) of the (input, patch) stream of NHWC `inputs`.

    baseline is a float32 array of shape (), (C,), (H, W, C) or (N, H, W, C).
    """
    k = len(boxes)
    out = np.empty((count,) + inputs.shape[1:], dtype=np.float32)
    for j in range(count):
        n, patch = divmod(start + j, k)
        if baseline.ndim == 4:
            base_n = baseline[n]
        else:
            base_n = broadcast_baseline(baseline, inputs.shape[1:])
        out[j] = occlude(inputs[n], boxes[patch], base_n)
    return out


def reference_accumulate(
    deltas: np.ndarray,
    boxes: list[tuple[int, int, int, int]],
    height: int,
    width: int,
    reduction="sum",
) -> np.ndarray:
    """(N, H, W) float32 maps from (N, K) or (N, rows, cols) float64 deltas, by scatter."""
    deltas = np.asarray(deltas, dtype=np.float64).reshape(len(deltas), -1)
    maps = np.zeros((len(deltas), height, width), dtype=np.float64)
    counts = np.zeros((height, width), dtype=np.float64)
    for k, (r0, r1, c0, c1) in enumerate(boxes):
        maps[:, r0:r1, c0:c1] += deltas[:, k, None, None]
        counts[r0:r1, c0:c1] += 1.0
    if reduction == "mean":
        maps = np.divide(maps, counts, out=np.zeros_like(maps), where=counts > 0)
    return maps.astype(np.float32)


# ---------------------------------------------------------------------------------------
# N-d windows (design §7), for the core tests: the same definitions over up to five axes, by
# Python loops over windows and boxes (independent of the compiled core)

Box = tuple  # ((begin, end) per axis)


def window_boxes(
    shape: Sequence[int], window: Sequence[int], stride: Sequence[int], edges="valid"
) -> list[Box]:
    """((begin, end) per axis) of every window of one sample, in row-major order of the anchors
    (first axis outer). edges: "valid" / "cover" for every axis, or one per axis."""
    if isinstance(edges, str):
        edges = [edges] * len(shape)
    if not len(shape) == len(window) == len(stride) == len(edges):
        raise ValueError("shape, window, stride and edges need one entry per axis")
    per_axis = [
        axis_anchors(length, w, s, e) for length, w, s, e in zip(shape, window, stride, edges)
    ]
    return [tuple((a, a + extent) for a, extent in spans) for spans in itertools.product(*per_axis)]


def box_slices(box: Box) -> tuple[slice, ...]:
    return tuple(slice(begin, end) for begin, end in box)


def occlude_box(sample: np.ndarray, box: Box, baseline: np.ndarray) -> np.ndarray:
    """A copy of one sample with the window `box` set to `baseline` (broadcast to the sample),
    in the sample's dtype."""
    out = np.array(sample, dtype=np.asarray(sample).dtype, copy=True)
    full = np.broadcast_to(np.asarray(baseline, dtype=out.dtype), out.shape)
    index = box_slices(box)
    out[index] = full[index]
    return out


def reference_stream_nd(
    inputs: np.ndarray, boxes: list[Box], baseline: np.ndarray, indices, keep_dtype: bool = False
) -> np.ndarray:
    """The samples at the given (input, window) stream indices s: input s // K with window
    s % K set to the baseline. baseline: (), the sample shape, or (N,) + the sample shape.
    float32, or the inputs' own dtype when ``keep_dtype``."""
    dtype = np.asarray(inputs).dtype if keep_dtype else np.float32
    inputs = np.asarray(inputs, dtype=dtype)
    baseline = np.asarray(baseline, dtype=dtype)
    per_input = baseline.ndim == inputs.ndim and baseline.ndim > 0
    out = np.empty((len(indices),) + inputs.shape[1:], dtype=dtype)
    for j, s in enumerate(indices):
        n, k = divmod(int(s), len(boxes))
        out[j] = occlude_box(inputs[n], boxes[k], baseline[n] if per_input else baseline)
    return out


def reference_accumulate_nd(
    deltas: np.ndarray,
    boxes: list[Box],
    shape: Sequence[int],
    reduction: str = "sum",
    collapsed_axes: Sequence[int] = (),
) -> np.ndarray:
    """(N, *map shape) float32 maps from (N, K) or (N, *counts) float64 deltas, by scatter over
    the sample shape; collapsed axes are then read at index 0 and kept with length 1."""
    deltas = np.asarray(deltas, dtype=np.float64).reshape(len(deltas), -1)
    maps = np.zeros((len(deltas),) + tuple(shape), dtype=np.float64)
    counts = np.zeros(tuple(shape), dtype=np.float64)
    for k, box in enumerate(boxes):
        index = box_slices(box)
        maps[(slice(None),) + index] += deltas[:, k].reshape((-1,) + (1,) * len(shape))
        counts[index] += 1.0
    if reduction == "mean":
        maps = np.divide(maps, counts, out=np.zeros_like(maps), where=counts > 0)
    elif reduction != "sum":
        raise ValueError(f"reduction={reduction!r}")
    keep = tuple(slice(0, 1) if d in collapsed_axes else slice(None) for d in range(len(shape)))
    return maps[(slice(None),) + keep].astype(np.float32)


# ---------------------------------------------------------------------------------------
# Test helpers: a recording NumPy model and the tolerance rule of the comparisons


class LinearNumpyModel:
    """A plain NumPy callable: tanh of a fixed random projection, recording batch shapes."""

    def __init__(self, input_shape: tuple[int, ...], outputs: int = 4, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(
            0, 1 / np.sqrt(np.prod(input_shape)), (int(np.prod(input_shape)), outputs)
        )
        self.input_shape = tuple(input_shape)
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, batch):
        batch = np.asarray(batch)
        self.calls.append(batch.shape)
        if batch.shape[1:] != self.input_shape:
            raise ValueError(
                f"model: got a batch of shape {batch.shape}, expected (B,) + {self.input_shape}"
            )
        flat = batch.reshape(len(batch), -1).astype(np.float64)
        return np.tanh(flat @ self.weights).astype(np.float32)

    def reference_fn(self, batch: np.ndarray) -> np.ndarray:
        """Same outputs, without recording the call."""
        flat = batch.reshape(len(batch), -1).astype(np.float64)
        return np.tanh(flat @ self.weights).astype(np.float32)


def assert_maps_close(actual, expected: np.ndarray, score_scale: float, coverage: int) -> None:
    """Maps agree up to float32 noise of the model scores.

    Each delta is a difference of two float32 scores, so it carries ~1e-6 of the score scale
    (the model's float32 arithmetic differs by batch composition); a pixel sums `coverage`
    such deltas.
    """
    actual = np.asarray(actual)
    assert actual.dtype == np.float32, actual.dtype
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    atol = 1e-5 * max(score_scale, 1e-3) * max(coverage, 1)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=atol)
