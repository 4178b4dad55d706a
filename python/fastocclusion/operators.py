"""Operators: the score g(f, x, y) that occlusion explains, one float per sample.

Built-in operators (SPEC section 3) are pure TensorFlow functions of the model's outputs and
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

import enum
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = ["Operator", "Tasks", "default_targets", "resolve_operator"]

EPSILON = 1e-4


class Tasks(enum.Enum):
    """The built-in operators; ``Tasks("object_detection")`` etc. also accept loose spellings."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    SEMANTIC_SEGMENTATION = "semantic segmentation"
    OBJECT_DETECTION = "object detection"
    OBJECT_DETECTION_BOX_POSITION = "object detection box position"
    OBJECT_DETECTION_BOX_PROBA = "object detection box proba"
    OBJECT_DETECTION_BOX_CLASS = "object detection box class"

    @classmethod
    def _missing_(cls, value: object) -> Tasks | None:
        if isinstance(value, str):
            normalised = " ".join(value.strip().lower().replace("_", " ").replace("-", " ").split())
            for member in cls:
                if member.value == normalised:
                    return member
        return None


def _valid_names() -> str:
    return ", ".join(repr(task.value) for task in Tasks)


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
    """(B, T, 4+1+K) x (B, P, 4+1+K) -> (B, T, P) dot(a, b) / (|a| |b| + 1e-4) of the class parts."""
    a = targets[..., 5:]
    b = predictions[..., 5:]
    dot = tf.linalg.matmul(a, b, transpose_b=True)
    norms = tf.norm(a, axis=-1)[:, :, tf.newaxis] * tf.norm(b, axis=-1)[:, tf.newaxis, :]
    return dot / (norms + EPSILON)


def _detection_scorer(use_proba: bool, use_class: bool) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
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


_BUILTINS: dict[Tasks, tuple[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]]] = {
    Tasks.CLASSIFICATION: ("vector", _vector_scores),
    Tasks.REGRESSION: ("vector", _vector_scores),
    Tasks.SEMANTIC_SEGMENTATION: ("segmentation", _segmentation_scores),
    Tasks.OBJECT_DETECTION: ("boxes", _detection_scorer(use_proba=True, use_class=True)),
    Tasks.OBJECT_DETECTION_BOX_POSITION: ("boxes", _detection_scorer(use_proba=False, use_class=False)),
    Tasks.OBJECT_DETECTION_BOX_PROBA: ("boxes", _detection_scorer(use_proba=True, use_class=False)),
    Tasks.OBJECT_DETECTION_BOX_CLASS: ("boxes", _detection_scorer(use_proba=False, use_class=True)),
}


def default_targets(outputs: Any, operator: Operator | None = None) -> np.ndarray:
    """Targets for ``targets=None``: the one-hot of the model's top output (last axis).

    ``outputs`` are the model's outputs on the unperturbed inputs, (N, ..., K); outputs of shape
    (N,) give (N, 1) ones (the score is the output itself). Segmentation and detection need
    explicit targets: ValueError.
    """
    if operator is not None and operator.target_kind in ("segmentation", "boxes"):
        raise ValueError(
            f"targets=None is not supported for operator {operator.name!r}: pass targets explicitly "
            f"({'(N, H, W, K) masks' if operator.target_kind == 'segmentation' else '(N, 4+1+K) or (N, B, 4+1+K) boxes'})"
        )
    outputs = np.asarray(outputs, dtype=np.float32)
    if outputs.ndim == 0:
        raise ValueError("model outputs have shape (); expected at least (N,) to derive default targets")
    if outputs.ndim == 1:
        return np.ones((outputs.shape[0], 1), dtype=np.float32)
    top = np.argmax(outputs, axis=-1)
    return (np.arange(outputs.shape[-1]) == top[..., np.newaxis]).astype(np.float32)


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
            raise TypeError(f"operator {self.name!r} is a custom callable: it has no scores_from_outputs")
        return self._scores(outputs, targets)

    def __call__(self, model: Callable[..., Any], inputs: Any, targets: Any) -> Any:
        """g(f, x, y): built-ins call ``model(inputs)``; a custom operator gets all three."""
        if self._custom is not None:
            return self._custom(model, inputs, targets)
        return self.scores_from_outputs(model(inputs), targets)

    def default_targets(self, outputs: Any) -> np.ndarray:
        return default_targets(outputs, self)

    def validate_targets(self, targets: Any, n_inputs: int, outputs_shape: Any) -> np.ndarray:
        """Check (and normalise) targets against this operator and the model's output shape.

        ``outputs_shape`` is the model's output shape for some batch (its first dimension is
        ignored). Returns float32 targets: (N, 1) for (N,) outputs, (N, 1, 4+1+K) for a single
        box per image, otherwise the targets as given. ValueError names ``targets``.
        """
        array = np.asarray(targets)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"targets must be numeric; got an array of dtype {array.dtype}")
        array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ValueError("targets must be finite; got NaN or inf values")
        if array.ndim == 0 or array.shape[0] != n_inputs:
            raise ValueError(
                f"targets has shape {array.shape}; expected a first dimension of {n_inputs} (one target per input)"
            )
        out = tuple(int(d) if d is not None else None for d in outputs_shape)[1:]
        if self.target_kind == "any":
            return array
        if self.target_kind == "vector":
            if len(out) == 0:
                if array.shape in ((n_inputs,), (n_inputs, 1)):
                    return array.reshape(n_inputs, 1)
                raise self._bad_targets(array, f"({n_inputs},) or ({n_inputs}, 1) for a model with one output per sample")
            if array.shape[1:] == out:
                return array
            if len(out) > 1:
                # sum(f(x) * y, -1) would leave (B,) + out[:-1]: not one score per sample.
                raise ValueError(
                    f"model output shape {tuple(outputs_shape)} cannot be reduced to one score per "
                    f"sample by operator {self.name!r} with targets of shape {array.shape}: expected "
                    f"(N, K) outputs, or targets of shape {(n_inputs, *out)} weighting every output"
                )
            raise self._bad_targets(array, f"({n_inputs}, {out[-1]}) (one weight per model output)")
        if self.target_kind == "segmentation":
            if array.shape[1:] == out:
                return array
            raise self._bad_targets(array, f"{(n_inputs, *out)} (one mask entry per model output)")
        # boxes
        if len(out) != 2 or out[-1] is None or out[-1] < 5:
            raise ValueError(
                f"model outputs have shape {tuple(outputs_shape)}; operator {self.name!r} expects "
                f"(N, boxes, 4+1+K) predictions [x1, y1, x2, y2, objectness, classes...]"
            )
        if array.ndim == 2 and array.shape[1] == out[-1]:
            return array.reshape(n_inputs, 1, out[-1])
        if array.ndim == 3 and array.shape[2] == out[-1]:
            return array
        raise self._bad_targets(array, f"({n_inputs}, {out[-1]}) or ({n_inputs}, boxes, {out[-1]})")

    def _bad_targets(self, array: np.ndarray, expected: str) -> ValueError:
        return ValueError(f"targets has shape {array.shape}; operator {self.name!r} expects {expected}")

    def validate_scores(self, scores: Any, batch: int) -> tf.Tensor:
        """One float32 score per sample: (B,) or (B, 1) -> (B,), else ValueError naming the operator."""
        try:
            tensor = tf.cast(tf.convert_to_tensor(scores), tf.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"operator {self.name!r} returned {type(scores).__name__}, which is not a numeric tensor: {exc}"
            ) from None
        shape = tensor.shape
        if shape.rank is None:
            return tf.reshape(tensor, [batch])
        dims = shape.as_list()
        ok = (
            (len(dims) == 1 and dims[0] in (batch, None))
            or (len(dims) == 2 and dims[0] in (batch, None) and dims[1] == 1)
            or (len(dims) == 0 and batch == 1)
        )
        if not ok:
            raise ValueError(
                f"operator {self.name!r} returned scores of shape {tuple(dims)} for a batch of {batch}; "
                f"expected one score per sample: ({batch},) or ({batch}, 1)"
            )
        return tf.reshape(tensor, [batch])


def _check_custom_signature(function: Callable[..., Any]) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        return
    positional = [
        p for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values())
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    required_kw = [
        p.name for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    if (len(positional) < 3 and not variadic) or len(required) > 3 or required_kw:
        raise TypeError(
            f"operator {function!r} has signature {signature}; expected a callable taking three "
            f"positional arguments (model, inputs, targets) and returning one score per sample"
        )


def resolve_operator(operator: Any) -> Operator:
    """None -> classification; a Tasks member or its name -> built-in; a callable g(model, inputs,
    targets) -> custom. Anything else raises TypeError/ValueError naming ``operator``."""
    if operator is None:
        operator = Tasks.CLASSIFICATION
    if isinstance(operator, Operator):
        return operator
    if isinstance(operator, str):
        try:
            operator = Tasks(operator)
        except ValueError:
            raise ValueError(
                f"operator {operator!r} is not a known task; expected one of {_valid_names()}, "
                f"a Tasks member, or a callable g(model, inputs, targets)"
            ) from None
    if isinstance(operator, Tasks):
        kind, scores = _BUILTINS[operator]
        return Operator(name=operator.value, builtin=True, target_kind=kind, task=operator, _scores=scores)
    if callable(operator) and not isinstance(operator, type):
        _check_custom_signature(operator)
        name = getattr(operator, "__name__", None) or type(operator).__name__
        return Operator(name=name, builtin=False, target_kind="any", _custom=operator)
    raise TypeError(
        f"operator {operator!r} (type {type(operator).__name__}) is not valid; expected None, a Tasks "
        f"member, one of {_valid_names()}, or a callable g(model, inputs, targets)"
    )
