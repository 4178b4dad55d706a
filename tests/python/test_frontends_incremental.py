"""The Captum and MONAI front-ends with exact incremental inference (design §8): for random
2-D CNNs (incremental_models.random_cnn), ``incremental=True`` and "auto" (without its
cost floors: the conftest's ``eager_auto``) give the maps of ``incremental=False`` within
float32 round-off (1e-4 of the largest |value|), and those of Captum 0.9's and MONAI 1.6's
own classes; every Captum target form, windows over all channels and over one, every MONAI
mode; what cannot run incrementally keeps the normal sweep under "auto" (the note says why)
and is a ValueError naming ``incremental`` under True, before any model call. Needs captum
and monai: the tests are marked `torch` and skip, saying why, without them."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
captum_attr = pytest.importorskip("captum.attr", reason="needs Captum: pip install captum")
monai_visualize = pytest.importorskip("monai.visualize", reason="needs MONAI: pip install monai")
from incremental_models import random_cnn  # noqa: E402
from test_captum_frontend import assert_same  # noqa: E402
from test_monai_frontend import assert_same_maps  # noqa: E402
from torch import nn  # noqa: E402

from fastocclusion.captum import Occlusion  # noqa: E402
from fastocclusion.monai import OcclusionSensitivity  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    # MONAI 1.6 indexes tensors with lists (torch deprecates it): MONAI's, not ours.
    pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning"),
]

INCREMENTAL = ("auto", True)  # compared with incremental=False


def assert_close(actual: torch.Tensor, reference: torch.Tensor) -> None:
    """Equal within float32 round-off: 1e-4 of the reference's largest |value|."""
    assert actual.shape == reference.shape and actual.dtype == reference.dtype
    scale = float(reference.abs().max())
    torch.testing.assert_close(actual, reference, rtol=0, atol=1e-4 * max(scale, 1e-12))


class Shaped(nn.Module):
    """A random CNN's outputs reshaped to (N, *shape): (2, 3) for targets of two axes, ()
    for one value per example (target None)."""

    def __init__(self, cnn: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.cnn, self.shape = cnn, shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(x).reshape((-1, *self.shape))


class Counted(nn.Module):
    """``net`` with every call counted; ``b`` and ``scale``: a second input and an extra
    argument, for the cases the incremental path refuses."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x: torch.Tensor, b: torch.Tensor | None = None, scale: float = 1.0):
        self.calls += 1
        out = self.net(x) * scale
        return out if b is None else out + b.flatten(1).sum(1, keepdim=True)


# -- Captum ---------------------------------------------------------------------------------


def attribute_all(model, x, args):
    """(incremental=False's attributions, {mode: (attributions, last_stats)}, Captum's)."""
    reference = Occlusion(model, incremental=False).attribute(x, **args)
    ours = {}
    for mode in INCREMENTAL:
        explainer = Occlusion(model, incremental=mode)
        ours[mode] = explainer.attribute(x, **args), explainer.last_stats
    return reference, ours, captum_attr.Occlusion(model).attribute(x, **args)


@pytest.mark.parametrize("seed", range(6))
def test_captum_incremental_equals_the_normal_sweep_and_captums(eager_auto, seed):
    rng = np.random.default_rng(seed)
    channels = int(rng.choice([1, 3]))
    model = random_cnn(seed, (channels, 16, 15))
    x = torch.from_numpy(rng.normal(size=(2, channels, 16, 15)).astype(np.float32))
    per_channel = seed % 2 == 1
    window = (1, 4, 5) if per_channel else (channels, int(rng.integers(3, 7)), 4)
    args = dict(
        sliding_window_shapes=window,
        strides=(1, 2, 3) if per_channel else (channels, 3, 2),
        baselines=[0.0, 0.5, torch.from_numpy(rng.normal(size=(channels, 16, 15))).float()][
            seed % 3
        ],
        target=[int(v) for v in rng.integers(0, 4, 2)],
        perturbations_per_eval=int(rng.integers(1, 4)),  # padded last calls too
    )
    reference, ours, theirs = attribute_all(model, x, args)
    assert_same(reference, theirs)
    for mode, (attributions, stats) in ours.items():
        assert_close(attributions, reference)
        assert_same(attributions, theirs)
        assert stats.incremental_layers, f"{mode!r}: {stats.incremental_note}"


@pytest.mark.parametrize(
    ("shape", "target"),
    [
        ((4,), 2),
        ((4,), (3,)),
        ((4,), [1, 3]),
        ((4,), torch.tensor([0, 2])),
        ((4,), torch.tensor(1)),
        ((2, 3), (1, 2)),
        ((2, 3), [(0, 1), (1, 2)]),
        ((), None),
    ],
)
def test_captum_incremental_takes_every_target_form(eager_auto, shape, target):
    model = Shaped(random_cnn(7, (3, 14, 14), outputs=int(np.prod(shape))), shape).eval()
    x = torch.from_numpy(np.random.default_rng(7).normal(size=(2, 3, 14, 14))).float()
    args = dict(sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), target=target)
    reference, ours, theirs = attribute_all(model, x, args)
    for attributions, stats in ours.values():
        assert stats.incremental_layers, stats.incremental_note
        assert_close(attributions, reference)
        assert_same(attributions, theirs)


def test_captum_stats_of_several_inputs_are_the_last_tensors():
    model = Counted(random_cnn(1, (3, 12, 12)))
    a, b = torch.rand(2, 3, 12, 12), torch.rand(2, 5)
    explainer = Occlusion(model)
    explainer.attribute((a, b), ((3, 4, 4), (2,)), strides=((3, 4, 4), (1,)), target=0)
    assert explainer.last_stats.inputs == 2 and explainer.last_stats.patches_per_input == 4


def counted_function(net: nn.Module):
    """A plain function calling ``net``, its calls counted (``.calls``)."""

    def forward(x):
        forward.calls += 1
        return net(x)

    forward.calls = 0
    return forward


def captum_refusals():
    """(forward_func, inputs, additional_forward_args, the reason the note and the error
    give, a regular expression)."""
    net = random_cnn(2, (3, 12, 12))
    image = torch.rand(2, 3, 12, 12)
    table = Counted(nn.Linear(12, 4))
    return [
        (counted_function(net), image, None, "forward_func: the layers of a function"),
        (Counted(net), (image, torch.rand(2, 2, 5, 6)), None, "inputs: 2 input tensors"),
        (Counted(net), image, (None, 2.0), "additional_forward_args: 2 extra arguments"),
        (table, torch.rand(2, 12), None, r"needs feature maps, not a tensor of shape \(2, 12\)"),
    ]


@pytest.mark.parametrize("case", range(4))
def test_captum_refusals_keep_the_normal_sweep_or_raise_before_any_call(case):
    model, inputs, extra, reason = captum_refusals()[case]
    tensors = inputs if isinstance(inputs, tuple) else (inputs,)
    windows = tuple(tuple(max(1, d // 3) for d in t.shape[1:]) for t in tensors)
    args = dict(
        sliding_window_shapes=windows if isinstance(inputs, tuple) else windows[0],
        strides=windows if isinstance(inputs, tuple) else windows[0],
        target=0,
        additional_forward_args=extra,
    )
    with pytest.raises(ValueError, match=f"^incremental: True is invalid here, .*{reason}"):
        Occlusion(model, incremental=True).attribute(inputs, **args)
    assert model.calls == 0
    explainer = Occlusion(model, incremental="auto")
    auto = explainer.attribute(inputs, **args)
    assert explainer.last_stats.incremental_layers == ()
    assert re.match(f"normal sweep: .*{reason}", explainer.last_stats.incremental_note)
    normal = Occlusion(model, incremental=False).attribute(inputs, **args)
    for ours, reference in zip(tensors_of(auto), tensors_of(normal)):
        assert torch.equal(ours, reference)


def tensors_of(value):
    return value if isinstance(value, tuple) else (value,)


# -- MONAI ----------------------------------------------------------------------------------


def sensitivity_all(net, x, b_box=None, **options):
    """(incremental=False's result, {mode: (result, last_stats)}, MONAI's result)."""
    options = {"verbose": False, **options}
    reference = OcclusionSensitivity(net, incremental=False, **options)(x, b_box=b_box)
    ours = {}
    for mode in INCREMENTAL:
        explainer = OcclusionSensitivity(net, incremental=mode, **options)
        ours[mode] = explainer(x, b_box=b_box), explainer.last_stats
    theirs = monai_visualize.OcclusionSensitivity(net, **options)(x, b_box=b_box)
    return reference, ours, theirs


@pytest.mark.parametrize("mode", ["gaussian", "mean_patch", "mean_img", -0.7])
@pytest.mark.parametrize("seed", range(2))
def test_monai_incremental_equals_the_normal_sweep_and_monais(eager_auto, mode, seed):
    rng = np.random.default_rng(seed)
    channels = [1, 3][seed]
    net = random_cnn(10 + seed, (channels, 16, 14), outputs=3)
    x = torch.from_numpy(rng.uniform(size=(1, channels, 16, 14)).astype(np.float32))
    options = dict(
        mask_size=[4, (5, 3)][seed], n_batch=[5, 7][seed], mode=mode, overlap=[0.5, 0.6][seed],
        activate=[True, False][seed],
    )  # fmt: skip
    b_box = [None, [2, 12, -1, -1]][seed]
    reference, ours, theirs = sensitivity_all(net, x, b_box, **options)
    assert_same_maps(reference, theirs)
    for result, stats in ours.values():
        assert stats.incremental_layers, stats.incremental_note
        assert_close(result[0], reference[0])
        assert_same_maps(result, theirs)


def test_monai_traces_a_module_in_training_mode_in_eval_mode_and_restores_it(eager_auto):
    net = random_cnn(4, (2, 14, 14), outputs=3).train()
    training = [m.training for m in net.modules()]
    x = torch.rand(1, 2, 14, 14)
    reference, ours, theirs = sensitivity_all(net, x, mask_size=4, n_batch=6)
    for result, stats in ours.values():
        assert stats.incremental_layers, stats.incremental_note
        assert_close(result[0], reference[0])
        assert_same_maps(result, theirs)
    assert [m.training for m in net.modules()] == training


@pytest.mark.parametrize(
    ("net", "shape", "kwargs", "reason"),
    [
        (lambda: counted_function(random_cnn(5, (1, 8, 8), outputs=2)), (1, 1, 8, 8), {},
         "nn_module: the layers of a function are unknown"),
        (lambda: Counted(random_cnn(5, (1, 8, 8), outputs=2)), (1, 1, 8, 8), {"scale": 2.0},
         r"kwargs: \['scale'\] are invalid"),
        (lambda: Counted(nn.Sequential(nn.Conv3d(1, 2, 3, padding=1, padding_mode="reflect"),
                                       nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(2, 2))),
         (1, 1, 6, 6, 6), {}, "Conv3d with padding_mode='reflect' is not supported"),
    ],
)  # fmt: skip
def test_monai_refusals_keep_the_normal_sweep_or_raise_before_any_call(net, shape, kwargs, reason):
    module = net()
    x = torch.rand(*shape)
    with pytest.raises(ValueError, match=f"^incremental: True is invalid here, .*{reason}"):
        OcclusionSensitivity(module, mask_size=3, verbose=False, incremental=True)(x, **kwargs)
    assert module.calls == 0
    explainer = OcclusionSensitivity(module, mask_size=3, verbose=False)
    auto = explainer(x, **kwargs)
    assert explainer.last_stats.incremental_layers == ()
    assert re.match(f"normal sweep: .*{reason}", explainer.last_stats.incremental_note)
    normal = OcclusionSensitivity(module, mask_size=3, verbose=False, incremental=False)
    assert torch.equal(auto[0], normal(x, **kwargs)[0])


# -- the keyword: checked, and the peers' positional signatures unchanged ------------------


def test_the_keywords_are_checked_and_keyword_only():
    net = random_cnn(0, (1, 8, 8))
    for make in (Occlusion, OcclusionSensitivity):
        with pytest.raises(ValueError, match="^incremental: 'yes' is invalid"):
            make(net, incremental="yes")
        with pytest.raises(ValueError, match="^incremental_threshold: 0 is invalid"):
            make(net, incremental_threshold=0)
    with pytest.raises(TypeError):
        Occlusion(net, "auto")  # type: ignore[misc]
    peers = {
        Occlusion: captum_attr.Occlusion.__init__,
        OcclusionSensitivity: monai_visualize.OcclusionSensitivity.__init__,
    }
    for ours, theirs in peers.items():
        positional = [
            p.name
            for p in inspect.signature(ours.__init__).parameters.values()
            if p.kind is not p.KEYWORD_ONLY
        ]
        assert positional == list(inspect.signature(theirs).parameters)
        keywords = inspect.signature(ours.__init__).parameters
        assert keywords["incremental"].kind is inspect.Parameter.KEYWORD_ONLY
        assert keywords["incremental"].default == "auto"
