"""The kernel features of MONAI's occlusion sensitivity at the _core level, against NumPy
loops: "shift" edges (MONAI's dense_patch_slices as a loop), window means, the per_window,
per_window_scale and window_mask fills (full and incremental), and the weighted blend."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastocclusion import _core


def monai_starts(size: int, window: int, interval: int) -> list[int]:
    """MONAI's dense_patch_slices along one axis of `size`, written as MONAI writes it."""
    scan = next(d for d in range(-(-size // interval) + 1) if d * interval + window >= size)
    return [i * interval - max(i * interval + window - size, 0) for i in range(scan + 1)]


def spans(window, stride, edges, region):
    """Every window as slices, row-major: per axis "valid" anchors, or MONAI's."""
    per_axis = []
    for w, s, e, (lo, hi) in zip(window, stride, edges, region):
        if e == "shift":
            per_axis.append([(lo + a, lo + a + w) for a in monai_starts(hi - lo, w, s)])
        else:
            per_axis.append([(a, a + w) for a in range(lo, hi - w + 1, s)])
    return [tuple(slice(b, e) for b, e in combo) for combo in itertools.product(*per_axis)]


@st.composite
def window_case(draw):
    """n inputs over a random sample of rank 1..4, with "shift" or "valid" axes and regions."""
    n = draw(st.integers(1, 3))
    rank = draw(st.integers(1, 4))
    most = {1: 14, 2: 8, 3: 5, 4: 4}[rank]
    shape, window, stride, edges, region = [], [], [], [], []
    for _ in range(rank):
        length = draw(st.integers(1, most))
        lo = draw(st.integers(0, length - 1))
        hi = draw(st.integers(lo + 1, length))
        w = draw(st.integers(1, hi - lo))
        shape.append(length)
        window.append(w)
        stride.append(draw(st.integers(1, w + 2)))
        edges.append(draw(st.sampled_from(["shift", "shift", "valid"])))
        region.append((lo, hi))
    seed = draw(st.integers(0, 2**32 - 1))
    return n, tuple(shape), tuple(window), tuple(stride), edges, tuple(region), seed


def build(case):
    n, shape, window, stride, edges, region, seed = case
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n, *shape)).astype(np.float32)
    grid = _core.WindowGrid(shape, window, stride, edges, region=region)
    return rng, inputs, grid, spans(window, stride, edges, region)


def reference_fill(inputs, boxes, kind, values, indices):
    """Occluded samples of stream indices: per_window(_scale) values (N, K), or a mask."""
    k_total = len(boxes)
    out = []
    for s in indices:
        n, k = divmod(s, k_total)
        sample = inputs[n].copy()
        box = boxes[k]
        if kind == "per_window":
            sample[box] = values.reshape(len(inputs), -1)[n, k]
        elif kind == "per_window_scale":
            sample[box] = inputs[n][box] * values.reshape(len(inputs), -1)[n, k]
        else:
            sample[box] = inputs[n][box] * values[tuple(slice(0, b.stop - b.start) for b in box)]
        out.append(sample)
    return np.stack(out)


@given(window_case())
def test_shift_windows_are_monais_sliding_windows(case):
    _, _, grid, boxes = build(case)
    assert grid.num_windows == len(boxes)
    for k, box in enumerate(boxes):
        assert grid.window_box(k) == tuple((b.start, b.stop) for b in box)


@given(window_case())
def test_window_means_are_the_box_means(case):
    _, inputs, grid, boxes = build(case)
    means = _core.window_means(inputs, grid)
    assert means.shape == (len(inputs), *grid.counts) and means.dtype == np.float32
    expected = [
        [inputs[n][box].astype(np.float64).mean() for box in boxes] for n in range(len(inputs))
    ]
    np.testing.assert_allclose(means.reshape(len(inputs), -1), expected, rtol=1e-6, atol=1e-7)
    doubles = inputs.astype(np.float64) / 3.0  # values float32 cannot hold
    means64 = _core.window_means(doubles, grid)
    assert means64.dtype == np.float64
    expected = [[doubles[n][box].mean() for box in boxes] for n in range(len(inputs))]
    np.testing.assert_allclose(means64.reshape(len(inputs), -1), expected, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="out: dtype float32 is invalid, expected float64"):
        _core.window_means(doubles, grid, out=means)


@given(window_case(), st.sampled_from(["per_window", "per_window_scale", "window_mask"]), st.data())
def test_window_baseline_fills_full_and_incremental(case, kind, data):
    rng, inputs, grid, boxes = build(case)
    total = len(inputs) * len(boxes)
    if kind == "window_mask":
        values = rng.uniform(0, 1, grid.window).astype(np.float32)
    else:
        values = _core.window_means(inputs, grid)
    capacity = data.draw(st.integers(1, min(total, 6)))
    out = np.full((capacity, *inputs.shape[1:]), np.nan, np.float32)
    state = _core.IncrementalFillState()
    chunk = -(-total // capacity)
    for start in list(range(chunk)) + [data.draw(st.integers(0, total - 1))]:
        count = min(capacity, (total - 1 - start) // chunk + 1)
        _core.fill_occluded_batch(
            inputs, grid, values, start, count, out, state, stride=chunk, baseline_kind=kind
        )
        indices = [start + j * chunk for j in range(count)]
        expected = reference_fill(inputs, boxes, kind, values, indices)
        np.testing.assert_array_equal(out[:count], expected)
        fresh = np.empty_like(out)
        _core.fill_occluded_batch(
            inputs, grid, values, start, count, fresh, stride=chunk, baseline_kind=kind
        )
        np.testing.assert_array_equal(fresh[:count], expected)


@given(window_case(), st.data())
def test_blend_is_the_importance_weighted_mean(case, data):
    rng, _, grid, boxes = build(case)
    n, shape = case[0], case[1]
    full = [d for d in range(len(shape)) if grid.counts[d] == 1 and grid.window[d] == shape[d]]
    collapsed = tuple(d for d in full if data.draw(st.booleans()))
    values = rng.normal(size=(n, *grid.counts))
    ishape = tuple(1 if d in collapsed else w for d, w in enumerate(grid.window))
    importance = rng.uniform(1e-3, 1, ishape).astype(np.float32)
    maps = _core.blend_window_values(values, grid, importance, collapsed)
    sums = np.zeros((n, *shape))
    weights = np.zeros(shape)
    for k, box in enumerate(boxes):
        w = np.broadcast_to(importance, tuple(b.stop - b.start for b in box)).astype(np.float64)
        weights[box] += w
        sums[(slice(None), *box)] += w * values.reshape(n, -1)[:, k].reshape(
            (n,) + (1,) * len(shape)
        )
    expected = np.divide(sums, weights, out=np.zeros_like(sums), where=weights > 0)
    index = tuple(slice(0, 1) if d in collapsed else slice(None) for d in range(len(shape)))
    np.testing.assert_allclose(maps, expected[(slice(None), *index)], rtol=1e-6, atol=1e-6)
    if not collapsed:  # constant weights: the summed-area "mean" accumulation
        ones = np.ones(ishape, np.float32)
        np.testing.assert_allclose(
            _core.blend_window_values(values, grid, ones),
            _core.accumulate_window_deltas(values, grid, "mean"),
            rtol=1e-6,
            atol=1e-6,
        )


def test_bad_arguments_are_value_errors_naming_them():
    grid = _core.WindowGrid((2, 6, 5), (2, 3, 2), (2, 2, 2), "shift")
    inputs = np.ones((1, 2, 6, 5), np.float32)
    out = np.empty((2, 2, 6, 5), np.float32)
    with pytest.raises(ValueError, match="baseline_kind="):
        _core.fill_occluded_batch(
            inputs, grid, np.array(0, np.float32), 0, 1, out, baseline_kind="mean"
        )
    with pytest.raises(ValueError, match="baseline: shape"):
        _core.fill_occluded_batch(
            inputs, grid, np.ones((2, 3, 2), np.float32), 0, 1, out, baseline_kind="per_window"
        )
    with pytest.raises(ValueError, match="baseline: shape"):
        _core.fill_occluded_batch(
            inputs, grid, np.ones((1, 1, 3, 3), np.float32), 0, 1, out, baseline_kind="window_mask"
        )
    values = np.zeros((1, *grid.counts))
    for bad in (0.0, -1.0, np.nan, np.inf):
        importance = np.ones((1, 3, 2), np.float32)
        importance[0, 1, 1] = bad
        with pytest.raises(ValueError, match="importance: element 3"):
            _core.blend_window_values(values, grid, importance, (0,))
    with pytest.raises(ValueError, match="importance: shape"):
        _core.blend_window_values(values, grid, np.ones((2, 3, 2), np.float32), (0,))
    with pytest.raises(ValueError, match="edges="):
        _core.WindowGrid((6,), (3,), (2,), "shifted")
    assert _core.WindowGrid((11,), (4,), (3,), "shift").spans(0) == [(0, 4), (3, 4), (6, 4), (7, 4)]
