"""Exact incremental inference on the model's device (backends/torch/incremental/device.py):
the kept maps, gathers and splices stay on the device, by fastocclusion._cuda's kernels.

On a machine without a GPU the whole path runs on the CPU through fake_cuda (torch tensors
on the CPU as the "device" arrays, _core's kernels in _cuda's place): the maps equal the
host incremental sweep's and the normal sweep's, for random 2-D and 3-D CNNs, in float32
and float64. The binding's refusals need only an importable _cuda; the kernels against
_core and CUDA models against the CPU need a GPU (marked ``gpu``).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
]

from fake_cuda import explain_with_fake_device, fake_monai_device  # noqa: E402
from incremental_models import random_cnn, random_cnn_nd  # noqa: E402

from fastocclusion import Occlusion, _core  # noqa: E402
from fastocclusion.backends.torch.incremental import device as incremental_device  # noqa: E402
from fastocclusion.engine import fillers  # noqa: E402


def _relative(maps, reference):
    maps, reference = np.asarray(maps), np.asarray(reference)
    return float(np.abs(maps - reference).max() / max(np.abs(reference).max(), 1e-30))


def _case(seed, axes):
    """A random CNN, inputs (channels first) and options for ``axes`` map axes."""
    rng = np.random.default_rng(seed)
    dtype = [np.float32, np.float64][seed % 2]
    if axes == 2:
        shape = (int(rng.integers(1, 4)), int(rng.integers(9, 20)), int(rng.integers(9, 20)))
        model = random_cnn(seed, shape)
    else:
        shape = (int(rng.integers(1, 3)),) + tuple(int(v) for v in rng.integers(6, 11, 3))
        model = random_cnn_nd(seed, shape)
    model = model.to(torch.float64 if dtype == np.float64 else torch.float32)
    n = int(rng.integers(1, 4))
    x = rng.normal(size=(n,) + shape).astype(dtype)
    options = dict(
        data_format="channels_first",
        patch_size=tuple(int(v) for v in rng.integers(1, 5, axes)),
        patch_stride=tuple(int(v) for v in rng.integers(1, 4, axes)),
        batch_size=int(rng.integers(1, 24)),
        occlusion_value=float(rng.normal()),
        edges=["valid", "cover"][seed % 2],
        incremental_threshold=1.0,
    )
    return model, x, options, dtype


@pytest.mark.parametrize("axes", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_device_incremental_equals_host_and_normal_sweeps(seed, axes):
    """The GPU sweep's incremental path (fake device): maps equal the host incremental
    sweep's and the normal sweep's, the same layers run on boxes, and every gather and
    splice went through _cuda's functions on device tensors."""
    model, x, options, dtype = _case(seed, axes)
    host = Occlusion(model, incremental=True, **options)
    host_maps = host.explain(x).numpy()
    normal = Occlusion(model, incremental=False, **options).explain(x).numpy()
    (maps, fake), stats = _fake_run(model, x, incremental=True, **options)
    assert stats.incremental_layers == host.last_stats.incremental_layers
    assert stats.incremental_layers, stats.incremental_note
    assert fake.gathers > 0 and fake.fills
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    assert _relative(maps.numpy(), host_maps) <= tolerance
    assert _relative(maps.numpy(), normal) <= tolerance


def _fake_run(model, x, targets=None, **options):
    """explain_with_fake_device, and the explainer's last_stats."""
    stats = []
    original = Occlusion.explain

    def explain(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        finally:
            stats.append(self.last_stats)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Occlusion, "explain", explain)
        result = explain_with_fake_device(model, x, targets, **options)
    return result, stats[-1]


def test_device_incremental_splices_full_maps_for_layers_after_boxes():
    """A model whose boxes end before a full layer reads them (a 3x3 conv, then a dense
    head over every position): the device path splices, and the maps are exact."""
    torch.manual_seed(5)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(4 * 12 * 12, 3),
    ).double().eval()  # fmt: skip
    x = np.random.default_rng(6).normal(size=(2, 2, 12, 12))
    options = dict(data_format="channels_first", patch_size=3, patch_stride=2, batch_size=7)
    (maps, fake), stats = _fake_run(model, x, incremental=True, **options)
    normal = Occlusion(model, incremental=False, **options).explain(x).numpy()
    assert fake.splices > 0 and stats.incremental_layers
    assert _relative(maps.numpy(), normal) <= 1e-12


def test_device_incremental_needs_the_cuda_module(monkeypatch):
    """Without _cuda's kernels the device path is refused by name (True) or steps aside to
    the normal sweep (auto), before any model call."""
    model, x, options, _ = _case(1, 2)
    monkeypatch.setattr(incremental_device, "load_cuda_module", lambda: None)
    original = fillers.load_cuda_module

    class Patched(pytest.MonkeyPatch):
        def setattr(self, target, name, value, raising=True):
            if target is incremental_device:  # keep the refusal above
                return
            super().setattr(target, name, value, raising)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pytest, "MonkeyPatch", Patched)
        with pytest.raises(ValueError, match="incremental: True is invalid here, device: "
                           "fastocclusion was built without its CUDA module"):  # fmt: skip
            explain_with_fake_device(model, x, None, incremental=True, **options)
        (maps, fake), stats = _fake_run(model, x, incremental="auto", **options)
    assert fillers.load_cuda_module is original
    assert not stats.incremental_layers and fake.gathers == 0
    assert "CUDA module" in stats.incremental_note


# ---- _cuda itself ---------------------------------------------------------------------------


def _cuda_module():
    try:
        return importlib.import_module("fastocclusion._cuda")
    except ImportError:
        return None


needs_cuda_module = pytest.mark.skipif(
    _cuda_module() is None, reason="needs fastocclusion._cuda (a build with nvcc)"
)


@needs_cuda_module
def test_cuda_window_kernels_refuse_host_and_foreign_arrays_by_name():
    """The argument checks run before any CUDA call: a host tensor, a NumPy array or a
    non-array is refused, naming the argument (no GPU needed)."""
    cuda = _cuda_module()
    maps = torch.zeros(2, 3, 8, 8)
    index, origins = np.zeros(1, np.int64), np.zeros((1, 2), np.int64)
    out = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match="maps: an array on DLPack device type 1 is invalid"):
        cuda.gather_windows(maps, index, origins, (4, 4), out)
    with pytest.raises(ValueError, match="maps: .*list.* is invalid, expected a CUDA device"):
        cuda.gather_windows([1.0], index, origins, (4, 4), out)
    with pytest.raises(ValueError, match="maps: an array on DLPack device type 1"):
        cuda.splice_windows(np.zeros((2, 3, 8, 8), np.float32), index, out, origins, maps)


gpu = pytest.mark.skipif(
    not torch.cuda.is_available() or _cuda_module() is None or not _cuda_module().is_available(),
    reason="needs a CUDA device and fastocclusion._cuda",
)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("axes", [1, 2, 3])
def test_gpu_gathers_and_splices_equal_the_cpu_kernels(dtype, axes):
    cuda = _cuda_module()
    rng = np.random.default_rng(axes)
    size = tuple(int(v) for v in rng.integers(5, 12, axes))
    maps = rng.normal(size=(3, 4) + size).astype(
        np.float64 if dtype == torch.float64 else np.float32
    )
    count = 7
    index = rng.integers(0, 3, count).astype(np.int64)
    window = tuple(int(v) for v in rng.integers(1, 6, axes))
    origins = np.stack([rng.integers(-3, s, count) for s in size], 1).astype(np.int64)
    box = tuple(int(min(w, s)) for w, s in zip(window, size))
    patch_origins = np.stack(
        [rng.integers(0, s - b + 1, count) for s, b in zip(size, box)], 1
    ).astype(np.int64)
    patches = rng.normal(size=(count, 4) + box).astype(maps.dtype)
    expected = _core.gather_windows(maps, index, origins, window, None, patches, patch_origins,
                                    pad_value=-1.5)  # fmt: skip
    device_maps = torch.from_numpy(maps).cuda()
    out = torch.empty((count, 4) + window, dtype=dtype, device="cuda")
    stream = torch.cuda.current_stream()
    cuda.gather_windows(device_maps, index, origins, window, out, torch.from_numpy(patches).cuda(),
                        patch_origins, pad_value=-1.5, stream=stream)  # fmt: skip
    assert np.array_equal(out.cpu().numpy(), expected)
    spliced = np.zeros((count + 2, 4) + size, maps.dtype)
    _core.splice_windows(maps, index, patches, patch_origins, spliced, _core.SpliceState())
    device_out = torch.full((count + 2, 4) + size, 7.0, dtype=dtype, device="cuda")
    cuda.splice_windows(device_maps, index, torch.from_numpy(patches).cuda(), patch_origins,
                        device_out, stream=stream)  # fmt: skip
    assert np.array_equal(device_out[:count].cpu().numpy(), spliced[:count])
    assert bool((device_out[count:] == 7.0).all())


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("seed", range(4))
def test_gpu_incremental_equals_the_cpu(seed, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    model, x, options, dtype = _case(seed, [2, 3][seed % 2])
    cpu = Occlusion(model, incremental=False, **options).explain(x).numpy()
    explainer = Occlusion(model.cuda(), device="gpu", incremental=True, **options)
    on_gpu = explainer.explain(x)
    assert explainer.last_stats.incremental_layers, explainer.last_stats.incremental_note
    assert _relative(on_gpu.cpu().numpy(), cpu) <= (1e-10 if dtype == np.float64 else 1e-4)


def test_device_auto_measures_instead_of_trusting_the_cpu_floor():
    """On a device "auto" has no measured floor: a sweep whose plan saves enough times an
    incremental and a full call and keeps the faster (the CPU would decline this small
    model outright as too cheap to split)."""
    torch.manual_seed(8)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 3), torch.nn.Flatten(),
        torch.nn.Linear(2 * 12 * 12, 2),
    ).eval()  # fmt: skip
    x = np.random.default_rng(9).normal(size=(1, 1, 16, 16)).astype(np.float32)
    options = dict(data_format="channels_first", patch_size=4, patch_stride=2, batch_size=8)
    host = Occlusion(model, incremental="auto", **options)
    host.explain(x)
    assert "too cheap to split" in host.last_stats.incremental_note
    (maps, _), stats = _fake_run(model, x, incremental="auto", **options)
    assert "measured" in stats.incremental_note, stats.incremental_note
    normal = Occlusion(model, incremental=False, **options).explain(x).numpy()
    assert _relative(maps.numpy(), normal) <= 1e-4
    # Too few batches to time both kinds of call: on a device "auto" keeps the normal sweep.
    (maps, fake), stats = _fake_run(model, x, incremental="auto", **{**options, "batch_size": 64})
    assert not stats.incremental_layers and fake.gathers == 0
    assert "too short to time its calls" in stats.incremental_note, stats.incremental_note
    assert _relative(maps.numpy(), normal) <= 1e-4


def test_device_auto_measures_the_output_maps_sweep_too(monkeypatch):
    """MONAI's sweep of output maps (Sweep.run_values) times its calls like the score
    sweep on a device: "auto" decides from a measurement there too."""
    pytest.importorskip("monai", reason="needs MONAI: pip install monai")
    from fastocclusion.monai import OcclusionSensitivity

    model = random_cnn(13, (2, 16, 16), layers=4)
    x = torch.rand(1, 2, 16, 16, generator=torch.Generator().manual_seed(14))
    explain = OcclusionSensitivity(model, mask_size=4, n_batch=8, verbose=False, overlap=0.5)
    host = explain(x)
    fake = fake_monai_device(monkeypatch)
    device = explain(x)
    note = explain.last_stats.incremental_note
    assert "measured" in note and fake.gathers > 0, note  # batches 0 and 1 at least
    torch.testing.assert_close(device[0], host[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["gaussian", "mean_patch", 0.5])
def test_monai_front_end_runs_incrementally_on_the_device(mode, monkeypatch):
    """MONAI's front-end on a GPU sweep (fake device) runs incrementally on the device and
    gives the host sweep's maps."""
    pytest.importorskip("monai", reason="needs MONAI: pip install monai")
    from fastocclusion.monai import OcclusionSensitivity

    model = random_cnn(11, (2, 14, 12), layers=4)
    x = torch.rand(1, 2, 14, 12, generator=torch.Generator().manual_seed(12))
    explain = OcclusionSensitivity(
        model, mask_size=4, n_batch=6, verbose=False, mode=mode, incremental=True,
        incremental_threshold=1.0,
    )  # fmt: skip
    host = explain(x, b_box=[0, 11, 1, 12])
    fake = fake_monai_device(monkeypatch)
    device = explain(x, b_box=[0, 11, 1, 12])
    assert fake.fills and fake.gathers
    torch.testing.assert_close(device[0], host[0], rtol=1e-5, atol=1e-6)
    assert torch.equal(device[1], host[1])


def test_a_failing_incremental_call_falls_back_under_auto_and_raises_under_true(monkeypatch):
    """An incremental call that fails mid-sweep (e.g. a device that cannot allocate): with
    "auto" that batch and the rest run in full (the maps are the normal sweep's, the note
    names the error); with True the error propagates."""
    from fastocclusion.backends.torch.incremental.graph import TorchOps
    from fastocclusion.engine.incremental_run import IncrementalRunner

    monkeypatch.setattr(TorchOps, "auto_min_call_macs", 0.0)  # "auto" runs incrementally
    model, x, options, _ = _case(2, 2)
    options["batch_size"] = 4
    normal = Occlusion(model, incremental=False, **options).explain(x).numpy()
    original, calls = IncrementalRunner.occluded, []

    def failing(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the device is out of memory")
        return original(self, *args)

    monkeypatch.setattr(IncrementalRunner, "occluded", failing)
    explainer = Occlusion(model, incremental="auto", **options)
    maps = explainer.explain(x).numpy()
    assert len(calls) == 2 and not explainer.last_stats.incremental_layers
    assert "failed on an occluded batch (RuntimeError: the device is out of memory)" in (
        explainer.last_stats.incremental_note
    )
    assert _relative(maps, normal) <= 1e-4
    calls.clear()
    with pytest.raises(RuntimeError, match="out of memory"):
        Occlusion(model, incremental=True, **options).explain(x)
