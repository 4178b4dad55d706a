"""Drill-down (``approximate=``) through the Captum and MONAI front-ends: every window swept
gives their exact maps (MONAI: every mode, 2-D and 3-D; Captum: windows over all channels
and per channel, two input tensors), a share sweeps that share and reports it, a smooth
model's maps come back close, and bad options fail naming ``approximate`` before any
model call."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fastocclusion.engine.similarity import ssim  # noqa: E402

from .incremental_models import random_cnn_nd  # noqa: E402
from .torch_models import Counting  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning"),  # MONAI's
]


class SmoothScore(nn.Module):
    """(N, C, *axes) -> (N, 2): tanh of the input weighted by two smooth bumps, so that the
    occlusion maps have structure for a coarse sweep to find."""

    def __init__(self, shape: tuple[int, ...], seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        grids = np.meshgrid(*[np.arange(n) for n in shape[1:]], indexing="ij")
        weights = np.zeros((2, *shape))
        for k in range(2):
            centre = [rng.uniform(0, n) for n in shape[1:]]
            distance = sum((g - c) ** 2 for g, c in zip(grids, centre))
            weights[k] = rng.normal(0, 0.5) * np.exp(-distance / (2 * 3.0**2))
        self.register_buffer("weights", torch.from_numpy(weights.reshape(2, -1)).float())

    def forward(self, x):
        return torch.tanh(x.flatten(1).to(self.weights.dtype) @ self.weights.T)


# -- MONAI ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["gaussian", "mean_patch", -0.5])
@pytest.mark.parametrize("shape", [(2, 15, 13), (1, 10, 9, 11)])
def test_monai_every_window_swept_equals_the_exact_maps(mode, shape):
    monai = pytest.importorskip("fastocclusion.monai")
    net = random_cnn_nd(7, shape)
    x = torch.from_numpy(np.random.default_rng(1).uniform(size=(1, *shape))).float()
    options = dict(mask_size=3, n_batch=8, verbose=False, mode=mode, overlap=0.5)
    exact = monai.OcclusionSensitivity(net, **options)(x)
    ours = monai.OcclusionSensitivity(net, approximate={"drill_down": 1.0}, **options)
    result = ours(x)
    np.testing.assert_allclose(result[0].numpy(), exact[0].numpy(), rtol=0, atol=1e-5)
    assert torch.equal(result[1], exact[1])
    assert ours.last_stats.approximate_share == 1.0
    assert "100% of the" in ours.last_stats.approximate_note


def test_monai_a_share_sweeps_that_share_and_comes_close_on_a_smooth_model():
    monai = pytest.importorskip("fastocclusion.monai")
    shape = (1, 24, 24)
    net = Counting(SmoothScore(shape, 3))
    x = torch.from_numpy(np.random.default_rng(2).uniform(0.5, 1, size=(1, *shape))).float()
    options = dict(mask_size=4, n_batch=16, verbose=False, mode="gaussian")
    exact = monai.OcclusionSensitivity(net, **options)(x)[0].numpy()
    net.calls = 0
    ours = monai.OcclusionSensitivity(net, approximate={"drill_down": 0.25}, **options)
    maps = ours(x)[0].numpy()
    stats = ours.last_stats
    assert 0.2 <= stats.approximate_share <= 0.5
    assert stats.model_calls == net.calls  # the unoccluded call included
    assert stats.perturbed_samples < stats.patches_per_input
    assert maps.shape == exact.shape
    for k in range(2):
        assert ssim(maps[0, k], exact[0, k]) > 0.9


@pytest.mark.parametrize(
    ("value", "match"),
    [("fast", "approximate: 'fast' is invalid"), ({"drill_down": 2}, "drill_down=2 is invalid")],
)
def test_monai_bad_options_name_approximate(value, match):
    monai = pytest.importorskip("fastocclusion.monai")
    with pytest.raises(ValueError, match=match):
        monai.OcclusionSensitivity(nn.Identity(), approximate=value)


def test_monai_a_coarse_stride_per_axis_of_the_wrong_count_fails_before_any_call():
    monai = pytest.importorskip("fastocclusion.monai")
    net = Counting(SmoothScore((1, 12, 12), 0))
    ours = monai.OcclusionSensitivity(
        net, mask_size=4, verbose=False, approximate={"coarse_stride": (4, 4, 4)}
    )
    with pytest.raises(ValueError, match=r"coarse_stride=\(4, 4, 4\) is invalid"):
        ours(torch.ones(1, 1, 12, 12))
    assert net.calls == 0


# -- Captum ---------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", ["all", "one"])
def test_captum_every_window_swept_equals_the_exact_attributions(channels):
    captum = pytest.importorskip("fastocclusion.captum")
    shape = (3, 14, 12)
    net = random_cnn_nd(11, shape)
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(2, *shape))).float()
    window = (3 if channels == "all" else 1, 4, 3)
    args = dict(sliding_window_shapes=window, strides=(window[0], 2, 2), target=1,
                perturbations_per_eval=8)  # fmt: skip
    exact = captum.Occlusion(net).attribute(x, **args)
    ours = captum.Occlusion(net, approximate={"drill_down": 1.0})
    result = ours.attribute(x, **args)
    assert result.dtype == exact.dtype and result.shape == exact.shape
    np.testing.assert_allclose(result.numpy(), exact.numpy(), rtol=0, atol=1e-5)
    assert ours.last_stats.approximate_share == 1.0


def test_captum_two_tensors_every_window_swept_equal_the_exact_attributions():
    captum = pytest.importorskip("fastocclusion.captum")

    def forward(a, b):
        return torch.tanh(a.flatten(1).sum(1, keepdim=True) * b.flatten(1)[:, :3])

    rng = np.random.default_rng(4)
    a = torch.from_numpy(rng.normal(size=(2, 6, 5))).float()
    b = torch.from_numpy(rng.normal(size=(2, 8))).float()
    args = dict(sliding_window_shapes=((2, 2), (3,)), strides=((1, 2), (2,)), target=2)
    exact = captum.Occlusion(forward).attribute((a, b), **args)
    ours = captum.Occlusion(forward, approximate={"drill_down": 1.0}).attribute((a, b), **args)
    for mine, theirs in zip(ours, exact):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=0, atol=1e-6)


def test_captum_a_share_comes_close_on_a_smooth_model_and_says_so():
    captum = pytest.importorskip("fastocclusion.captum")
    shape = (1, 24, 24)
    net = Counting(SmoothScore(shape, 5))
    x = torch.from_numpy(np.random.default_rng(6).uniform(0.5, 1, size=(2, *shape))).float()
    args = dict(sliding_window_shapes=(1, 4, 4), strides=(1, 1, 1), target=0,
                perturbations_per_eval=32)  # fmt: skip
    exact = captum.Occlusion(net).attribute(x, **args).numpy()
    net.calls = 0
    ours = captum.Occlusion(net, approximate={"drill_down": 0.25})
    maps = ours.attribute(x, **args).numpy()
    stats = ours.last_stats
    assert 0.2 <= stats.approximate_share <= 0.5
    assert stats.model_calls == net.calls  # the unoccluded calls included
    assert "drill-down" in stats.approximate_note
    for mine, theirs in zip(maps, exact):
        assert ssim(mine[0], theirs[0]) > 0.9


def test_captum_bad_options_name_approximate():
    captum = pytest.importorskip("fastocclusion.captum")
    with pytest.raises(ValueError, match="approximate: 0.5 is invalid"):
        captum.Occlusion(nn.Identity(), approximate=0.5)


# -- projective-field truncation ------------------------------------------------------------


def deep_chain() -> nn.Module:
    """Five 3x3 convolutions on 2x20x20: boxes that grow past 40 % of the map."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for i in range(5):
        layers += [nn.Conv2d(2 if i == 0 else 4, 4, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * 400, 3)).eval()


@pytest.mark.parametrize("tau", [1.0, 0.4])
def test_captum_and_monai_truncate_when_asked_and_say_so(tau):
    captum = pytest.importorskip("fastocclusion.captum")
    monai = pytest.importorskip("fastocclusion.monai")
    net = deep_chain()
    x = torch.from_numpy(np.random.default_rng(7).normal(size=(1, 2, 20, 20))).float()
    args = dict(sliding_window_shapes=(2, 4, 4), strides=(2, 2, 2), target=1)
    exact = captum.Occlusion(net).attribute(x, **args).numpy()
    cut = dict(approximate={"projective_field": tau}, incremental=True)
    ours = captum.Occlusion(net, **cut)
    result = ours.attribute(x, **args).numpy()
    options = dict(mask_size=4, n_batch=16, verbose=False, overlap=0.5)
    monai_exact = monai.OcclusionSensitivity(net, **options)(x)[0].numpy()
    sensitivity = monai.OcclusionSensitivity(net, **cut, **options)
    monai_result = sensitivity(x)[0].numpy()
    for stats in (ours.last_stats, sensitivity.last_stats):
        assert f"projective-field truncation at tau {tau:g}" in stats.approximate_note
    if tau == 1.0:  # nothing is cut: exact
        np.testing.assert_allclose(result, exact, rtol=0, atol=1e-5)
        np.testing.assert_allclose(monai_result, monai_exact, rtol=0, atol=1e-5)
        return
    for stats in (ours.last_stats, sensitivity.last_stats):
        assert "projective-field truncation (approximate) cut" in stats.incremental_note
    assert np.abs(result - exact).max() > 0 and np.abs(monai_result - monai_exact).max() > 0
    assert ssim(result[0, 0], exact[0, 0]) > 0.3  # approximate, yet like the exact map


# -- models on a GPU: the drill-down's sweeps of chosen patches run on the device --------


@pytest.mark.parametrize("approximate", [{"drill_down": 0.7}, "auto"])
def test_a_drill_down_on_the_device_equals_the_host_drill_down(approximate, monkeypatch):
    """The GPU sweep's logic (fake_cuda's stand-in for _cuda): the coarse sweep and the
    sweeps of chosen (input, window) pairs fill their batches on the "device" (a StreamPairs
    uploaded once per sweep), and the maps, shares and estimates equal the host
    drill-down's."""
    from fake_cuda import FakeCuda, FakeDeviceArrays, explain_with_fake_device

    from fastocclusion import Occlusion
    from fastocclusion.backends.torch import outputs as torch_outputs
    from fastocclusion.engine import fillers

    monai = pytest.importorskip("fastocclusion.monai")
    net = random_cnn_nd(5, (2, 12, 12))
    inputs = np.random.default_rng(0).uniform(size=(2, 2, 12, 12)).astype(np.float32)
    options = dict(patch_size=3, patch_stride=2, batch_size=7, approximate=approximate,
                   data_format="channels_first")  # fmt: skip
    on_device, fake = explain_with_fake_device(net, inputs, None, **options)
    assert fake.pair_fills > 0  # the sweeps of chosen patches ran on the "device"
    host = Occlusion(net, device="cpu", **options)
    torch.testing.assert_close(on_device, host.explain(inputs), rtol=0, atol=1e-6)
    x = torch.from_numpy(np.random.default_rng(1).uniform(size=(1, 2, 12, 12))).float()
    monai_options = dict(mask_size=4, n_batch=8, verbose=False, approximate=approximate)
    host_map = monai.OcclusionSensitivity(net, **monai_options)(x)[0]
    fake = FakeCuda()
    monkeypatch.setattr(fillers, "load_cuda_module", lambda: fake)
    monkeypatch.setattr(torch_outputs, "uses_gpu_sweep", lambda device, where: True)
    monkeypatch.setattr(
        torch_outputs.OutputsBackend, "device_arrays", property(lambda self: FakeDeviceArrays())
    )
    device_map = monai.OcclusionSensitivity(net, **monai_options)(x)[0]
    assert fake.pair_fills > 0
    torch.testing.assert_close(device_map, host_map, rtol=0, atol=1e-6)
