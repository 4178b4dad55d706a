"""Exact means exact: what a torch.fx trace does not see (hooks, dropped branches,
attributes changed since an earlier explain) never reaches the maps, functions the
classification cannot read run in full instead of raising, and tracing leaves the caller's
model as it was. Every case: incremental "auto" and True equal incremental=False, or True
raises a ValueError (before any model call where the cause can be seen then)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fastocclusion import Occlusion, TorchCallable  # noqa: E402

from .hostile_torch import (  # noqa: E402
    FUNCTIONS,
    SideEffects,
    Temperature,
    change_attributes,
    hostile_step,
)

pytestmark = pytest.mark.torch

OPTIONS = dict(batch_size=16, patch_size=4, patch_stride=3, data_format="channels_first")
X = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype(np.float32))


class Counted(nn.Module):
    """A small CNN with ``middle`` after its first block; counts its forward calls."""

    def __init__(self, *middle: nn.Module) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), *middle, nn.Conv2d(4, 4, 3, padding=1)
        )
        self.head = nn.Linear(4, 3)
        self.calls = 0
        self.eval()

    def forward(self, x):
        self.calls += 1
        return self.head(self.features(x).mean((2, 3)))


def maps(model, incremental, x=X, **options):
    method = Occlusion(model, incremental=incremental, **{**OPTIONS, **options})
    return method.explain(x).numpy(), method.last_stats


def assert_close(actual, reference):
    np.testing.assert_allclose(actual, reference, rtol=0, atol=1e-4 * np.abs(reference).max())


def assert_refused_before_any_call(model, match):
    before = model.calls
    with pytest.raises(ValueError, match=match):
        maps(model, True)
    assert model.calls == before


# -- hooks ----------------------------------------------------------------------------------


def test_a_forward_hook_on_the_model_keeps_the_normal_sweep(eager_auto):
    model = Counted()
    model.register_forward_hook(lambda module, args, out: torch.softmax(out, -1))
    reference, _ = maps(model, False)
    auto, stats = maps(model, "auto")
    assert_close(auto, reference)
    assert stats.incremental_layers == ()
    assert "the model has forward hooks" in stats.incremental_note
    assert_refused_before_any_call(model, "incremental: True is invalid here, model: the model")


def test_a_pre_hook_on_a_module_keeps_the_normal_sweep(eager_auto):
    model = Counted()
    model.features[1].register_forward_pre_hook(lambda module, args: (args[0] * 2.0,))
    reference, _ = maps(model, False)
    assert_close(maps(model, "auto")[0], reference)
    assert_refused_before_any_call(model, "model: features.1 has forward hooks")


def test_a_global_module_hook_keeps_the_normal_sweep(eager_auto):
    model = Counted()

    def hook(module, args, out):
        return out * 1.5 if isinstance(module, nn.ReLU) else None

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        reference, _ = maps(model, False)
        auto, stats = maps(model, "auto")
        assert_close(auto, reference)
        assert "global module forward hooks" in stats.incremental_note
        assert_refused_before_any_call(model, "global module forward hooks")
    finally:
        handle.remove()
    assert maps(model, "auto")[1].incremental_layers  # the hook gone: incremental again


# -- what a symbolic trace gets wrong -------------------------------------------------------


@pytest.mark.parametrize("kind", ["tensor_branch", "jit_branch"])
def test_a_branch_the_trace_drops_is_caught_by_the_base_pass(eager_auto, kind):
    model = Counted(hostile_step(kind, 4))
    reference, _ = maps(model, False)
    auto, stats = maps(model, "auto")
    assert_close(auto, reference)
    assert stats.incremental_layers == ()
    assert "outputs of its traced graph differ from the model's" in stats.incremental_note
    with pytest.raises(ValueError, match="incremental: True .* traced graph differ"):
        maps(model, True)


def test_monai_basic_unet_whose_trace_is_wrong_keeps_the_normal_sweep(eager_auto):
    """MONAI's BasicUNet branches on torch.jit.isinstance: its symbolic trace drops the skip
    concatenation and fails on real data; auto steps aside, True says why."""
    nets = pytest.importorskip("monai.networks.nets")
    torch.manual_seed(0)
    unet = nets.BasicUNet(spatial_dims=2, in_channels=3, out_channels=2,
                          features=(4, 4, 8, 8, 8, 4))  # fmt: skip
    model = nn.Sequential(unet, nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    x = torch.randn(1, 3, 32, 32)
    options = dict(patch_size=8, patch_stride=8)
    reference, _ = maps(model, False, x, **options)
    auto, stats = maps(model, "auto", x, **options)
    assert_close(auto, reference)
    assert "its graph failed on the unoccluded inputs" in stats.incremental_note
    with pytest.raises(ValueError, match="incremental: True .* graph failed"):
        maps(model, True, x, **options)


def test_an_attribute_buffer_or_parameter_changed_between_explains(eager_auto):
    model = Counted(Temperature())
    auto = Occlusion(model, incremental="auto", **OPTIONS)
    required = Occlusion(model, incremental=True, **OPTIONS)
    for method in (auto, required):
        method.explain(X)
    change_attributes(model, 0.1)
    with torch.no_grad():
        model.features[0].weight = nn.Parameter(model.features[0].weight * -1.0)
    reference, _ = maps(model, False)
    for method in (auto, required):
        assert_close(method.explain(X).numpy(), reference)
        assert method.last_stats.incremental_layers  # traced anew: still incremental


@pytest.mark.parametrize("kind", [*FUNCTIONS, "functional_conv"])
def test_functions_the_classification_cannot_read_run_in_full(eager_auto, kind):
    model = Counted(hostile_step(kind, 4))
    reference, _ = maps(model, False)
    for incremental in ("auto", True):
        result, stats = maps(model, incremental)
        assert_close(result, reference)
        assert stats.incremental_layers[:2] == ("features.0", "features.1")
        assert "full from" in stats.incremental_note


def test_a_conv2d_subclass_calling_f_conv2d_stays_incremental(eager_auto):
    model = Counted(hostile_step("functional_conv", 4))
    reference, _ = maps(model, False)
    result, stats = maps(model, True)
    assert_close(result, reference)
    assert any("conv2d" in layer for layer in stats.incremental_layers), stats


# -- no side effects on the caller's model ---------------------------------------------------


def test_tracing_leaves_the_model_as_it_was(eager_auto):
    recorder = SideEffects()
    model = Counted(recorder)
    maps(model, True)
    assert type(recorder.features) is torch.Tensor  # not an fx Proxy
    assert set(recorder.seen) == {torch.Tensor}
    assert recorder.calls == len(recorder.seen)  # the trace's call did not count
    assert model.calls == recorder.calls


def test_a_torch_callable_is_never_traced(eager_auto):
    seen = []

    def fn(batch):
        seen.append(type(batch))
        return batch.mean((2, 3))

    model = TorchCallable(fn)
    reference, _ = maps(model, False)
    seen.clear()
    result, stats = maps(model, "auto")
    assert_close(result, reference)
    assert set(seen) == {torch.Tensor}
    assert "TorchCallable's function is called as it is" in stats.incremental_note
    with pytest.raises(ValueError, match="never traced"):
        maps(model, True)


# -- errors before work -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_targets_are_refused_before_any_call(bad):
    model = Counted()
    targets = torch.eye(3)[:2].clone()
    targets[1, 2] = bad
    for incremental in ("auto", False):
        with pytest.raises(ValueError, match="targets: 1 NaN or infinite value"):
            Occlusion(model, incremental=incremental, **OPTIONS).explain(X, targets)
    assert model.calls == 0
