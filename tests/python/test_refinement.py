"""The levels of a drill-down's refinement (engine.refinement) and the simulated errors of
its estimates (engine.interpolation_error), against naive constructions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastocclusion.engine.interpolation_error import (
    ErrorModel,
    outstanding,
    smooth_field,
    upper_bound_factor,
)
from fastocclusion.engine.refinement import (
    Cells,
    Refinement,
    dilated_max,
    interpolate,
    level_multipliers,
)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1, 4, 4), [(1, 4, 4), (1, 2, 2), (1, 1, 1)]),
        ((6, 3), [(6, 3), (3, 1), (1, 1)]),
        ((8,), [(8,), (4,), (2,), (1,)]),
        ((1, 1), [(1, 1), (1, 1)]),  # cells of single windows: one level
        ((9, 5), [(9, 5), (3, 1), (1, 1)]),
    ],
)
def test_each_level_divides_by_the_smallest_prime_factor(size, expected):
    assert level_multipliers(size) == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=3), st.integers(0, 2**31))
def test_dilated_max_equals_a_naive_box(shape, seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=shape)
    radius = tuple(int(r) for r in rng.integers(0, 3, len(shape)))
    got = dilated_max(values, radius)
    for index in np.ndindex(*shape):
        box = tuple(slice(max(0, i - r), i + r + 1) for i, r in zip(index, radius))
        assert got[index] == values[box].max()


def test_interpolation_is_exact_on_linear_values_and_holds_past_the_ends():
    source = [np.array([0.0, 4.0, 10.0]), np.array([1.0, 3.0])]
    target = [np.arange(-2.0, 13.0), np.arange(0.0, 5.0)]
    a, b = np.meshgrid(*source, indexing="ij")
    values = (2.0 * a - 3.0 * b + 1.0)[None]
    got = interpolate(values, source, target)[0]
    ta = np.clip(target[0], 0.0, 10.0)[:, None]
    tb = np.clip(target[1], 1.0, 3.0)[None, :]
    np.testing.assert_allclose(got, 2.0 * ta - 3.0 * tb + 1.0, rtol=0, atol=1e-12)


def test_cells_cover_every_window_once():
    cells = Cells((5, 7), (2, 3))
    assert cells.shape == (3, 3) and cells.count == 9
    rows, cols = np.divmod(np.arange(35), 7)
    np.testing.assert_array_equal(cells.cell_of, (rows // 2) * 3 + cols // 3)
    per_window = np.arange(35.0)
    np.testing.assert_array_equal(cells.priority(per_window)[[0, 8]], [9.0, 34.0])
    assert cells.windows(np.array([4])).sum() == 6


def test_lattices_hold_every_mth_window_and_the_last():
    refinement = Refinement((1, 11), (1, 4), [np.zeros(1), np.arange(11.0) * 3])
    assert refinement.levels == 2
    np.testing.assert_array_equal(np.flatnonzero(refinement.lattice(0)), [0, 4, 8, 10])
    np.testing.assert_array_equal(np.flatnonzero(refinement.lattice(1)), [0, 2, 4, 6, 8, 10])
    assert refinement.lattice(2).all()
    # with nothing known past the coarse lattice, the estimate is the coarse interpolation
    values = np.sin(np.arange(11.0))[None]
    base = refinement.sampled(values)
    known = refinement.lattice(0)
    np.testing.assert_allclose(refinement.estimate(base, values, known), base, atol=1e-12)
    # a known window of the 2-lattice pulls its neighbours, nothing else
    known = known.copy()
    known[2] = True
    estimate = refinement.estimate(base, values, known)[0]
    np.testing.assert_allclose(estimate[1], (values[0, 0] + values[0, 2]) / 2, atol=1e-12)
    np.testing.assert_allclose(estimate[5:], base[0, 5:], atol=1e-12)


def test_upper_bound_factor_shrinks_to_one_with_more_samples():
    factors = [upper_bound_factor(k) for k in (1, 4, 16, 64, 256, 4096)]
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert factors[-1] == pytest.approx(1.0, abs=0.03) and factors[0] > 2.0
    assert math.isinf(upper_bound_factor(0))


def test_the_smooth_field_has_unit_rms_and_neighbours_that_agree():
    field = smooth_field((2, 40, 40), (4, 4), seed=3)
    assert field.shape == (2, 1600)
    assert np.sqrt(np.mean(field**2)) == pytest.approx(1.0)
    grid = field.reshape(2, 40, 40)
    neighbours = np.corrcoef(grid[:, :, 1:].ravel(), grid[:, :, :-1].ravel())[0, 1]
    assert neighbours > 0.5  # as smooth as overlapping windows' values
    np.testing.assert_array_equal(field, smooth_field((2, 40, 40), (4, 4), seed=3))


def test_simulated_errors_vanish_where_known_and_the_estimate_follows_the_fit():
    counts = (1, 21, 21)
    anchors = [np.zeros(1), np.arange(21.0), np.arange(21.0)]
    refinement = Refinement(counts, (1, 4, 4), anchors)
    model = ErrorModel(refinement, 1, (1, 4, 4), seed=0)
    rows, cols = np.meshgrid(np.arange(21.0), np.arange(21.0), indexing="ij")
    values = np.exp(-((rows - 10) ** 2 + (cols - 8) ** 2) / 20.0).reshape(1, -1)
    known = refinement.lattice(0).copy()
    known[:50] = True
    simulated = model.simulated(values, known)
    assert not simulated[:, known].any() and simulated[:, ~known].any()
    assemble = lambda v: v  # noqa: E731
    assert model.estimated_ssim(values, known, assemble, (1,) + counts) == 1.0  # no fit yet
    chosen = np.flatnonzero(~known)[:40]
    audit = np.zeros(40, dtype=bool)
    estimates = []
    for size in (0.01, 0.1, 1.0):  # measured errors of growing size
        model.fit(size * simulated[:, chosen], simulated[:, chosen], audit)
        estimates.append(model.estimated_ssim(values, known, assemble, (1,) + counts))
    assert 1.0 > estimates[0] > estimates[1] > estimates[2]
    # the fitted factor is the measured one raised to its upper confidence bound
    assert model.factor == pytest.approx(1.0 * upper_bound_factor(40))
    assert outstanding(np.array([[1.0, 2.0, 9.0]])).tolist() == [1.0, 0.0, 7.0]
