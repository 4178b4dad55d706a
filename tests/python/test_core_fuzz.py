"""A hypothesis fuzz of every fastocclusion._core entry point against the NumPy reference.

Valid and invalid arguments alike: each call either matches the reference or raises
ValueError/TypeError, and never writes where it must not. Fast by default (a few examples per
test); .ci/sanitizers runs it with many more examples (FASTOCCLUSION_FUZZ_EXAMPLES) against a
_core built with AddressSanitizer and UndefinedBehaviorSanitizer. Derandomized: the same
examples on every run for a given example count.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fastocclusion import _core
from reference import axis_anchors, patch_boxes, reference_accumulate, reference_stream

EXAMPLES = int(os.environ.get("FASTOCCLUSION_FUZZ_EXAMPLES", "10"))
INT64_MAX = 2**63 - 1
fuzz = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def default_threads():
    yield
    _core.set_num_threads(0)


@st.composite
def problem(draw):
    """A small fill/accumulate problem (test_fuzz_parallel_kernels takes the large work)."""
    n = draw(st.integers(1, 3))
    h, w, c = draw(st.integers(1, 9)), draw(st.integers(1, 9)), draw(st.sampled_from([1, 2, 3, 16]))
    patch = (draw(st.integers(1, h)), draw(st.integers(1, w)))
    stride = (draw(st.integers(1, h + 2)), draw(st.integers(1, w + 2)))
    edges = draw(st.sampled_from(["valid", "cover"]))
    kind = draw(st.sampled_from(["scalar", "channel", "image", "input"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n, h, w, c)).astype(np.float32)
    sizes = {"scalar": (), "channel": (c,), "image": (h, w, c), "input": (n, h, w, c)}
    baseline = rng.uniform(-5, 5, sizes[kind]).astype(np.float32)
    grid = _core.PatchGrid(h, w, patch, stride, edges)
    boxes = patch_boxes(h, w, patch, stride, edges)
    return inputs, baseline, grid, boxes


def stream(inputs, baseline, boxes, indices):
    """Samples at the given stream indices, by the reference."""
    return np.stack([reference_stream(inputs, boxes, baseline, int(s), 1)[0] for s in indices]) if len(
        indices
    ) else np.empty((0,) + inputs.shape[1:], np.float32)


@fuzz
@given(problem(), st.data())
def test_fuzz_fill_any_arguments(case, data):
    """Full and strided fills with any start/count/stride: the reference or a ValueError."""
    inputs, baseline, grid, boxes = case
    total = len(inputs) * len(boxes)
    slots = data.draw(st.integers(1, 14), label="slots")
    if data.draw(st.integers(0, 3), label="wild") == 0:  # anything, mostly invalid
        start = data.draw(st.integers(-2, total + 2), label="start")
        count = data.draw(st.integers(-2, min(total, 12) + 2), label="count")
        stride = data.draw(st.integers(-1, total + 2), label="stride")
    else:  # a valid call
        stride = data.draw(st.integers(1, total), label="stride")
        start = data.draw(st.integers(0, total), label="start")
        most = (total - 1 - start) // stride + 1 if start < total else 0
        count = data.draw(st.integers(0, min(most, slots)), label="count")
    out = np.full((slots,) + inputs.shape[1:], np.nan, np.float32)
    indices = [start + j * stride for j in range(max(count, 0))]
    valid = stride >= 1 and 0 <= start <= total and count >= 0 and count <= slots
    valid = valid and all(0 <= s < total for s in indices)
    event("valid call" if valid else "rejected call")
    if not valid:
        with pytest.raises(ValueError):
            _core.fill_occluded_batch(inputs, grid, baseline, start, count, out, stride=stride)
        assert np.isnan(out).all(), "a rejected call wrote into out"
        return
    _core.fill_occluded_batch(inputs, grid, baseline, start, count, out, stride=stride)
    np.testing.assert_array_equal(out[:count], stream(inputs, baseline, boxes, indices))
    assert np.isnan(out[count:]).all(), "slots past count must not be written"


@fuzz
@given(problem(), st.data())
def test_fuzz_fill_incremental_sessions(case, data):
    """Several incremental calls on one state and buffer, each checked against the reference."""
    inputs, baseline, grid, boxes = case
    total = len(inputs) * len(boxes)
    capacity = data.draw(st.integers(1, 8), label="capacity")
    out = np.full((capacity,) + inputs.shape[1:], np.nan, np.float32)
    state = _core.IncrementalFillState()
    for _ in range(data.draw(st.integers(1, 4), label="calls")):
        stride = data.draw(st.integers(1, max(total // 2, 1)), label="stride")
        start = data.draw(st.integers(0, total - 1), label="start")
        most = min(capacity, (total - 1 - start) // stride + 1)
        count = data.draw(st.integers(0, most), label="count")
        before = out.copy()
        if data.draw(st.booleans(), label="reset"):
            state.reset()
        _core.fill_occluded_batch(inputs, grid, baseline, start, count, out, state, stride=stride)
        indices = [start + j * stride for j in range(count)]
        np.testing.assert_array_equal(out[:count], stream(inputs, baseline, boxes, indices))
        np.testing.assert_array_equal(out[count:], before[count:])


@fuzz
@given(st.data())
def test_fuzz_parallel_kernels(data):
    """Work large enough for 2+ threads (parallel.hpp's kMinWorkPerThread = 2^18 floats per
    thread): full, strided and incremental fills and the accumulation."""
    _core.set_num_threads(data.draw(st.sampled_from([2, 3, 4, 64]), label="threads"))
    n = data.draw(st.integers(1, 2), label="n")
    h, w = data.draw(st.integers(32, 48), label="h"), data.draw(st.integers(32, 48), label="w")
    c = data.draw(st.sampled_from([16, 32]), label="c")
    patch = (data.draw(st.integers(1, 6), label="ph"), data.draw(st.integers(1, 6), label="pw"))
    # strides <= 3: at least 81 patches per input, more than the <= 36 slots below
    stride = (data.draw(st.integers(1, 3), label="sh"), data.draw(st.integers(1, 3), label="sw"))
    edges = data.draw(st.sampled_from(["valid", "cover"]), label="edges")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    inputs = rng.normal(size=(n, h, w, c)).astype(np.float32)
    baseline = rng.uniform(-5, 5, data.draw(st.sampled_from([(), (c,), (h, w, c), (n, h, w, c)]))).astype(np.float32)
    grid = _core.PatchGrid(h, w, patch, stride, edges)
    boxes = patch_boxes(h, w, patch, stride, edges)
    total = n * len(boxes)
    count = -(-(2 * 2**18) // inputs[0].size)  # 2 * kMinWorkPerThread floats or more + data.draw(st.integers(0, 4), label="extra")
    out = np.full((count,) + inputs.shape[1:], np.nan, np.float32)
    mode = data.draw(st.sampled_from(["full", "strided", "incremental"]), label="mode")
    step = 1 if mode == "full" else data.draw(st.integers(1, (total - 1) // (count - 1)), label="stride")
    start = data.draw(st.integers(0, total - 1 - (count - 1) * step), label="start")
    indices = [start + j * step for j in range(count)]
    if mode == "incremental":
        state = _core.IncrementalFillState()
        _core.fill_occluded_batch(inputs, grid, baseline, start, count, out, state, stride=step)
        np.testing.assert_array_equal(out, stream(inputs, baseline, boxes, indices))
        start = data.draw(st.integers(0, total - 1 - (count - 1) * step), label="start2")
        indices = [start + j * step for j in range(count)]
        _core.fill_occluded_batch(inputs, grid, baseline, start, count, out, state, stride=step)
    else:
        _core.fill_occluded_batch(inputs, grid, baseline, start, count, out, stride=step)
    np.testing.assert_array_equal(out, stream(inputs, baseline, boxes, indices))

    maps_n = -(-(2 * 2**18) // (h * w)) + data.draw(st.integers(0, 8), label="maps_extra")
    deltas = rng.normal(size=(maps_n, grid.rows, grid.cols))
    reduction = data.draw(st.sampled_from(["sum", "mean"]), label="reduction")
    np.testing.assert_allclose(
        _core.accumulate_patch_deltas(deltas, grid, reduction),
        reference_accumulate(deltas, boxes, h, w, reduction),
        rtol=1e-5,
        atol=1e-5,
    )


@fuzz
@given(problem(), st.sampled_from(["sum", "mean"]), st.booleans(), st.integers(0, 2**32 - 1))
def test_fuzz_accumulate(case, reduction, give_out, seed):
    inputs, _, grid, boxes = case
    n, h, w = inputs.shape[:3]
    deltas = np.random.default_rng(seed).normal(size=(n, grid.rows, grid.cols))
    out = np.full((n, h, w), np.nan, np.float32) if give_out else None
    maps = _core.accumulate_patch_deltas(deltas, grid, reduction, out)
    if give_out:
        assert maps is out or np.shares_memory(maps, out)
    expected = reference_accumulate(deltas, boxes, h, w, reduction)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5)


@fuzz
@given(problem(), st.data())
def test_fuzz_accumulate_bad_shapes(case, data):
    inputs, _, grid, _ = case
    n, h, w = inputs.shape[:3]
    shape = data.draw(st.tuples(st.integers(0, 3), st.integers(0, grid.rows + 1), st.integers(0, grid.cols + 1)))
    out_shape = data.draw(st.sampled_from([(n, h, w), (n, h + 1, w), (n + 1, h, w), (n, w, h)]))
    deltas = np.zeros(shape)
    out = np.full(out_shape, np.nan, np.float32)
    if shape == (shape[0], grid.rows, grid.cols) and shape[0] >= 1 and out_shape == (shape[0], h, w):
        _core.accumulate_patch_deltas(deltas, grid, "sum", out)
        np.testing.assert_array_equal(out, 0)
        return
    with pytest.raises(ValueError):
        _core.accumulate_patch_deltas(deltas, grid, "sum", out)


SIZE = st.one_of(
    st.integers(-2, 80),
    st.integers(2**62, INT64_MAX),
    st.sampled_from([2**31, 2**32 + 1, INT64_MAX // 2, INT64_MAX - 5, INT64_MAX]),
)


def exact_count(length, patch, stride, edges):
    count = -(-(length - patch + 1) // stride)
    if edges == "cover":
        last = (count - 1) * stride
        if last + patch < length and last + stride < length:
            count += 1
    return count


@fuzz
@given(st.tuples(SIZE, SIZE, SIZE), st.tuples(SIZE, SIZE, SIZE), st.sampled_from(["valid", "cover"]))
def test_fuzz_patch_grid(rows_axis, cols_axis, edges):
    """Any int64 sizes: exact counts, or a ValueError for invalid axes and counts past int64."""
    args = (rows_axis[0], cols_axis[0], (rows_axis[1], cols_axis[1]), (rows_axis[2], cols_axis[2]), edges)
    if not all(length >= 1 and 1 <= patch <= length and stride >= 1 for length, patch, stride in (rows_axis, cols_axis)):
        with pytest.raises(ValueError):
            _core.PatchGrid(*args)
        return
    rows, cols = exact_count(*rows_axis, edges), exact_count(*cols_axis, edges)
    if rows * cols > INT64_MAX:
        with pytest.raises(ValueError, match="int64"):
            _core.PatchGrid(*args)
        return
    grid = _core.PatchGrid(*args)
    assert (grid.rows, grid.cols, grid.num_patches) == (rows, cols, rows * cols)
    if rows <= 100:
        assert grid.row_spans() == axis_anchors(rows_axis[0], rows_axis[1], rows_axis[2], edges)
    if cols <= 100:
        assert grid.col_spans() == axis_anchors(cols_axis[0], cols_axis[1], cols_axis[2], edges)


OPTION = st.one_of(
    st.sampled_from(["valid", "cover", "sum", "mean"]),
    st.text(max_size=12),
    st.sampled_from(["valid", "cover", "sum", "mean"]).flatmap(
        lambda name: st.tuples(st.text(max_size=3), st.text(max_size=3)).map(lambda t: t[0] + name + t[1])
    ),
    st.binary(max_size=8),
)


@fuzz
@given(OPTION, OPTION)
def test_fuzz_string_options(edges, reduction):
    """Exactly the option names are accepted; other str is a ValueError, bytes a TypeError."""
    if not isinstance(edges, str):
        with pytest.raises(TypeError):
            _core.PatchGrid(4, 4, (2, 2), (2, 2), edges)
        return
    if edges not in ("valid", "cover"):
        with pytest.raises(ValueError, match="edges="):
            _core.PatchGrid(4, 4, (2, 2), (2, 2), edges)
        return
    grid = _core.PatchGrid(4, 4, (2, 2), (2, 2), edges)
    deltas = np.ones((1, grid.rows, grid.cols))
    if not isinstance(reduction, str):
        with pytest.raises(TypeError):
            _core.accumulate_patch_deltas(deltas, grid, reduction)
    elif reduction not in ("sum", "mean"):
        with pytest.raises(ValueError, match="reduction="):
            _core.accumulate_patch_deltas(deltas, grid, reduction)
    else:
        np.testing.assert_array_equal(_core.accumulate_patch_deltas(deltas, grid, reduction), 1)
