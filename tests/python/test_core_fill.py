"""fastocclusion._core.fill_occluded_batch (full and incremental) against the NumPy reference,
over window grids of rank 1..5 (design §7) and the 2-D families of design §2."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import patch_boxes, reference_stream, reference_stream_nd, window_boxes

from fastocclusion import _core

# "channel" is a vector over the last axis, broadcast to the sample shape by the caller (the
# core takes (), the sample shape or (N,) + the sample shape).
BASELINE_KINDS = ["scalar", "channel", "sample", "input"]


def make_baseline(kind: str, shape, rng: np.random.Generator) -> np.ndarray:
    """The baseline handed to the core, float32 and contiguous, for inputs of `shape`."""
    n, sample = shape[0], tuple(shape[1:])
    if kind == "channel":
        return np.ascontiguousarray(
            np.broadcast_to(rng.uniform(-5, 5, sample[-1:]), sample), np.float32
        )
    sizes = {"scalar": (), "sample": sample, "input": (n,) + sample}
    return rng.uniform(-5, 5, sizes[kind]).astype(np.float32)


def grid_and_boxes(shape, window, stride, edges):
    return _core.WindowGrid(shape, window, stride, edges), window_boxes(
        shape, window, stride, edges
    )


@st.composite
def fill_case(draw):
    """n inputs of a random sample shape of rank 1..5 with per-axis windows, strides and edges."""
    n = draw(st.integers(1, 3))
    rank = draw(st.integers(1, 5))
    most = {1: 16, 2: 9, 3: 6, 4: 4, 5: 3}[rank]
    shape, window, stride, edges = [], [], [], []
    for _ in range(rank):
        length = draw(st.integers(1, most))
        w = draw(st.integers(1, length))
        shape.append(length)
        window.append(w)
        stride.append(draw(st.integers(1, w + 2)))
        edges.append(draw(st.sampled_from(["valid", "cover"])))
    kind = draw(st.sampled_from(BASELINE_KINDS))
    seed = draw(st.integers(0, 2**32 - 1))
    return (n, *shape), tuple(window), tuple(stride), edges, kind, seed


def build_case(case):
    """Inputs, baseline, grid, window boxes and stream length of a fill_case() draw."""
    shape, window, stride, edges, kind, seed = case
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=shape).astype(np.float32)
    baseline = make_baseline(kind, shape, rng)
    grid, boxes = grid_and_boxes(shape[1:], window, stride, edges)
    return inputs, baseline, grid, boxes, shape[0] * len(boxes)


def expected_slice(inputs, boxes, baseline, start, count, stride=1):
    return reference_stream_nd(inputs, boxes, baseline, [start + j * stride for j in range(count)])


# ---- full fills ---------------------------------------------------------------------------


@given(fill_case(), st.data())
def test_random_slices_match_reference(case, data):
    inputs, baseline, grid, boxes, total = build_case(case)
    shape = inputs.shape
    start = data.draw(st.integers(0, total))
    count = data.draw(st.integers(0, total - start))
    extra = data.draw(st.integers(0, 3))
    out = np.full((max(count + extra, 1),) + shape[1:], np.nan, dtype=np.float32)
    inputs_before, baseline_before = inputs.copy(), baseline.copy()
    _core.fill_occluded_batch(inputs, grid, baseline, start, count, out)
    np.testing.assert_array_equal(
        out[:count], expected_slice(inputs, boxes, baseline, start, count)
    )
    assert np.isnan(out[count:]).all(), "slots past count must not be written"
    np.testing.assert_array_equal(inputs, inputs_before)
    np.testing.assert_array_equal(baseline, baseline_before)


@pytest.mark.parametrize("kind", BASELINE_KINDS)
@pytest.mark.parametrize(
    ("shape", "window", "stride", "edges"),
    [
        ((1, 1, 1, 1), (1, 1, 1), (1, 1, 1), "valid"),  # 1x1 image
        ((2, 5, 4, 1), (2, 3, 1), (1, 1, 1), "cover"),  # C = 1
        ((1, 6, 6, 16), (3, 3, 16), (2, 2, 16), "cover"),  # C = 16
        ((3, 4, 7, 2), (4, 7, 2), (1, 1, 1), "valid"),  # window = sample
        ((2, 9, 9, 3), (2, 2, 3), (5, 4, 3), "valid"),  # stride > window: gaps
        ((2, 9, 9, 3), (2, 2, 3), (5, 4, 3), "cover"),
        ((2, 9, 9, 3), (2, 2, 1), (5, 4, 1), ["cover", "valid", "valid"]),  # windows per channel
        ((1, 12), (5,), (3,), "cover"),  # tabular
        ((2, 12, 4), (3, 4), (2, 1), "valid"),  # time series
        (
            (2, 6, 5, 7, 2),
            (2, 3, 4, 2),
            (2, 2, 3, 2),
            ["cover", "valid", "cover", "valid"],
        ),  # volume
        ((1, 3, 2, 3, 2, 3), (2, 1, 2, 2, 3), (1, 2, 1, 1, 1), "cover"),  # rank 5
        ((2, 1, 1, 1, 1, 1), (1, 1, 1, 1, 1), (1, 1, 1, 1, 1), "valid"),  # one element
    ],
)
def test_edge_cases_whole_stream(shape, window, stride, edges, kind):
    rng = np.random.default_rng(7)
    inputs = rng.normal(size=shape).astype(np.float32)
    baseline = make_baseline(kind, shape, rng)
    grid, boxes = grid_and_boxes(shape[1:], window, stride, edges)
    total = shape[0] * len(boxes)
    out = np.empty((total,) + shape[1:], dtype=np.float32)
    _core.fill_occluded_batch(inputs, grid, baseline, 0, total, out)
    np.testing.assert_array_equal(out, expected_slice(inputs, boxes, baseline, 0, total))


def test_spec_window_order_2x2():
    for sample in ((2, 2), (2, 2, 1)):  # a plane and a one-channel image
        inputs = (np.arange(4, dtype=np.float32) + 1).reshape((1,) + sample)
        grid = _core.WindowGrid(sample, (1,) * len(sample), (1,) * len(sample))
        out = np.empty((4,) + sample, dtype=np.float32)
        _core.fill_occluded_batch(inputs, grid, np.array(0, np.float32), 0, 4, out)
        # Window k zeroes pixel (0,0), (0,1), (1,0), (1,1) in turn.
        for k in range(4):
            expected = inputs[0].ravel().copy()
            expected[k] = 0
            np.testing.assert_array_equal(out[k].ravel(), expected)


def test_count_zero_writes_nothing():
    inputs = np.ones((1, 3, 3, 1), np.float32)
    grid = _core.WindowGrid((3, 3, 1), (1, 1, 1), (1, 1, 1))
    out = np.full((2, 3, 3, 1), 7, np.float32)
    _core.fill_occluded_batch(inputs, grid, np.zeros((), np.float32), 9, 0, out)
    assert (out == 7).all()


def test_fills_a_host_buffer():
    inputs = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype(np.float32)
    grid, boxes = grid_and_boxes((5, 5, 3), (2, 2, 3), (2, 2, 3), "cover")
    buf = _core.HostBuffer([6, 5, 5, 3])
    minus_one = np.array(-1, np.float32)
    _core.fill_occluded_batch(inputs, grid, minus_one, 10, 6, np.asarray(buf))
    np.testing.assert_array_equal(np.asarray(buf), expected_slice(inputs, boxes, minus_one, 10, 6))


# ---- the families of design §7 give the 2-D definition's samples --------------------------------


@given(
    st.integers(1, 3),
    st.integers(1, 8),
    st.integers(1, 8),
    st.sampled_from([1, 2, 3, 16]),
    st.data(),
)
def test_images_with_channel_wide_windows_equal_the_planar_stream(n, h, w, c, data):
    """Images (N, H, W, C) with windows (ph, pw, C), strides (sh, sw, C): the samples of the
    2-D patches over H and W (reference_stream, a per-channel baseline broadcast by the caller)."""
    patch = (data.draw(st.integers(1, h)), data.draw(st.integers(1, w)))
    stride = (data.draw(st.integers(1, h + 2)), data.draw(st.integers(1, w + 2)))
    edges = data.draw(st.sampled_from(["valid", "cover"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    inputs = rng.normal(size=(n, h, w, c)).astype(np.float32)
    planar_baseline = rng.uniform(
        -5, 5, data.draw(st.sampled_from([(), (c,), (h, w, c), (n, h, w, c)]))
    )
    planar_baseline = planar_baseline.astype(np.float32)
    core_baseline = planar_baseline
    if planar_baseline.shape == (c,):
        core_baseline = np.ascontiguousarray(np.broadcast_to(planar_baseline, (h, w, c)))
    grid = _core.WindowGrid((h, w, c), patch + (c,), stride + (c,), edges)
    boxes = patch_boxes(h, w, patch, stride, edges)
    total = n * len(boxes)
    assert grid.num_windows == len(boxes)
    out = np.empty((total, h, w, c), np.float32)
    _core.fill_occluded_batch(inputs, grid, core_baseline, 0, total, out)
    np.testing.assert_array_equal(out, reference_stream(inputs, boxes, planar_baseline, 0, total))


def test_time_series_and_tabular_equal_the_planar_stream():
    rng = np.random.default_rng(12)
    series = rng.normal(size=(2, 12, 4)).astype(np.float32)
    baseline = rng.normal(size=(12, 4)).astype(np.float32)
    grid = _core.WindowGrid((12, 4), (3, 2), (2, 1), "cover")
    boxes = patch_boxes(12, 4, (3, 2), (2, 1), "cover")
    out = np.empty((2 * len(boxes), 12, 4), np.float32)
    _core.fill_occluded_batch(series, grid, baseline, 0, len(out), out)
    np.testing.assert_array_equal(out, reference_stream(series, boxes, baseline, 0, len(out)))
    rows = rng.normal(size=(3, 10)).astype(np.float32)
    grid = _core.WindowGrid((10,), (3,), (2,))
    boxes = patch_boxes(1, 10, (1, 3), (1, 2))  # the (1, W) plane of design §2
    out = np.empty((3 * len(boxes), 10), np.float32)
    _core.fill_occluded_batch(rows, grid, np.array(9, np.float32), 0, len(out), out)
    np.testing.assert_array_equal(
        out, reference_stream(rows, boxes, np.array(9, np.float32), 0, len(out))
    )


# ---- every dtype: values copied bit for bit ------------------------------------------------

DTYPES = [np.float64, np.float16, np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64,
          np.bool_]  # fmt: skip


def _as(values: np.ndarray, dtype) -> np.ndarray:
    """Random-looking values of ``dtype`` from float ``values`` (integers scaled, bools by
    sign)."""
    if np.dtype(dtype).kind == "f":
        return np.asarray(values.astype(dtype))
    if dtype is np.bool_:
        return np.asarray(values > 0)
    info = np.iinfo(dtype)
    return np.asarray(np.clip(values * 40, info.min, info.max).astype(dtype))


@settings(max_examples=60)
@given(fill_case(), st.sampled_from(DTYPES), st.integers(1, 7), st.data())
def test_every_dtype_fills_its_values_bit_for_bit(case, dtype, capacity, data):
    """Inputs and baseline of any dtype of 1, 2, 4 or 8 bytes: full and incremental fills
    equal the reference stream of those values (compared as bytes), in a buffer of the
    inputs' dtype."""
    inputs32, baseline32, grid, boxes, total = build_case(case)
    inputs, baseline = _as(inputs32, dtype), _as(baseline32, dtype)
    out = np.zeros((capacity,) + inputs.shape[1:], dtype)
    state = _core.IncrementalFillState()
    chunk = -(-total // capacity)
    for b in range(chunk):
        count = -(-(total - b) // chunk)
        indices = [b + j * chunk for j in range(count)]
        expected = reference_stream_nd(inputs, boxes, baseline, indices, keep_dtype=True)
        _core.fill_occluded_batch(inputs, grid, baseline, b, count, out, state, stride=chunk)
        assert out[:count].tobytes() == expected.tobytes()
    full = np.zeros_like(out)
    start = data.draw(st.integers(0, total - 1))
    count = min(capacity, total - start)
    _core.fill_occluded_batch(inputs, grid, baseline, start, count, full)
    indices = list(range(start, start + count))
    expected = reference_stream_nd(inputs, boxes, baseline, indices, keep_dtype=True)
    assert full[:count].tobytes() == expected.tobytes()


@pytest.mark.parametrize("kind", ["per_window_scale", "window_mask"])
def test_baselines_that_multiply_need_floats(kind):
    grid = _core.WindowGrid((4, 4), (2, 2), (2, 2), ["valid", "valid"])
    inputs = np.ones((1, 4, 4), np.int32)
    shape = (1, 2, 2) if kind == "per_window_scale" else (2, 2)
    out = np.zeros((4, 4, 4), np.int32)
    with pytest.raises(ValueError, match="baseline: this kind multiplies the inputs"):
        _core.fill_occluded_batch(inputs, grid, np.ones(shape, np.int32), 0, 4, out,
                                  baseline_kind=kind)  # fmt: skip
    assert not out.any()
    doubles = np.full((1, 4, 4), 3.0)
    out64 = np.zeros((4, 4, 4))
    _core.fill_occluded_batch(doubles, grid, np.full(shape, 0.5), 0, 4, out64, baseline_kind=kind)
    assert out64[0, 0, 0] == 1.5 and out64[0, 3, 3] == 3.0


# ---- incremental fills --------------------------------------------------------------------


@settings(max_examples=40)
@given(fill_case(), st.integers(1, 9), st.booleans(), st.data())
def test_incremental_fills_equal_full_fills(case, capacity, consecutive, data):
    inputs, baseline, grid, _, total = build_case(case)
    shape = inputs.shape
    batch = np.full((capacity,) + shape[1:], np.nan, dtype=np.float32)
    full = np.empty_like(batch)
    state = _core.IncrementalFillState()
    if consecutive:
        slices = [(s, min(capacity, total - s)) for s in range(0, total, capacity)] * 2
    else:
        slices = []
        for _ in range(6):
            start = data.draw(st.integers(0, total - 1), label="start")
            slices.append(
                (start, data.draw(st.integers(1, min(capacity, total - start)), label="count"))
            )
    for start, count in slices:
        _core.fill_occluded_batch(inputs, grid, baseline, start, count, batch, state)
        _core.fill_occluded_batch(inputs, grid, baseline, start, count, full)
        np.testing.assert_array_equal(batch[:count], full[:count], err_msg=f"slice {start}+{count}")


@pytest.mark.parametrize("kind", BASELINE_KINDS)
@pytest.mark.parametrize(
    ("shape", "window", "stride"),
    [
        ((2, 32, 32, 16), (8, 8, 16), (4, 4, 16)),  # 64 slots of 2^14 floats
        ((2, 12, 16, 16, 4), (4, 6, 6, 4), (3, 5, 5, 4)),  # a volume, 64 slots of 12288 floats
    ],
)
def test_large_batches_take_the_threaded_path(shape, window, stride, kind):
    # 64 slots above the kernels' threading threshold (2^18 floats per thread), full and
    # incremental.
    rng = np.random.default_rng(11)
    inputs = rng.normal(size=shape).astype(np.float32)
    baseline = make_baseline(kind, shape, rng)
    grid, boxes = grid_and_boxes(shape[1:], window, stride, "cover")
    total = shape[0] * len(boxes)
    batch = np.empty((64,) + shape[1:], np.float32)
    full = np.empty_like(batch)
    state = _core.IncrementalFillState()
    for start in range(0, total, 64):
        count = min(64, total - start)
        _core.fill_occluded_batch(inputs, grid, baseline, start, count, batch, state)
        _core.fill_occluded_batch(inputs, grid, baseline, start, count, full)
        expected = expected_slice(inputs, boxes, baseline, start, count)
        np.testing.assert_array_equal(full[:count], expected)
        np.testing.assert_array_equal(batch[:count], expected)


def test_incremental_reset_after_input_change():
    rng = np.random.default_rng(3)
    inputs = rng.normal(size=(1, 6, 6, 2)).astype(np.float32)
    grid, boxes = grid_and_boxes((6, 6, 2), (2, 2, 2), (2, 2, 2), "valid")
    batch = np.empty((4, 6, 6, 2), np.float32)
    state = _core.IncrementalFillState()
    baseline = np.array(0, np.float32)
    _core.fill_occluded_batch(inputs, grid, baseline, 0, 4, batch, state)
    inputs[...] = rng.normal(size=inputs.shape)  # same pointer, new content: the caller resets
    state.reset()
    _core.fill_occluded_batch(inputs, grid, baseline, 4, 4, batch, state)
    np.testing.assert_array_equal(batch, expected_slice(inputs, boxes, baseline, 4, 4))


def test_incremental_state_follows_a_new_buffer_and_a_new_grid():
    rng = np.random.default_rng(4)
    inputs = rng.normal(size=(2, 5, 5, 1)).astype(np.float32)
    grid, boxes = grid_and_boxes((5, 5, 1), (2, 2, 1), (1, 1, 1), "valid")
    zero = np.array(0, np.float32)
    state = _core.IncrementalFillState()
    first = np.empty((3, 5, 5, 1), np.float32)
    second = np.full((3, 5, 5, 1), np.nan, np.float32)
    _core.fill_occluded_batch(inputs, grid, zero, 0, 3, first, state)
    _core.fill_occluded_batch(inputs, grid, zero, 3, 3, second, state)  # other pointer
    np.testing.assert_array_equal(second, expected_slice(inputs, boxes, zero, 3, 3))
    # Same buffer and slice, another grid over the same sample shape: other windows.
    other, other_boxes = grid_and_boxes((5, 5, 1), (3, 2, 1), (1, 2, 1), "cover")
    _core.fill_occluded_batch(inputs, other, zero, 3, 3, second, state)
    np.testing.assert_array_equal(second, expected_slice(inputs, other_boxes, zero, 3, 3))


# ---- bad inputs: ValueError with a useful message, never a crash --------------------------


def good_args():
    inputs = np.zeros((2, 4, 4, 3), np.float32)
    grid = _core.WindowGrid((4, 4, 3), (2, 2, 3), (2, 2, 3))  # 4 windows, 8 pairs
    return dict(
        inputs=inputs,
        grid=grid,
        baseline=np.zeros((), np.float32),
        start=0,
        count=4,
        out=np.zeros((4, 4, 4, 3), np.float32),
    )


def _unaligned(shape):
    raw = np.zeros(int(np.prod(shape)) * 4 + 1, np.uint8)
    view = raw[1:].view(np.float32).reshape(shape)
    assert not view.flags.aligned
    return view


def _read_only(shape):
    a = np.zeros(shape, np.float32)
    a.flags.writeable = False
    return a


BAD_CASES = {
    # Inputs of another dtype need a baseline and an out of theirs (the fills copy values).
    "inputs float64": (dict(inputs=np.zeros((2, 4, 4, 3))), ["baseline", "float32", "float64"]),
    "inputs int32": (dict(inputs=np.zeros((2, 4, 4, 3), np.int32)), ["baseline", "int32"]),
    "inputs complex64": (
        dict(inputs=np.zeros((2, 4, 4, 3), np.complex64)),
        ["inputs", "complex64", "expected numbers"],
    ),
    "inputs 16 bytes": (
        dict(inputs=np.zeros((2, 4, 4, 3), np.longdouble)),
        ["inputs", "expected numbers of 1, 2, 4 or 8 bytes"],
    ),
    "inputs without batch axis": (
        dict(inputs=np.zeros((4, 4, 3), np.float32)),
        ["inputs", "(4, 4, 3)", "(N, 4, 4, 3)"],
    ),
    "inputs rank 5": (
        dict(inputs=np.zeros((1, 2, 4, 4, 3), np.float32)),
        ["inputs", "(N, 4, 4, 3)"],
    ),
    "inputs empty": (
        dict(inputs=np.zeros((0, 4, 4, 3), np.float32), count=0),
        ["inputs", "N >= 1"],
    ),
    "inputs non-contiguous": (
        dict(inputs=np.zeros((2, 4, 8, 3), np.float32)[:, :, ::2]),
        ["inputs", "contiguous"],
    ),
    "inputs fortran": (
        dict(inputs=np.asfortranarray(np.zeros((2, 4, 4, 3), np.float32))),
        ["inputs", "contiguous"],
    ),
    "inputs unaligned": (dict(inputs=_unaligned((2, 4, 4, 3))), ["inputs", "aligned"]),
    "grid mismatch": (
        dict(inputs=np.zeros((2, 5, 4, 3), np.float32), out=np.zeros((4, 5, 4, 3), np.float32)),
        ["inputs", "(2, 5, 4, 3)", "(N, 4, 4, 3)", "grid"],
    ),
    "baseline float64": (dict(baseline=np.zeros(())), ["baseline", "float64"]),
    "baseline shape": (
        dict(baseline=np.zeros((4,), np.float32)),
        ["baseline", "(4,)", "(4, 4, 3)"],
    ),
    # A per-channel vector is the caller's to broadcast (design §5 is the front-end's).
    "baseline per channel": (
        dict(baseline=np.zeros((3,), np.float32)),
        ["baseline", "(3,)", "(4, 4, 3)"],
    ),
    "baseline image shape": (
        dict(baseline=np.zeros((4, 4, 2), np.float32)),
        ["baseline", "(4, 4, 2)"],
    ),
    "baseline batch": (
        dict(baseline=np.zeros((3, 4, 4, 3), np.float32)),
        ["baseline", "(3, 4, 4, 3)", "(2, 4, 4, 3)"],
    ),
    "baseline non-contiguous": (
        dict(baseline=np.zeros((4, 4, 6), np.float32)[:, :, ::2]),
        ["baseline", "contiguous"],
    ),
    "start negative": (dict(start=-1), ["start=-1"]),
    "start past end": (dict(start=9, count=0), ["start=9", "8"]),
    "count past end": (dict(start=6, count=3), ["count=3", "start=6", "8"]),
    "count negative": (dict(count=-2), ["count=-2"]),
    "out too small": (
        dict(count=4, out=np.zeros((3, 4, 4, 3), np.float32)),
        ["out", "(3, 4, 4, 3)", "count=4"],
    ),
    "out wrong sample": (
        dict(out=np.zeros((4, 4, 3, 3), np.float32)),
        ["out", "(4, 4, 3, 3)", "(B, 4, 4, 3)"],
    ),
    "out rank 3": (dict(out=np.zeros((4, 4, 12), np.float32)), ["out", "(4, 4, 12)"]),
    "out float64": (dict(out=np.zeros((4, 4, 4, 3))), ["out", "float64"]),
    "out read-only": (dict(out=_read_only((4, 4, 4, 3))), ["out", "writable"]),
    "out non-contiguous": (
        dict(out=np.zeros((8, 4, 4, 3), np.float32)[::2]),
        ["out", "contiguous"],
    ),
    "out unaligned": (dict(out=_unaligned((4, 4, 4, 3))), ["out", "aligned"]),
}


@pytest.mark.parametrize("incremental", [False, True])
@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_arguments_raise_value_error(name, incremental):
    changes, words = BAD_CASES[name]
    args = good_args()
    args.update(changes)
    out_before = np.array(args["out"], copy=True)
    state = _core.IncrementalFillState() if incremental else None
    with pytest.raises(ValueError) as info:
        _core.fill_occluded_batch(**args, state=state)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    np.testing.assert_array_equal(args["out"], out_before)  # nothing written on failure


@pytest.mark.parametrize("alias", ["inputs", "inputs view", "baseline"])
def test_out_aliasing_inputs_or_baseline_raises(alias):
    args = good_args()
    storage = np.zeros((4, 4, 4, 3), np.float32)
    if alias == "inputs":
        args["inputs"] = storage[:2]
    elif alias == "inputs view":
        args["inputs"] = storage[2:]  # overlaps out's last two slots
    else:
        args["baseline"] = storage[0]
    args["out"] = storage
    with pytest.raises(ValueError, match="out.*share memory"):
        _core.fill_occluded_batch(**args)


def test_wrong_python_types_raise_type_error():
    args = good_args()
    with pytest.raises(TypeError):
        _core.fill_occluded_batch(**{**args, "grid": "not a grid"})
    with pytest.raises(TypeError):
        _core.fill_occluded_batch(**{**args, "start": "zero"})
    with pytest.raises(TypeError):
        _core.fill_occluded_batch(**{**args, "state": object()})


# ---- strided batches (slot j holds stream index start + j * stride) ------------------------


@given(fill_case(), st.data(), st.booleans())
def test_strided_slots_match_reference(case, data, incremental):
    inputs, baseline, grid, boxes, total = build_case(case)
    shape = inputs.shape
    capacity = data.draw(st.integers(1, 6))
    chunk = -(-total // capacity)  # the sweep's order: batch b holds b + j * chunk
    out = np.full((capacity,) + shape[1:], np.nan, dtype=np.float32)
    state = _core.IncrementalFillState() if incremental else None
    for b in range(chunk):
        count = -(-(total - b) // chunk)
        _core.fill_occluded_batch(inputs, grid, baseline, b, count, out, state, stride=chunk)
        np.testing.assert_array_equal(
            out[:count], expected_slice(inputs, boxes, baseline, b, count, chunk)
        )


def test_strided_slot_past_the_stream_raises():
    inputs = np.zeros((2, 4, 4, 1), np.float32)
    grid = _core.WindowGrid((4, 4, 1), (2, 2, 1), (2, 2, 1))  # 4 windows, 8 pairs
    out = np.zeros((3, 4, 4, 1), np.float32)
    zero = np.array(0, np.float32)
    _core.fill_occluded_batch(inputs, grid, zero, 1, 2, out, stride=6)  # indices 1 and 7
    with pytest.raises(ValueError, match="stride=6"):
        _core.fill_occluded_batch(inputs, grid, zero, 2, 2, out, stride=6)  # index 8
    with pytest.raises(ValueError, match="stride=0"):
        _core.fill_occluded_batch(inputs, grid, zero, 0, 1, out, stride=0)
