"""The built-in operators in PyTorch: (outputs, targets) -> (B,) float32 scores.

The same numerics as the TensorFlow built-ins (backends/tensorflow/operators.py, design §3),
written with torch ops so that scores are computed where the model's outputs are (on the GPU
for a CUDA model) and only one float per sample leaves the device:

* vector (classification / regression): ``sum(outputs * targets)`` over every non-batch
  axis; (B, K) targets against (B, ..., K) outputs weight every position; (B,) outputs are
  read as (B, 1).
* segmentation: ``sum(outputs * mask) / count_nonzero(mask)``, 0 where the mask is empty.
* object detection and its variants: for every target box the best, over real predicted
  boxes, of IoU x [objectness] x [class similarity], averaged over real target boxes; 0
  when either side has no box. IoU = intersection / (union + 1e-4); class similarity
  dot(a, b) / (|a| |b| + 1e-4). All-zero rows are padding.

Also here: reading a model's result as one tensor, and checking a custom operator's scores.
Imports torch and NumPy only (never TensorFlow).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fastocclusion.tasks import EPSILON, Tasks, builtin_table, check_score_shape

__all__ = ["builtin_scores", "model_output", "scores_tensor"]

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _vector_scores(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if outputs.dim() == 1:
        outputs = outputs[:, None]
    if targets.dim() == 1:
        targets = targets[:, None]
    for _ in range(outputs.dim() - targets.dim()):  # (B, K): weights at every position
        targets = targets.unsqueeze(1)
    product = outputs * targets
    return product.sum(dim=tuple(range(1, product.dim())))


def _segmentation_scores(outputs: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    axes = tuple(range(1, outputs.dim()))
    total = (outputs * masks).sum(dim=axes)
    count = torch.count_nonzero(masks, dim=axes).to(torch.float32)
    return _divide_no_nan(total, count)


def _divide_no_nan(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator, 0 where the denominator is 0 (tf.math.divide_no_nan)."""
    safe = torch.where(denominator == 0, torch.ones_like(denominator), denominator)
    return torch.where(denominator == 0, torch.zeros_like(numerator), numerator / safe)


def _box_iou(targets: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """(B, T, >=4) x (B, P, >=4) boxes (x1, y1, x2, y2) -> (B, T, P) IoU."""
    t = targets[:, :, None, :4]
    p = predictions[:, None, :, :4]
    width = (torch.minimum(t[..., 2], p[..., 2]) - torch.maximum(t[..., 0], p[..., 0])).clamp_min(
        0.0
    )
    height = (torch.minimum(t[..., 3], p[..., 3]) - torch.maximum(t[..., 1], p[..., 1])).clamp_min(
        0.0
    )
    intersection = width * height
    area_t = (t[..., 2] - t[..., 0]) * (t[..., 3] - t[..., 1])
    area_p = (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1])
    return intersection / (area_t + area_p - intersection + EPSILON)


def _class_similarity(targets: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """(B, T, 4+1+K) x (B, P, 4+1+K) -> (B, T, P) dot(a, b) / (|a| |b| + 1e-4) of the class
    parts."""
    a = targets[..., 5:]
    b = predictions[..., 5:]
    dot = torch.matmul(a, b.transpose(1, 2))
    norms = (
        torch.linalg.vector_norm(a, dim=-1)[:, :, None]
        * torch.linalg.vector_norm(b, dim=-1)[:, None, :]
    )
    return dot / (norms + EPSILON)


def _detection_scorer(use_proba: bool, use_class: bool) -> ScoreFn:
    def scores(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.dim() == 2:  # one target box per image
            targets = targets[:, None, :]
        pair = _box_iou(targets, predictions)  # (B, T, P)
        if use_proba:
            pair = pair * predictions[:, None, :, 4]
        if use_class:
            pair = pair * _class_similarity(targets, predictions)
        real_pred = (predictions != 0).any(dim=-1)[:, None, :]  # (B, 1, P)
        real_target = (targets != 0).any(dim=-1)  # (B, T)
        if pair.shape[-1] == 0:  # no predicted box at all: every image scores 0
            return torch.zeros(pair.shape[0], dtype=pair.dtype, device=pair.device)
        masked = torch.where(real_pred, pair, torch.full_like(pair, -np.inf))
        best = masked.amax(dim=-1)  # (B, T)
        best = torch.where(real_pred.any(dim=-1) & real_target, best, torch.zeros_like(best))
        count = real_target.to(torch.float32).sum(dim=-1)
        return _divide_no_nan(best.sum(dim=-1), count)

    return scores


_BUILTINS: dict[Tasks, ScoreFn] = builtin_table(
    _vector_scores, _segmentation_scores, _detection_scorer
)


def builtin_scores(task: Tasks) -> ScoreFn:
    """The score function of a built-in task: (B, ...) outputs, (B, ...) float32 targets on
    the outputs' device -> (B,) float32. Outputs are cast to float32 first."""
    score = _BUILTINS[task]

    def scores(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return score(outputs.to(torch.float32), targets)

    return scores


def model_output(outputs: Any, model: Any) -> torch.Tensor:
    """The model's result as one numeric tensor: a single tensor, or the only element of a
    one-element tuple/list/dict. TypeError naming the model otherwise."""
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise TypeError(
                f"model returned a dict with {len(outputs)} outputs ({sorted(map(str, outputs))}); "
                f"expected a single tensor"
            )
        outputs = next(iter(outputs.values()))
    elif isinstance(outputs, (tuple, list)):
        if len(outputs) != 1:
            raise TypeError(
                f"model {type(model).__name__} returned {len(outputs)} outputs; "
                "expected a single tensor"
            )
        outputs = outputs[0]
    if not isinstance(outputs, torch.Tensor):
        raise TypeError(
            f"model {type(model).__name__} returned {type(outputs).__name__}; "
            "expected a torch.Tensor"
        )
    if outputs.is_complex() or not (outputs.is_floating_point() or outputs.dtype in _INTEGRAL):
        raise TypeError(
            f"model {type(model).__name__} returned {outputs.dtype} outputs; expected numbers"
        )
    return outputs


_INTEGRAL = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def scores_tensor(scores: Any, batch: int, name: str, device: torch.device) -> torch.Tensor:
    """A custom operator's result as (B,) float32 on ``device``: a tensor, array or list of
    shape (B,), (B, 1) (or () for a batch of one). ValueError naming the operator otherwise."""
    if not isinstance(scores, torch.Tensor):
        try:
            scores = torch.as_tensor(np.asarray(scores, dtype=np.float32))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(
                f"operator {name!r} returned {type(scores).__name__}, which is not a numeric "
                f"tensor: {exc}"
            ) from None
    elif scores.is_complex() or not (scores.is_floating_point() or scores.dtype in _INTEGRAL):
        raise ValueError(
            f"operator {name!r} returned a {scores.dtype} tensor, which is not a numeric tensor"
        )
    check_score_shape(tuple(scores.shape), batch, name)
    return scores.to(device=device, dtype=torch.float32).reshape(batch)
