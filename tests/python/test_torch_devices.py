"""The PyTorch device sweep: the device option, the GPU sweep's logic on the CPU (through
fake_cuda's stand-in for fastocclusion._cuda), the GPU itself (marked `gpu`, skipped without a
CUDA device and the _cuda module: GPU explain against CPU explain for random configurations),
and the batch sizes eager and compiled models are given."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
pytestmark = pytest.mark.torch

from fake_cuda import explain_with_fake_device  # noqa: E402
from reference import reference_coverage, reference_occlusion  # noqa: E402
from torch_models import (  # noqa: E402
    FAMILIES,
    NUM_CLASSES,
    DetectionNet,
    ImageNet,
    SegmentationNet,
    custom_operator,
    detection_targets,
    mlp,
    one_hot,
    rng_inputs,
)

from fastocclusion import Occlusion  # noqa: E402
from fastocclusion.engine import fillers  # noqa: E402


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


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("value", [0.3, "per channel"])
def test_device_sweep_builds_batches_in_the_models_dtype(dtype, value):
    """The GPU sweep of a float64, float16 or bfloat16 model fills its device batches in
    that dtype (bfloat16 as its bits): the model sees no other dtype, and the maps equal the
    host sweep's, which builds its batches in that dtype too."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6 * 7 * 2, 3)).to(dtype)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    inputs = rng_inputs(70, (3, 6, 7, 2))
    occlusion_value = np.array([0.25, -0.5], np.float32) if value == "per channel" else value
    options = dict(patch_size=(2, 3), patch_stride=(2, 2), occlusion_value=occlusion_value,
                   batch_size=4, incremental=False)  # fmt: skip
    result, fake = explain_with_fake_device(model, inputs, None, **options)
    assert set(seen) == {dtype} and fake.fills
    held = {torch.float64: np.float64, torch.float16: np.float16, torch.bfloat16: np.int16}
    assert fake.batch_dtypes == {np.dtype(held[dtype])}  # bfloat16: its bits
    seen.clear()
    host = Occlusion(model, **options).explain(inputs)
    assert set(seen) == {dtype}
    assert torch.equal(result, host) and host.abs().max() > 0


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
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_gpu_sweep_of_a_half_or_double_model_fills_in_its_dtype(dtype, exact_float32):
    """On the device, a float64, float16 or bfloat16 model's batches are filled by the CUDA
    kernels in its dtype; the model sees only that dtype, and every batch equals the host
    sweep's batch (built in that dtype on the CPU) bit for bit."""
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6 * 7 * 2, 3)).to(dtype)
    batches = []
    model.register_forward_pre_hook(lambda module, args: batches.append(args[0].clone()))
    inputs = rng_inputs(80, (3, 6, 7, 2))
    options = dict(patch_size=(2, 3), patch_stride=(2, 2), occlusion_value=0.3, batch_size=4,
                   incremental=False)  # fmt: skip
    on_gpu = Occlusion(model.cuda(), device="gpu", **options).explain(inputs)
    gpu_batches, batches[:] = list(batches), []
    host = Occlusion(model.cpu(), device="cpu", **options).explain(inputs)
    assert {b.dtype for b in gpu_batches} == {dtype} and len(gpu_batches) == len(batches)
    for on_device, on_host in zip(gpu_batches, batches):
        assert torch.equal(on_device.cpu(), on_host)
    tolerance = {torch.float64: 1e-10, torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(on_gpu.cpu(), host, rtol=tolerance, atol=tolerance)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("approximate", [{"drill_down": 0.3}, "auto"])
def test_gpu_drill_down_fills_on_the_device_and_equals_the_cpu(approximate, exact_float32):
    """A drill-down of a model on the GPU: its coarse sweep and its sweeps of chosen patches
    fill their batches on the device (a StreamPairs each), and the maps equal the host
    drill-down's (the same patches chosen: the coarse maps agree to float rounding; "auto"
    could stop a round apart near its SSIM target, so its share is not compared)."""
    inputs = rng_inputs(90, (2, 16, 16, 3))
    options = dict(patch_size=4, patch_stride=2, batch_size=16, approximate=approximate)
    cpu = Occlusion(ImageNet(), device="cpu", **options)
    expected = cpu.explain(inputs)
    explainer = Occlusion(ImageNet().cuda(), device="gpu", **options)
    assert explainer._backend.device_arrays is not None
    on_gpu = explainer.explain(inputs)
    assert on_gpu.device.type == "cuda"
    same_rounds = explainer.last_stats.approximate_share == cpu.last_stats.approximate_share
    assert same_rounds or approximate == "auto"
    if same_rounds:
        coverage = reference_coverage(inputs.shape, 4, 2, "valid")
        torch.testing.assert_close(on_gpu.cpu(), expected, rtol=1e-4, atol=1e-5 * coverage)


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
