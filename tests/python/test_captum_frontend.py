"""fastocclusion.captum.Occlusion against Captum 0.9's own Occlusion: random models, shapes,
windows (channels included), strides, baselines, every target form, tuple inputs, extra
forward arguments, perturbations per eval. Needs captum (``pip install captum``): the tests
are marked `torch` and skip, saying why, without it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
captum_attr = pytest.importorskip("captum.attr", reason="needs Captum: pip install captum")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fastocclusion.captum import Occlusion  # noqa: E402

pytestmark = pytest.mark.torch


class Net(torch.nn.Module):
    """A random model over (N, *shape) inputs with `classes` outputs."""

    def __init__(self, shape: tuple[int, ...], classes: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.layer = torch.nn.Linear(int(np.prod(shape)), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.layer(x.reshape(len(x), -1)))


def assert_same(ours, theirs) -> None:
    for a, b in zip(
        ours if isinstance(ours, tuple) else (ours,),
        theirs if isinstance(theirs, tuple) else (theirs,),
    ):
        assert a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
        scale = max(float(b.abs().max()), 1e-3)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)


@st.composite
def case(draw):
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 6 if rank <= 2 else 4)) for _ in range(rank))
    window = tuple(draw(st.integers(1, d)) for d in shape)
    stride = tuple(draw(st.integers(1, w)) for w in window)
    n = draw(st.integers(1, 3))
    baseline = draw(st.sampled_from(["none", "scalar", "sample", "per-example"]))
    target = draw(st.sampled_from(["int", "list", "tensor"]))
    ppe = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 1000))
    return shape, window, stride, n, baseline, target, ppe, seed


@given(case())
def test_random_cases_equal_captums(c):
    shape, window, stride, n, baseline_kind, target_kind, ppe, seed = c
    rng = np.random.default_rng(seed)
    model = Net(shape, 5, seed)
    x = torch.from_numpy(rng.normal(size=(n,) + shape).astype(np.float32))
    baseline = {
        "none": None,
        "scalar": 0.7,
        "sample": torch.from_numpy(rng.normal(size=shape).astype(np.float32)),
        "per-example": torch.from_numpy(rng.normal(size=(n,) + shape).astype(np.float32)),
    }[baseline_kind]
    labels = rng.integers(0, 5, n)
    target = {
        "int": int(labels[0]),
        "list": [int(v) for v in labels],
        "tensor": torch.from_numpy(labels),
    }[target_kind]
    args = dict(
        sliding_window_shapes=window,
        strides=stride,
        baselines=baseline,
        target=target,
        perturbations_per_eval=ppe,
    )
    assert_same(
        Occlusion(model).attribute(x, **args), captum_attr.Occlusion(model).attribute(x, **args)
    )


def test_image_windows_over_channels_and_one_map_per_channel():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(6)
    )
    x = torch.rand(2, 3, 9, 8)
    model(x)  # materialise the lazy layer
    for window, stride in (((3, 3, 3), (3, 2, 2)), ((1, 4, 4), (1, 2, 2))):
        args = dict(sliding_window_shapes=window, strides=stride, target=[1, 4])
        assert_same(
            Occlusion(model).attribute(x, **args), captum_attr.Occlusion(model).attribute(x, **args)
        )


def test_tuple_inputs_extra_args_and_targets_of_several_axes():
    def forward(a, b, scale):
        return (a.sum(-1)[:, None, None] * b.reshape(len(b), 2, 3)) * scale  # (N, 2, 3)

    a, b = torch.rand(3, 5), torch.rand(3, 6)
    for target in ((1, 2), [(0, 1), (1, 2), (1, 0)], [(1,), (0,), (1,)]):
        picked = target if not isinstance(target, list) or len(target[0]) == 2 else None
        if picked is None:  # a list of one-axis tuples leaves (N, 3): not one value each
            with pytest.raises(ValueError, match="target: the selected outputs"):
                Occlusion(forward).attribute(
                    (a, b), ((2,), (3,)), target=target, additional_forward_args=(2.0,)
                )
            continue
        args = dict(
            sliding_window_shapes=((2,), (3,)),
            strides=((1,), (2,)),
            baselines=(0.5, torch.zeros(6)),
            target=target,
            additional_forward_args=(2.0,),
        )
        ours = Occlusion(forward).attribute((a, b), **args)
        assert isinstance(ours, tuple) and len(ours) == 2
        assert_same(ours, captum_attr.Occlusion(forward).attribute((a, b), **args))


def test_scalar_outputs_without_target_and_float64_inputs():
    model = lambda x: (x**2).sum(dim=(1, 2))  # noqa: E731 - one value per example
    x = torch.rand(2, 4, 5, dtype=torch.float64)
    args = dict(sliding_window_shapes=(2, 3), strides=(1, 2))
    ours = Occlusion(model).attribute(x, **args)
    assert ours.dtype == torch.float32  # as Captum's attributions always are
    assert_same(ours, captum_attr.Occlusion(model).attribute(x, **args))


def test_bad_arguments_name_what_is_wrong():
    model = Net((6,), 3, 0)
    x = torch.rand(2, 6)
    with pytest.raises(ValueError, match="strides: 3 along axis 1 of input 0 is invalid"):
        Occlusion(model).attribute(x, (2,), strides=3, target=0)
    with pytest.raises(ValueError, match="sliding_window_shapes: 7 along axis 1"):
        Occlusion(model).attribute(x, (7,), target=0)
    with pytest.raises(ValueError, match=r"sliding_window_shapes: \(2, 2\) for input 0"):
        Occlusion(model).attribute(x, (2, 2), target=0)
    with pytest.raises(ValueError, match="target: .* is invalid"):
        Occlusion(model).attribute(x, (2,), target=[0])
    with pytest.raises(ValueError, match="baselines: shape"):
        Occlusion(model).attribute(x, (2,), baselines=torch.zeros(5), target=0)
    with pytest.raises(ValueError, match="perturbations_per_eval: 0"):
        Occlusion(model).attribute(x, (2,), target=0, perturbations_per_eval=0)
    with pytest.raises(TypeError, match="forward_func"):
        Occlusion(42)
