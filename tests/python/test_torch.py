"""fastocclusion with PyTorch models against the NumPy reference (SPEC §1-§6).

CPU: every shape family, built-in and custom operator, targets=None, NumPy and torch inputs,
the returned tensor, the model's state and the caller's data, bad input, and the GPU sweep's
logic run on the CPU through a stand-in for fastocclusion._cuda backed by the C++ core.
GPU (marked `gpu`, skipped without a CUDA device and the _cuda module): GPU explain against
CPU explain for random configurations. Needs no TensorFlow except where a test says so.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
pytestmark = pytest.mark.torch

from reference import (  # noqa: E402
    OPERATOR_SCORERS,
    assert_maps_close,
    reference_coverage,
    reference_occlusion,
    reference_scores,
)

from fastocclusion import Occlusion, Tasks, _core  # noqa: E402
from fastocclusion import tasks as fo_tasks  # noqa: E402
from fastocclusion.backends.torch import TorchBackend, TorchCallable  # noqa: E402
from fastocclusion.backends.torch.operators import builtin_scores  # noqa: E402
from fastocclusion.engine import fillers  # noqa: E402

NUM_CLASSES = 5
NUM_BOXES = 4


# ---- tiny seeded models over NHWC / (N, T, W) / (N, W) inputs ---------------------------------


class ImageNet(torch.nn.Module):
    """(N, H, W, C) -> conv -> (N, outputs) softmax."""

    def __init__(self, shape=(8, 9, 3), outputs=NUM_CLASSES, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        h, w, c = shape
        self.conv = torch.nn.Conv2d(c, 4, 3)
        self.head = torch.nn.Linear(4 * (h - 2) * (w - 2), outputs)

    def forward(self, x):
        features = torch.tanh(self.conv(x.permute(0, 3, 1, 2))).flatten(1)
        return torch.softmax(self.head(features), -1)


class SeriesNet(torch.nn.Module):
    """(N, T, W) -> Conv1d over T -> (N, 5) softmax."""

    def __init__(self, t=12, w=4):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv1d(w, 3, 3)
        self.head = torch.nn.Linear(3 * (t - 2), NUM_CLASSES)

    def forward(self, x):
        return torch.softmax(self.head(torch.tanh(self.conv(x.transpose(1, 2))).flatten(1)), -1)


def mlp(width=10, outputs=3, seed=2):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(width, 8), torch.nn.Tanh(), torch.nn.Linear(8, outputs)
    )


class SegmentationNet(torch.nn.Module):
    """(N, 8, 8, 2) -> same-padded conv -> (N, 8, 8, 3) softmax class maps."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.conv = torch.nn.Conv2d(2, 3, 3, padding=1)

    def forward(self, x):
        return torch.softmax(self.conv(x.permute(0, 3, 1, 2)), 1).permute(0, 2, 3, 1)


class DetectionNet(torch.nn.Module):
    """(N, 8, 8, 3) -> (N, 4 boxes, 4+1+5) valid boxes in [0, 1]."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.dense = torch.nn.Linear(8 * 8 * 3, NUM_BOXES * (5 + NUM_CLASSES))

    def forward(self, x):
        raw = self.dense(x.flatten(1)).reshape(-1, NUM_BOXES, 5 + NUM_CLASSES)
        corner = 0.5 * torch.sigmoid(raw[..., 0:2])
        size = 0.05 + 0.45 * torch.sigmoid(raw[..., 2:4])
        return torch.cat(
            [corner, corner + size, torch.sigmoid(raw[..., 4:5]), torch.softmax(raw[..., 5:], -1)],
            -1,
        )


def numpy_fn(model):
    """What the reference calls: the same model over NumPy batches."""

    def call(batch):
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(batch))).detach().numpy()

    return call


def rng_inputs(seed, shape):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def one_hot(seed, n, k=NUM_CLASSES):
    return np.eye(k, dtype=np.float32)[np.random.default_rng(seed).integers(0, k, n)]


def detection_targets(seed=6, n=3):
    rng = np.random.default_rng(seed)
    targets = np.zeros((n, 3, 5 + NUM_CLASSES), np.float32)  # up to 3 boxes, padded
    for i in range(n):
        for b in range(i % 3 + 1):
            x1, y1 = rng.uniform(0, 0.5, 2)
            w, h = rng.uniform(0.1, 0.5, 2)
            targets[i, b, :5] = (x1, y1, x1 + w, y1 + h, rng.uniform(0.2, 1))
            targets[i, b, 5 + rng.integers(NUM_CLASSES)] = 1.0
    return targets


def check(
    model,
    inputs,
    targets,
    *,
    operator=None,
    ref_operator="same",
    explain_inputs=None,
    reference_fn=None,
    **options,
):
    """Occlusion(model).explain against the reference; returns the result."""
    ref_operator = operator if ref_operator == "same" else ref_operator
    if isinstance(ref_operator, Tasks):
        ref_operator = ref_operator.value
    explain_inputs = inputs if explain_inputs is None else explain_inputs
    result = Occlusion(model, operator=operator, **options).explain(explain_inputs, targets)
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float32
    fn = reference_fn or numpy_fn(model)
    targets_np = None if targets is None else np.asarray(targets)
    geometry = {
        k: options[k]
        for k in ("patch_size", "patch_stride", "occlusion_value", "edges", "reduction")
        if k in options
    }
    expected = reference_occlusion(fn, inputs, targets_np, ref_operator, **geometry)
    scale = float(np.max(np.abs(reference_scores(fn, inputs, targets_np, ref_operator))))
    coverage = reference_coverage(
        np.shape(inputs),
        options.get("patch_size", 3),
        options.get("patch_stride", 3),
        options.get("edges", "valid"),
    )
    assert_maps_close(result.cpu().numpy(), expected, scale, coverage)
    return result


# ---- families, input kinds, targets ------------------------------------------------------------

FAMILIES = {
    "images": (ImageNet, (3, 8, 9, 3), (2, 3), (1, 2)),
    "time series": (SeriesNet, (3, 12, 4), (3, 2), (2, 1)),
    "tabular": (mlp, (4, 10), 3, 2),
}


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


def custom_operator(model, inputs, targets):
    outputs = model(inputs)
    return (outputs * targets).sum(-1) - 0.5 * (outputs * outputs).sum(-1)


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


class Counting(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


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


def test_device_option():
    inputs = rng_inputs(30, (2, 10))
    cpu = Occlusion(mlp(), device="cpu").explain(inputs)
    torch.testing.assert_close(Occlusion(mlp(), device="auto").explain(inputs), cpu)
    if not torch.cuda.is_available():
        with pytest.raises(
            ValueError, match=r"device: 'gpu' is invalid.*torch.cuda.is_available\(\)"
        ):
            Occlusion(mlp(), device="gpu")
    with pytest.raises(ValueError, match="device: 'tpu' is invalid"):
        Occlusion(mlp(), device="tpu")


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


# ---- the GPU sweep's logic on the CPU: a stand-in for fastocclusion._cuda ----------------------


class FakeDeviceBuffer:
    """_cuda.DeviceBuffer's interface over host memory (DLPack through NumPy's)."""

    def __init__(self, shape, dtype="float32", device=0):
        assert device == 0
        self.array = np.zeros(tuple(shape), np.dtype(dtype))
        self.shape = tuple(shape)

    @classmethod
    def from_host(cls, array, device=0):
        buffer = cls(array.shape, array.dtype.name, device)
        buffer.array[...] = array
        return buffer

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


class FakeCuda:
    """fastocclusion._cuda's kernels over host memory, by the C++ core; records the fills."""

    DeviceBuffer = FakeDeviceBuffer
    IncrementalFillState = _core.IncrementalFillState

    def __init__(self):
        self.fills = []

    def fill_occluded_batch(
        self,
        inputs,
        grid,
        baseline,
        start,
        count,
        out,
        state=None,
        *,
        stride=1,
        baseline_kind="auto",
        stream=None,
    ):
        assert state is not None  # always incremental
        self.fills.append((start, count, stride))
        values = np.array(baseline, np.float32) if isinstance(baseline, float) else baseline.array
        _core.fill_occluded_batch(
            inputs.array,
            grid,
            values,
            start,
            count,
            out.array,
            state,
            stride=stride,
            baseline_kind=baseline_kind,
        )

    def window_means(self, inputs, grid, *, stream=None):
        return FakeDeviceBuffer.from_host(_core.window_means(inputs.array, grid))

    def blend_window_values(self, values, grid, importance, collapsed_axes, *, stream=None):
        maps = _core.blend_window_values(values.array, grid, importance, collapsed_axes)
        return FakeDeviceBuffer.from_host(maps)

    def accumulate_window_deltas(self, deltas, grid, reduction, collapsed_axes, *, stream=None):
        maps = _core.accumulate_window_deltas(deltas.array, grid, reduction, collapsed_axes)
        buffer = FakeDeviceBuffer(maps.shape)
        buffer.array[...] = maps
        return buffer


class FakeDeviceArrays:
    """engine.protocols.DeviceArrays with torch tensors on the CPU."""

    device_index = 0
    stream = None

    def asarray(self, values):
        return torch.as_tensor(values)

    def empty(self, shape, dtype):
        return torch.empty(
            shape,
            dtype={np.dtype(np.float64): torch.float64, np.dtype(np.int64): torch.int64}[
                np.dtype(dtype)
            ],
        )

    def concatenate(self, arrays):
        return torch.cat(arrays)

    def view(self, buffer):
        with torch.inference_mode(False):
            return torch.from_dlpack(buffer)


def explain_with_fake_device(model, inputs, targets, **options):
    """The GPU sweep (device filler, bookkeeping in torch, maps accumulated by "_cuda") with
    the CUDA module and the device replaced by host stand-ins."""
    fake = FakeCuda()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fillers, "load_cuda_module", lambda: fake)
        patch.setattr(TorchBackend, "device_arrays", property(lambda self: FakeDeviceArrays()))
        explainer = Occlusion(model, **options)
        explainer._backend._on_gpu = True  # the CPU model as if it were on a CUDA device
        return explainer.explain(inputs, targets), fake


@pytest.mark.parametrize("case", range(6))
def test_device_sweep_logic_on_the_cpu(case):
    rng = np.random.default_rng(40 + case)
    batch = int(rng.integers(1, 12))
    value = [0.3, np.array([0.5, -1.0, 2.0], np.float32), rng_inputs(case, (8, 9, 3))][case % 3]
    operator = [None, custom_operator][case % 2]
    targets = None if case % 4 == 3 else one_hot(case, 3)
    options = dict(
        batch_size=batch,
        patch_size=(2, 3),
        patch_stride=(1, 2),
        occlusion_value=value,
        operator=operator,
    )
    result, fake = explain_with_fake_device(
        ImageNet(), rng_inputs(50 + case, (3, 8, 9, 3)), targets, **options
    )
    host = Occlusion(ImageNet(), **options).explain(rng_inputs(50 + case, (3, 8, 9, 3)), targets)
    torch.testing.assert_close(result, host, rtol=1e-5, atol=1e-6)
    total = 3 * 7 * 4  # N * K
    chunk = -(-total // batch)  # the chunked stream order: batch b holds b + j * chunk
    assert fake.fills == [(b, -(-(total - b) // chunk), chunk) for b in range(chunk)]


def test_device_sweep_segmentation_and_detection_on_the_cpu():
    masks = (np.random.default_rng(60).uniform(size=(2, 8, 8, 3)) < 0.3).astype(np.float32)
    inputs = rng_inputs(61, (2, 8, 8, 2))
    options = dict(operator="semantic segmentation", batch_size=5)
    got, _ = explain_with_fake_device(SegmentationNet(), inputs, masks, **options)
    torch.testing.assert_close(got, Occlusion(SegmentationNet(), **options).explain(inputs, masks))
    boxes, inputs = detection_targets(), rng_inputs(62, (3, 8, 8, 3))
    options = dict(
        operator="object detection box class", batch_size=7, patch_size=2, patch_stride=2
    )
    got, _ = explain_with_fake_device(DetectionNet(), inputs, boxes, **options)
    torch.testing.assert_close(got, Occlusion(DetectionNet(), **options).explain(inputs, boxes))


# ---- the GPU ----------------------------------------------------------------------------------


def _gpu_ready() -> bool:
    if not torch.cuda.is_available():
        return False
    cuda = fillers.load_cuda_module()
    return cuda is not None and cuda.is_available()


gpu = pytest.mark.skipif(not _gpu_ready(), reason="needs a CUDA device and fastocclusion._cuda")


@pytest.fixture
def exact_float32(monkeypatch):
    """GPU convolutions in full float32 (cuDNN's TF32 default would differ from the CPU by
    ~1e-3)."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("seed", range(8))
def test_gpu_explain_matches_cpu(seed, exact_float32):
    rng = np.random.default_rng(100 + seed)
    family = ["images", "time series", "tabular"][seed % 3]
    make, shape, _, _ = FAMILIES[family]
    n = int(rng.integers(1, 5))
    shape = (n,) + shape[1:]
    inputs = rng_inputs(seed, shape)
    if family == "tabular":
        patch, stride = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    else:
        patch = tuple(int(v) for v in rng.integers(1, 5, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    value = [0.0, float(rng.normal()), rng_inputs(seed + 1, shape[1:])][seed % 3]
    options = dict(
        batch_size=int(rng.integers(1, 40)),
        patch_size=patch,
        patch_stride=stride,
        occlusion_value=value,
        edges=["valid", "cover"][seed % 2],
        reduction=["sum", "mean"][(seed // 2) % 2],
        operator=[None, custom_operator][seed % 2],
    )
    targets = None if seed % 4 == 0 else one_hot(seed, n, 3 if family == "tabular" else NUM_CLASSES)
    cpu = Occlusion(make(), device="cpu", **options).explain(inputs, targets)
    explainer = Occlusion(make().cuda(), device="gpu", **options)
    assert explainer._backend.device_arrays is not None
    on_gpu = explainer.explain(inputs, targets)
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    coverage = reference_coverage(shape, patch, stride, options["edges"])
    torch.testing.assert_close(on_gpu.cpu(), cpu, rtol=1e-4, atol=1e-5 * coverage)
    # a CUDA model on the host sweep (batches copied) agrees too
    host = Occlusion(make().cuda(), device="cpu", **options).explain(
        torch.from_numpy(inputs).cuda(), targets
    )
    torch.testing.assert_close(host.cpu(), cpu, rtol=1e-4, atol=1e-5 * coverage)


@pytest.mark.gpu
@gpu
def test_gpu_segmentation_detection_and_auto(exact_float32):
    masks = (np.random.default_rng(70).uniform(size=(2, 8, 8, 3)) < 0.3).astype(np.float32)
    inputs = rng_inputs(71, (2, 8, 8, 2))
    options = dict(operator="semantic segmentation", batch_size=5)
    cpu = Occlusion(SegmentationNet(), **options).explain(inputs, masks)
    torch.testing.assert_close(
        Occlusion(SegmentationNet().cuda(), **options).explain(inputs, masks).cpu(),
        cpu,
        rtol=1e-4,
        atol=1e-5,
    )
    boxes, inputs = detection_targets(), rng_inputs(72, (3, 8, 8, 3))
    options = dict(operator="object detection", batch_size=7, patch_size=2, patch_stride=2)
    cpu = Occlusion(DetectionNet(), **options).explain(inputs, boxes)
    explainer = Occlusion(DetectionNet().cuda(), **options)  # device="auto"
    assert explainer._backend.device_arrays is not None
    torch.testing.assert_close(explainer.explain(inputs, boxes).cpu(), cpu, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="device: 'gpu' is invalid.*model is on cpu"):
        Occlusion(DetectionNet(), device="gpu")


class BatchRecorder(torch.nn.Module):
    """A linear model recording the batch size of every call (its layer compiled by
    torch.compile when asked: a model that specialises on shapes)."""

    def __init__(self, compiled: bool = False) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.layer = torch.nn.Linear(10, 3)
        self.call = torch.compile(self.layer, backend="eager") if compiled else self.layer
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(int(x.shape[0]))
        return self.call(x)


def test_eager_modules_skip_the_padding_rows_and_compiled_ones_get_full_batches():
    inputs = rng_inputs(80, (1, 10))  # one input: the base pass would be 31 padding rows
    targets = one_hot(80, 1, 3)
    eager = BatchRecorder()
    maps = Occlusion(eager, batch_size=8, patch_size=3, patch_stride=2).explain(inputs, targets)
    # base pass: 1 row; 4 windows in one batch of 8: 4 rows
    assert eager.sizes == [1, 4]
    compiled = BatchRecorder(compiled=True)
    compiled_maps = Occlusion(compiled, batch_size=8, patch_size=3, patch_stride=2).explain(
        inputs, targets
    )
    assert compiled.sizes == [8, 8]  # one shape: no recompilation
    torch.testing.assert_close(compiled_maps, maps)
    expected = reference_occlusion(
        lambda x: eager.layer(torch.from_numpy(x)).detach().numpy(),
        inputs,
        targets,
        patch_size=3,
        patch_stride=2,
    )
    np.testing.assert_allclose(maps.numpy(), expected, rtol=1e-5, atol=1e-6)
