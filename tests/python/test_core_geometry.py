"""fastocclusion._core.PatchGrid against SPEC §2/§5 and the NumPy reference anchors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastocclusion import _core
from reference import axis_anchors


def make_grid(h, w, patch, stride, edges="valid"):
    return _core.PatchGrid(h, w, patch_size=patch, patch_stride=stride, edges=edges)


# ---- SPEC §2 worked examples ------------------------------------------------------------


def test_spec_example_l10_p2_s3():
    grid = make_grid(10, 10, (2, 2), (3, 3))
    assert grid.row_spans() == [(0, 2), (3, 2), (6, 2)]
    assert grid.col_spans() == [(0, 2), (3, 2), (6, 2)]
    assert (grid.rows, grid.cols, grid.num_patches) == (3, 3, 9)


def test_spec_example_2x2_unit_patches():
    grid = make_grid(2, 2, (1, 1), (1, 1))
    assert grid.num_patches == 4
    assert grid.row_spans() == [(0, 1), (1, 1)]
    assert grid.col_spans() == [(0, 1), (1, 1)]


def test_valid_leaves_far_edge_uncovered_and_cover_clips():
    valid = make_grid(10, 7, (3, 3), (3, 3), "valid")
    assert valid.row_spans() == [(0, 3), (3, 3), (6, 3)]  # 9 rows: pixel 9 uncovered
    assert valid.col_spans() == [(0, 3), (3, 3)]  # pixel 6 uncovered
    cover = make_grid(10, 7, (3, 3), (3, 3), "cover")
    assert cover.row_spans() == [(0, 3), (3, 3), (6, 3), (9, 1)]
    assert cover.col_spans() == [(0, 3), (3, 3), (6, 1)]


def test_cover_adds_nothing_when_valid_covers():
    assert make_grid(9, 9, (3, 3), (3, 3), "cover").row_spans() == [(0, 3), (3, 3), (6, 3)]
    assert make_grid(5, 5, (5, 5), (2, 2), "cover").row_spans() == [(0, 5)]


def test_cover_with_stride_past_the_end_adds_nothing():
    # Next stride step (20) starts outside the axis: no extra patch even if 2..9 are uncovered.
    assert make_grid(10, 10, (2, 2), (20, 20), "cover").row_spans() == [(0, 2)]
    # Next step (9) starts inside: one clipped patch.
    assert make_grid(10, 10, (2, 2), (9, 9), "cover").row_spans() == [(0, 2), (9, 1)]


def test_properties_echo_arguments():
    grid = make_grid(6, 11, (2, 4), (1, 3), "cover")
    assert (grid.height, grid.width) == (6, 11)
    assert tuple(grid.patch_size) == (2, 4)
    assert tuple(grid.patch_stride) == (1, 3)
    assert grid.num_patches == grid.rows * grid.cols
    assert "PatchGrid" in repr(grid)


def test_default_edges_is_valid():
    grid = _core.PatchGrid(10, 10, patch_size=(3, 3), patch_stride=(3, 3))
    assert grid.rows == 3


# ---- random geometry vs the reference ----------------------------------------------------


@st.composite
def axis_args(draw):
    length = draw(st.integers(1, 64))
    patch = draw(st.integers(1, length))
    stride = draw(st.integers(1, 70))
    return length, patch, stride


@given(axis_args(), axis_args(), st.sampled_from(["valid", "cover"]))
def test_random_grids_match_reference(rows, cols, edges):
    grid = make_grid(rows[0], cols[0], (rows[1], cols[1]), (rows[2], cols[2]), edges)
    expected_rows = axis_anchors(*rows, edges)
    expected_cols = axis_anchors(*cols, edges)
    assert grid.row_spans() == expected_rows
    assert grid.col_spans() == expected_cols
    assert grid.rows == len(expected_rows) and grid.cols == len(expected_cols)
    assert grid.num_patches == len(expected_rows) * len(expected_cols)


@given(axis_args())
def test_cover_covers_every_position_when_stride_le_patch(args):
    length, patch, stride = args
    stride = min(stride, patch)
    spans = make_grid(1, length, (1, patch), (1, stride), "cover").col_spans()
    covered = set()
    for anchor, extent in spans:
        assert 1 <= extent <= patch and anchor + extent <= length
        covered.update(range(anchor, anchor + extent))
    assert covered == set(range(length))


@given(axis_args())
def test_valid_patches_fit_entirely(args):
    length, patch, stride = args
    spans = make_grid(length, 1, (patch, 1), (stride, 1), "valid").row_spans()
    assert all(extent == patch and anchor + patch <= length for anchor, extent in spans)
    # The next stride step would not fit: the list is complete.
    assert spans[-1][0] + stride + patch > length


# ---- errors name the argument ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((10, 10, (0, 2), (1, 1)), ["patch_size", "0", ">= 1"]),
        ((10, 10, (2, -3), (1, 1)), ["patch_size", "-3", ">= 1"]),
        ((10, 10, (2, 2), (0, 1)), ["patch_stride", "0", ">= 1"]),
        ((10, 10, (2, 2), (1, -1)), ["patch_stride", "-1", ">= 1"]),
        ((4, 10, (5, 2), (1, 1)), ["patch_size", "5", "larger", "4"]),
        ((10, 4, (2, 7), (1, 1)), ["patch_size", "7", "larger", "4"]),
        ((0, 10, (1, 1), (1, 1)), ["length", "0"]),
        ((10, -2, (1, 1), (1, 1)), ["length", "-2"]),
    ],
)
def test_bad_geometry_names_argument(args, words):
    with pytest.raises(ValueError) as info:
        make_grid(*args)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_bad_geometry_names_axis():
    with pytest.raises(ValueError, match="width"):
        make_grid(10, 4, (2, 7), (1, 1))
    with pytest.raises(ValueError, match="height"):
        make_grid(4, 10, (7, 2), (1, 1))


@pytest.mark.parametrize("edges", ["same", "VALID", "", "covers"])
def test_bad_edges_names_argument(edges):
    with pytest.raises(ValueError, match="edges") as info:
        make_grid(10, 10, (2, 2), (2, 2), edges)
    assert repr(edges).strip("'") in str(info.value)
