"""fastocclusion._core.accumulate_patch_deltas against a plain scatter (SPEC §1, §4, §5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastocclusion import _core
from reference import patch_boxes, reference_accumulate


def grid_and_boxes(h, w, patch, stride, edges):
    grid = _core.PatchGrid(h, w, patch_size=patch, patch_stride=stride, edges=edges)
    return grid, patch_boxes(h, w, patch, stride, edges)


@st.composite
def accumulate_case(draw):
    h, w = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    patch = (draw(st.integers(1, h)), draw(st.integers(1, w)))
    stride = (draw(st.integers(1, h + 3)), draw(st.integers(1, w + 3)))
    return (
        draw(st.integers(1, 4)),
        (h, w),
        patch,
        stride,
        draw(st.sampled_from(["valid", "cover"])),
        draw(st.sampled_from(["sum", "mean"])),
        draw(st.integers(0, 2**32 - 1)),
    )


@given(accumulate_case())
def test_random_grids_match_scatter(case):
    n, (h, w), patch, stride, edges, reduction, seed = case
    grid, boxes = grid_and_boxes(h, w, patch, stride, edges)
    deltas = np.random.default_rng(seed).normal(0, 10, (n, grid.rows, grid.cols))
    maps = _core.accumulate_patch_deltas(deltas, grid, reduction)
    expected = reference_accumulate(deltas, boxes, h, w, reduction)
    assert maps.dtype == np.float32 and maps.shape == (n, h, w)
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-4)


def test_spec_example_by_hand():
    # L=4, p=2, s=1 on a 1x4 row: anchors 0, 1, 2; pixel x sums the patches covering it.
    grid = _core.PatchGrid(1, 4, patch_size=(1, 2), patch_stride=(1, 1))
    deltas = np.array([[[1.0, 10.0, 100.0]]])
    np.testing.assert_array_equal(_core.accumulate_patch_deltas(deltas, grid, "sum"), [[[1, 11, 110, 100]]])
    np.testing.assert_array_equal(_core.accumulate_patch_deltas(deltas, grid, "mean"), [[[1, 5.5, 55, 100]]])


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_uncovered_pixels_are_zero(reduction):
    # valid edges, stride > patch: gaps and an uncovered far edge.
    grid, boxes = grid_and_boxes(10, 9, (2, 3), (4, 5), "valid")
    deltas = np.full((2, grid.rows, grid.cols), 3.0)
    maps = _core.accumulate_patch_deltas(deltas, grid, reduction)
    covered = np.zeros((10, 9), bool)
    for r0, r1, c0, c1 in boxes:
        covered[r0:r1, c0:c1] = True
    assert (maps[:, ~covered] == 0).all()
    assert (maps[:, covered] == 3.0).all()


@pytest.mark.parametrize("edges", ["valid", "cover"])
def test_mean_of_equal_deltas_is_that_delta(edges):
    grid, boxes = grid_and_boxes(11, 13, (4, 3), (2, 2), edges)
    maps = _core.accumulate_patch_deltas(np.full((1, grid.rows, grid.cols), -2.5), grid, "mean")
    covered = reference_accumulate(np.ones((1, grid.num_patches)), boxes, 11, 13) > 0
    np.testing.assert_allclose(maps[covered], -2.5, rtol=1e-7)
    assert (maps[~covered] == 0).all()


def test_writes_into_given_out_and_overwrites_it():
    grid, boxes = grid_and_boxes(6, 6, (3, 3), (1, 1), "valid")
    deltas = np.random.default_rng(1).normal(size=(3, grid.rows, grid.cols))
    out = np.full((3, 6, 6), np.nan, np.float32)
    result = _core.accumulate_patch_deltas(deltas, grid, "sum", out)
    assert np.shares_memory(result, out)
    np.testing.assert_allclose(out, reference_accumulate(deltas, boxes, 6, 6), rtol=1e-6, atol=1e-6)


def test_many_inputs_take_the_threaded_path():
    grid, boxes = grid_and_boxes(40, 40, (5, 5), (2, 2), "cover")
    deltas = np.random.default_rng(2).normal(size=(16, grid.rows, grid.cols))
    for reduction in ("sum", "mean"):
        np.testing.assert_allclose(
            _core.accumulate_patch_deltas(deltas, grid, reduction),
            reference_accumulate(deltas, boxes, 40, 40, reduction),
            rtol=1e-6,
            atol=1e-5,
        )


# ---- precision: float64 accumulation, ~20k patches ------------------------------------------


def test_twenty_thousand_patches_keep_float64_precision():
    # 141 x 141 = 19881 patches of 60 x 60; the centre pixel sums 3600 deltas of ~1e4.
    h = w = 200
    grid, boxes = grid_and_boxes(h, w, (60, 60), (1, 1), "valid")
    assert grid.num_patches == 19881
    rng = np.random.default_rng(5)
    deltas = 1e4 + rng.uniform(0, 1, (1, grid.rows, grid.cols))
    deltas[0, ::2] *= -1.0  # mixed signs: cancellations along the prefix sums
    maps = _core.accumulate_patch_deltas(deltas, grid, "sum")
    np.testing.assert_allclose(maps, reference_accumulate(deltas, boxes, h, w), rtol=2**-22, atol=1e-6)

    grid_deltas = deltas[0]
    pixels = [(100, 100), (0, 0), (199, 199), (59, 140), (130, 61)]
    pixels += [tuple(p) for p in rng.integers(0, 200, (15, 2))]
    float32_errors = []
    for y, x in pixels:
        rows = [i for i in range(grid.rows) if i <= y < i + 60]
        cols = [j for j in range(grid.cols) if j <= x < j + 60]
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
    return _core.PatchGrid(5, 5, patch_size=(2, 2), patch_stride=(2, 2))  # 2 x 2 patches


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (dict(deltas=np.zeros((1, 2, 2), np.float32)), ["deltas", "float32", "float64"]),
        (dict(deltas=np.zeros((1, 3, 2))), ["deltas", "(1, 3, 2)", "(N, 2, 2)"]),
        (dict(deltas=np.zeros((4,))), ["deltas", "(4,)"]),
        (dict(deltas=np.zeros((0, 2, 2))), ["deltas", "N >= 1"]),
        (dict(deltas=np.zeros((2, 2, 4))[:, :, ::2]), ["deltas", "contiguous"]),
        (dict(reduction="max"), ["reduction", "max", "sum", "mean"]),
        (dict(out=np.zeros((1, 5, 4), np.float32)), ["out", "(1, 5, 4)", "(1, 5, 5)"]),
        (dict(out=np.zeros((1, 5, 5))), ["out", "float64"]),
        (dict(out=np.zeros((1, 5, 10), np.float32)[:, :, ::2]), ["out", "contiguous"]),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, words):
    args = dict(deltas=np.zeros((1, 2, 2)), grid=_grid(), reduction="sum", out=None)
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        _core.accumulate_patch_deltas(**args)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_read_only_out_raises():
    out = np.zeros((1, 5, 5), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out.*writable"):
        _core.accumulate_patch_deltas(np.zeros((1, 2, 2)), _grid(), "sum", out)


def test_out_sharing_memory_with_deltas_raises():
    storage = np.zeros(64, np.float64)
    deltas = storage[:4].reshape(1, 2, 2)
    out = storage[2:].view(np.float32)[:25].reshape(1, 5, 5)
    with pytest.raises(ValueError, match="out.*share memory"):
        _core.accumulate_patch_deltas(deltas, _grid(), "sum", out)
