"""fastocclusion._core.WindowGrid against design §2/§5/§7 and the NumPy reference windows."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import axis_anchors, patch_boxes, window_boxes

from fastocclusion import _core


def make_grid(shape, window, stride, edges="valid"):
    return _core.WindowGrid(shape, window, stride, edges)


# ---- design §2 worked examples ------------------------------------------------------------


def test_spec_example_l10_p2_s3():
    line = make_grid((10,), (2,), (3,))
    assert line.spans(0) == [(0, 2), (3, 2), (6, 2)]
    assert (line.counts, line.num_windows) == ((3,), 3)
    plane = make_grid((10, 10), (2, 2), (3, 3))
    assert plane.spans(0) == plane.spans(1) == [(0, 2), (3, 2), (6, 2)]
    assert (plane.counts, plane.num_windows) == ((3, 3), 9)


def test_spec_example_2x2_unit_windows_in_row_major_order():
    plane = make_grid((2, 2), (1, 1), (1, 1))
    assert plane.num_windows == 4
    order = [((0, 1), (0, 1)), ((0, 1), (1, 2)), ((1, 2), (0, 1)), ((1, 2), (1, 2))]
    assert [plane.window_box(k) for k in range(4)] == order
    # The image family: (2, 2, 3) with windows (1, 1, 3), all channels at once, same order.
    image = make_grid((2, 2, 3), (1, 1, 3), (1, 1, 3))
    assert [image.window_box(k) for k in range(4)] == [box + ((0, 3),) for box in order]


def test_valid_leaves_far_edge_uncovered_and_cover_clips():
    valid = make_grid((10, 7), (3, 3), (3, 3), "valid")
    assert valid.spans(0) == [(0, 3), (3, 3), (6, 3)]  # 9 rows: position 9 uncovered
    assert valid.spans(1) == [(0, 3), (3, 3)]  # position 6 uncovered
    cover = make_grid((10, 7), (3, 3), (3, 3), "cover")
    assert cover.spans(0) == [(0, 3), (3, 3), (6, 3), (9, 1)]
    assert cover.spans(1) == [(0, 3), (3, 3), (6, 1)]


def test_cover_adds_nothing_when_valid_covers():
    assert make_grid((9, 9), (3, 3), (3, 3), "cover").spans(0) == [(0, 3), (3, 3), (6, 3)]
    assert make_grid((5, 5), (5, 5), (2, 2), "cover").spans(0) == [(0, 5)]


def test_cover_with_stride_past_the_end_adds_nothing():
    # Next stride step (20) starts outside the axis: no extra window even if 2..9 are uncovered.
    assert make_grid((10,), (2,), (20,), "cover").spans(0) == [(0, 2)]
    # Next step (9) starts inside: one clipped window.
    assert make_grid((10,), (2,), (9,), "cover").spans(0) == [(0, 2), (9, 1)]


def test_each_axis_has_its_own_edge_mode():
    grid = make_grid((10, 10, 4), (3, 3, 4), (3, 3, 1), ["valid", "cover", "cover"])
    assert grid.edges == ("valid", "cover", "cover")
    assert grid.spans(0) == [(0, 3), (3, 3), (6, 3)]
    assert grid.spans(1) == [(0, 3), (3, 3), (6, 3), (9, 1)]
    assert grid.spans(2) == [(0, 4)]
    assert grid.counts == (3, 4, 1) and grid.num_windows == 12
    assert make_grid((10,), (3,), (3,), ("cover",)).spans(0)[-1] == (9, 1)


def test_properties_echo_arguments():
    grid = make_grid((6, 11, 3), (2, 4, 3), (1, 3, 3), "cover")
    assert grid.rank == 3
    assert grid.shape == (6, 11, 3)
    assert grid.window == (2, 4, 3)
    assert grid.stride == (1, 3, 3)
    assert grid.edges == ("cover", "cover", "cover")
    assert grid.counts == (5, 4, 1)
    assert grid.num_windows == 20
    assert grid.sample_size == 6 * 11 * 3
    assert "WindowGrid(shape=(6, 11, 3)" in repr(grid)


def test_default_edges_is_valid():
    grid = _core.WindowGrid((10, 10), (3, 3), (3, 3))
    assert grid.counts == (3, 3) and grid.edges == ("valid", "valid")


def test_equality_hash_and_pickle():
    grid = make_grid((9, 10, 3), (3, 3, 3), (3, 3, 3), ["valid", "cover", "valid"])
    again = make_grid((9, 10, 3), (3, 3, 3), (3, 3, 3), ["valid", "cover", "valid"])
    assert grid == again and hash(grid) == hash(again)
    # "cover" that adds nothing gives the same windows: equal grids.
    assert make_grid((9, 9), (3, 3), (3, 3), "valid") == make_grid((9, 9), (3, 3), (3, 3), "cover")
    assert grid != make_grid((9, 10, 3), (3, 3, 3), (3, 3, 3), "valid")  # axis 1 differs
    assert grid != make_grid((9, 10, 3), (3, 2, 3), (3, 3, 3), ["valid", "cover", "valid"])
    assert make_grid((4,), (2,), (2,)) != make_grid((4, 1), (2, 1), (2, 1))
    copy = pickle.loads(pickle.dumps(grid))
    assert copy == grid
    assert copy.edges == grid.edges and copy.shape == grid.shape and copy.stride == grid.stride
    assert [copy.window_box(k) for k in range(copy.num_windows)] == [
        grid.window_box(k) for k in range(grid.num_windows)
    ]


# ---- the families of design §7 as special cases -----------------------------------------------


@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 4), st.data())
def test_images_with_channel_wide_windows_are_the_planar_grid(h, w, c, data):
    ph, pw = data.draw(st.integers(1, h)), data.draw(st.integers(1, w))
    sh, sw = data.draw(st.integers(1, ph + 3)), data.draw(st.integers(1, pw + 3))
    edges = data.draw(st.sampled_from(["valid", "cover"]))
    grid = make_grid((h, w, c), (ph, pw, c), (sh, sw, c), edges)
    planar = patch_boxes(h, w, (ph, pw), (sh, sw), edges)
    assert grid.counts[2] == 1 and grid.num_windows == len(planar)
    assert [grid.window_box(k) for k in range(grid.num_windows)] == [
        ((r0, r1), (c0, c1), (0, c)) for r0, r1, c0, c1 in planar
    ]


def test_time_series_and_tabular_are_the_planar_grid():
    series = make_grid((12, 4), (3, 2), (2, 1), "cover")
    planar = patch_boxes(12, 4, (3, 2), (2, 1), "cover")
    assert [series.window_box(k) for k in range(series.num_windows)] == [
        ((r0, r1), (c0, c1)) for r0, r1, c0, c1 in planar
    ]
    tabular = make_grid((17,), (3,), (2,))
    row = patch_boxes(1, 17, (1, 3), (1, 2))
    assert [tabular.window_box(k) for k in range(tabular.num_windows)] == [
        ((c0, c1),) for _, _, c0, c1 in row
    ]


# ---- random geometry vs the reference ----------------------------------------------------


@st.composite
def axis_args(draw, most=64):
    length = draw(st.integers(1, most))
    window = draw(st.integers(1, length))
    stride = draw(st.integers(1, most + 6))
    return length, window, stride


@st.composite
def grid_args(draw):
    """Rank 1..5, a few windows per axis, per-axis edges."""
    rank = draw(st.integers(1, 5))
    most = {1: 40, 2: 16, 3: 8, 4: 5, 5: 4}[rank]
    axes = [draw(axis_args(most)) for _ in range(rank)]
    edges = [draw(st.sampled_from(["valid", "cover"])) for _ in range(rank)]
    shape, window, stride = (tuple(a[i] for a in axes) for i in range(3))
    if len(set(edges)) == 1 and draw(st.booleans()):
        return shape, window, stride, edges[0]  # one str for every axis
    return shape, window, stride, edges


@given(grid_args())
def test_random_grids_match_reference(args):
    shape, window, stride, edges = args
    grid = make_grid(shape, window, stride, edges)
    per_axis = [edges] * len(shape) if isinstance(edges, str) else edges
    assert grid.rank == len(shape) and grid.shape == shape
    assert grid.edges == tuple(per_axis)
    for d, (length, w, s, e) in enumerate(zip(shape, window, stride, per_axis)):
        assert grid.spans(d) == axis_anchors(length, w, s, e), d
    boxes = window_boxes(shape, window, stride, edges)
    assert grid.num_windows == len(boxes)
    assert grid.counts == tuple(len(grid.spans(d)) for d in range(len(shape)))
    assert [grid.window_box(k) for k in range(grid.num_windows)] == boxes


@given(axis_args())
def test_cover_covers_every_position_when_stride_le_window(args):
    length, window, stride = args
    stride = min(stride, window)
    spans = make_grid((2, length), (1, window), (1, stride), "cover").spans(1)
    covered = set()
    for anchor, extent in spans:
        assert 1 <= extent <= window and anchor + extent <= length
        covered.update(range(anchor, anchor + extent))
    assert covered == set(range(length))


@given(axis_args())
def test_valid_windows_fit_entirely(args):
    length, window, stride = args
    spans = make_grid((length, 1), (window, 1), (stride, 1), "valid").spans(0)
    assert all(extent == window and anchor + window <= length for anchor, extent in spans)
    # The next stride step would not fit: the list is complete.
    assert spans[-1][0] + stride + window > length


# ---- errors name the argument ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (((10, 10), (0, 2), (1, 1)), ["window=0", "axis 0", ">= 1"]),
        (((10, 10), (2, -3), (1, 1)), ["window=-3", "axis 1", ">= 1"]),
        (((10, 10), (2, 2), (0, 1)), ["stride=0", "axis 0", ">= 1"]),
        (((10, 10, 3), (2, 2, 3), (1, 1, -1)), ["stride=-1", "axis 2", ">= 1"]),
        (((4, 10), (5, 2), (1, 1)), ["window=5", "larger", "(4)"]),
        (((10, 4), (2, 7), (1, 1)), ["window=7", "axis 1", "larger", "(4)"]),
        (((0, 10), (1, 1), (1, 1)), ["axis 0", "length 0"]),
        (((10, -2), (1, 1), (1, 1)), ["axis 1", "length -2"]),
        (((), (), ()), ["shape", "()", "1 to 5"]),
        (((2,) * 6, (1,) * 6, (1,) * 6), ["shape", "1 to 5"]),
        (((10, 10), (2,), (1, 1)), ["window", "(2,)", "2 sizes"]),
        (((10, 10), (2, 2), (1, 1, 1)), ["stride", "(1, 1, 1)", "2 sizes"]),
    ],
)
def test_bad_geometry_names_argument(args, words):
    with pytest.raises(ValueError) as info:
        make_grid(*args)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize("edges", ["same", "VALID", "", "covers"])
def test_bad_edges_names_argument(edges):
    with pytest.raises(ValueError, match="edges") as info:
        make_grid((10, 10), (2, 2), (2, 2), edges)
    assert repr(edges).strip("'") in str(info.value)


@pytest.mark.parametrize(
    ("edges", "words"),
    [
        (["valid"], ["edges", "1 modes", "2 axes"]),
        (("valid", "cover", "valid"), ["edges", "3 modes"]),
        (["valid", 1], ["edges", "1"]),
        (["valid", "Cover"], ["edges", "Cover"]),
        (3, ["edges", "3"]),
    ],
)
def test_bad_per_axis_edges_name_argument(edges, words):
    with pytest.raises(ValueError) as info:
        make_grid((10, 10), (2, 2), (2, 2), edges)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_spans_and_window_box_check_their_index():
    grid = make_grid((6, 6), (2, 2), (2, 2))
    with pytest.raises(ValueError, match="axis"):
        grid.spans(2)
    with pytest.raises(ValueError, match="axis"):
        grid.spans(-1)
    with pytest.raises(ValueError, match="k: 9"):
        grid.window_box(9)
    with pytest.raises(ValueError, match="k: -1"):
        grid.window_box(-1)
