"""fastocclusion._cuda against the CPU core (the oracle): fills, incremental fills, maps,
DLPack export to PyTorch and CuPy, and bad input.

Skipped as a whole, with the reason, when fastocclusion was built without its CUDA module
or no CUDA device is usable. Needs neither TensorFlow nor a network; PyTorch and CuPy only
for their DLPack tests.
"""

from __future__ import annotations

import importlib
import types
import zlib

import numpy as np
import pytest

try:
    _cuda = importlib.import_module("fastocclusion._cuda")
except ModuleNotFoundError as error:  # only a missing module skips; a broken one fails
    if error.name != "fastocclusion._cuda":
        raise
    pytest.skip("fastocclusion was built without its CUDA module (_cuda)", allow_module_level=True)
if not _cuda.is_available():
    pytest.skip(
        f"no usable CUDA device (is_available() is False, driver version {_cuda.driver_version()})",
        allow_module_level=True,
    )

from fastocclusion import _core  # noqa: E402

pytestmark = pytest.mark.gpu

BASELINE_KINDS = ["scalar", "channel", "image", "input"]

# (shape, patch, stride, edges): the edge cases, then realistic sizes (several blocks per slot).
EDGE_CASES = [
    ((1, 1, 1, 1), (1, 1), (1, 1), "valid"),
    ((3, 1, 1, 1), (1, 1), (2, 2), "cover"),
    ((2, 5, 4, 1), (2, 3), (1, 1), "valid"),
    ((2, 6, 5, 16), (3, 2), (2, 3), "cover"),
    ((2, 7, 9, 3), (7, 9), (1, 1), "valid"),  # patch = input
    ((2, 10, 10, 3), (2, 2), (3, 3), "valid"),  # stride > patch: gaps
    ((2, 10, 10, 3), (3, 4), (5, 7), "cover"),  # stride > patch, clipped far patches
    ((1, 5, 5, 3), (2, 2), (1, 1), "valid"),  # h*w*c odd: scalar path
    ((1, 1, 12, 2), (1, 5), (1, 4), "cover"),  # tabular-like
    ((2, 64, 48, 3), (8, 8), (8, 8), "valid"),
    ((1, 224, 224, 3), (16, 16), (16, 16), "valid"),
]


def seed_of(*parts) -> int:
    """A seed stable across runs (str hashes are salted per process)."""
    return zlib.crc32(repr(parts).encode())


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.integers(1, 33, 2))
    c = int(rng.choice([1, 2, 3, 4, 16]))
    patch = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
    stride = (int(rng.integers(1, h + 3)), int(rng.integers(1, w + 3)))
    return (n, h, w, c), patch, stride, str(rng.choice(["valid", "cover"]))


CASES = EDGE_CASES + [random_case(seed) for seed in range(24)]


def make_baseline(kind: str, shape, rng: np.random.Generator) -> np.ndarray:
    n, h, w, c = shape
    sizes = {"scalar": (), "channel": (c,), "image": (h, w, c), "input": (n, h, w, c)}
    return rng.uniform(5, 10, sizes[kind]).astype(np.float32)


def device_baseline(baseline: np.ndarray):
    """What _cuda takes: a Python float for a scalar, else a DeviceBuffer."""
    return float(baseline) if baseline.ndim == 0 else _cuda.DeviceBuffer.from_host(baseline)


def poisoned_device(shape) -> "_cuda.DeviceBuffer":
    buffer = _cuda.DeviceBuffer(shape)
    buffer.copy_from_host(np.full(shape, np.nan, dtype=np.float32))
    return buffer


def cpu_fill(inputs, grid, baseline, start, count, capacity, state=None, out=None):
    if out is None:
        out = np.full((capacity,) + inputs.shape[1:], np.nan, dtype=np.float32)
    _core.fill_occluded_batch(inputs, grid, baseline, start, count, out, state)
    return out


# ---- full fills ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0]}-p{case[1]}-s{case[2]}-{case[3]}")
@pytest.mark.parametrize("kind", BASELINE_KINDS)
def test_fill_matches_cpu(case, kind):
    shape, patch, stride, edges = case
    rng = np.random.default_rng(seed_of(case, kind))
    inputs = rng.normal(size=shape).astype(np.float32)
    baseline = make_baseline(kind, shape, rng)
    grid = _core.PatchGrid(shape[1], shape[2], patch_size=patch, patch_stride=stride, edges=edges)
    total = shape[0] * grid.num_patches
    d_inputs, d_baseline = _cuda.DeviceBuffer.from_host(inputs), device_baseline(baseline)
    slices = [(0, min(total, 7)), (total - 1, total), (0, total)]
    slices += [tuple(sorted(int(v) for v in rng.integers(0, total + 1, 2))) for _ in range(2)]
    for start, stop in slices:
        count = stop - start
        capacity = max(count, 1) + 2  # two extra slots must stay untouched
        expected = cpu_fill(inputs, grid, baseline, start, count, capacity)
        out = poisoned_device(expected.shape)
        _cuda.fill_occluded_batch(d_inputs, grid, d_baseline, start, count, out)
        np.testing.assert_array_equal(out.to_host(), expected, err_msg=f"slice [{start}, {stop})")


def test_fill_never_reads_outside_its_slice_of_the_stream():
    """Values are exact copies: a wrong input index would show as a wrong value."""
    shape = (4, 6, 6, 2)
    inputs = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    grid = _core.PatchGrid(6, 6, patch_size=(3, 3), patch_stride=(3, 3))
    out = poisoned_device((4, 6, 6, 2))
    _cuda.fill_occluded_batch(_cuda.DeviceBuffer.from_host(inputs), grid, -1.0, 5, 4, out)
    got = out.to_host()
    for j in range(4):
        n, k = divmod(5 + j, grid.num_patches)
        r, c = divmod(k, grid.cols)
        expected = inputs[n].copy()
        expected[3 * r : 3 * r + 3, 3 * c : 3 * c + 3] = -1.0
        np.testing.assert_array_equal(got[j], expected)


# ---- incremental fills --------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES[:: 2], ids=lambda case: f"{case[0]}-p{case[1]}-s{case[2]}-{case[3]}")
@pytest.mark.parametrize("kind", BASELINE_KINDS)
def test_incremental_fill_over_consecutive_slices_matches_cpu(case, kind):
    shape, patch, stride, edges = case
    rng = np.random.default_rng(seed_of(case, kind, "incremental"))
    inputs = rng.normal(size=shape).astype(np.float32)
    baseline = make_baseline(kind, shape, rng)
    grid = _core.PatchGrid(shape[1], shape[2], patch_size=patch, patch_stride=stride, edges=edges)
    total = shape[0] * grid.num_patches
    batch = int(rng.integers(1, min(total, 40) + 1))
    d_inputs, d_baseline = _cuda.DeviceBuffer.from_host(inputs), device_baseline(baseline)
    cpu_out = np.full((batch,) + shape[1:], np.nan, dtype=np.float32)
    gpu_out = poisoned_device(cpu_out.shape)
    cpu_state, gpu_state = _core.IncrementalFillState(), _cuda.IncrementalFillState()
    starts = list(range(0, total, batch))
    starts += [int(v) for v in rng.integers(0, total, 3)]  # then jumps around the stream
    for start in starts:
        count = min(batch, total - start)
        cpu_fill(inputs, grid, baseline, start, count, batch, cpu_state, cpu_out)
        _cuda.fill_occluded_batch(d_inputs, grid, d_baseline, start, count, gpu_out, gpu_state)
        got = gpu_out.to_host()
        np.testing.assert_array_equal(got, cpu_out, err_msg=f"start={start}, count={count}")
        full = cpu_fill(inputs, grid, baseline, start, count, count)
        np.testing.assert_array_equal(got[:count], full, err_msg="incremental != full fill")


def test_incremental_state_notices_a_new_baseline_and_reset():
    shape = (2, 8, 8, 3)
    rng = np.random.default_rng(7)
    inputs = rng.normal(size=shape).astype(np.float32)
    grid = _core.PatchGrid(8, 8, patch_size=(4, 4), patch_stride=(2, 2))
    d_inputs = _cuda.DeviceBuffer.from_host(inputs)
    out = poisoned_device((5, 8, 8, 3))
    state = _cuda.IncrementalFillState()
    _cuda.fill_occluded_batch(d_inputs, grid, 1.0, 0, 5, out, state)
    _cuda.fill_occluded_batch(d_inputs, grid, 2.0, 5, 5, out, state)  # new scalar: full refill
    np.testing.assert_array_equal(out.to_host(), cpu_fill(inputs, grid, np.array(2.0, np.float32), 5, 5, 5))
    # Same pointers, new content: only reset() makes the state forget the slots.
    inputs2 = inputs + 1
    d_inputs.copy_from_host(inputs2)
    state.reset()
    _cuda.fill_occluded_batch(d_inputs, grid, 2.0, 10, 5, out, state)
    np.testing.assert_array_equal(out.to_host(), cpu_fill(inputs2, grid, np.array(2.0, np.float32), 10, 5, 5))


def test_incremental_fill_of_more_slots_than_one_plan():
    """Batches above 256 slots are planned in several launches."""
    shape = (3, 16, 16, 1)
    rng = np.random.default_rng(11)
    inputs = rng.normal(size=shape).astype(np.float32)
    grid = _core.PatchGrid(16, 16, patch_size=(2, 2), patch_stride=(1, 1))  # 225 patches
    d_inputs = _cuda.DeviceBuffer.from_host(inputs)
    batch = 600
    out, state = poisoned_device((batch, 16, 16, 1)), _cuda.IncrementalFillState()
    cpu_out, cpu_state = np.full((batch, 16, 16, 1), np.nan, np.float32), _core.IncrementalFillState()
    for start in (0, 75, 1):
        count = min(batch, 3 * 225 - start)
        _cuda.fill_occluded_batch(d_inputs, grid, 0.5, start, count, out, state)
        cpu_fill(inputs, grid, np.array(0.5, np.float32), start, count, batch, cpu_state, cpu_out)
        np.testing.assert_array_equal(out.to_host(), cpu_out)


# ---- maps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0]}-p{case[1]}-s{case[2]}-{case[3]}")
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_accumulate_matches_cpu(case, reduction):
    shape, patch, stride, edges = case
    rng = np.random.default_rng(seed_of(case, reduction))
    grid = _core.PatchGrid(shape[1], shape[2], patch_size=patch, patch_stride=stride, edges=edges)
    deltas = rng.normal(0, 1, (shape[0], grid.rows, grid.cols)) * rng.choice([1e-3, 1.0, 1e4])
    expected = _core.accumulate_patch_deltas(deltas, grid, reduction)
    scale = max(float(np.abs(expected).max()), 1e-30)
    from_host = _cuda.accumulate_patch_deltas(deltas, grid, reduction)
    assert from_host.dtype == "float32" and from_host.shape == expected.shape
    np.testing.assert_allclose(from_host.to_host(), expected, rtol=1e-6, atol=1e-6 * scale)
    out = poisoned_device(expected.shape)
    result = _cuda.accumulate_patch_deltas(_cuda.DeviceBuffer.from_host(deltas), grid, reduction, out)
    assert result.data_ptr == out.data_ptr
    np.testing.assert_allclose(out.to_host(), expected, rtol=1e-6, atol=1e-6 * scale)


def test_accumulate_many_patches_keeps_float64_precision():
    grid = _core.PatchGrid(64, 64, patch_size=(16, 16), patch_stride=(1, 1))  # 2401 patches
    deltas = np.full((1, grid.rows, grid.cols), 0.1) + np.linspace(0, 1e-6, grid.num_patches).reshape(1, grid.rows, grid.cols)
    expected = _core.accumulate_patch_deltas(deltas, grid, "sum")
    got = _cuda.accumulate_patch_deltas(deltas, grid, "sum").to_host()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_grid_is_read_from_any_object_with_the_patch_grid_attributes():
    """pybind11 may not share _core's PatchGrid type with _cuda: the grid is then rebuilt
    from its attributes, the edge mode being the one whose counts match."""
    shape = (1, 10, 9, 2)
    inputs = np.random.default_rng(8).normal(size=shape).astype(np.float32)
    d_inputs = _cuda.DeviceBuffer.from_host(inputs)
    for edges in ("valid", "cover"):
        grid = _core.PatchGrid(10, 9, patch_size=(4, 3), patch_stride=(4, 4), edges=edges)
        lookalike = types.SimpleNamespace(height=10, width=9, rows=grid.rows, cols=grid.cols,
                                          patch_size=(4, 3), patch_stride=(4, 4))
        total = grid.num_patches
        out = poisoned_device((total, 10, 9, 2))
        _cuda.fill_occluded_batch(d_inputs, lookalike, 0.0, 0, total, out)
        expected = cpu_fill(inputs, grid, np.array(0.0, np.float32), 0, total, total)
        np.testing.assert_array_equal(out.to_host(), expected)
        deltas = np.random.default_rng(9).normal(size=(1, grid.rows, grid.cols))
        np.testing.assert_allclose(_cuda.accumulate_patch_deltas(deltas, lookalike).to_host(),
                                   _core.accumulate_patch_deltas(deltas, grid), rtol=1e-6, atol=1e-6)
    wrong = types.SimpleNamespace(height=10, width=9, rows=7, cols=2, patch_size=(4, 3), patch_stride=(4, 4))
    with pytest.raises(ValueError, match="do not match"):
        _cuda.fill_occluded_batch(d_inputs, wrong, 0.0, 0, 1, _cuda.DeviceBuffer((1, 10, 9, 2)))


# ---- buffers and DLPack -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_device_buffer_round_trip(dtype):
    array = np.random.default_rng(3).normal(size=(3, 5, 7)).astype(dtype)
    buffer = _cuda.DeviceBuffer.from_host(array)
    assert buffer.shape == (3, 5, 7) and buffer.dtype == np.dtype(dtype).name
    assert buffer.nbytes == array.nbytes and buffer.size == array.size and buffer.device == 0
    assert buffer.data_ptr % 256 == 0
    assert buffer.__dlpack_device__() == (2, 0)
    np.testing.assert_array_equal(buffer.to_host(), array)
    zeroed = _cuda.DeviceBuffer((4, 2), dtype=np.dtype(dtype).name)
    np.testing.assert_array_equal(zeroed.to_host(), np.zeros((4, 2), dtype))


def _torch_cuda():
    torch = pytest.importorskip("torch", reason="needs PyTorch: pip install \".[torch]\"")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch has no CUDA device")
    return torch


def test_dlpack_to_torch_shares_memory():
    torch = _torch_cuda()
    array = np.random.default_rng(4).normal(size=(2, 3, 4)).astype(np.float32)
    buffer = _cuda.DeviceBuffer.from_host(array)
    tensor = torch.from_dlpack(buffer)
    assert tensor.device.type == "cuda" and tensor.dtype == torch.float32
    assert tensor.data_ptr() == buffer.data_ptr and tuple(tensor.shape) == (2, 3, 4)
    np.testing.assert_array_equal(tensor.cpu().numpy(), array)
    tensor.mul_(2)  # on torch's current (default) stream; to_host waits for the legacy stream
    torch.cuda.synchronize()
    np.testing.assert_array_equal(buffer.to_host(), 2 * array)
    del buffer  # the tensor keeps the memory alive
    np.testing.assert_array_equal(tensor.cpu().numpy(), 2 * array)
    doubles = torch.from_dlpack(_cuda.DeviceBuffer((3,), dtype="float64"))
    assert doubles.dtype == torch.float64


def test_fill_on_a_torch_side_stream_then_dlpack():
    torch = _torch_cuda()
    shape = (2, 32, 32, 3)
    inputs = np.random.default_rng(5).normal(size=shape).astype(np.float32)
    grid = _core.PatchGrid(32, 32, patch_size=(8, 8), patch_stride=(4, 4))
    d_inputs, out = _cuda.DeviceBuffer.from_host(inputs), _cuda.DeviceBuffer((16, 32, 32, 3))
    side = torch.cuda.Stream()
    _cuda.fill_occluded_batch(d_inputs, grid, 0.0, 3, 16, out, stream=side)
    with torch.cuda.stream(side):
        view = torch.from_dlpack(out)  # made ready for `side` by the stream protocol
        total = view.sum(dim=(1, 2, 3))
    torch.cuda.synchronize()
    expected = cpu_fill(inputs, grid, np.array(0.0, np.float32), 3, 16, 16)
    np.testing.assert_allclose(total.cpu().numpy(), expected.sum(axis=(1, 2, 3)), rtol=1e-4, atol=1e-3)
    # A default-stream consumer gets the data after the side-stream fill as well.
    _cuda.fill_occluded_batch(d_inputs, grid, 1.0, 0, 16, out, stream=side.cuda_stream)
    np.testing.assert_array_equal(torch.from_dlpack(out).cpu().numpy(), cpu_fill(inputs, grid, np.array(1.0, np.float32), 0, 16, 16))


def test_dlpack_to_cupy():
    cupy = pytest.importorskip("cupy")
    array = np.random.default_rng(6).normal(size=(4, 5)).astype(np.float32)
    buffer = _cuda.DeviceBuffer.from_host(array)
    view = cupy.from_dlpack(buffer)
    assert view.data.ptr == buffer.data_ptr
    np.testing.assert_array_equal(cupy.asnumpy(view), array)


def test_dlpack_refuses_copies_and_other_devices():
    buffer = _cuda.DeviceBuffer((2,))
    with pytest.raises(BufferError, match="copy"):
        buffer.__dlpack__(copy=True)
    with pytest.raises(BufferError, match="dl_device"):
        buffer.__dlpack__(dl_device=(1, 0))
    capsule = buffer.__dlpack__(stream=-1)  # no synchronisation asked
    assert type(capsule).__name__ == "PyCapsule"


# ---- errors -------------------------------------------------------------------------------


def test_bad_fill_arguments_raise_value_errors():
    grid = _core.PatchGrid(4, 4, patch_size=(2, 2), patch_stride=(2, 2))
    inputs = _cuda.DeviceBuffer((2, 4, 4, 3))
    out = _cuda.DeviceBuffer((4, 4, 4, 3))
    with pytest.raises(ValueError, match="start=9"):
        _cuda.fill_occluded_batch(inputs, grid, 0.0, 9, 0, out)
    with pytest.raises(ValueError, match="count=3"):
        _cuda.fill_occluded_batch(inputs, grid, 0.0, 6, 3, out)
    with pytest.raises(ValueError, match="out: shape"):
        _cuda.fill_occluded_batch(inputs, grid, 0.0, 0, 5, out)
    with pytest.raises(ValueError, match="share memory"):
        _cuda.fill_occluded_batch(inputs, grid, 0.0, 0, 2, inputs)
    with pytest.raises(ValueError, match="baseline: shape"):
        _cuda.fill_occluded_batch(inputs, grid, _cuda.DeviceBuffer((2,)), 0, 2, out)
    with pytest.raises(ValueError, match="host array"):
        _cuda.fill_occluded_batch(inputs, grid, np.zeros(3, np.float32), 0, 2, out)
    with pytest.raises(ValueError, match="dtype float64"):
        _cuda.fill_occluded_batch(_cuda.DeviceBuffer((2, 4, 4, 3), "float64"), grid, 0.0, 0, 2, out)
    with pytest.raises(ValueError, match="patch grid"):
        _cuda.fill_occluded_batch(inputs, _core.PatchGrid(5, 4, patch_size=(2, 2), patch_stride=(2, 2)), 0.0, 0, 2, out)
    with pytest.raises(ValueError, match="grid: expected"):
        _cuda.fill_occluded_batch(inputs, object(), 0.0, 0, 2, out)


def test_bad_buffers_and_maps_raise_value_errors():
    with pytest.raises(ValueError, match="shape"):
        _cuda.DeviceBuffer((0, 3))
    with pytest.raises(ValueError, match="dtype"):
        _cuda.DeviceBuffer((3,), dtype="int8")
    with pytest.raises(ValueError, match="device"):
        _cuda.DeviceBuffer((3,), device=_cuda.device_count())
    buffer = _cuda.DeviceBuffer((2, 3))
    with pytest.raises(ValueError, match="shape"):
        buffer.copy_from_host(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        buffer.copy_from_host(np.zeros((2, 3), np.float64))
    grid = _core.PatchGrid(4, 4, patch_size=(2, 2), patch_stride=(2, 2))
    with pytest.raises(ValueError, match="deltas: shape"):
        _cuda.accumulate_patch_deltas(np.zeros((1, 3, 2)), grid)
    with pytest.raises(ValueError, match="deltas: dtype"):
        _cuda.accumulate_patch_deltas(np.zeros((1, 2, 2), np.float32), grid)
    with pytest.raises(ValueError, match="reduction"):
        _cuda.accumulate_patch_deltas(np.zeros((1, 2, 2)), grid, "max")
    with pytest.raises(ValueError, match="out: shape"):
        _cuda.accumulate_patch_deltas(np.zeros((1, 2, 2)), grid, "sum", _cuda.DeviceBuffer((1, 4, 5)))


def test_out_of_memory_is_a_typed_error_and_leaves_the_module_usable():
    # The message names the error, the failed call and where it was made.
    with pytest.raises(_cuda.CudaOutOfMemoryError,
                       match=r"cudaErrorMemoryAllocation .*`cudaMalloc\(.*\)` at .*device_buffer\.cu:\d+"):
        _cuda.DeviceBuffer((1 << 46,))  # 256 TiB
    assert issubclass(_cuda.CudaOutOfMemoryError, _cuda.CudaError)
    assert issubclass(_cuda.CudaError, RuntimeError)
    # The failure was cleared: the next launch does not report it again.
    grid = _core.PatchGrid(2, 2, patch_size=(1, 1), patch_stride=(1, 1))
    out = _cuda.DeviceBuffer((4, 2, 2, 1))
    _cuda.fill_occluded_batch(_cuda.DeviceBuffer.from_host(np.ones((1, 2, 2, 1), np.float32)), grid, 0.0, 0, 4, out)
    assert out.to_host().sum() == 12.0
