"""Tiny seeded PyTorch models and helpers the PyTorch tests share: models over NHWC,
(N, T, W) and (N, W) inputs, segmentation and detection models, seeded inputs and targets,
and `check`, an explain compared with the NumPy reference of design §1-§6."""

from __future__ import annotations

import numpy as np
import torch
from detection import random_box_targets
from reference import (
    assert_maps_close,
    reference_coverage,
    reference_occlusion,
    reference_scores,
)

from fastocclusion import Occlusion, Tasks

NUM_CLASSES = 5
NUM_BOXES = 4


# ---- tiny seeded models over NHWC / (N, T, W) / (N, W) inputs ---------------------------------


class ImageNet(torch.nn.Module):
    """(N, H, W, C) -> conv -> (N, outputs) softmax."""

    def __init__(self, shape=(8, 9, 3), outputs=NUM_CLASSES, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        h, w, c = shape
        self.conv = torch.nn.Conv2d(c, 4, 3)
        self.head = torch.nn.Linear(4 * (h - 2) * (w - 2), outputs)

    def forward(self, x):
        features = torch.tanh(self.conv(x.permute(0, 3, 1, 2))).flatten(1)
        return torch.softmax(self.head(features), -1)


class SeriesNet(torch.nn.Module):
    """(N, T, W) -> Conv1d over T -> (N, 5) softmax."""

    def __init__(self, t=12, w=4):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv1d(w, 3, 3)
        self.head = torch.nn.Linear(3 * (t - 2), NUM_CLASSES)

    def forward(self, x):
        return torch.softmax(self.head(torch.tanh(self.conv(x.transpose(1, 2))).flatten(1)), -1)


def mlp(width=10, outputs=3, seed=2):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(width, 8), torch.nn.Tanh(), torch.nn.Linear(8, outputs)
    )


class SegmentationNet(torch.nn.Module):
    """(N, 8, 8, 2) -> same-padded conv -> (N, 8, 8, 3) softmax class maps."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.conv = torch.nn.Conv2d(2, 3, 3, padding=1)

    def forward(self, x):
        return torch.softmax(self.conv(x.permute(0, 3, 1, 2)), 1).permute(0, 2, 3, 1)


class DetectionNet(torch.nn.Module):
    """(N, 8, 8, 3) -> (N, 4 boxes, 4+1+5) valid boxes in [0, 1]."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.dense = torch.nn.Linear(8 * 8 * 3, NUM_BOXES * (5 + NUM_CLASSES))

    def forward(self, x):
        raw = self.dense(x.flatten(1)).reshape(-1, NUM_BOXES, 5 + NUM_CLASSES)
        corner = 0.5 * torch.sigmoid(raw[..., 0:2])
        size = 0.05 + 0.45 * torch.sigmoid(raw[..., 2:4])
        return torch.cat(
            [corner, corner + size, torch.sigmoid(raw[..., 4:5]), torch.softmax(raw[..., 5:], -1)],
            -1,
        )


def numpy_fn(model):
    """What the reference calls: the same model over NumPy batches."""

    def call(batch):
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(batch))).detach().numpy()

    return call


def rng_inputs(seed, shape):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def one_hot(seed, n, k=NUM_CLASSES):
    return np.eye(k, dtype=np.float32)[np.random.default_rng(seed).integers(0, k, n)]


def detection_targets(seed=6, n=3):
    boxes = [i % 3 + 1 for i in range(n)]  # up to 3 boxes, padded
    return random_box_targets(np.random.default_rng(seed), boxes, 3, NUM_CLASSES)


def check(
    model,
    inputs,
    targets,
    *,
    operator=None,
    ref_operator="same",
    explain_inputs=None,
    reference_fn=None,
    **options,
):
    """Occlusion(model).explain against the reference; returns the result."""
    ref_operator = operator if ref_operator == "same" else ref_operator
    if isinstance(ref_operator, Tasks):
        ref_operator = ref_operator.value
    explain_inputs = inputs if explain_inputs is None else explain_inputs
    result = Occlusion(model, operator=operator, **options).explain(explain_inputs, targets)
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float32
    fn = reference_fn or numpy_fn(model)
    targets_np = None if targets is None else np.asarray(targets)
    geometry = {
        k: options[k]
        for k in ("patch_size", "patch_stride", "occlusion_value", "edges", "reduction")
        if k in options
    }
    expected = reference_occlusion(fn, inputs, targets_np, ref_operator, **geometry)
    scale = float(np.max(np.abs(reference_scores(fn, inputs, targets_np, ref_operator))))
    coverage = reference_coverage(
        np.shape(inputs),
        options.get("patch_size", 3),
        options.get("patch_stride", 3),
        options.get("edges", "valid"),
    )
    assert_maps_close(result.cpu().numpy(), expected, scale, coverage)
    return result


FAMILIES = {
    "images": (ImageNet, (3, 8, 9, 3), (2, 3), (1, 2)),
    "time series": (SeriesNet, (3, 12, 4), (3, 2), (2, 1)),
    "tabular": (mlp, (4, 10), 3, 2),
}


def custom_operator(model, inputs, targets):
    outputs = model(inputs)
    return (outputs * targets).sum(-1) - 0.5 * (outputs * outputs).sum(-1)


class Counting(torch.nn.Module):
    """``inner`` with its forward calls counted (``calls``)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)
