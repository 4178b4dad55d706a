"""fastocclusion._core.accumulate_window_deltas against a plain scatter (design §1, §4, §5, §7),
over window grids of rank 1..5 with and without collapsed axes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import patch_boxes, reference_accumulate, reference_accumulate_nd, window_boxes

from fastocclusion import _core


def grid_and_boxes(shape, window, stride, edges="valid"):
    return _core.WindowGrid(shape, window, stride, edges), window_boxes(
        shape, window, stride, edges
    )


@st.composite
def accumulate_case(draw):
    """Rank 1..5; about one axis in four covered by one full window (collapsible, like the
    channels of an image), and a random subset of those collapsed."""
    rank = draw(st.integers(1, 5))
    most = {1: 30, 2: 14, 3: 7, 4: 5, 5: 4}[rank]
    shape, window, stride, edges, full = [], [], [], [], []
    for d in range(rank):
        length = draw(st.integers(1, most))
        whole = draw(st.integers(0, 3)) == 0
        w = length if whole else draw(st.integers(1, length))
        shape.append(length)
        window.append(w)
        stride.append(draw(st.integers(1, w + 3)))
        edges.append(draw(st.sampled_from(["valid", "cover"])))
        if whole:
            full.append(d)
    collapsed = tuple(d for d in full if draw(st.booleans()))
    return (
        draw(st.integers(1, 4)),
        tuple(shape),
        tuple(window),
        tuple(stride),
        edges,
        collapsed,
        draw(st.sampled_from(["sum", "mean"])),
        draw(st.integers(0, 2**32 - 1)),
    )


def map_shape(n, shape, collapsed):
    return (n,) + tuple(1 if d in collapsed else length for d, length in enumerate(shape))


@given(accumulate_case(), st.booleans())
def test_random_grids_match_scatter(case, give_out):
    n, shape, window, stride, edges, collapsed, reduction, seed = case
    grid, boxes = grid_and_boxes(shape, window, stride, edges)
    deltas = np.random.default_rng(seed).normal(0, 10, (n,) + grid.counts)
    out = np.full(map_shape(n, shape, collapsed), np.nan, np.float32) if give_out else None
    maps = _core.accumulate_window_deltas(deltas, grid, reduction, collapsed, out)
    expected = reference_accumulate_nd(deltas, boxes, shape, reduction, collapsed)
    assert maps.dtype == np.float32 and maps.shape == map_shape(n, shape, collapsed)
    if give_out:
        assert np.shares_memory(maps, out)
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-4)


def test_spec_example_by_hand():
    # L=4, w=2, s=1 on a row: anchors 0, 1, 2; position x sums the windows covering it.
    grid = _core.WindowGrid((4,), (2,), (1,))
    deltas = np.array([[1.0, 10.0, 100.0]])
    np.testing.assert_array_equal(
        _core.accumulate_window_deltas(deltas, grid, "sum"), [[1, 11, 110, 100]]
    )
    np.testing.assert_array_equal(
        _core.accumulate_window_deltas(deltas, grid, "mean"), [[1, 5.5, 55, 100]]
    )
    assert _core.accumulate_window_deltas(deltas, grid).tolist() == [[1, 11, 110, 100]]  # "sum"


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("channels", [None, 3])
def test_uncovered_pixels_are_zero(reduction, channels):
    # valid edges, stride > window: gaps and an uncovered far edge; as a plane and as an image
    # with its channel axis collapsed.
    if channels is None:
        grid, _ = grid_and_boxes((10, 9), (2, 3), (4, 5))
        maps = _core.accumulate_window_deltas(np.full((2,) + grid.counts, 3.0), grid, reduction)
    else:
        grid, _ = grid_and_boxes((10, 9, channels), (2, 3, channels), (4, 5, 1))
        maps = _core.accumulate_window_deltas(
            np.full((2,) + grid.counts, 3.0), grid, reduction, (2,)
        )
        maps = maps[..., 0]
    covered = np.zeros((10, 9), bool)
    for r0, r1, c0, c1 in patch_boxes(10, 9, (2, 3), (4, 5)):
        covered[r0:r1, c0:c1] = True
    assert (maps[:, ~covered] == 0).all()
    assert (maps[:, covered] == 3.0).all()


@pytest.mark.parametrize("edges", ["valid", "cover", ["cover", "valid", "cover"]])
def test_mean_of_equal_deltas_is_that_delta(edges):
    shape = (11, 13, 5)
    grid, boxes = grid_and_boxes(shape, (4, 3, 2), (2, 2, 3), edges)
    maps = _core.accumulate_window_deltas(np.full((1,) + grid.counts, -2.5), grid, "mean")
    covered = reference_accumulate_nd(np.ones((1, grid.num_windows)), boxes, shape) > 0
    np.testing.assert_allclose(maps[covered], -2.5, rtol=1e-7)
    assert (maps[~covered] == 0).all()


def test_writes_into_given_out_and_overwrites_it():
    grid, boxes = grid_and_boxes((6, 6, 2), (3, 3, 2), (1, 1, 1))
    deltas = np.random.default_rng(1).normal(size=(3,) + grid.counts)
    out = np.full((3, 6, 6, 1), np.nan, np.float32)
    result = _core.accumulate_window_deltas(deltas, grid, "sum", (2,), out)
    assert np.shares_memory(result, out)
    np.testing.assert_allclose(
        out, reference_accumulate_nd(deltas, boxes, (6, 6, 2), "sum", (2,)), rtol=1e-6, atol=1e-6
    )


def test_collapsing_every_axis_gives_each_input_its_delta():
    grid = _core.WindowGrid((3, 4, 5), (3, 4, 5), (1, 1, 1), "cover")
    deltas = np.array([0.5, -2.0, 7.25]).reshape(3, 1, 1, 1)
    for reduction in ("sum", "mean"):
        maps = _core.accumulate_window_deltas(deltas, grid, reduction, (0, 1, 2))
        assert maps.shape == (3, 1, 1, 1)
        np.testing.assert_array_equal(maps, deltas.astype(np.float32))
        full = _core.accumulate_window_deltas(deltas, grid, reduction)
        np.testing.assert_array_equal(
            full, np.broadcast_to(deltas, (3, 3, 4, 5)).astype(np.float32)
        )


@pytest.mark.parametrize(
    ("shape", "window", "stride", "collapsed"),
    [
        ((40, 40), (5, 5), (2, 2), ()),
        ((40, 40, 3), (5, 5, 3), (2, 2, 3), (2,)),  # images: (H, W, 1) maps
        ((10, 20, 20, 2), (3, 5, 5, 2), (2, 3, 3, 2), (3,)),  # a volume: (D, H, W, 1) maps
    ],
)
def test_many_inputs_take_the_threaded_path(shape, window, stride, collapsed):
    grid, boxes = grid_and_boxes(shape, window, stride, "cover")
    deltas = np.random.default_rng(2).normal(size=(64,) + grid.counts)
    for reduction in ("sum", "mean"):
        np.testing.assert_allclose(
            _core.accumulate_window_deltas(deltas, grid, reduction, collapsed),
            reference_accumulate_nd(deltas, boxes, shape, reduction, collapsed),
            rtol=1e-6,
            atol=1e-5,
        )


# ---- the families of design §7 give the 2-D definition's maps ------------------------------------


@given(st.integers(1, 4), st.integers(1, 16), st.integers(1, 16), st.integers(1, 4), st.data())
def test_images_with_collapsed_channels_equal_the_planar_maps(n, h, w, c, data):
    """Images (H, W, C) with windows (ph, pw, C), strides (sh, sw, C) and the channel axis
    collapsed: the (H, W, 1) maps of the 2-D patches over H and W."""
    patch = (data.draw(st.integers(1, h)), data.draw(st.integers(1, w)))
    stride = (data.draw(st.integers(1, h + 3)), data.draw(st.integers(1, w + 3)))
    edges = data.draw(st.sampled_from(["valid", "cover"]))
    reduction = data.draw(st.sampled_from(["sum", "mean"]))
    grid = _core.WindowGrid((h, w, c), patch + (c,), stride + (c,), edges)
    boxes = patch_boxes(h, w, patch, stride, edges)
    deltas = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).normal(
        size=(n,) + grid.counts
    )
    maps = _core.accumulate_window_deltas(deltas, grid, reduction, (2,))
    expected = reference_accumulate(deltas, boxes, h, w, reduction)[..., None]
    assert maps.shape == (n, h, w, 1)
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_time_series_and_tabular_equal_the_planar_maps(reduction):
    rng = np.random.default_rng(6)
    grid = _core.WindowGrid((12, 4), (3, 2), (2, 1), "cover")
    deltas = rng.normal(size=(3,) + grid.counts)
    np.testing.assert_allclose(
        _core.accumulate_window_deltas(deltas, grid, reduction),
        reference_accumulate(deltas, patch_boxes(12, 4, (3, 2), (2, 1), "cover"), 12, 4, reduction),
        rtol=1e-6,
        atol=1e-6,
    )
    grid = _core.WindowGrid((17,), (3,), (2,))
    deltas = rng.normal(size=(4,) + grid.counts)
    expected = reference_accumulate(deltas, patch_boxes(1, 17, (1, 3), (1, 2)), 1, 17, reduction)
    np.testing.assert_allclose(
        _core.accumulate_window_deltas(deltas, grid, reduction),
        expected[:, 0],
        rtol=1e-6,
        atol=1e-6,
    )


# ---- precision: float64 accumulation, ~20k windows ------------------------------------------


def test_twenty_thousand_windows_keep_float64_precision():
    # 141 x 141 = 19881 windows of 60 x 60; the centre pixel sums 3600 deltas of ~1e4.
    h = w = 200
    grid = _core.WindowGrid((h, w), (60, 60), (1, 1))
    boxes = patch_boxes(h, w, (60, 60), (1, 1))
    assert grid.num_windows == 19881
    rng = np.random.default_rng(5)
    deltas = 1e4 + rng.uniform(0, 1, (1,) + grid.counts)
    deltas[0, ::2] *= -1.0  # mixed signs: cancellations along the prefix sums
    maps = _core.accumulate_window_deltas(deltas, grid, "sum")
    np.testing.assert_allclose(
        maps, reference_accumulate(deltas, boxes, h, w), rtol=2**-22, atol=1e-6
    )

    rows_count, cols_count = grid.counts
    grid_deltas = deltas[0]
    pixels = [(100, 100), (0, 0), (199, 199), (59, 140), (130, 61)]
    pixels += [tuple(p) for p in rng.integers(0, 200, (15, 2))]
    float32_errors = []
    for y, x in pixels:
        rows = [i for i in range(rows_count) if i <= y < i + 60]
        cols = [j for j in range(cols_count) if j <= x < j + 60]
        covering = grid_deltas[np.ix_(rows, cols)].ravel()
        exact = math.fsum(covering)
        assert maps[0, y, x] == np.float32(exact) or math.isclose(
            maps[0, y, x], exact, rel_tol=2**-23, abs_tol=1e-9 * len(covering)
        ), ((y, x), float(maps[0, y, x]), exact)
        naive = np.float32(0)
        for value in covering.astype(np.float32):
            naive = np.float32(naive + value)
        float32_errors.append(abs(float(naive) - exact) / max(abs(exact), 1.0))
    # The test has teeth: a float32 accumulator misses the tolerance used above.
    assert max(float32_errors) > 2**-23


# ---- errors ----------------------------------------------------------------------------------


def _grid():
    return _core.WindowGrid((5, 5, 2), (2, 2, 2), (2, 2, 1))  # 2 x 2 x 1 windows


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(deltas=np.zeros((1, 2, 2, 1), np.float32)), ["deltas", "float32", "float64"]),
        (dict(deltas=np.zeros((1, 3, 2, 1))), ["deltas", "(1, 3, 2, 1)", "(N, 2, 2, 1)"]),
        (dict(deltas=np.zeros((1, 2, 2))), ["deltas", "(1, 2, 2)", "(N, 2, 2, 1)"]),
        (dict(deltas=np.zeros((4,))), ["deltas", "(4,)"]),
        (dict(deltas=np.zeros((0, 2, 2, 1))), ["deltas", "N >= 1"]),
        (dict(deltas=np.zeros((2, 2, 4, 1))[:, :, ::2]), ["deltas", "contiguous"]),
        (dict(reduction="max"), ["reduction", "max", "sum", "mean"]),
        (dict(collapsed_axes=(0,)), ["collapsed_axes", "axis 0", "one window covering it"]),
        (dict(collapsed_axes=(3,)), ["collapsed_axes", "axis 3", "0 to 2"]),
        (dict(collapsed_axes=(-1,)), ["collapsed_axes", "axis -1"]),
        (dict(out=np.zeros((1, 5, 5, 2), np.float32)), ["out", "(1, 5, 5, 2)", "(1, 5, 5, 1)"]),
        (dict(collapsed_axes=(), out=np.zeros((1, 5, 5, 1), np.float32)), ["out", "(1, 5, 5, 2)"]),
        (dict(out=np.zeros((1, 5, 5, 1))), ["out", "float64"]),
        (dict(out=np.zeros((1, 5, 10, 1), np.float32)[:, :, ::2]), ["out", "contiguous"]),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, words):
    args = dict(
        deltas=np.zeros((1, 2, 2, 1)), grid=_grid(), reduction="sum", collapsed_axes=(2,), out=None
    )
    args.update(kwargs)
    out_before = None if args["out"] is None else args["out"].copy()
    with pytest.raises(ValueError) as info:
        _core.accumulate_window_deltas(**args)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    if out_before is not None:
        np.testing.assert_array_equal(args["out"], out_before)


def test_read_only_out_raises():
    out = np.zeros((1, 5, 5, 1), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out.*writable"):
        _core.accumulate_window_deltas(np.zeros((1, 2, 2, 1)), _grid(), "sum", (2,), out)


def test_out_sharing_memory_with_deltas_raises():
    storage = np.zeros(64, np.float64)
    deltas = storage[:4].reshape(1, 2, 2, 1)
    out = storage[2:].view(np.float32)[:25].reshape(1, 5, 5, 1)
    with pytest.raises(ValueError, match="out.*share memory"):
        _core.accumulate_window_deltas(deltas, _grid(), "sum", (2,), out)
