"""fastocclusion._cuda against the CPU core (the oracle): fills (strided slot mappings
included), incremental fills, maps with and without collapsed axes, on N-d window grids;
DLPack export to PyTorch and CuPy; bad input.

Skipped as a whole, with the reason, when fastocclusion was built without its CUDA module
or no CUDA device is usable. Needs neither TensorFlow nor a network; PyTorch and CuPy only
for their DLPack tests.
"""

from __future__ import annotations

import importlib
import math
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

BASELINE_KINDS = ["scalar", "sample", "input"]

# (n, shape, window, stride, edges): the design's families and the edge cases, then
# realistic sizes (several blocks per slot).
EDGE_CASES = [
    (1, (1,), (1,), (1,), "valid"),
    (3, (12,), (5,), (4,), "cover"),  # tabular, clipped last window
    (2, (5, 4), (2, 3), (1, 1), "valid"),  # time series
    (2, (6, 5, 16), (3, 2, 16), (2, 3, 16), "cover"),  # image, channels in the window
    (2, (7, 9, 3), (7, 9, 3), (1, 1, 3), "valid"),  # window = sample
    (2, (10, 10, 3), (2, 2, 3), (3, 3, 3), "valid"),  # stride > window: gaps
    (2, (10, 10, 3), (3, 4, 3), (5, 7, 3), "cover"),  # gaps and clipped far windows
    (1, (5, 5, 3), (2, 2, 3), (1, 1, 3), "valid"),  # odd sample size: scalar copy
    (2, (3, 6, 5, 2), (2, 3, 2, 2), (1, 2, 2, 2), ("cover", "valid", "cover", "valid")),  # volume
    (1, (2, 3, 4, 3, 2), (1, 2, 2, 3, 1), (1, 1, 3, 3, 1), "cover"),  # five axes
    (2, (64, 48, 3), (8, 8, 3), (8, 8, 3), "valid"),
    (1, (224, 224, 3), (16, 16, 3), (16, 16, 3), "valid"),
]


def seed_of(*parts) -> int:
    """A seed stable across runs (str hashes are salted per process)."""
    return zlib.crc32(repr(parts).encode())


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 6))
    side = max(1, round(2000 ** (1 / rank)))
    shape = tuple(int(v) for v in rng.integers(1, side + 1, rank))
    window = tuple(int(rng.integers(1, s + 1)) for s in shape)
    stride = tuple(int(rng.integers(1, w + 3)) for w in window)
    edges = tuple(str(e) for e in rng.choice(["valid", "cover"], rank))
    return int(rng.integers(1, 4)), shape, window, stride, edges


CASES = EDGE_CASES + [random_case(seed) for seed in range(24)]


def case_id(case) -> str:
    n, shape, window, stride, edges = case
    return f"n{n}-{shape}-w{window}-s{stride}-{edges}".replace(" ", "")


def make_grid(case) -> _core.WindowGrid:
    _, shape, window, stride, edges = case
    return _core.WindowGrid(shape, window, stride, edges)


def make_baseline(kind: str, n: int, shape, rng: np.random.Generator) -> np.ndarray:
    sizes = {"scalar": (), "sample": tuple(shape), "input": (n, *shape)}
    return rng.uniform(5, 10, sizes[kind]).astype(np.float32)


def device_baseline(baseline: np.ndarray):
    """What _cuda takes: a Python float for a scalar, else a DeviceBuffer."""
    return float(baseline) if baseline.ndim == 0 else _cuda.DeviceBuffer.from_host(baseline)


def poisoned_device(shape) -> _cuda.DeviceBuffer:
    buffer = _cuda.DeviceBuffer(shape)
    buffer.copy_from_host(np.full(shape, np.nan, dtype=np.float32))
    return buffer


def cpu_fill(inputs, grid, baseline, start, count, capacity, state=None, out=None, stride=1):
    if out is None:
        out = np.full((capacity, *inputs.shape[1:]), np.nan, dtype=np.float32)
    _core.fill_occluded_batch(inputs, grid, baseline, start, count, out, state, stride=stride)
    return out


def collapsible(grid) -> tuple[int, ...]:
    """The axes one window covers in full (their maps may be collapsed)."""
    return tuple(
        d for d in range(grid.rank) if grid.counts[d] == 1 and grid.window[d] == grid.shape[d]
    )


# ---- full fills ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("kind", BASELINE_KINDS)
def test_fill_matches_cpu(case, kind):
    n, shape = case[0], case[1]
    rng = np.random.default_rng(seed_of(case, kind))
    inputs = rng.normal(size=(n, *shape)).astype(np.float32)
    baseline = make_baseline(kind, n, shape, rng)
    grid = make_grid(case)
    total = n * grid.num_windows
    d_inputs, d_baseline = _cuda.DeviceBuffer.from_host(inputs), device_baseline(baseline)
    # (start, count, stride): slices, then strided mappings.
    slices = [(0, min(total, 7), 1), (total - 1, 1, 1), (0, min(total, 64), 1)]
    for _ in range(2):
        start = int(rng.integers(0, total + 1))
        slices.append((start, int(rng.integers(0, min(total - start, 16) + 1)), 1))
    for stride in (2, int(rng.integers(1, total + 2))):
        start = int(rng.integers(0, total))
        most = (total - 1 - start) // stride + 1
        slices.append((start, min(most, 16), stride))
    for start, count, stride in slices:
        capacity = max(count, 1) + 2  # two extra slots must stay untouched
        expected = cpu_fill(inputs, grid, baseline, start, count, capacity, stride=stride)
        out = poisoned_device(expected.shape)
        _cuda.fill_occluded_batch(d_inputs, grid, d_baseline, start, count, out, stride=stride)
        np.testing.assert_array_equal(
            out.to_host(), expected, err_msg=f"start={start} count={count} stride={stride}"
        )


def test_fill_never_reads_outside_its_slots_of_the_stream():
    """Values are exact copies: a wrong input or window index shows as a wrong value."""
    shape = (6, 6, 2)
    inputs = np.arange(4 * 36 * 2, dtype=np.float32).reshape(4, *shape)
    grid = _core.WindowGrid(shape, (3, 3, 2), (3, 3, 2))  # 4 windows per input
    out = poisoned_device((4, *shape))
    _cuda.fill_occluded_batch(_cuda.DeviceBuffer.from_host(inputs), grid, -1.0, 1, 4, out, stride=3)
    got = out.to_host()
    for j in range(4):
        n, k = divmod(1 + 3 * j, grid.num_windows)
        r, c = divmod(k, grid.counts[1])
        expected = inputs[n].copy()
        expected[3 * r : 3 * r + 3, 3 * c : 3 * c + 3] = -1.0
        np.testing.assert_array_equal(got[j], expected, err_msg=f"slot {j}")


# ---- incremental fills --------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES[::2], ids=case_id)
@pytest.mark.parametrize("kind", BASELINE_KINDS)
def test_incremental_fill_matches_cpu(case, kind):
    """Consecutive slices, jumps around the stream, then the chunked sweep order
    (batch b: start b, stride C), against the CPU's incremental and full fills."""
    n, shape = case[0], case[1]
    rng = np.random.default_rng(seed_of(case, kind, "incremental"))
    inputs = rng.normal(size=(n, *shape)).astype(np.float32)
    baseline = make_baseline(kind, n, shape, rng)
    grid = make_grid(case)
    total = n * grid.num_windows
    batch = int(rng.integers(1, min(total, 40) + 1))
    d_inputs, d_baseline = _cuda.DeviceBuffer.from_host(inputs), device_baseline(baseline)
    cpu_out = np.full((batch, *shape), np.nan, dtype=np.float32)
    gpu_out = poisoned_device(cpu_out.shape)
    cpu_state, gpu_state = _core.IncrementalFillState(), _cuda.IncrementalFillState()
    calls = [(start, min(batch, total - start), 1) for start in range(0, total, batch)]
    calls += [(int(s), min(batch, total - int(s)), 1) for s in rng.integers(0, total, 3)]
    chunk = math.ceil(total / batch)
    calls += [(b, (total - 1 - b) // chunk + 1, chunk) for b in range(min(chunk, 12))]
    for start, count, stride in calls:
        cpu_fill(inputs, grid, baseline, start, count, batch, cpu_state, cpu_out, stride)
        _cuda.fill_occluded_batch(
            d_inputs, grid, d_baseline, start, count, gpu_out, gpu_state, stride=stride
        )
        got = gpu_out.to_host()
        message = f"start={start}, count={count}, stride={stride}"
        np.testing.assert_array_equal(got, cpu_out, err_msg=message)
        full = cpu_fill(inputs, grid, baseline, start, count, count, stride=stride)
        np.testing.assert_array_equal(got[:count], full, err_msg="incremental != full: " + message)


def test_incremental_state_notices_a_new_baseline_and_reset():
    shape = (8, 8, 3)
    rng = np.random.default_rng(7)
    inputs = rng.normal(size=(2, *shape)).astype(np.float32)
    grid = _core.WindowGrid(shape, (4, 4, 3), (2, 2, 3))
    d_inputs = _cuda.DeviceBuffer.from_host(inputs)
    out = poisoned_device((5, *shape))
    state = _cuda.IncrementalFillState()
    two = np.array(2.0, np.float32)
    _cuda.fill_occluded_batch(d_inputs, grid, 1.0, 0, 5, out, state)
    _cuda.fill_occluded_batch(d_inputs, grid, 2.0, 5, 5, out, state)  # new scalar: full refill
    np.testing.assert_array_equal(out.to_host(), cpu_fill(inputs, grid, two, 5, 5, 5))
    # Same pointers, new content: only reset() makes the state forget the slots.
    inputs2 = inputs + 1
    d_inputs.copy_from_host(inputs2)
    state.reset()
    _cuda.fill_occluded_batch(d_inputs, grid, 2.0, 10, 5, out, state)
    np.testing.assert_array_equal(out.to_host(), cpu_fill(inputs2, grid, two, 10, 5, 5))


def test_incremental_fill_of_more_slots_than_one_plan():
    """Batches above 256 slots are planned in several launches."""
    shape = (16, 16, 1)
    rng = np.random.default_rng(11)
    inputs = rng.normal(size=(3, *shape)).astype(np.float32)
    grid = _core.WindowGrid(shape, (2, 2, 1), (1, 1, 1))  # 225 windows
    d_inputs = _cuda.DeviceBuffer.from_host(inputs)
    batch = 600
    out, state = poisoned_device((batch, *shape)), _cuda.IncrementalFillState()
    cpu_out = np.full((batch, *shape), np.nan, np.float32)
    cpu_state = _core.IncrementalFillState()
    half = np.array(0.5, np.float32)
    for start in (0, 75, 1):
        count = min(batch, 3 * 225 - start)
        _cuda.fill_occluded_batch(d_inputs, grid, 0.5, start, count, out, state)
        cpu_fill(inputs, grid, half, start, count, batch, cpu_state, cpu_out)
        np.testing.assert_array_equal(out.to_host(), cpu_out)


def test_fill_states_are_not_shared_between_cpu_and_device():
    grid = _core.WindowGrid((4,), (2,), (1,))
    inputs = _cuda.DeviceBuffer((1, 4))
    with pytest.raises(TypeError):
        _cuda.fill_occluded_batch(
            inputs, grid, 0.0, 0, 1, _cuda.DeviceBuffer((1, 4)), _core.IncrementalFillState()
        )


# ---- maps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_accumulate_matches_cpu(case, reduction):
    n = case[0]
    rng = np.random.default_rng(seed_of(case, reduction))
    grid = make_grid(case)
    deltas = rng.normal(0, 1, (n, *grid.counts)) * rng.choice([1e-3, 1.0, 1e4])
    for collapsed in {(), collapsible(grid)}:
        expected = _core.accumulate_window_deltas(deltas, grid, reduction, collapsed)
        scale = max(float(np.abs(expected).max()), 1e-30)
        from_host = _cuda.accumulate_window_deltas(deltas, grid, reduction, collapsed)
        assert from_host.dtype == "float32" and from_host.shape == expected.shape
        np.testing.assert_allclose(from_host.to_host(), expected, rtol=1e-6, atol=1e-6 * scale)
        out = poisoned_device(expected.shape)
        result = _cuda.accumulate_window_deltas(
            _cuda.DeviceBuffer.from_host(deltas), grid, reduction, collapsed, out
        )
        assert result.data_ptr == out.data_ptr
        np.testing.assert_allclose(out.to_host(), expected, rtol=1e-6, atol=1e-6 * scale)


def test_accumulate_many_windows_keeps_float64_precision():
    grid = _core.WindowGrid((64, 64, 3), (16, 16, 3), (1, 1, 3))  # 2401 windows
    deltas = np.full((1, *grid.counts), 0.1) + np.linspace(0, 1e-6, grid.num_windows).reshape(
        1, *grid.counts
    )
    expected = _core.accumulate_window_deltas(deltas, grid, "sum", (2,))
    got = _cuda.accumulate_window_deltas(deltas, grid, "sum", (2,)).to_host()
    assert got.shape == (1, 64, 64, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_grid_must_be_a_core_window_grid():
    inputs = _cuda.DeviceBuffer((1, 4))
    with pytest.raises(TypeError):
        _cuda.fill_occluded_batch(inputs, object(), 0.0, 0, 1, _cuda.DeviceBuffer((1, 4)))
    with pytest.raises(TypeError):
        _cuda.accumulate_window_deltas(np.zeros((1, 3)), ((4,), (2,), (1,)))


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


# Every dtype a DeviceBuffer holds (NumPy's names; PyTorch's are the same).
DTYPES = [
    "float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "uint16",
    "uint32", "uint64", "bool",
]  # fmt: skip


def random_values(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    """Random values of ``dtype``: normals for floats, random bits for the others."""
    if np.dtype(dtype).kind == "f":
        return rng.normal(size=shape).astype(dtype)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_device_buffer_of_every_dtype_round_trips(dtype):
    array = random_values(np.random.default_rng(5), (3, 4, 5), dtype)
    buffer = _cuda.DeviceBuffer.from_host(array)
    assert buffer.dtype == dtype and buffer.nbytes == array.nbytes
    back = buffer.to_host()
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)
    assert _cuda.DeviceBuffer((2,), dtype).to_host().dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["scalar", "sample", "input"])
def test_fill_of_every_dtype_matches_the_cpu_bit_for_bit(dtype, kind):
    """Batches in the inputs' own dtype, full and incremental (chunked order), against
    _core's fill of the same dtype; a scalar baseline of a non-float32/64 dtype is a 0-d
    array of that dtype."""
    rng = np.random.default_rng(seed_of(dtype, kind))
    n, shape = 2, (9, 7, 3)
    inputs = random_values(rng, (n, *shape), dtype)
    sizes = {"scalar": (), "sample": shape, "input": (n, *shape)}
    baseline = random_values(rng, sizes[kind], dtype)
    if dtype in ("float32", "float64") and kind == "scalar":
        d_baseline = float(baseline)
    elif kind == "scalar":
        d_baseline = baseline  # the 0-d host array
    else:
        d_baseline = _cuda.DeviceBuffer.from_host(baseline)
    grid = _core.WindowGrid(shape, (3, 2, 3), (2, 2, 3), "cover")
    total = n * grid.num_windows
    d_inputs = _cuda.DeviceBuffer.from_host(inputs)
    capacity = 5
    chunk = math.ceil(total / capacity)
    cpu_out = np.zeros((capacity, *shape), dtype)
    gpu_out = _cuda.DeviceBuffer((capacity, *shape), dtype)
    cpu_state, gpu_state = _core.IncrementalFillState(), _cuda.IncrementalFillState()
    for b in range(chunk):
        count = (total - 1 - b) // chunk + 1
        _core.fill_occluded_batch(
            inputs, grid, baseline, b, count, cpu_out, cpu_state, stride=chunk
        )
        _cuda.fill_occluded_batch(
            d_inputs, grid, d_baseline, b, count, gpu_out, gpu_state, stride=chunk
        )
        got = gpu_out.to_host()
        assert got.tobytes() == cpu_out.tobytes(), f"batch {b}"
        full = _cuda.DeviceBuffer((capacity, *shape), dtype)
        _cuda.fill_occluded_batch(d_inputs, grid, d_baseline, b, count, full, stride=chunk)
        assert full.to_host()[:count].tobytes() == cpu_out[:count].tobytes(), f"full, batch {b}"


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_fill_of_explicit_pairs_matches_the_cpu(dtype):
    """A stream of chosen (input, window) pairs (a drill-down's), repeats and any order:
    full and incremental fills in the chunked order equal _core's fill of the same pairs."""
    rng = np.random.default_rng(seed_of("pairs", dtype))
    n, shape = 3, (10, 9, 2)
    grid = _core.WindowGrid(shape, (3, 3, 2), (2, 2, 2), "cover")
    inputs = random_values(rng, (n, *shape), dtype)
    baseline = np.asarray(rng.normal(), dtype)
    d_baseline = float(baseline) if dtype != "float16" else baseline
    pairs = np.stack(
        [rng.integers(0, n, 40), rng.integers(0, grid.num_windows, 40)], axis=1
    ).astype(np.int64)
    stream_pairs = _cuda.StreamPairs(pairs)
    assert stream_pairs.count == 40 and stream_pairs.device == 0
    d_inputs = _cuda.DeviceBuffer.from_host(inputs)
    capacity = 6
    chunk = math.ceil(len(pairs) / capacity)
    cpu_out = np.zeros((capacity, *shape), dtype)
    gpu_out = _cuda.DeviceBuffer((capacity, *shape), dtype)
    cpu_state, gpu_state = _core.IncrementalFillState(), _cuda.IncrementalFillState()
    for b in range(chunk):
        count = (len(pairs) - 1 - b) // chunk + 1
        _core.fill_occluded_batch(
            inputs, grid, baseline, b, count, cpu_out, cpu_state, stride=chunk, pairs=pairs
        )
        _cuda.fill_occluded_batch(
            d_inputs, grid, d_baseline, b, count, gpu_out, gpu_state, stride=chunk,
            pairs=stream_pairs,
        )  # fmt: skip
        assert gpu_out.to_host()[:count].tobytes() == cpu_out[:count].tobytes(), f"batch {b}"
    with pytest.raises(ValueError, match=r"pairs\[0\]=\(3, 0\) is invalid"):
        bad = _cuda.StreamPairs(np.array([[3, 0]], np.int64))
        _cuda.fill_occluded_batch(d_inputs, grid, d_baseline, 0, 1, gpu_out, pairs=bad)
    with pytest.raises(ValueError, match="pairs: a int32 array"):
        _cuda.StreamPairs(pairs.astype(np.int32))


def _torch_cuda():
    torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
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
    for name in DTYPES:
        if not hasattr(torch, name):  # uint16/32/64: PyTorch 2.3 and later
            continue
        tensor = torch.from_dlpack(_cuda.DeviceBuffer((3,), dtype=name))
        assert tensor.dtype == getattr(torch, name), name
        assert tensor.device.type == "cuda"


def test_fill_on_a_torch_side_stream_then_dlpack():
    torch = _torch_cuda()
    shape = (32, 32, 3)
    inputs = np.random.default_rng(5).normal(size=(2, *shape)).astype(np.float32)
    grid = _core.WindowGrid(shape, (8, 8, 3), (4, 4, 3))
    d_inputs, out = _cuda.DeviceBuffer.from_host(inputs), _cuda.DeviceBuffer((16, *shape))
    zero, one = np.array(0.0, np.float32), np.array(1.0, np.float32)
    side = torch.cuda.Stream()
    _cuda.fill_occluded_batch(d_inputs, grid, 0.0, 3, 16, out, stream=side)
    with torch.cuda.stream(side):
        view = torch.from_dlpack(out)  # made ready for `side` by the stream protocol
        total = view.sum(dim=(1, 2, 3))
    torch.cuda.synchronize()
    expected = cpu_fill(inputs, grid, zero, 3, 16, 16)
    np.testing.assert_allclose(
        total.cpu().numpy(), expected.sum(axis=(1, 2, 3)), rtol=1e-4, atol=1e-3
    )
    # A default-stream consumer gets the data after the side-stream fill as well.
    _cuda.fill_occluded_batch(d_inputs, grid, 1.0, 0, 16, out, stride=2, stream=side.cuda_stream)
    np.testing.assert_array_equal(
        torch.from_dlpack(out).cpu().numpy(), cpu_fill(inputs, grid, one, 0, 16, 16, stride=2)
    )


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
    with pytest.raises(ValueError, match="stream"):
        buffer.__dlpack__(stream=-2)
    capsule = buffer.__dlpack__(stream=-1)  # no synchronisation asked
    assert type(capsule).__name__ == "PyCapsule"


# ---- errors -------------------------------------------------------------------------------


def test_bad_fill_arguments_raise_value_errors():
    grid = _core.WindowGrid((4, 4, 3), (2, 2, 3), (2, 2, 3))  # 4 windows
    inputs = _cuda.DeviceBuffer((2, 4, 4, 3))
    out = _cuda.DeviceBuffer((4, 4, 4, 3))
    with pytest.raises(ValueError, match="start=9"):
        _cuda.fill_occluded_batch(inputs, grid, 0.0, 9, 0, out)
    with pytest.raises(ValueError, match="count=3"):
        _cuda.fill_occluded_batch(inputs, grid, 0.0, 6, 3, out)
    with pytest.raises(ValueError, match="count=3"):
        _cuda.fill_occluded_batch(inputs, grid, 0.0, 0, 3, out, stride=4)  # slot 2 is pair 8
    with pytest.raises(ValueError, match="stride=0"):
        _cuda.fill_occluded_batch(inputs, grid, 0.0, 0, 1, out, stride=0)
    with pytest.raises(ValueError, match="out: shape"):
        _cuda.fill_occluded_batch(inputs, grid, 0.0, 0, 5, out)
    with pytest.raises(ValueError, match="share memory"):
        _cuda.fill_occluded_batch(inputs, grid, 0.0, 0, 2, inputs)
    with pytest.raises(ValueError, match="baseline: shape"):
        _cuda.fill_occluded_batch(inputs, grid, _cuda.DeviceBuffer((3,)), 0, 2, out)
    with pytest.raises(ValueError, match="host array"):
        _cuda.fill_occluded_batch(inputs, grid, np.zeros(3, np.float32), 0, 2, out)
    with pytest.raises(ValueError, match="out: dtype float32 is invalid, expected float64"):
        _cuda.fill_occluded_batch(_cuda.DeviceBuffer((2, 4, 4, 3), "float64"), grid, 0.0, 0, 2, out)
    int_inputs = _cuda.DeviceBuffer((2, 4, 4, 3), "int16")
    int_out = _cuda.DeviceBuffer((4, 4, 4, 3), "int16")
    with pytest.raises(ValueError, match="0-d host array of dtype int16"):
        _cuda.fill_occluded_batch(int_inputs, grid, 0.0, 0, 2, int_out)
    with pytest.raises(ValueError, match="0-d host array of dtype int16"):
        _cuda.fill_occluded_batch(int_inputs, grid, np.array(0, np.int32), 0, 2, int_out)
    with pytest.raises(ValueError, match="multiplies the inputs"):
        mask = _cuda.DeviceBuffer((2, 2, 3), "int16")
        _cuda.fill_occluded_batch(
            int_inputs, grid, mask, 0, 2, int_out, baseline_kind="window_mask"
        )
    with pytest.raises(ValueError, match="inputs: shape"):
        _cuda.fill_occluded_batch(
            inputs, _core.WindowGrid((5, 4, 3), (2, 2, 3), (2, 2, 3)), 0.0, 0, 2, out
        )


def test_bad_buffers_and_maps_raise_value_errors():
    with pytest.raises(ValueError, match="shape"):
        _cuda.DeviceBuffer((0, 3))
    with pytest.raises(ValueError, match="dtype"):
        _cuda.DeviceBuffer((3,), dtype="complex64")
    with pytest.raises(ValueError, match="dtype"):
        _cuda.DeviceBuffer.from_host(np.zeros(3, np.complex64))
    with pytest.raises(ValueError, match="dtype"):
        _cuda.DeviceBuffer.from_host(np.zeros(3, ">f4"))  # not native byte order
    with pytest.raises(ValueError, match="dtype"):
        _cuda.DeviceBuffer((3,), dtype="float32\0x")  # the whole string is parsed
    with pytest.raises(TypeError):
        _cuda.DeviceBuffer((3,), dtype=b"float32")  # only str
    with pytest.raises(ValueError, match="device"):
        _cuda.DeviceBuffer((3,), device=_cuda.device_count())
    buffer = _cuda.DeviceBuffer((2, 3))
    with pytest.raises(ValueError, match="shape"):
        buffer.copy_from_host(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        buffer.copy_from_host(np.zeros((2, 3), np.float64))
    grid = _core.WindowGrid((4, 4, 3), (2, 2, 3), (2, 2, 3))  # counts (2, 2, 1)
    deltas = np.zeros((1, 2, 2, 1))
    with pytest.raises(ValueError, match="deltas: shape"):
        _cuda.accumulate_window_deltas(np.zeros((1, 3, 2, 1)), grid)
    with pytest.raises(ValueError, match="deltas: dtype"):
        _cuda.accumulate_window_deltas(deltas.astype(np.float32), grid)
    with pytest.raises(ValueError, match="reduction"):
        _cuda.accumulate_window_deltas(deltas, grid, "max")
    with pytest.raises(ValueError, match="reduction"):
        _cuda.accumulate_window_deltas(deltas, grid, "sum\0x")
    with pytest.raises(TypeError):
        _cuda.accumulate_window_deltas(deltas, grid, b"sum")
    with pytest.raises(ValueError, match="collapsed_axes"):
        _cuda.accumulate_window_deltas(deltas, grid, "sum", (0,))  # two windows along axis 0
    with pytest.raises(ValueError, match="out: shape"):
        _cuda.accumulate_window_deltas(deltas, grid, "sum", (2,), _cuda.DeviceBuffer((1, 4, 4, 3)))


def test_out_of_memory_is_a_typed_error_and_leaves_the_module_usable():
    # The message names the error, the failed call and where it was made.
    pattern = r"cudaErrorMemoryAllocation .*`cudaMalloc\(.*\)` at .*device_buffer\.cu:\d+"
    with pytest.raises(_cuda.CudaOutOfMemoryError, match=pattern):
        _cuda.DeviceBuffer((1 << 46,))  # 256 TiB
    assert issubclass(_cuda.CudaOutOfMemoryError, _cuda.CudaError)
    assert issubclass(_cuda.CudaError, RuntimeError)
    # The failure was cleared: the next launch does not report it again.
    grid = _core.WindowGrid((2, 2), (1, 1), (1, 1))
    out = _cuda.DeviceBuffer((4, 2, 2))
    _cuda.fill_occluded_batch(
        _cuda.DeviceBuffer.from_host(np.ones((1, 2, 2), np.float32)), grid, 0.0, 0, 4, out
    )
    assert out.to_host().sum() == 12.0
