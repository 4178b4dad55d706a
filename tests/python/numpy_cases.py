"""NumPy models of every kind and operator, explained as the tests of the NumPy backend
compare them: importing this file imports no framework, so the same explains run in a
process without TensorFlow (the NumPy backend) and in one with it (the TensorFlow
backend), whose maps must agree to float32 round-off.

``explanations()`` runs every case and returns {name: (result, score_scale, coverage)}:
what ``explain`` (or ``explain_classes``) returned, a bound on the scores and the most
windows covering one position (the tolerance rule of ``reference.assert_maps_close``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from detection import random_box_targets
from reference import reference_coverage

from fastocclusion import Occlusion

RNG = np.random.default_rng(21)
IMAGES = RNG.uniform(size=(3, 8, 8, 3)).astype(np.float32)
SERIES = RNG.uniform(size=(2, 10, 4)).astype(np.float32)
TABLE = RNG.normal(size=(4, 9)).astype(np.float32)
CLASSES = 4
ONE_HOT = np.eye(CLASSES, dtype=np.float32)[[0, 2, 3]]

_W_IMAGE = RNG.normal(0, 0.2, (8 * 8 * 3, 16))
_W_HEAD = RNG.normal(0, 1.0, (16, CLASSES))
_W_SERIES = RNG.normal(0, 0.3, (10 * 4, CLASSES))
_W_SEGMENT = RNG.normal(0, 1.0, (3, 2))
_W_BOXES = RNG.normal(0, 0.3, (8 * 8 * 3, 3 * 7))


def image_model(x: np.ndarray) -> np.ndarray:
    """(N, 8, 8, 3) -> (N, 4) logits of a small two-layer network (float64 inside)."""
    hidden = np.tanh(x.reshape(len(x), -1).astype(np.float64) @ _W_IMAGE)
    return hidden @ _W_HEAD


def series_model(x: np.ndarray) -> np.ndarray:
    """(N, 10, 4) -> (N, 4)."""
    return np.tanh(x.reshape(len(x), -1) @ _W_SERIES).astype(np.float32)


def segmentation_model(x: np.ndarray) -> np.ndarray:
    """(N, 8, 8, 3) -> (N, 8, 8, 2): per pixel, plus the image's mean (a global term)."""
    pixels = x @ _W_SEGMENT + x.mean(axis=(1, 2))[:, None, None, :] @ _W_SEGMENT
    return np.tanh(pixels).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def detection_model(x: np.ndarray) -> np.ndarray:
    """(N, 8, 8, 3) -> (N, 3, 4 + 1 + 2) boxes [x1, y1, x2, y2, objectness, classes]."""
    raw = np.tanh(x.reshape(len(x), -1) @ _W_BOXES).reshape(len(x), 3, 7) * 3.0
    corner = 0.5 * _sigmoid(raw[..., 0:2])
    size = 0.05 + 0.45 * _sigmoid(raw[..., 2:4])
    exp = np.exp(raw[..., 5:])
    probabilities = exp / exp.sum(axis=-1, keepdims=True)
    parts = [corner, corner + size, _sigmoid(raw[..., 4:5]), probabilities]
    return np.concatenate(parts, axis=-1).astype(np.float32)


class SoftmaxClassifier:
    """A scikit-learn style object: predict_proba over (N, 9) rows, 3 classes."""

    def __init__(self) -> None:
        self.weights = np.random.default_rng(5).normal(size=(9, 3))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        logits = x @ self.weights
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


class Regressor:
    """A non-callable object with ``predict`` only: (N, 9) -> (N,) values."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.sin(x).sum(axis=1)


def scaled_score(model: Any, inputs: Any, targets: Any) -> np.ndarray:
    """A custom operator, for NumPy arrays (NumPy backend) and tf.Tensors (TensorFlow
    backend) alike: 2 x the target's output plus the input's mean."""
    batch = np.asarray(inputs)
    outputs = np.asarray(model(batch), dtype=np.float32)
    return 2.0 * (outputs * np.asarray(targets)).sum(axis=-1) + batch.mean(axis=(1, 2, 3))


def _sklearn_classifier() -> Any:
    """A fitted scikit-learn LogisticRegression over (N, 9) rows, 3 classes."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(8)
    x = rng.normal(size=(60, 9))
    return LogisticRegression(max_iter=500).fit(x, np.arange(60) % 3)


def _masks() -> np.ndarray:
    masks = (np.random.default_rng(9).uniform(size=(3, 8, 8, 2)) < 0.3).astype(np.float32)
    masks[2] = 0.0  # an empty mask: score 0
    return masks


def _boxes(single: bool) -> np.ndarray:
    boxes = random_box_targets(np.random.default_rng(10), [2, 1, 0], slots=3, classes=2)
    return boxes[:, 0] if single else boxes


# name: (model, inputs, targets, Occlusion options; "classes" in the options: explain_classes)
CASES: dict[str, tuple[Callable[[], Any], np.ndarray, Any, dict[str, Any]]] = {
    "callable": (lambda: image_model, IMAGES, ONE_HOT, {"patch_size": 2, "patch_stride": 2}),
    "callable, top class, batch 5, mean, cover": (
        lambda: image_model,
        IMAGES,
        None,
        {
            "patch_size": 3,
            "patch_stride": 2,
            "batch_size": 5,
            "reduction": "mean",
            "edges": "cover",
        },
    ),
    "callable, per-channel baseline": (
        lambda: image_model,
        IMAGES,
        ONE_HOT,
        {"patch_size": (2, 3), "patch_stride": 1, "occlusion_value": [0.5, 0.0, 1.0]},
    ),
    "time series": (lambda: series_model, SERIES, None, {"patch_size": 2, "patch_stride": 2}),
    "predict_proba": (SoftmaxClassifier, TABLE, None, {"patch_size": 2, "patch_stride": 1}),
    "scikit-learn": (_sklearn_classifier, TABLE, None, {"patch_size": 3, "patch_stride": 2}),
    "predict, regression": (
        Regressor,
        TABLE,
        np.ones((4, 1), dtype=np.float32),
        {"patch_size": 2, "patch_stride": 1, "operator": "regression"},
    ),
    "custom operator": (
        lambda: image_model,
        IMAGES,
        ONE_HOT,
        {"patch_size": 2, "patch_stride": 2, "operator": scaled_score},
    ),
    "semantic segmentation": (
        lambda: segmentation_model,
        IMAGES,
        _masks(),
        {"patch_size": 2, "patch_stride": 2, "operator": "semantic segmentation"},
    ),
    "explain_classes": (
        lambda: image_model,
        IMAGES,
        None,
        {"patch_size": 2, "patch_stride": 2, "classes": [3, 0]},
    ),
    "explain_classes, all": (
        SoftmaxClassifier,
        TABLE,
        None,
        {"patch_size": 2, "patch_stride": 1, "classes": None},
    ),
    **{
        f"{task}{', one box' if single else ''}": (
            lambda: detection_model,
            IMAGES,
            _boxes(single),
            {"patch_size": 2, "patch_stride": 2, "operator": task},
        )
        for task in (
            "object detection",
            "object detection box position",
            "object detection box proba",
            "object detection box class",
        )
        for single in (False, True)
    },
}


def _score_scale(model: Any, inputs: np.ndarray) -> float:
    """A bound on the scores of every case's operator: 2 x the largest absolute output + 1
    (detection scores are at most 1; the custom operator adds a mean in [0, 1])."""
    call = getattr(model, "predict_proba", None) or getattr(model, "predict", None) or model
    return 2.0 * float(np.abs(np.asarray(call(inputs))).max()) + 1.0


def explain(name: str) -> tuple[Any, float, int]:
    """(the result of case ``name``, a bound on its scores, its coverage)."""
    make, inputs, targets, options = CASES[name]
    model = make()
    explainer = Occlusion(model, **{k: v for k, v in options.items() if k != "classes"})
    if "classes" in options:
        result = explainer.explain_classes(inputs, options["classes"])
    else:
        result = explainer.explain(inputs, targets)
    coverage = reference_coverage(
        inputs.shape,
        options.get("patch_size", 3),
        options.get("patch_stride", 3),
        options.get("edges", "valid"),
    )
    return result, _score_scale(model, inputs), coverage


def explanations() -> dict[str, tuple[Any, float, int]]:
    """Every case of ``CASES``, explained."""
    return {name: explain(name) for name in CASES}
