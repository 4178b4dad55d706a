"""Exact incremental inference over maps of one and three axes (signals: Conv1d; volumes:
Conv3d), and two-axis maps through the same N-d code: random CNNs of every supported layer
kind (incremental_models.random_cnn_nd) explained through the Captum, MONAI and
Xplique-style front-ends with incremental True and False (float64: <= 1e-10 of the largest
map value; float32: <= 1e-4), and MONAI's own 3-D networks against MONAI itself."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fastocclusion import Occlusion as XpliqueOcclusion  # noqa: E402

from .incremental_models import random_cnn_nd  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning"),  # MONAI's
]

TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}
SHAPES = {1: [(3, 40), (2, 33)], 2: [(2, 15, 13)], 3: [(2, 12, 14, 10), (1, 16, 11, 13)]}


def assert_close(actual, reference, dtype):
    actual, reference = np.asarray(actual), np.asarray(reference)
    scale = max(float(np.abs(reference).max()), 1e-30)
    difference = float(np.abs(actual - reference).max())
    assert difference <= TOLERANCE[dtype] * scale, (difference, scale)


def network(seed, shape, dtype):
    return random_cnn_nd(seed, shape).to(dtype)


CASES = [
    (axes, seed, dtype)
    for axes in (1, 2, 3)
    for seed in range(6 if axes != 2 else 2)
    for dtype in (torch.float32, torch.float64)
]


@pytest.mark.parametrize(("axes", "seed", "dtype"), CASES)
def test_captum_random_nd_cnns_equal_the_normal_sweep(axes, seed, dtype):
    captum = pytest.importorskip("fastocclusion.captum")
    shape = SHAPES[axes][seed % len(SHAPES[axes])]
    net = network(seed, shape, dtype)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(2, *shape))).to(dtype)
    window = (shape[0] if seed % 2 else 1,) + tuple(int(rng.integers(2, 5)) for _ in shape[1:])
    strides = (window[0],) + tuple(int(rng.integers(1, w + 1)) for w in window[1:])
    args = dict(sliding_window_shapes=window, strides=strides, target=1,
                perturbations_per_eval=int(rng.integers(3, 9)))  # fmt: skip
    ours = captum.Occlusion(net, incremental=True)
    incremental = ours.attribute(x, **args)
    assert ours.last_stats.incremental_layers, ours.last_stats.incremental_note
    normal = captum.Occlusion(net, incremental=False).attribute(x, **args)
    assert incremental.dtype == normal.dtype  # float32 either way, as Captum 0.9 returns
    assert_close(incremental, normal, dtype)


@pytest.mark.parametrize(("axes", "seed", "dtype"), [c for c in CASES if c[0] != 1])
def test_monai_random_nd_cnns_equal_the_normal_sweep_and_monais(axes, seed, dtype):
    monai_frontend = pytest.importorskip("fastocclusion.monai")
    monai_visualize = pytest.importorskip("monai.visualize")
    shape = SHAPES[axes][seed % len(SHAPES[axes])]
    net = network(seed + 100, shape, dtype)
    x = torch.from_numpy(np.random.default_rng(seed).uniform(size=(1, *shape))).to(dtype)
    options = dict(mask_size=[3, 4, 5][seed % 3], n_batch=[4, 9][seed % 2], verbose=False,
                   mode=["gaussian", "mean_patch", -0.5][seed % 3], overlap=0.5)  # fmt: skip
    ours = monai_frontend.OcclusionSensitivity(net, incremental=True, **options)
    result = ours(x)
    assert ours.last_stats.incremental_layers, ours.last_stats.incremental_note
    normal = monai_frontend.OcclusionSensitivity(net, incremental=False, **options)(x)
    assert_close(result[0], normal[0], dtype)
    assert torch.equal(result[1], normal[1])
    theirs = monai_visualize.OcclusionSensitivity(net, **options)(x)
    assert_close(result[0], theirs[0], torch.float32)  # MONAI's maps are float32


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_xplique_volumes_channels_first_equal_the_normal_sweep(seed, dtype):
    shape = SHAPES[3][seed % 2]
    net = network(seed + 200, shape, dtype)
    x = np.random.default_rng(seed).normal(size=(2, *shape)).astype(np.float32)
    options = dict(patch_size=(3, 4, 2), patch_stride=(2, 3, 2), batch_size=16,
                   data_format="channels_first")  # fmt: skip
    ours = XpliqueOcclusion(net, incremental=True, **options)
    targets = np.eye(3, dtype=np.float32)[[0, 2]]
    maps = ours.explain(x, targets).numpy()
    assert ours.last_stats.incremental_layers, ours.last_stats.incremental_note
    normal = XpliqueOcclusion(net, incremental=False, **options).explain(x, targets)
    assert_close(maps, normal.numpy(), dtype)


def monai_networks():
    nets = pytest.importorskip("monai.networks.nets")
    torch.manual_seed(0)
    densenet = nets.DenseNet(spatial_dims=3, in_channels=1, out_channels=3, init_features=8,
                             growth_rate=4, block_config=(2, 2, 2))  # fmt: skip
    resnet = nets.ResNet("basic", (1, 1, 1, 1), (4, 6, 8, 8), spatial_dims=3,
                         n_input_channels=1, num_classes=3)  # fmt: skip
    return {"DenseNet": densenet.eval(), "ResNet": resnet.eval()}


@pytest.mark.parametrize("name", ["DenseNet", "ResNet"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_monai_own_3d_networks_equal_the_normal_sweep_and_monais(name, dtype):
    monai_frontend = pytest.importorskip("fastocclusion.monai")
    monai_visualize = pytest.importorskip("monai.visualize")
    net = monai_networks()[name].to(dtype)
    x = torch.from_numpy(np.random.default_rng(1).uniform(size=(1, 1, 24, 24, 24))).to(dtype)
    options = dict(mask_size=8, n_batch=16, verbose=False, mode="gaussian")
    ours = monai_frontend.OcclusionSensitivity(net, incremental=True, **options)
    result = ours(x)
    layers = ours.last_stats.incremental_layers
    assert any("conv" in layer for layer in layers), ours.last_stats.incremental_note
    normal = monai_frontend.OcclusionSensitivity(net, incremental=False, **options)(x)
    assert_close(result[0], normal[0], dtype)
    theirs = monai_visualize.OcclusionSensitivity(net, **options)(x)
    assert_close(result[0], theirs[0], torch.float32)  # MONAI's maps are float32


def test_a_2d_layer_on_3d_maps_runs_in_full():
    """A functional 2-D softmax over dim -3 of a volume's (N, C, D, H, W) maps is over the
    depth, not the channels: the plan stops there instead of computing it on boxes."""

    class DepthSoftmax(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv3d(1, 2, 3, padding=1)
            self.head = nn.Linear(2, 2)

        def forward(self, x):
            y = torch.softmax(self.conv(x), dim=-3)
            return self.head(y.mean((2, 3, 4)))

    monai_frontend = pytest.importorskip("fastocclusion.monai")
    net = DepthSoftmax().eval()
    x = torch.rand(1, 1, 8, 8, 8)
    ours = monai_frontend.OcclusionSensitivity(net, mask_size=3, verbose=False, incremental=True)
    result = ours(x)
    assert ours.last_stats.incremental_layers == ("conv",)
    assert "softmax" in ours.last_stats.incremental_note
    normal = monai_frontend.OcclusionSensitivity(net, mask_size=3, verbose=False,
                                                 incremental=False)(x)  # fmt: skip
    assert_close(result[0], normal[0], torch.float32)
