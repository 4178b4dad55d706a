"""Exact incremental inference (design §8) where it cannot run, or not everywhere: the
option's checks, incremental="auto" falling back to the normal sweep and saying why,
incremental=True raising a ValueError that names the first unsupported layer or option
before any model call, and models whose unsupported layers come later (incremental up to
them, exact)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
pytestmark = pytest.mark.torch

from torch import nn  # noqa: E402
from torch_models import ImageNet  # noqa: E402

from fastocclusion import Occlusion  # noqa: E402

X = np.random.default_rng(0).normal(size=(2, 3, 20, 18)).astype(np.float32)
OPTIONS = {"batch_size": 8, "patch_size": 4, "patch_stride": 3, "data_format": "channels_first"}


def cnn(*middle: nn.Module, channels: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), *middle,
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 3),
    ).eval()  # fmt: skip


def run(model, incremental, x=X, **options):
    method = Occlusion(model, incremental=incremental, **{**OPTIONS, **options})
    return method.explain(x).numpy(), method.last_stats


def assert_same_maps(model, x=X, **options):
    """The incremental maps (threshold 1) equal the normal sweep's; returns the stats."""
    maps, stats = run(model, True, x, incremental_threshold=1.0, **options)
    reference, _ = run(model, False, x, **options)
    np.testing.assert_allclose(maps, reference, rtol=0, atol=1e-5 * np.abs(reference).max())
    return stats


@pytest.mark.parametrize("value", ["yes", 1, None, "AUTO"])
def test_incremental_must_be_auto_true_or_false(value):
    with pytest.raises(ValueError, match="incremental: .* expected 'auto', True or False"):
        Occlusion(cnn(), incremental=value)


@pytest.mark.parametrize("value", [0, -0.5, 1.5, "0.5", True, float("nan")])
def test_the_threshold_is_a_share(value):
    with pytest.raises(ValueError, match="incremental_threshold: .* expected None or a number"):
        Occlusion(cnn(), incremental_threshold=value)


def test_auto_runs_incrementally_where_it_pays_and_reports_the_layers():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 3),
    ).eval()  # fmt: skip
    x = np.random.default_rng(1).normal(size=(1, 3, 96, 96)).astype(np.float32)
    maps, stats = run(model, "auto", x, patch_size=8, patch_stride=8)
    assert stats.incremental_layers == ("0", "1", "2", "3")
    assert 0.8 < stats.incremental_saved < 1  # of the convolutions' and the linear's MACs
    assert "full from 4: AdaptiveAvgPool2d is not a supported local layer" in stats.incremental_note
    reference, normal = run(model, False, x, patch_size=8, patch_stride=8)
    assert normal.incremental_layers == () and "incremental=False" in normal.incremental_note
    np.testing.assert_allclose(maps, reference, rtol=0, atol=1e-5 * np.abs(reference).max())


def test_auto_keeps_the_normal_sweep_for_a_call_too_cheap_to_split():
    """1.6e5 multiply-adds a call: more than AUTO_MEASURE_RANGE below the floor."""
    maps, stats = run(cnn(), "auto", batch_size=4)
    assert stats.incremental_layers == ()
    assert "too cheap" in stats.incremental_note
    np.testing.assert_array_equal(maps, run(cnn(), False, batch_size=4)[0])


@pytest.mark.parametrize("faster", ["incremental", "full"])
def test_auto_measures_calls_near_the_floor_and_keeps_the_faster(faster, monkeypatch):
    """3.1e5 multiply-adds a call, within AUTO_MEASURE_RANGE of the floor: "auto" times an
    incremental and a full call of the second batch and keeps the faster (forced here, both
    ways); the note gives both times, the second call of that batch is counted, and the maps
    equal the normal sweep's either way."""
    from fastocclusion.engine.incremental_run import IncrementalRunner

    measured = IncrementalRunner.measured
    times = (0.001, 0.002) if faster == "incremental" else (0.002, 0.001)
    seen = []

    def forced(runner, incremental_seconds, full_seconds):
        seen.append((incremental_seconds, full_seconds))
        return measured(runner, *times)

    monkeypatch.setattr(IncrementalRunner, "measured", forced)
    maps, stats = run(cnn(), "auto")
    reference, normal = run(cnn(), False)
    assert len(seen) == 1 and all(t > 0 for t in seen[0])
    assert stats.model_calls == normal.model_calls + 1
    assert "an incremental call took 1 ms, a full one 2 ms" in stats.incremental_note or (
        "an incremental call took 2 ms, a full one 1 ms" in stats.incremental_note
    )
    if faster == "incremental":
        assert (
            stats.incremental_layers == ("0", "1") and "'auto' measured" in stats.incremental_note
        )
    else:
        assert stats.incremental_layers == ()
        assert stats.incremental_note.startswith("normal sweep (incremental='auto'): measured")
    np.testing.assert_allclose(maps, reference, rtol=0, atol=1e-5 * np.abs(reference).max())


def test_auto_measures_for_real():
    """Unforced: whichever kind wins, the maps are the normal sweep's."""
    maps, stats = run(cnn(), "auto")
    assert "measured" in stats.incremental_note
    np.testing.assert_allclose(maps, run(cnn(), False)[0], rtol=0, atol=1e-5 * np.abs(maps).max())


def test_auto_keeps_the_normal_sweep_when_little_is_saved():
    _, stats = run(cnn(), "auto", patch_size=16, patch_stride=4, incremental_threshold=1.0)
    assert stats.incremental_layers == () and "would save only" in stats.incremental_note


@pytest.mark.parametrize(
    ("model", "options", "message"),
    [
        (ImageNet((20, 18, 3)), {"data_format": "channels_last"}, "inputs: .*channels-first"),
        (
            nn.Sequential(nn.Upsample(scale_factor=2), nn.Flatten(), nn.Linear(4320, 2)),
            {},
            "model: 0: Upsample is not a supported local layer",
        ),  # fmt: skip
        (
            nn.Sequential(nn.Conv2d(3, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten()),
            {},
            "model: 0: Conv2d with padding_mode='reflect'",
        ),  # fmt: skip
        (
            nn.Sequential(nn.BatchNorm2d(3).train(), nn.Flatten()),
            {},
            "model: 0: BatchNorm2d in training",
        ),
        (cnn(), {"operator": lambda m, x, y: m(x).sum(-1)}, "operator: a custom operator"),
        (lambda: torch.compile(cnn(), backend="eager"), {}, "model: a compiled or TorchScript"),
    ],
)
def test_unsupported_models_and_options(model, options, message):
    """True: a ValueError naming the first unsupported layer or option, before any model
    call; "auto": the normal sweep, and the note says why."""
    model = model if isinstance(model, nn.Module) else model()
    calls = []
    if "operator" in options:
        op = options["operator"]
        options = {**options, "operator": lambda m, x, y: calls.append(1) or op(m, x, y)}
    x = X.transpose(0, 2, 3, 1).copy() if options.get("data_format") == "channels_last" else X
    with pytest.raises(ValueError, match=f"incremental: True is invalid here, {message}"):
        run(model, True, x, **options)
    assert not calls
    maps, stats = run(model, "auto", x, **options)
    assert stats.incremental_layers == () and stats.incremental_note.startswith("normal sweep")
    np.testing.assert_array_equal(maps, run(model, False, x, **options)[0])


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        y = self.conv(x)
        return y.mean((1, 2, 3))[:, None] if y.sum() > 0 else -y.mean((1, 2, 3))[:, None]


def test_a_model_torch_fx_cannot_trace():
    with pytest.raises(ValueError, match="model: torch.fx cannot trace the model"):
        run(DataDependent(), True)
    _, stats = run(DataDependent(), "auto")
    assert "torch.fx cannot trace" in stats.incremental_note


class SharedInPlace(nn.Module):
    """relu_ writes into a map that another layer reads afterwards: eager semantics."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        y = self.conv(x)
        z = torch.relu_(y)
        return self.head((y * 2 + z).mean((2, 3)))


def test_in_place_writes_into_a_shared_map_keep_the_normal_sweep():
    with pytest.raises(ValueError, match="relu_: writes in place into a map that other"):
        run(SharedInPlace(), True)


def test_forward_hooks_are_not_skipped():
    model = cnn()
    model[0].register_forward_hook(lambda module, args, out: out * 2)
    with pytest.raises(ValueError, match="model: 0 has forward hooks"):
        run(model, True)


@pytest.mark.parametrize(
    ("middle", "stop"),
    [
        ((nn.Upsample(scale_factor=2, mode="nearest"),), "2: Upsample"),
        ((nn.BatchNorm2d(4),), "2: BatchNorm2d in training"),
        ((nn.AvgPool2d(3, 2, 1, count_include_pad=False),), "2: average pooling without"),
        ((nn.AvgPool2d(3, 2, 0, ceil_mode=True),), "2: pooling whose ceil mode adds"),
    ],
)
def test_a_later_unsupported_layer_ends_the_incremental_part(middle, stop):
    model = cnn(*middle)
    model[2].train(stop.endswith("training"))  # after cnn()'s eval()
    if model[2].training:  # batch statistics: the maps are not comparable
        _, stats = run(model, True, incremental_threshold=1.0)
    else:
        stats = assert_same_maps(model)
    assert stats.incremental_layers == ("0", "1")
    assert f"full from {stop}" in stats.incremental_note


def test_a_random_model_differs_from_its_trace_and_keeps_the_normal_sweep():
    """Dropout in training mode: the trace's outputs are not the model's (other masks), so
    True refuses after the base pass; auto keeps the normal sweep (here for the model's
    small cost already)."""
    model = cnn(nn.Dropout(0.5))
    model[2].train()
    with pytest.raises(ValueError, match="outputs of its traced graph differ from the model's"):
        run(model, True)
    _, stats = run(model, "auto")
    assert stats.incremental_layers == ()
    assert stats.incremental_note.startswith("normal sweep")
