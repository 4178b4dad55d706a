"""Operators: the score g(f, x, y) that occlusion explains, one float per sample.

Built-in operators (design §3) are pure TensorFlow functions of the model's outputs and
the targets, usable inside ``tf.function``; a custom operator is any callable
``g(model, inputs, targets)`` returning one score per sample.

Numerics of the built-ins (float32 in, float32 out):

* classification / regression: ``sum(outputs * targets)`` over every non-batch axis. Targets
  of shape (B, K) against outputs (B, ..., K) are broadcast over the middle axes (a weight per
  class, applied at every position); targets of the outputs' full shape weight each entry.
  Outputs of shape (B,) are read as (B, 1).
* semantic segmentation: ``sum(outputs * mask) / count_nonzero(mask)`` over the non-batch
  axes; 0 where the mask is empty.
* object detection: targets (B, T, 4+1+K), predictions (B, P, 4+1+K), rows
  [x1, y1, x2, y2, objectness, class scores...]. A target box scores the max over predicted
  boxes of the product of the enabled factors IoU (always), predicted objectness and class
  similarity ``dot(a, b) / (|a| |b| + 1e-4)``; IoU = intersection / (union + 1e-4). All-zero
  rows are padding; the score of an image is the mean over its target boxes, 0 when either
  side has no box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from fastocclusion.engine.objective import OperatorObjective
from fastocclusion.tasks import (
    EPSILON,
    TARGET_KINDS,
    Tasks,
    builtin_table,
    check_score_shape,
    operator_name,
    parse_operator,
)

__all__ = ["Operator", "Tasks", "resolve_operator"]


# ----------------------------------------------------------------------------------------------
# Built-in scores: (outputs, targets) -> (B,) float32, pure TF.


def _vector_scores(outputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    outputs = tf.cast(outputs, tf.float32)
    targets = tf.cast(targets, tf.float32)
    if outputs.shape.rank == 1:
        outputs = outputs[:, tf.newaxis]
    if targets.shape.rank == 1:
        targets = targets[:, tf.newaxis]
    for _ in range(outputs.shape.rank - targets.shape.rank):  # (B, K): weights at every position
        targets = tf.expand_dims(targets, axis=1)
    product = outputs * targets
    return tf.reduce_sum(product, axis=list(range(1, product.shape.rank)))


def _segmentation_scores(outputs: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
    outputs = tf.cast(outputs, tf.float32)
    masks = tf.cast(masks, tf.float32)
    axes = list(range(1, outputs.shape.rank))
    total = tf.reduce_sum(outputs * masks, axis=axes)
    count = tf.cast(tf.math.count_nonzero(masks, axis=axes), tf.float32)
    return tf.math.divide_no_nan(total, count)


def _box_iou(targets: tf.Tensor, predictions: tf.Tensor) -> tf.Tensor:
    """(B, T, >=4) x (B, P, >=4) boxes (x1, y1, x2, y2) -> (B, T, P) IoU."""
    t = targets[:, :, tf.newaxis, :4]
    p = predictions[:, tf.newaxis, :, :4]
    width = tf.maximum(tf.minimum(t[..., 2], p[..., 2]) - tf.maximum(t[..., 0], p[..., 0]), 0.0)
    height = tf.maximum(tf.minimum(t[..., 3], p[..., 3]) - tf.maximum(t[..., 1], p[..., 1]), 0.0)
    intersection = width * height
    area_t = (t[..., 2] - t[..., 0]) * (t[..., 3] - t[..., 1])
    area_p = (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1])
    return intersection / (area_t + area_p - intersection + EPSILON)


def _class_similarity(targets: tf.Tensor, predictions: tf.Tensor) -> tf.Tensor:
    """(B, T, 4+1+K) x (B, P, 4+1+K) -> (B, T, P) dot(a, b) / (|a| |b| + 1e-4) of the class
    parts."""
    a = targets[..., 5:]
    b = predictions[..., 5:]
    dot = tf.linalg.matmul(a, b, transpose_b=True)
    norms = tf.norm(a, axis=-1)[:, :, tf.newaxis] * tf.norm(b, axis=-1)[:, tf.newaxis, :]
    return dot / (norms + EPSILON)


def _detection_scorer(
    use_proba: bool, use_class: bool
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    def scores(outputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        predictions = tf.cast(outputs, tf.float32)
        targets = tf.cast(targets, tf.float32)
        if targets.shape.rank == 2:  # one target box per image
            targets = targets[:, tf.newaxis, :]
        pair = _box_iou(targets, predictions)  # (B, T, P)
        if use_proba:
            pair = pair * predictions[:, tf.newaxis, :, 4]
        if use_class:
            pair = pair * _class_similarity(targets, predictions)
        real_pred = tf.reduce_any(predictions != 0.0, axis=-1)[:, tf.newaxis, :]  # (B, 1, P)
        real_target = tf.reduce_any(targets != 0.0, axis=-1)  # (B, T)
        masked = tf.where(real_pred, pair, tf.fill(tf.shape(pair), -np.inf))
        best = tf.reduce_max(masked, axis=-1)  # (B, T)
        best = tf.where(tf.reduce_any(real_pred, axis=-1) & real_target, best, 0.0)
        count = tf.reduce_sum(tf.cast(real_target, tf.float32), axis=-1)
        return tf.math.divide_no_nan(tf.reduce_sum(best, axis=-1), count)

    return scores


_BUILTINS: dict[Tasks, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = builtin_table(
    _vector_scores, _segmentation_scores, _detection_scorer
)


@dataclass(frozen=True)
class Operator:
    """A resolved operator.

    ``target_kind``: "vector" (N, K) | "segmentation" (N, H, W, K) | "boxes" (N, T, 4+1+K) for
    the built-ins, "any" for a custom operator (only the first dimension is checked).
    """

    name: str
    builtin: bool
    target_kind: str
    task: Tasks | None = None
    _scores: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = field(default=None, repr=False)
    _custom: Callable[..., Any] | None = field(default=None, repr=False)

    def scores_from_outputs(self, outputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        """Built-ins only: (B, ...) model outputs and (B, ...) targets -> (B,) float32 scores."""
        if self._scores is None:
            raise TypeError(
                f"operator {self.name!r} is a custom callable: it has no scores_from_outputs"
            )
        return self._scores(outputs, targets)

    def __call__(self, model: Callable[..., Any], inputs: Any, targets: Any) -> Any:
        """g(f, x, y): built-ins call ``model(inputs)``; a custom operator gets all three."""
        if self._custom is not None:
            return self._custom(model, inputs, targets)
        return self.scores_from_outputs(model(inputs), targets)

    def validate_scores(self, scores: Any, batch: int) -> tf.Tensor:
        """One float32 score per sample: (B,) or (B, 1) -> (B,), else ValueError naming the
        operator."""
        try:
            tensor = tf.cast(tf.convert_to_tensor(scores), tf.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"operator {self.name!r} returned {type(scores).__name__}, which is not a "
                f"numeric tensor: {exc}"
            ) from None
        shape = tensor.shape
        if shape.rank is None:
            return tf.reshape(tensor, [batch])
        check_score_shape(tuple(shape.as_list()), batch, self.name)
        return tf.reshape(tensor, [batch])


def resolve_operator(operator: Any) -> Operator:
    """None -> classification; a Tasks member or its name -> built-in; a callable g(model, inputs,
    targets) -> custom; an ``engine.objective.OperatorObjective`` -> its operator. Anything
    else raises TypeError/ValueError naming ``operator``."""
    if isinstance(operator, Operator):
        return operator
    if isinstance(operator, OperatorObjective):
        task, custom = operator.task, operator.custom
    else:
        task, custom = parse_operator(operator)
    name = operator_name(task, custom)
    if task is not None:
        return Operator(
            name=name,
            builtin=True,
            target_kind=TARGET_KINDS[task],
            task=task,
            _scores=_BUILTINS[task],
        )
    return Operator(name=name, builtin=False, target_kind="any", _custom=custom)
