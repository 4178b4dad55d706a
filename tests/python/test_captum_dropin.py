"""Code written for Captum 0.9 runs unchanged against fastocclusion.captum.Occlusion: the
same code runs against Captum's own class and ours, and the results (or the exception types
it catches) are compared. Needs captum (``pip install captum``): the tests are marked
`torch` and skip, saying why, without it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
captum_attr = pytest.importorskip("captum.attr", reason="needs Captum: pip install captum")

from fastocclusion.captum import CaptumArgumentError, Occlusion  # noqa: E402

pytestmark = pytest.mark.torch

BOTH = pytest.mark.parametrize("cls", [captum_attr.Occlusion, Occlusion], ids=["captum", "ours"])


def summed(x: torch.Tensor) -> torch.Tensor:
    """(N,) outputs: each example's sum."""
    return x.flatten(1).sum(1)


@BOTH
@pytest.mark.parametrize(
    "kwargs",
    [
        {"sliding_window_shapes": (3, 5, 5)},
        {"sliding_window_shapes": (3, 2)},
        {"sliding_window_shapes": (1, 2, 2), "strides": (1, 3, 3)},
        {"sliding_window_shapes": (1, 2, 2), "strides": (1, 2)},
        {"sliding_window_shapes": (1, 2, 2), "strides": 1.5},
        {"sliding_window_shapes": (1, 2, 2), "target": 7},
        {"sliding_window_shapes": (1, 2, 2), "target": [0, 1, 2]},
        {"sliding_window_shapes": (1, 2, 2), "perturbations_per_eval": 0},
    ],
    ids=["window", "window-rank", "stride", "stride-rank", "stride-float", "target",
         "target-list", "perturbations"],
)  # fmt: skip
def test_argument_errors_are_caught_as_captums_assertion_errors(cls, kwargs):
    """Captum asserts on these arguments; ours raise a ValueError naming the argument that
    ``except AssertionError`` catches as well."""
    with pytest.raises(AssertionError) as caught:
        cls(summed).attribute(torch.randn(2, 3, 4, 4), **kwargs)
    if cls is Occlusion:
        assert isinstance(caught.value, ValueError) and type(caught.value) is CaptumArgumentError
        name = next(k for k in kwargs if k != "sliding_window_shapes" or len(kwargs) == 1)
        assert str(caught.value).startswith(f"{name}:")


@BOTH
def test_show_progress_prints_captums_label(cls, capsys):
    """``show_progress=True`` shows a bar labelled "Occlusion attribution", as Captum's."""
    cls(summed).attribute(torch.randn(2, 1, 4, 4), (1, 2, 2), show_progress=True)
    assert "Occlusion attribution" in capsys.readouterr().err


def test_surface_answers_as_captums():
    """``attribute_future``, ``has_convergence_delta``, ``multiplies_by_inputs`` and
    ``get_name`` answer as Captum's Occlusion."""
    theirs, ours = captum_attr.Occlusion(summed), Occlusion(summed)
    for explainer in (theirs, ours):
        with pytest.raises(NotImplementedError):
            explainer.attribute_future()
    assert ours.has_convergence_delta() is theirs.has_convergence_delta()
    assert ours.multiplies_by_inputs is theirs.multiplies_by_inputs
    assert ours.get_name() == theirs.get_name() == "Occlusion"


def weighted(x: torch.Tensor, weights: torch.Tensor, scale: float) -> torch.Tensor:
    """(N, 2) outputs of (N, 1, 4, 4) images with (N, 16) per-example weights: the model
    fails unless the weights go with their examples."""
    features = x.flatten(1) * weights
    return torch.stack([features.sum(1), torch.tanh(features).sum(1)], 1) * scale


@pytest.mark.parametrize("perturbations", [1, 3, 5])
def test_per_example_extra_arguments_go_with_their_examples(perturbations):
    """Extra tensor arguments of first dimension N: Captum repeats them along the batch for
    every perturbation of a call; ours gathers each example's rows: same attributions."""
    torch.manual_seed(0)
    x, weights = torch.randn(3, 1, 4, 4), torch.randn(3, 16)
    kwargs = dict(
        sliding_window_shapes=(1, 2, 2), strides=(1, 1, 2), target=1,
        additional_forward_args=(weights, 2.0), perturbations_per_eval=perturbations,
    )  # fmt: skip
    theirs = captum_attr.Occlusion(weighted).attribute(x, **kwargs)
    ours = Occlusion(weighted).attribute(x, **kwargs)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def summed_loss(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """One value for the whole batch (Captum's aggregate mode): a summed loss."""
    return (torch.tanh(x.flatten(1) @ weights) ** 2).sum()


@pytest.mark.parametrize("tuple_inputs", [False, True])
def test_one_value_for_the_whole_batch_is_captums_aggregate_mode(tuple_inputs):
    """A function returning one scalar for the batch: with perturbations_per_eval 1 the
    (1, ...) attributions are the drops of that scalar, as Captum's."""
    torch.manual_seed(1)
    x, weights = torch.randn(3, 2, 4, 4), torch.randn(32, 3)
    baselines = torch.randn(3, 2, 4, 4)
    inputs, func, windows = x, summed_loss, (1, 2, 3)
    if tuple_inputs:
        inputs, windows = (x, x[:, 0] * 2), ((1, 2, 3), (2, 2))
        baselines = (baselines, 0.5)

        def func(a, b, w):
            return summed_loss(a, w) + (b**2).sum()

    kwargs = dict(sliding_window_shapes=windows, baselines=baselines,
                  additional_forward_args=weights)  # fmt: skip
    theirs = captum_attr.Occlusion(func).attribute(inputs, **kwargs)
    ours = Occlusion(func).attribute(inputs, **kwargs)
    for a, b in zip(ours if tuple_inputs else (ours,), theirs if tuple_inputs else (theirs,)):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_a_python_number_for_the_whole_batch_is_captums_aggregate_mode():
    """Captum reads a Python float returned by the function as a 0-d tensor."""
    torch.manual_seed(2)
    x, weights = torch.randn(2, 1, 4, 4), torch.randn(16, 2)

    def loss(batch: torch.Tensor) -> float:
        return float(summed_loss(batch, weights))

    kwargs = dict(sliding_window_shapes=(1, 2, 2), strides=(1, 2, 2))
    theirs = captum_attr.Occlusion(loss).attribute(x, **kwargs)
    ours = Occlusion(loss).attribute(x, **kwargs)
    assert ours.shape == theirs.shape == (1, 1, 4, 4)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


@BOTH
def test_aggregate_mode_with_several_perturbations_per_call_is_an_assertion_error(cls):
    """Captum asserts that an aggregated output needs perturbations_per_eval 1; ours is a
    ValueError naming ``forward_func``, caught as an AssertionError too."""
    with pytest.raises(AssertionError):
        cls(lambda x: x.sum()).attribute(
            torch.randn(3, 2, 4, 4), (1, 2, 2), perturbations_per_eval=2
        )


@pytest.mark.parametrize(("n", "perturbations"), [(3, 4), (2, 1), (1, 5), (4, 3)])
def test_call_sizes_are_the_readmes(n, perturbations):
    """As the README says: one call of the N examples, then as many calls as Captum makes,
    sharing the N x windows perturbed examples evenly, each at most N x
    perturbations_per_eval (Captum fills all but the last)."""
    sizes: dict[type, list[int]] = {}
    for cls in (captum_attr.Occlusion, Occlusion):
        calls = sizes.setdefault(cls, [])

        def func(x, calls=calls):
            calls.append(len(x))
            return summed(x)

        cls(func).attribute(torch.randn(n, 1, 5, 6), (1, 2, 2), strides=(1, 1, 2),
                            perturbations_per_eval=perturbations)  # fmt: skip
    theirs, ours = sizes[captum_attr.Occlusion], sizes[Occlusion]
    assert ours[0] == theirs[0] == n and len(ours) == len(theirs)
    assert sum(ours) == sum(theirs) and max(ours) <= n * perturbations
    assert max(ours[1:]) - min(ours[1:]) <= 1
