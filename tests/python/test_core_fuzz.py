"""A hypothesis fuzz of every fastocclusion._core entry point against the NumPy reference.

Valid and invalid arguments alike, over window grids of rank 1..5 with per-axis windows,
strides and edge modes: each call either matches the reference or raises ValueError/TypeError,
and never writes where it must not. Fast by default (a few examples per test); .ci/sanitizers
runs it with many more examples (FASTOCCLUSION_FUZZ_EXAMPLES) against a _core built with
AddressSanitizer and UndefinedBehaviorSanitizer. Derandomized: the same examples on every run
for a given example count.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reference import axis_anchors, reference_accumulate_nd, reference_stream_nd, window_boxes

from fastocclusion import _core

EXAMPLES = int(os.environ.get("FASTOCCLUSION_FUZZ_EXAMPLES", "10"))
INT64_MAX = 2**63 - 1
fuzz = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EDGES = st.sampled_from(["valid", "cover"])


@pytest.fixture(autouse=True)
def default_threads():
    yield
    _core.set_num_threads(0)


@st.composite
def axes(draw, rank=None, most=None, full_axes=False):
    """(shape, window, stride, edges) of rank 1..5, at most ~400 values per sample. With
    full_axes, about one axis in four has one window over all of it (collapsible)."""
    rank = draw(st.integers(1, 5)) if rank is None else rank
    most = {1: 16, 2: 9, 3: 6, 4: 4, 5: 3}[rank] if most is None else most
    shape, window, stride, edges = [], [], [], []
    for _ in range(rank):
        length = draw(st.integers(1, most))
        whole = full_axes and draw(st.integers(0, 3)) == 0
        w = length if whole else draw(st.integers(1, length))
        shape.append(length)
        window.append(w)
        stride.append(draw(st.integers(1, w + 2)))
        edges.append(draw(EDGES))
    if len(set(edges)) == 1 and draw(st.booleans()):
        edges = edges[0]  # one str for every axis
    return tuple(shape), tuple(window), tuple(stride), edges


def baseline_for(kind, n, sample, rng):
    if kind == "channel":  # a per-channel vector, broadcast by the caller
        return np.ascontiguousarray(
            np.broadcast_to(rng.uniform(-5, 5, sample[-1:]), sample), np.float32
        )
    sizes = {"scalar": (), "sample": sample, "input": (n,) + sample}
    return rng.uniform(-5, 5, sizes[kind]).astype(np.float32)


@st.composite
def problem(draw):
    """A small fill/accumulate problem (test_fuzz_parallel_kernels takes the large work)."""
    n = draw(st.integers(1, 3))
    shape, window, stride, edges = draw(axes())
    kind = draw(st.sampled_from(["scalar", "channel", "sample", "input"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    inputs = rng.normal(size=(n,) + shape).astype(np.float32)
    baseline = baseline_for(kind, n, shape, rng)
    grid = _core.WindowGrid(shape, window, stride, edges)
    boxes = window_boxes(shape, window, stride, edges)
    return inputs, baseline, grid, boxes


def stream(inputs, baseline, boxes, indices):
    """Samples at the given stream indices, by the reference."""
    return reference_stream_nd(inputs, boxes, baseline, indices)


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
    event(f"rank {grid.rank}")
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
    thread): full, strided and incremental fills and the accumulation, on images (H, W, C)
    with windows (ph, pw, C) or volumes (D, H, W, C) with 3-D windows."""
    _core.set_num_threads(data.draw(st.sampled_from([2, 3, 4, 64]), label="threads"))
    n = data.draw(st.integers(1, 2), label="n")
    if data.draw(st.booleans(), label="volume"):
        lengths = tuple(data.draw(st.integers(16, 20), label="side") for _ in range(3))
        c = data.draw(st.sampled_from([4, 8]), label="c")
    else:
        lengths = tuple(data.draw(st.integers(32, 48), label="side") for _ in range(2))
        c = data.draw(st.sampled_from([16, 32]), label="c")
    shape = lengths + (c,)
    window = tuple(data.draw(st.integers(1, 5), label="window") for _ in lengths) + (c,)
    # at least 64 windows per input, more than the <= 36 slots below
    low, high = (1, 3) if len(lengths) == 2 else (2, 3)
    stride = tuple(data.draw(st.integers(low, high), label="stride") for _ in lengths)
    stride += (c,)
    edges = [data.draw(EDGES, label="edges") for _ in shape]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    inputs = rng.normal(size=(n,) + shape).astype(np.float32)
    kind = data.draw(st.sampled_from(["scalar", "channel", "sample", "input"]), label="baseline")
    baseline = baseline_for(kind, n, shape, rng)
    grid = _core.WindowGrid(shape, window, stride, edges)
    boxes = window_boxes(shape, window, stride, edges)
    total = n * len(boxes)
    count = -(-(2 * 2**18) // inputs[0].size)  # 2 * kMinWorkPerThread floats or more
    assert count <= 36 and total >= 64
    out = np.full((count,) + shape, np.nan, np.float32)
    mode = data.draw(st.sampled_from(["full", "strided", "incremental"]), label="mode")
    step = (
        1
        if mode == "full"
        else data.draw(st.integers(1, (total - 1) // (count - 1)), label="stride")
    )
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

    # Maps with the channel axis collapsed; work = maps x map size x rank >= 2 threads' worth.
    map_size = int(np.prod(lengths))
    maps_n = -(-(2 * 2**18) // (map_size * len(shape))) + data.draw(
        st.integers(0, 8), label="maps_extra"
    )
    deltas = rng.normal(size=(maps_n,) + grid.counts)
    reduction = data.draw(st.sampled_from(["sum", "mean"]), label="reduction")
    collapsed = (len(shape) - 1,)
    np.testing.assert_allclose(
        _core.accumulate_window_deltas(deltas, grid, reduction, collapsed),
        reference_accumulate_nd(deltas, boxes, shape, reduction, collapsed),
        rtol=1e-5,
        atol=1e-5,
    )


@st.composite
def accumulate_problem(draw):
    n = draw(st.integers(1, 3))
    shape, window, stride, edges = draw(axes(full_axes=True))
    grid = _core.WindowGrid(shape, window, stride, edges)
    full = [
        d for d, (length, w) in enumerate(zip(shape, window)) if grid.counts[d] == 1 and w == length
    ]
    collapsed = tuple(d for d in full if draw(st.booleans()))
    return n, grid, window_boxes(shape, window, stride, edges), collapsed


@fuzz
@given(
    accumulate_problem(), st.sampled_from(["sum", "mean"]), st.booleans(), st.integers(0, 2**32 - 1)
)
def test_fuzz_accumulate(case, reduction, give_out, seed):
    n, grid, boxes, collapsed = case
    deltas = np.random.default_rng(seed).normal(size=(n,) + grid.counts)
    map_shape = (n,) + tuple(1 if d in collapsed else length for d, length in enumerate(grid.shape))
    out = np.full(map_shape, np.nan, np.float32) if give_out else None
    maps = _core.accumulate_window_deltas(deltas, grid, reduction, collapsed, out)
    if give_out:
        assert maps is out or np.shares_memory(maps, out)
    expected = reference_accumulate_nd(deltas, boxes, grid.shape, reduction, collapsed)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5)


@fuzz
@given(accumulate_problem(), st.data())
def test_fuzz_accumulate_bad_shapes(case, data):
    """Any deltas/out shapes and collapsed axes: the right map, or a ValueError and no write."""
    _, grid, _, collapsible = case
    rank, counts, shape = grid.rank, grid.counts, grid.shape
    collapsed = data.draw(
        st.one_of(st.just(collapsible), st.lists(st.integers(-1, rank), max_size=3).map(tuple))
    )
    n = data.draw(st.integers(0, 3), label="n")
    deltas_shape = (n,) + counts
    change = data.draw(st.sampled_from(["none", "none", "count", "rank"]), label="deltas change")
    if change == "count":
        d = data.draw(st.integers(0, rank - 1))
        deltas_shape = (
            deltas_shape[: d + 1]
            + (counts[d] + data.draw(st.sampled_from([-1, 1])),)
            + deltas_shape[d + 2 :]
        )
    elif change == "rank":
        deltas_shape = deltas_shape[: data.draw(st.integers(0, rank))] + (
            () if data.draw(st.booleans()) else (1, 1)
        )
    map_shape = tuple(1 if d in collapsed else length for d, length in enumerate(shape))
    out_shape = data.draw(
        st.sampled_from(
            [
                (n,) + map_shape,
                (n,) + map_shape,
                (n + 1,) + map_shape,
                (n,) + shape,
                (n,) + map_shape[:-1],
            ]
        ),
        label="out shape",
    )
    deltas = np.zeros(deltas_shape)
    out = np.full(out_shape, np.nan, np.float32)
    collapsed_ok = all(
        0 <= d < rank and counts[d] == 1 and grid.window[d] == shape[d] for d in collapsed
    )
    valid = (
        collapsed_ok and n >= 1 and deltas_shape == (n,) + counts and out_shape == (n,) + map_shape
    )
    event("valid call" if valid else "rejected call")
    if valid:
        _core.accumulate_window_deltas(deltas, grid, "sum", collapsed, out)
        np.testing.assert_array_equal(out, 0)
        return
    with pytest.raises(ValueError):
        _core.accumulate_window_deltas(deltas, grid, "sum", collapsed, out)
    assert np.isnan(out).all(), "a rejected call wrote into out"


SIZE = st.one_of(
    st.integers(-2, 80),
    st.integers(2**62, INT64_MAX),
    st.sampled_from([2**31, 2**32 + 1, INT64_MAX // 2, INT64_MAX - 5, INT64_MAX]),
)


def exact_count(length, window, stride, edges):
    count = -(-(length - window + 1) // stride)
    if edges == "cover":
        last = (count - 1) * stride
        if last + window < length and last + stride < length:
            count += 1
    return count


@fuzz
@given(st.lists(st.tuples(SIZE, SIZE, SIZE, EDGES), min_size=1, max_size=5), st.data())
def test_fuzz_window_grid(axes_args, data):
    """Any int64 sizes over 1 to 5 axes: exact counts and boxes, or a ValueError for invalid
    axes and sizes past int64."""
    shape, window, stride, edges = (tuple(a[i] for a in axes_args) for i in range(4))
    if not all(length >= 1 and 1 <= w <= length and s >= 1 for length, w, s, _ in axes_args):
        with pytest.raises(ValueError):
            _core.WindowGrid(shape, window, stride, list(edges))
        return
    size = 1
    for length in shape:
        size *= length
    if size > INT64_MAX:
        with pytest.raises(ValueError, match="int64"):
            _core.WindowGrid(shape, window, stride, list(edges))
        return
    grid = _core.WindowGrid(shape, window, stride, list(edges))
    counts = tuple(exact_count(*a) for a in axes_args)
    windows = 1
    for c in counts:
        windows *= c
    assert (grid.counts, grid.num_windows, grid.sample_size) == (counts, windows, size)
    for d, (length, w, s, e) in enumerate(axes_args):
        if counts[d] <= 100 and length <= 2**40:
            assert grid.spans(d) == axis_anchors(length, w, s, e)
    k = data.draw(st.integers(0, windows - 1), label="k")
    box, rest = [], k
    for (length, w, s, _), count in reversed(list(zip(axes_args, counts))):
        rest, i = divmod(rest, count)
        box.append((i * s, i * s + min(w, length - i * s)))
    assert grid.window_box(k) == tuple(reversed(box))


OPTION = st.one_of(
    st.sampled_from(["valid", "cover", "sum", "mean"]),
    st.text(max_size=12),
    st.sampled_from(["valid", "cover", "sum", "mean"]).flatmap(
        lambda name: st.tuples(st.text(max_size=3), st.text(max_size=3)).map(
            lambda t: t[0] + name + t[1]
        )
    ),
    st.binary(max_size=8),
)


@fuzz
@given(OPTION, OPTION, st.booleans())
def test_fuzz_string_options(edges, reduction, per_axis):
    """Exactly the option names are accepted; other str is a ValueError, bytes refused."""
    value = [edges, "valid"] if per_axis else edges
    if not isinstance(edges, str) or edges not in ("valid", "cover"):
        with pytest.raises((TypeError, ValueError), match="edges"):
            _core.WindowGrid((4, 4), (2, 2), (2, 2), value)
        return
    grid = _core.WindowGrid((4, 4), (2, 2), (2, 2), value)
    deltas = np.ones((1,) + grid.counts)
    if not isinstance(reduction, str):
        with pytest.raises(TypeError):
            _core.accumulate_window_deltas(deltas, grid, reduction)
    elif reduction not in ("sum", "mean"):
        with pytest.raises(ValueError, match="reduction="):
            _core.accumulate_window_deltas(deltas, grid, reduction)
    else:
        np.testing.assert_array_equal(_core.accumulate_window_deltas(deltas, grid, reduction), 1)
