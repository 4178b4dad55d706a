"""fastocclusion with PyTorch models against the NumPy reference (design §1-§6) on the CPU:
every shape family, built-in and custom operator, targets=None, NumPy and torch inputs, the
returned tensor, the model's state and the caller's data, bad input, operator parsing and the
torch numerics. Devices and the GPU: test_torch_devices.py. Needs no TensorFlow except where a
test says so.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
pytestmark = pytest.mark.torch

from fake_cuda import explain_with_fake_device  # noqa: E402
from reference import OPERATOR_SCORERS, assert_maps_close, reference_occlusion  # noqa: E402
from torch_models import (  # noqa: E402
    FAMILIES,
    NUM_CLASSES,
    Counting,
    DetectionNet,
    ImageNet,
    SegmentationNet,
    check,
    custom_operator,
    detection_targets,
    mlp,
    numpy_fn,
    one_hot,
    rng_inputs,
)

from fastocclusion import Occlusion, Tasks  # noqa: E402
from fastocclusion import tasks as fo_tasks  # noqa: E402
from fastocclusion.backends.torch import TorchCallable  # noqa: E402
from fastocclusion.backends.torch.operators import builtin_scores  # noqa: E402

# ---- families, input kinds, targets ------------------------------------------------------------


@pytest.mark.parametrize("targets_kind", ["one-hot", "None"])
@pytest.mark.parametrize("input_kind", ["ndarray", "torch"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_families_and_input_kinds(family, input_kind, targets_kind):
    make, shape, patch, stride = FAMILIES[family]
    model = make()
    inputs = rng_inputs(10, shape)
    outputs = 3 if family == "tabular" else NUM_CLASSES
    targets = None if targets_kind == "None" else one_hot(11, shape[0], outputs)
    explain_inputs = torch.from_numpy(inputs.copy()) if input_kind == "torch" else None
    if input_kind == "torch" and targets is not None:
        targets = torch.from_numpy(targets)
    result = check(
        model,
        inputs,
        targets,
        explain_inputs=explain_inputs,
        patch_size=patch,
        patch_stride=stride,
        batch_size=7,
    )
    expected = shape[:3] + (1,) if len(shape) == 4 else shape
    assert tuple(result.shape) == expected and result.device.type == "cpu"


@pytest.mark.parametrize(
    "operator",
    [None, Tasks.CLASSIFICATION, "classification", Tasks.REGRESSION, "regression"],
    ids=str,
)
def test_vector_operators_with_weighted_targets(operator):
    inputs = rng_inputs(12, (4, 10))
    targets = np.random.default_rng(13).uniform(0, 1, (4, 3)).astype(np.float32)
    check(
        mlp(), inputs, targets, operator=operator, ref_operator=None, patch_size=3, patch_stride=2
    )


def test_scalar_outputs_and_batch_size_none():
    model = torch.nn.Sequential(mlp(outputs=1), torch.nn.Flatten(0))  # (N,) outputs
    inputs = rng_inputs(14, (3, 10))
    fn = numpy_fn(model)
    result = Occlusion(model, batch_size=None, patch_size=2, patch_stride=1).explain(inputs, None)
    expected = reference_occlusion(lambda b: fn(b)[:, None], inputs, np.ones((3, 1)), None, 2, 1)
    assert_maps_close(result.numpy(), expected, 1.0, 2)


@pytest.mark.parametrize("edges", ["valid", "cover"])
def test_semantic_segmentation(edges):
    rng = np.random.default_rng(15)
    inputs = rng_inputs(16, (2, 8, 8, 2))
    masks = (rng.uniform(size=(2, 8, 8, 3)) < 0.3).astype(np.float32)
    masks[:, 0, 0, 0] = 1.0  # never an empty mask
    check(
        SegmentationNet(),
        inputs,
        masks,
        operator=Tasks.SEMANTIC_SEGMENTATION,
        patch_size=3,
        patch_stride=3,
        edges=edges,
        batch_size=6,
    )


@pytest.mark.parametrize(
    "name",
    [
        "object detection",
        "object detection box position",
        "object detection box proba",
        "object detection box class",
    ],
)
def test_object_detection_variants(name):
    inputs = rng_inputs(17, (3, 8, 8, 3))
    targets = detection_targets()
    check(
        DetectionNet(),
        inputs,
        targets,
        operator=name,
        patch_size=(3, 2),
        patch_stride=2,
        batch_size=8,
    )
    check(
        DetectionNet(),
        inputs,
        targets[:, 0],
        operator=Tasks(name),
        patch_size=4,
        patch_stride=2,
        batch_size=5,
    )  # one box per image


def numpy_operator(model, inputs, targets, scale=3.0):  # returns NumPy (B, 1)
    return scale * (model(inputs) * targets).amax(-1, keepdim=True).numpy()


@pytest.mark.parametrize(
    "operator, scorer",
    [
        (custom_operator, lambda out, y: np.sum(out * y, -1) - 0.5 * np.sum(out * out, -1)),
        (numpy_operator, lambda out, y: 3.0 * np.max(out * y, -1)),
    ],
    ids=["torch", "numpy"],
)
def test_custom_operators(operator, scorer):
    inputs = rng_inputs(18, (3, 8, 9, 3))
    check(
        ImageNet(),
        inputs,
        one_hot(19, 3),
        operator=operator,
        ref_operator=scorer,
        patch_size=2,
        patch_stride=(2, 3),
        batch_size=5,
    )
    check(
        ImageNet(),
        inputs,
        None,
        operator=operator,
        ref_operator=scorer,
        patch_size=4,
        patch_stride=4,
    )


def test_baselines_and_mean_reduction():
    inputs = rng_inputs(20, (2, 8, 9, 3))
    for value in (0.7, np.array([0.5, -1.0, 2.0], np.float32), rng_inputs(21, (8, 9, 3))):
        check(
            ImageNet(),
            inputs,
            one_hot(22, 2),
            occlusion_value=value,
            patch_size=3,
            patch_stride=2,
            reduction="mean",
            edges="cover",
            batch_size=4,
        )


def test_torch_callable_and_float64_model():
    weights = torch.from_numpy(np.random.default_rng(23).normal(size=(10, 3)).astype(np.float32))
    wrapped = TorchCallable(lambda x: torch.tanh(x @ weights))
    inputs = rng_inputs(24, (3, 10))
    check(
        wrapped,
        inputs,
        None,
        patch_size=2,
        patch_stride=2,
        reference_fn=lambda b: np.tanh(b @ weights.numpy()),
    )
    double = mlp().double()  # batches are cast to the model's dtype
    expected_fn = lambda b: double(torch.from_numpy(b).double()).detach().numpy()  # noqa: E731
    check(double, inputs, None, patch_size=3, patch_stride=3, reference_fn=expected_fn)
    with pytest.raises(TypeError, match="fn"):
        TorchCallable(42)


# ---- what the caller sees ----------------------------------------------------------------------


@pytest.mark.parametrize("training", [True, False])
def test_model_state_and_caller_data_unchanged(training):
    model = ImageNet().train(training)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = rng_inputs(25, (2, 8, 9, 3))
    tensor_inputs = torch.from_numpy(inputs.copy())
    targets = one_hot(26, 2)
    before = (inputs.copy(), tensor_inputs.clone(), targets.copy())
    explainer = Occlusion(model, patch_size=2, patch_stride=2)
    a = explainer.explain(inputs, targets)
    b = explainer(tensor_inputs, torch.from_numpy(targets))
    torch.testing.assert_close(a, b)
    assert model.training is training and all(m.training is training for m in model.modules())
    np.testing.assert_array_equal(inputs, before[0])
    assert torch.equal(tensor_inputs, before[1]) and not tensor_inputs.requires_grad
    np.testing.assert_array_equal(targets, before[2])
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_bad_input_fails_before_any_model_call():
    model = Counting(mlp())
    inputs = rng_inputs(27, (3, 10))
    with pytest.raises(ValueError, match=r"targets: shape \(2, 3\).*number of inputs \(3\)"):
        Occlusion(model).explain(inputs, np.ones((2, 3)))
    seg = Counting(SegmentationNet())
    with pytest.raises(
        ValueError, match="targets: None is invalid for the 'semantic segmentation'"
    ):
        Occlusion(seg, operator="semantic segmentation").explain(rng_inputs(0, (1, 8, 8, 2)))
    with pytest.raises(ValueError, match="targets: None is invalid for the 'object detection'"):
        Occlusion(Counting(DetectionNet()), operator="object detection").explain(
            rng_inputs(0, (1, 8, 8, 3))
        )
    assert model.calls == 0 and seg.calls == 0
    with pytest.raises(ValueError, match=r"operator 'segmentation' is not a known task"):
        Occlusion(model, operator="segmentation")
    with pytest.raises(TypeError, match="operator"):
        Occlusion(model, operator=lambda m, x: x)
    with pytest.raises(TypeError, match="operator"):
        Occlusion(model, operator=42)


def test_bad_model_outputs_and_scores():
    inputs = rng_inputs(28, (3, 10))
    with pytest.raises(ValueError, match=r"targets has shape \(3, 4\).*\(3, 3\)"):
        Occlusion(mlp()).explain(inputs, np.ones((3, 4)))
    with pytest.raises(ValueError, match="model: returned outputs of shape"):
        Occlusion(TorchCallable(lambda x: x[:1])).explain(inputs)
    with pytest.raises(TypeError, match="returned 2 outputs"):
        Occlusion(TorchCallable(lambda x: (x, x))).explain(inputs)
    with pytest.raises(ValueError, match=r"operator '<lambda>' returned scores of shape \(3, 10\)"):
        Occlusion(mlp(), operator=lambda m, x, y: x, batch_size=3).explain(inputs, np.ones((3, 3)))
    with pytest.raises(ValueError, match="not a numeric tensor"):
        Occlusion(mlp(), operator=lambda m, x, y: "abc").explain(inputs, np.ones((3, 3)))


def test_in_place_models_are_detected():
    model = torch.nn.Sequential(torch.nn.ReLU(inplace=True), mlp())
    with pytest.raises(ValueError, match="model: wrote into its input tensor in place"):
        Occlusion(model).explain(rng_inputs(29, (2, 10)), None)
    with torch.inference_mode(), pytest.raises(ValueError, match="wrote into its input tensor"):
        Occlusion(model).explain(rng_inputs(29, (2, 10)), None)
    with pytest.raises(ValueError, match="wrote into its input tensor"):
        explain_with_fake_device(model, rng_inputs(29, (2, 10)), None)


@pytest.mark.parametrize("context", ["inference_mode", "no_grad"])
def test_explain_inside_torch_contexts_and_read_only_arrays(context):
    inputs = rng_inputs(35, (3, 10))
    targets = np.broadcast_to(np.eye(3, dtype=np.float32)[1], (3, 3))  # read-only
    with getattr(torch, context)():
        result = check(mlp(), inputs, targets, patch_size=2, patch_stride=2)
        fake, _ = explain_with_fake_device(mlp(), inputs, targets, patch_size=2, patch_stride=2)
    torch.testing.assert_close(fake, result)


def test_torch_path_never_imports_tensorflow():
    script = textwrap.dedent("""
        import sys
        import numpy as np, torch
        import fastocclusion
        model = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.Softmax(-1))
        for operator in (None, fastocclusion.Tasks.REGRESSION, lambda m, x, y: (m(x) * y).sum(-1)):
            explainer = fastocclusion.Occlusion(
                model, patch_size=2, patch_stride=2, operator=operator)
            maps = explainer.explain(np.ones((2, 6), np.float32), None)
            assert isinstance(maps, torch.Tensor) and maps.shape == (2, 6)
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        print("ok")
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


# ---- operators: parsing and the torch numerics ------------------------------------------------


def test_parse_operator():
    assert fo_tasks.parse_operator(None) == (Tasks.CLASSIFICATION, None)
    assert fo_tasks.parse_operator("Object_Detection") == (Tasks.OBJECT_DETECTION, None)
    assert fo_tasks.parse_operator(Tasks.REGRESSION) == (Tasks.REGRESSION, None)
    assert fo_tasks.parse_operator(custom_operator) == (None, custom_operator)
    with pytest.raises(TypeError, match="three positional arguments"):
        fo_tasks.parse_operator(lambda a, b, c, d: a)
    with pytest.raises(TypeError, match=r"operator <class .int.> \(type type\) is not valid"):
        fo_tasks.parse_operator(int)


@pytest.mark.parametrize("task", list(Tasks), ids=lambda t: t.value)
def test_builtin_scores_match_the_reference(task):
    rng = np.random.default_rng(31)
    if fo_tasks.TARGET_KINDS[task] == "boxes":
        outputs = DetectionNet()(torch.from_numpy(rng_inputs(32, (4, 8, 8, 3)))).detach().numpy()
        outputs[1, 2:] = 0.0  # padded predictions
        outputs[3] = 0.0  # no predicted box: scores 0
        targets = detection_targets(33, 4)
    elif task is Tasks.SEMANTIC_SEGMENTATION:
        outputs = rng.uniform(size=(4, 5, 6, 3)).astype(np.float32)
        targets = (rng.uniform(size=(4, 5, 6, 3)) < 0.4).astype(np.float32)
        targets[:, 0, 0, 0] = 1.0
    else:
        outputs = rng.normal(size=(4, 7)).astype(np.float32)
        targets = rng.uniform(size=(4, 7)).astype(np.float32)
    got = builtin_scores(task)(torch.from_numpy(outputs), torch.from_numpy(targets))
    expected = OPERATOR_SCORERS[task.value](outputs.astype(np.float64), targets.astype(np.float64))
    assert got.dtype == torch.float32 and got.shape == (4,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    if task is Tasks.SEMANTIC_SEGMENTATION:  # an empty mask scores 0, not NaN
        assert builtin_scores(task)(torch.ones(1, 2, 2, 1), torch.zeros(1, 2, 2, 1)).item() == 0.0


@pytest.mark.parametrize("incremental", [False, "auto"])
def test_float64_models_get_float64_batches_and_exact_maps(incremental):
    """A float64 model's batches are built in float64 (issue "Drop-in"): inputs that differ
    from 1 by ~1e-9, below float32's resolution, keep their differences. The model scores
    1e9 * w . (x - 1): with float32 batches every score would be 0 and the map blank; here
    a window's map is w . (x - 1) * 1e9 summed over it (the baseline is 1)."""
    torch.manual_seed(0)
    seen = []

    class Amplified(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2 * 6 * 6, 3, dtype=torch.float64)

        def forward(self, x):
            seen.append(x.dtype)
            return self.fc((x - 1.0).flatten(1) * 1e9)

    model = Amplified().eval()
    x = 1.0 + torch.rand(2, 2, 6, 6, dtype=torch.float64) * 1e-9
    method = Occlusion(model, patch_size=3, patch_stride=3, data_format="channels_first",
                       occlusion_value=1.0, incremental=incremental)  # fmt: skip
    maps = method.explain(x, np.eye(3, dtype=np.float32)[[0, 2]])
    assert {d for d in seen if isinstance(d, torch.dtype)} == {torch.float64}
    weights = model.fc.weight.detach()[[0, 2]].reshape(2, 2, 6, 6)
    contribution = (weights * (x - 1.0) * 1e9).sum(dim=1)  # (2, 6, 6), per position
    expected = contribution.reshape(2, 2, 3, 2, 3).sum(dim=(2, 4))  # per 3x3 window
    expected = expected.repeat_interleave(3, 1).repeat_interleave(3, 2)[:, None]
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(maps.to(torch.float64), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_models_get_half_batches_equal_to_the_float32_batches_cast(monkeypatch, dtype):
    """A float16 or bfloat16 model's batches are built in its dtype (bfloat16 as its bits in
    NumPy): the same values as float32 batches cast per call (as before), so the maps are
    identical; no cast per call is left."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 5 * 5, 4))
    model = model.to(dtype).eval()
    x = torch.rand(2, 3, 5, 5)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    options = dict(patch_size=2, patch_stride=2, data_format="channels_first",
                   occlusion_value=0.3, incremental=False)  # fmt: skip
    half = Occlusion(model, **options).explain(x)
    assert {t.dtype for t in seen} == {dtype}
    batches = list(seen)
    from fastocclusion.backends.torch import backend

    seen.clear()
    monkeypatch.setattr(backend, "_BATCH_DTYPES", {})  # float32 batches cast per call
    cast = Occlusion(model, **options).explain(x)
    assert torch.equal(half, cast) and half.abs().max() > 0
    assert len(seen) == len(batches)
    for built, cast_batch in zip(batches, seen):
        assert torch.equal(built, cast_batch.to(dtype))  # the float32 batch rounded


def test_half_batch_values_are_torchs_rounding_of_the_float32_values():
    """as_batch_dtype rounds as a float32 batch cast by torch rounds: float16 through
    float32 (a float64 input is rounded twice, as torch's .float().half() does: NumPy's
    direct cast would differ), and bfloat16 to the nearest, ties to even (every bit pattern
    of float32 but NaN, whose bits may differ: NaN either way)."""
    from fastocclusion.inputs import as_batch_dtype
    from fastocclusion.types import BFLOAT16_BITS

    rng = np.random.default_rng(11)
    doubles = rng.normal(size=200_000) * np.exp2(rng.integers(-20, 20, 200_000))
    doubles[:2] = [1 + 2**-11 + 2**-40, -(1 + 2**-11 + 2**-40)]  # double rounding differs
    half = as_batch_dtype(doubles, np.float16)
    expected = torch.from_numpy(doubles).float().half().numpy()
    np.testing.assert_array_equal(half, expected)
    assert np.float16(doubles[0]) != half[0]  # a direct cast would not be torch's
    patterns = rng.integers(0, 2**32, 400_000, dtype=np.uint64).astype(np.uint32)
    floats = patterns.view(np.float32)
    floats = floats[~np.isnan(floats)]
    bits = as_batch_dtype(floats, BFLOAT16_BITS)
    assert bits.dtype == BFLOAT16_BITS
    expected = torch.from_numpy(floats).to(torch.bfloat16).view(torch.int16).numpy()
    np.testing.assert_array_equal(bits, expected)
    nan = as_batch_dtype(np.array([np.nan, -np.nan], np.float32), BFLOAT16_BITS)
    assert torch.from_numpy(nan).view(torch.bfloat16).isnan().all()
