"""The built-in operators in NumPy: (outputs, targets) -> (B,) float32 scores.

The numerics of the TensorFlow built-ins (backends/tensorflow/operators.py, design §3),
computed in float32 with the same operations, so that scores agree to float32 round-off:

* vector (classification / regression): ``sum(outputs * targets)`` over every non-batch
  axis; (B, K) targets against (B, ..., K) outputs weight every position; (B,) outputs are
  read as (B, 1). (B, K) float32 outputs against targets of their shape take the row-wise
  dot product (``row_dot``), which the TensorFlow backend uses too for its classification
  scores in NumPy.
* segmentation: ``sum(outputs * mask) / count_nonzero(mask)``, 0 where the mask is empty.
* object detection and its variants: for every target box the best, over real predicted
  boxes, of IoU x [objectness] x [class similarity], averaged over real target boxes; 0
  when either side has no box. IoU = intersection / (union + 1e-4); class similarity
  dot(a, b) / (|a| |b| + 1e-4). All-zero rows are padding.

Also here: a custom operator's scores checked (``checked_scores``). Imports NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fastocclusion.tasks import EPSILON, Tasks, builtin_table, check_score_shape

__all__ = ["builtin_scores", "checked_scores", "is_row_dot", "row_dot"]

ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

_EPSILON = np.float32(EPSILON)


def is_row_dot(outputs: np.ndarray, targets: np.ndarray) -> bool:
    """Whether the vector scores of these outputs are their row-wise dot product with the
    targets: (B, K) float32 outputs, targets of the same shape.

    >>> is_row_dot(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))
    True
    """
    return outputs.ndim == 2 and outputs.dtype == np.float32 and outputs.shape == targets.shape


def row_dot(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(B,) sum(outputs * targets, -1) of (B, K) arrays (``is_row_dot``).

    >>> row_dot(np.ones((2, 3), np.float32), np.eye(2, 3, dtype=np.float32)).tolist()
    [1.0, 1.0]
    """
    return np.einsum("bk,bk->b", outputs, targets)


def _vector_scores(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if targets.ndim == 1:
        targets = targets[:, None]
    if is_row_dot(outputs, targets):
        return row_dot(outputs, targets)
    # (B, K): weights at every position
    targets = targets.reshape(
        targets.shape[:1] + (1,) * (outputs.ndim - targets.ndim) + targets.shape[1:]
    )
    product = outputs * targets
    return product.sum(axis=tuple(range(1, product.ndim)), dtype=np.float32)


def _divide_no_nan(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (tf.math.divide_no_nan)."""
    safe = np.where(denominator == 0, np.float32(1), denominator)
    return np.where(denominator == 0, np.float32(0), numerator / safe).astype(np.float32)


def _segmentation_scores(outputs: np.ndarray, masks: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, outputs.ndim))
    total = (outputs * masks).sum(axis=axes, dtype=np.float32)
    count = np.count_nonzero(masks, axis=axes).astype(np.float32)
    return _divide_no_nan(total, count)


def _box_iou(targets: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """(B, T, >=4) x (B, P, >=4) boxes (x1, y1, x2, y2) -> (B, T, P) IoU."""
    t = targets[:, :, None, :4]
    p = predictions[:, None, :, :4]
    zero = np.float32(0)
    width = np.maximum(np.minimum(t[..., 2], p[..., 2]) - np.maximum(t[..., 0], p[..., 0]), zero)
    height = np.maximum(np.minimum(t[..., 3], p[..., 3]) - np.maximum(t[..., 1], p[..., 1]), zero)
    intersection = width * height
    area_t = (t[..., 2] - t[..., 0]) * (t[..., 3] - t[..., 1])
    area_p = (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1])
    return intersection / (area_t + area_p - intersection + _EPSILON)


def _class_similarity(targets: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """(B, T, 4+1+K) x (B, P, 4+1+K) -> (B, T, P) dot(a, b) / (|a| |b| + 1e-4) of the class
    parts."""
    a = targets[..., 5:]
    b = predictions[..., 5:]
    dot = np.matmul(a, b.transpose(0, 2, 1))
    norms = np.linalg.norm(a, axis=-1)[:, :, None] * np.linalg.norm(b, axis=-1)[:, None, :]
    return dot / (norms + _EPSILON)


def _detection_scorer(use_proba: bool, use_class: bool) -> ScoreFn:
    def scores(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
        if targets.ndim == 2:  # one target box per image
            targets = targets[:, None, :]
        pair = _box_iou(targets, predictions)  # (B, T, P)
        if use_proba:
            pair = pair * predictions[:, None, :, 4]
        if use_class:
            pair = pair * _class_similarity(targets, predictions)
        real_pred = (predictions != 0).any(axis=-1)[:, None, :]  # (B, 1, P)
        real_target = (targets != 0).any(axis=-1)  # (B, T)
        if pair.shape[-1] == 0:  # no predicted box at all: every image scores 0
            return np.zeros(pair.shape[0], dtype=np.float32)
        best = np.where(real_pred, pair, np.float32(-np.inf)).max(axis=-1)  # (B, T)
        best = np.where(real_pred.any(axis=-1) & real_target, best, np.float32(0))
        count = real_target.sum(axis=-1).astype(np.float32)
        return _divide_no_nan(best.sum(axis=-1, dtype=np.float32), count)

    return scores


_BUILTINS: dict[Tasks, ScoreFn] = builtin_table(
    _vector_scores, _segmentation_scores, _detection_scorer
)


def builtin_scores(task: Tasks) -> ScoreFn:
    """The score function of a built-in task: (B, ...) outputs, (B, ...) targets -> (B,)
    float32 (both cast to float32 first).

    >>> score = builtin_scores(Tasks.CLASSIFICATION)
    >>> score(np.array([[1.0, 2.0]]), np.array([[0.0, 1.0]])).tolist()
    [2.0]
    """
    score = _BUILTINS[task]

    def scores(outputs: Any, targets: Any) -> np.ndarray:
        return score(
            np.asarray(outputs, dtype=np.float32), np.asarray(targets, dtype=np.float32)
        ).astype(np.float32, copy=False)

    return scores


def checked_scores(scores: Any, batch: int, name: str) -> np.ndarray:
    """A custom operator's result as (B,) float32: an array (or anything ``np.asarray``
    reads) of shape (B,), (B, 1), or () for a batch of one. ValueError naming the operator
    otherwise.

    >>> checked_scores([[1.0], [2.0]], 2, "mine").tolist()
    [1.0, 2.0]
    """
    try:
        array = np.asarray(scores, dtype=np.float32)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"operator {name!r} returned {type(scores).__name__}, which is not a numeric "
            f"tensor: {exc}"
        ) from None
    check_score_shape(array.shape, batch, name)
    return array.reshape(batch)
