"""Every dtype and input form Captum 0.9 takes, run unchanged against Captum's class and
ours (issue "Drop-in"): integer inputs (token ids, categorical features), float64, float16
and bfloat16 inputs, integer and float baselines (Captum's promotion decides the batches'
dtype), and 0-d features ((N,) inputs, windows ``()``). The functions record the batches
they are given: ours must be Captum's, in dtype and value."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
captum_attr = pytest.importorskip("captum.attr", reason="needs Captum: pip install captum")

from fastocclusion.captum import Occlusion  # noqa: E402

pytestmark = pytest.mark.torch


class Recorder:
    """A forward function over one tensor: a fixed random linear map of its values (cast
    to float64), with the dtypes and the distinct rows (their values, as float64) of every
    batch it saw recorded."""

    def __init__(self, shape: tuple[int, ...], outputs: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        size = int(np.prod(shape)) if shape else 1
        self.weights = torch.randn(size, outputs, generator=generator, dtype=torch.float64)
        self.dtypes: set[torch.dtype] = set()
        self.rows: set[bytes] = set()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.dtypes.add(x.dtype)
        flat = x.reshape(len(x), -1)
        for row in flat:
            self.rows.add(row.to(torch.float64).numpy().tobytes())
        return flat.to(torch.float64) @ self.weights


def _both(inputs, outputs, seed, **kwargs):
    """(Captum's attributions, its recorder), (ours, our recorder): the same call."""
    results = []
    for cls in (captum_attr.Occlusion, Occlusion):
        recorder = Recorder(tuple(inputs.shape[1:]), outputs, seed)
        results.append((cls(recorder).attribute(inputs, **kwargs), recorder))
    return results


def _inputs(dtype: torch.dtype, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator).to(dtype)
    return torch.randint(-50, 50, shape, generator=generator).to(dtype)


DTYPES = [torch.int64, torch.int32, torch.int16, torch.uint8, torch.float64, torch.float16,
          torch.bfloat16, torch.float32]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("baseline", [None, 3, 0.5, "tensor"])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_dtype_and_baseline_gives_captums_batches_and_attributions(dtype, baseline, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4))
    shape = (n, int(rng.integers(1, 3)), int(rng.integers(2, 6)), int(rng.integers(2, 6)))
    x = _inputs(dtype, shape, seed)
    window = tuple(int(rng.integers(1, s + 1)) for s in shape[1:])
    stride = tuple(int(rng.integers(1, w + 1)) for w in window)
    if baseline == "tensor":  # one example's shape, float32: promotes integers to float32
        baseline = torch.full(shape[1:], 0.25)
    kwargs = dict(sliding_window_shapes=window, strides=stride, baselines=baseline, target=1,
                  perturbations_per_eval=int(rng.integers(1, 4)))  # fmt: skip
    (theirs, captum_saw), (ours, we_saw) = _both(x, 3, seed, **kwargs)
    # Captum's promotion, e.g. int + 0.5: float32 batches. (Captum's first call, on the
    # unoccluded inputs, gets them as given; ours, in the batches' dtype: the same values.)
    promoted = torch.result_type(x, 0 if baseline is None else baseline)
    assert we_saw.dtypes == {promoted} and promoted in captum_saw.dtypes
    assert we_saw.rows == captum_saw.rows  # the same samples (values exact in both dtypes)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_batches_equal_the_float32_batches_rounded(dtype):
    """The model gets batches built in its own dtype: each equals the float32 batch of the
    same windows rounded to it (here: the inputs and baseline are exact in both)."""
    x32 = torch.randn(2, 1, 6, 6)
    half = x32.to(dtype)
    seen = {}
    for name, inputs in (("half", half), ("float32", half.to(torch.float32))):
        recorder = Recorder((1, 6, 6), 2, 0)
        Occlusion(recorder).attribute(inputs, (1, 3, 3), strides=(1, 2, 2), baselines=0.5,
                                      target=0)  # fmt: skip
        seen[name] = recorder
    assert seen["half"].dtypes == {dtype}
    rounded = {
        torch.frombuffer(bytearray(row), dtype=torch.float64).to(dtype).to(torch.float64)
        .numpy().tobytes()
        for row in seen["float32"].rows
    }  # fmt: skip
    assert seen["half"].rows == rounded


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_d_features_per_example(dtype, seed):
    """(N,) inputs (one scalar feature per example), windows ``()``, as Captum takes them:
    alone and beside an image input, with per-example and scalar baselines."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5))
    scalars = _inputs(dtype, (n,), seed)
    (theirs, captum_saw), (ours, we_saw) = _both(scalars, 2, seed, sliding_window_shapes=((),),
                                                  target=0)  # fmt: skip
    assert ours.shape == (n,) and we_saw.rows == captum_saw.rows
    torch.testing.assert_close(ours, theirs)
    images = torch.randn(n, 1, 4, 4)

    def forward(features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return image.flatten(1).sum(1, keepdim=True) * features.to(torch.float32)[:, None]

    baselines = (torch.arange(n, dtype=torch.float32), 0.5)
    kwargs = dict(sliding_window_shapes=((), (1, 2, 2)), baselines=baselines,
                  perturbations_per_eval=2)  # fmt: skip
    theirs = captum_attr.Occlusion(forward).attribute((scalars, images), **kwargs)
    ours = Occlusion(forward).attribute((scalars, images), **kwargs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_a_stride_past_the_window_on_a_fully_covered_axis_is_captums_one_window():
    """Captum allows any stride along an axis that the window covers in full."""
    x = torch.randn(2, 3, 5, 5)
    kwargs = dict(sliding_window_shapes=(3, 2, 2), strides=(7, 2, 2), target=0)
    (theirs, captum_saw), (ours, we_saw) = _both(x, 2, 0, **kwargs)
    assert we_saw.rows == captum_saw.rows
    torch.testing.assert_close(ours, theirs)


def test_complex_and_bool_inputs_are_refused_naming_inputs():
    for bad in (torch.ones(2, 3, dtype=torch.complex64), torch.ones(2, 3, dtype=torch.bool)):
        with pytest.raises(TypeError, match="inputs: tensor 0 has dtype .* expected real"):
            Occlusion(lambda x: x.sum(1)).attribute(bad, (1,))
    with pytest.raises(ValueError, match="baselines: input 0's baseline has dtype torch.complex"):
        Occlusion(lambda x: x.sum(1)).attribute(
            torch.ones(2, 3), (1,), baselines=torch.ones(3, dtype=torch.complex64)
        )


def test_token_ids_through_an_embedding():
    """Integer token ids with an integer baseline (a padding id): the model gets int64
    batches it can embed, as under Captum, and the attributions are Captum's."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Embedding(20, 4), torch.nn.Flatten(), torch.nn.Linear(4 * 7, 3)
    ).eval()
    ids = torch.randint(1, 20, (3, 7))
    kwargs = dict(sliding_window_shapes=(2,), strides=(1,), baselines=0, target=2,
                  perturbations_per_eval=3)  # fmt: skip
    theirs = captum_attr.Occlusion(model).attribute(ids, **kwargs)
    ours = Occlusion(model).attribute(ids, **kwargs)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert ours.dtype == theirs.dtype == torch.float32 and ours.abs().max() > 0
