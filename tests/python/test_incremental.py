"""Exact incremental inference (design §8): the maps equal the normal sweep's.

Random CNNs of every supported layer kind (incremental_models.py) at odd sizes, with
random patches, strides, edges (patches clipped at the borders), regions, batch padding
and switch-back shares: in float64 the maps are equal to the last bit's neighbourhood
(1e-12 of their maximum: the boxes hold every changed position, or a score would move),
in float32 within round-off (max relative difference <= 1e-4; the tolerance adds the
float32 round-off of the scores themselves, which the normal sweep shows as well when
only its batch size changes). Then the box arithmetic against a brute-force search, every
built-in operator, targets=None and explain_classes.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
pytestmark = [
    pytest.mark.torch,
    # 'same' padding with an even kernel (asymmetric: tested on purpose) warns of a copy.
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
]

import torch.nn.functional as F  # noqa: E402, N812
from incremental_models import random_cnn  # noqa: E402
from torch import nn  # noqa: E402
from torch_models import NUM_BOXES, NUM_CLASSES, detection_targets  # noqa: E402

from fastocclusion import Occlusion, Tasks  # noqa: E402
from fastocclusion.engine.regions import LocalLayer, Regions, local_regions  # noqa: E402


def explain_both(model, x, targets=None, method="explain", region=None, **options):
    """(the incremental maps, its last_stats, the normal sweep's maps)."""
    options.setdefault("data_format", "channels_first")
    kwargs = {} if region is None else {"region": region}
    normal = Occlusion(model, incremental=False, **options)
    reference = getattr(normal, method)(x, targets, **kwargs).numpy()
    options.setdefault("incremental_threshold", 1.0)
    incremental = Occlusion(model, incremental=True, **options)
    maps = getattr(incremental, method)(x, targets, **kwargs).numpy()
    assert incremental.last_stats.model_calls == normal.last_stats.model_calls
    return maps, incremental.last_stats, reference


def relative_difference(maps, reference):
    return float(np.abs(maps - reference).max() / max(np.abs(reference).max(), 1e-30))


def assert_exact(maps, reference, model, x, dtype):
    """float64: 1e-12 of the maps' maximum; float32: 1e-4 of it plus the float32 round-off
    of scores of the outputs' size (the normal sweep's own noise)."""
    scale = np.abs(reference).max()
    if dtype == "float64":
        assert np.abs(maps - reference).max() <= 1e-12 * max(scale, 1e-300)
        return
    with torch.inference_mode():
        outputs = float(model(torch.from_numpy(x)).abs().max())
    assert np.abs(maps - reference).max() <= 1e-4 * scale + 64 * 2**-24 * outputs


def random_case(seed, dtype):
    rng = np.random.default_rng(10_000 + seed)
    shape = (int(rng.integers(1, 4)), int(rng.integers(9, 26)), int(rng.integers(9, 26)))
    model = random_cnn(seed, shape).to(getattr(torch, dtype))
    n = int(rng.integers(1, 4))
    x = rng.normal(size=(n,) + shape).astype(dtype)
    patch = (int(rng.integers(1, 8)), int(rng.integers(1, 8)))
    options = {
        "batch_size": int(rng.integers(3, 18)),  # padded last batches
        "patch_size": patch,
        "patch_stride": (int(rng.integers(1, 5)), int(rng.integers(1, 5))),
        "edges": str(rng.choice(["valid", "cover"])),  # "cover": clipped border patches
        "occlusion_value": float(rng.choice([0.0, 0.5])),
        "incremental_threshold": float(rng.choice([0.3, 0.6, 1.0])),
    }
    region = None
    if rng.integers(4) == 0:
        r0, c0 = (
            int(rng.integers(0, shape[1] - patch[0])),
            int(rng.integers(0, shape[2] - patch[1])),
        )
        region = ((r0, shape[1]), (c0, shape[2]))
    return model, x, options, region


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_random_cnns_of_every_layer_kind_give_the_normal_sweeps_maps(dtype):
    ran, worst = 0, 0.0
    for seed in range(60):
        model, x, options, region = random_case(seed, dtype)
        maps, stats, reference = explain_both(model, x, region=region, **options)
        assert_exact(maps, reference, model, x, dtype)
        worst = max(worst, relative_difference(maps, reference))
        ran += bool(stats.incremental_layers)
    assert ran >= 45  # the others: the first layer's box is past the switch-back share
    print(f"{dtype}: worst relative difference {worst:.2g} over 60 random CNNs")


@pytest.mark.parametrize("seed", range(40))
def test_boxes_hold_every_changed_position_and_windows_compute_them(seed):
    """local_regions against brute force: perturb a random box of the input of a random
    convolution or pooling; every output that changes lies in the computed box, and the
    layer run (unpadded) on the computed input window gives the full layer's box."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    p = tuple(int(rng.integers(0, dd * (kk - 1) + 1)) for kk, dd in zip(k, d))
    spans = [dd * (kk - 1) + 1 for kk, dd in zip(k, d)]
    h, w = (int(rng.integers(max(1, span - 2 * pp), 20)) for span, pp in zip(spans, p))
    x = torch.randn(1, 2, h, w, dtype=torch.float64)
    weight = torch.randn(3, 2, *k, dtype=torch.float64)
    out = F.conv2d(x, weight, None, s, p, d)
    box = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
    begin = np.array([[rng.integers(0, h - box[0] + 1), rng.integers(0, w - box[1] + 1)]])
    regions, windows = local_regions(
        Regions(begin, box, (h, w)), LocalLayer(k, s, p, d), tuple(out.shape[2:])
    )
    changed = x.clone()
    (r, c), (bh, bw) = begin[0], box
    changed[..., r : r + bh, c : c + bw] += torch.randn(1, 2, bh, bw, dtype=torch.float64)
    moved = (F.conv2d(changed, weight, None, s, p, d) != out).any(1)[0].numpy()
    (r0, c0), (oh, ow) = regions.begin[0], regions.size
    inside = np.zeros_like(moved)
    inside[r0 : r0 + oh, c0 : c0 + ow] = True
    assert not (moved & ~inside).any()
    padded = F.pad(changed, (p[1], w + 99, p[0], h + 99))  # zeros past every edge
    (wr, wc), (wh, ww) = windows.begin[0] + np.array(p), windows.size
    window = padded[..., wr : wr + wh, wc : wc + ww]
    full = F.conv2d(changed, weight, None, s, p, d)[..., r0 : r0 + oh, c0 : c0 + ow]
    torch.testing.assert_close(F.conv2d(window, weight, None, s, 0, d), full, rtol=0, atol=1e-12)


class FullyConvolutional(nn.Module):
    """(N, 2, 15, 13) -> (N, 3, 15, 13) class maps: every layer local, output included."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.a = nn.Conv2d(2, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 3, 5, padding=2, dilation=1)

    def forward(self, x):
        return torch.softmax(self.b(F.relu(self.a(x))), 1)


class DetectionCnn(nn.Module):
    """(N, 3, 16, 16) -> conv layers -> (N, boxes, 4 + 1 + classes) valid boxes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.MaxPool2d(2))
        self.dense = nn.Linear(4 * 4 * 4, NUM_BOXES * (5 + NUM_CLASSES))

    def forward(self, x):
        raw = self.dense(self.features(x).flatten(1)).reshape(-1, NUM_BOXES, 5 + NUM_CLASSES)
        corner = 0.5 * torch.sigmoid(raw[..., 0:2])
        size = 0.05 + 0.45 * torch.sigmoid(raw[..., 2:4])
        boxes = [corner, corner + size, torch.sigmoid(raw[..., 4:5])]
        return torch.cat(boxes + [torch.softmax(raw[..., 5:], -1)], -1)


def _case(task):
    rng = np.random.default_rng(7)
    if task is Tasks.SEMANTIC_SEGMENTATION:
        x = rng.normal(size=(2, 2, 15, 13)).astype(np.float32)
        targets = (rng.uniform(size=(2, 3, 15, 13)) > 0.7).astype(np.float32)
        return FullyConvolutional().eval(), x, targets
    if task.value.startswith("object detection"):
        return (
            DetectionCnn().eval(),
            rng.uniform(size=(3, 3, 16, 16)).astype(np.float32),
            (detection_targets(n=3)),
        )
    model = random_cnn(3, (3, 17, 15), outputs=NUM_CLASSES)
    x = rng.normal(size=(3, 3, 17, 15)).astype(np.float32)
    targets = rng.normal(size=(3, NUM_CLASSES)).astype(np.float32)
    return model, x, targets


@pytest.mark.parametrize("task", list(Tasks))
def test_every_operator(task):
    model, x, targets = _case(task)
    maps, stats, reference = explain_both(
        model, x, targets, operator=task, batch_size=7, patch_size=3, patch_stride=2
    )
    assert stats.incremental_layers
    assert_exact(maps, reference, model, x, "float32")


def test_a_fully_local_model_splices_its_output():
    model, x, targets = _case(Tasks.SEMANTIC_SEGMENTATION)
    maps, stats, reference = explain_both(
        model, x, targets, operator="semantic segmentation", batch_size=5, patch_size=4
    )
    assert stats.incremental_layers == ("a", "relu", "b", "softmax")
    assert "full from the output" in stats.incremental_note
    assert_exact(maps, reference, model, x, "float32")


@pytest.mark.parametrize("method", ["explain", "explain_classes"])
def test_default_targets_and_all_class_maps(method):
    model = random_cnn(11, (2, 19, 21), outputs=NUM_CLASSES).double()
    x = np.random.default_rng(2).normal(size=(2, 2, 19, 21))
    maps, stats, reference = explain_both(model, x, None, method, batch_size=9, patch_size=5)
    assert stats.incremental_layers
    assert maps.shape == reference.shape
    assert_exact(maps, reference, model, x, "float64")


def test_border_patches_and_a_patch_as_large_as_the_image():
    model = random_cnn(5, (3, 13, 11)).double()
    x = np.random.default_rng(4).normal(size=(1, 3, 13, 11))
    for patch, stride in (((13, 11), (1, 1)), ((12, 10), (1, 1)), ((5, 4), (4, 4))):
        maps, _, reference = explain_both(
            model, x, batch_size=4, patch_size=patch, patch_stride=stride, edges="cover"
        )
        assert_exact(maps, reference, model, x, "float64")
