"""Adaptive drill-down (engine.drill_down, ``Occlusion(approximate=...)``): the options and
their errors (before any model call), the engine against an independent construction
(swept windows hold their exact values, the others NumPy's linear interpolation of the
coarse ones, refined level by level from the finer lattices), the sweep of chosen (input,
window) pairs against the full sweep, every window swept giving the exact maps, and SSIM /
Spearman against naive loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastocclusion import Occlusion, _core
from fastocclusion.engine import WindowGeometry
from fastocclusion.engine.approximation import Approximation, check_approximate, coarse_geometry
from fastocclusion.engine.drill_down import drill_down
from fastocclusion.engine.similarity import spearman, ssim

RNG = np.random.default_rng(5)


def smooth_weights(rng):
    """(12*14*2, 3) weights that vary smoothly over rows and columns (a few Gaussian bumps
    per class, as a trained model's sensitivity does), so that maps have structure to find."""
    rows, cols = np.meshgrid(np.arange(12), np.arange(14), indexing="ij")
    weights = np.zeros((12, 14, 2, 3))
    for c in range(3):
        for _ in range(3):
            r0, c0 = rng.uniform(0, 12), rng.uniform(0, 14)
            bump = np.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (2 * 2.5**2))
            weights[..., c] += rng.normal(0, 0.3) * bump[..., None]
    return weights.reshape(-1, 3) + rng.normal(0, 0.01, (12 * 14 * 2, 3))


WEIGHTS = smooth_weights(RNG)


def model(x):
    """(N, 12, 14, 2) -> (N, 3), float64 inside; its calls are counted."""
    model.calls += 1
    return np.tanh(np.asarray(x).reshape(len(x), -1).astype(np.float64) @ WEIGHTS)


model.calls = 0
X = RNG.uniform(size=(3, 12, 14, 2)).astype(np.float32)
TARGETS = np.eye(3, dtype=np.float32)[[0, 2, 1]]


# -- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("fast", "approximate: 'fast' is invalid"),
        (0.5, "approximate: 0.5 is invalid"),
        ({"drill": 0.5}, r"approximate: keys \['drill'\] are invalid"),
        ({"drill_down": 0}, "drill_down=0 is invalid, expected a share in"),
        ({"drill_down": 1.5}, "drill_down=1.5 is invalid"),
        ({"drill_down": True}, "drill_down=True is invalid"),
        ({"target_ssim": 1.0}, "target_ssim=1.0 is invalid"),
        ({"drill_down": 0.2, "target_ssim": 0.9}, "not both"),
        ({"coarse_stride": 0}, "coarse_stride=0 is invalid"),
        ({"coarse_stride": (2, 2.5)}, r"coarse_stride=\(2, 2.5\) is invalid"),
        ({"projective_field": 0}, "projective_field=0 is invalid, expected a share of a"),
        ({"projective_field": "half"}, "projective_field='half' is invalid"),
        ({"projective_field": np.ones(2)}, "projective_field=array"),
    ],
)
def test_bad_options_name_approximate(value, match):
    with pytest.raises(ValueError, match=match):
        Occlusion(model, approximate=value)


def test_a_coarse_stride_of_the_wrong_count_fails_before_any_call():
    explainer = Occlusion(model, patch_size=4, patch_stride=2,
                          approximate={"coarse_stride": (4, 4, 4)})  # fmt: skip
    model.calls = 0
    with pytest.raises(ValueError, match=r"coarse_stride=\(4, 4, 4\) is invalid, expected"):
        explainer.explain(X, TARGETS)
    assert model.calls == 0


def test_the_options_read_back():
    assert check_approximate(None) is None
    assert check_approximate("auto") == Approximation(None, None, 0.9)
    assert check_approximate({"target_ssim": 0.95}) == Approximation(None, None, 0.95)
    assert check_approximate({"drill_down": 0.3, "coarse_stride": 6}) == Approximation(0.3, (6,))
    both = Approximation(0.3, None, 0.9, 0.5)
    assert check_approximate({"drill_down": 0.3, "projective_field": 0.5}) == both
    # truncation alone sweeps every window (truncated); with a target, the share is chosen
    assert check_approximate({"projective_field": 0.5}) == Approximation(1.0, None, 0.9, 0.5)
    given = Approximation(None, None, 0.95, 0.5)
    assert check_approximate({"projective_field": 0.5, "target_ssim": 0.95}) == given
    tuned = Approximation(0.2, None, 0.9, None, True)
    assert check_approximate({"projective_field": "auto", "drill_down": 0.2}) == tuned


# -- the engine against an independent construction ----------------------------------------


def smooth_values(grid, planes=2):
    """A smooth value per window and plane of one input: (planes, *counts)."""
    anchors = [np.array([a for a, _ in grid.spans(axis)], float) for axis in range(3)]
    a, b, c = np.meshgrid(*anchors, indexing="ij")
    return np.stack([np.sin(a / 3.0) * np.cos(b / 4.0) + 0.1 * c * p for p in range(planes)])


def along_axes(values, source, target):
    """``values`` (rows, *len(source[a])) interpolated by np.interp along each axis from
    the anchors ``source`` to ``target`` (one value: repeated)."""
    for axis, (src, dst) in enumerate(zip(source, target)):
        values = np.apply_along_axis(
            lambda v, s=src, d=dst: np.interp(d, s, v) if len(s) > 1 else np.full(len(d), v[0]),
            axis + 1, values,
        )  # fmt: skip
    return values


def coinciding(fine, coarse):
    """A mask (*counts) of the windows of ``fine`` that are windows of ``coarse`` too."""
    on_axes = [[span in list(coarse.spans(a)) for span in fine.spans(a)]
               for a in range(len(fine.counts))]  # fmt: skip
    return np.logical_and.reduce(np.meshgrid(*on_axes, indexing="ij"))


def smallest_factor(m):
    return next(f for f in range(2, m + 1) if m % f == 0)


def expected_estimates(fine, coarse, coarse_values, known, exact):
    """The drill-down's estimate of every window of one input, built independently: the
    coarse values interpolated to every window, then per refinement level (the coarse
    cell's windows per axis divided by their smallest prime factor, down to 1) the values
    on that level's lattice (every m-th window and the last; exact where ``known``)
    interpolated to every window."""
    axes = range(len(fine.counts))
    anchors = [np.array([a for a, _ in fine.spans(axis)], float) for axis in axes]
    source = [np.array([a for a, _ in coarse.spans(axis)], float) for axis in axes]
    estimate = along_axes(coarse_values, source, anchors)
    step = [max(1, c // s) if n > 1 else 1
            for c, s, n in zip(coarse.stride, fine.stride, fine.counts)]  # fmt: skip
    while True:
        step = [m // smallest_factor(m) if m > 1 else 1 for m in step]
        if all(m == 1 for m in step):
            return estimate
        index = [sorted(set(range(0, n, m)) | {n - 1}) for n, m in zip(fine.counts, step)]
        current = np.where(known, exact, estimate)
        lattice = current[(slice(None),) + np.ix_(*index)]
        estimate = along_axes(lattice, [a[i] for a, i in zip(anchors, index)], anchors)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 3), st.sampled_from([1, 2, 3, 4, 6]),
    st.sampled_from(["valid", "cover", "shift"]), st.floats(0.05, 1.0), st.integers(1, 3),
)  # fmt: skip
def test_swept_windows_are_exact_and_the_others_interpolated(stride, factor, edges, share, n):
    geometry = WindowGeometry((17, 13, 2), (4, 3, 2), (stride, stride, 2), edges, (2,))
    fine = geometry.grid()
    exact = np.stack([smooth_values(fine) * (i + 1) for i in range(n)])  # (n, planes, *counts)
    calls = []

    def sweep_values(g, pairs, tau):
        assert tau is None  # no truncation asked
        grid = g.grid()
        calls.append(pairs)
        if pairs is None:  # the coarse sweep: every window of g
            return np.concatenate([smooth_values(grid) * (i + 1) for i in range(n)])
        flat = exact.reshape(n, 2, -1)
        return flat[pairs[:, 0], :, pairs[:, 1]]

    approximation = Approximation(share, (stride * factor, stride * factor, 2))
    result = drill_down(geometry, approximation, n, sweep_values, lambda v: v)
    values = result.values.reshape((n, 2) + tuple(fine.counts))
    swept = np.zeros((n, fine.num_windows), bool)
    for pairs in calls[1:]:
        assert len(np.unique(pairs, axis=0)) == len(pairs)  # no window swept twice
        assert not swept[pairs[:, 0], pairs[:, 1]].any()
        swept[pairs[:, 0], pairs[:, 1]] = True
    # The coarse windows that are exact windows too (the same spans) are never swept again.
    coarse = coarse_geometry(geometry, approximation.coarse_stride).grid()
    from_coarse = coinciding(fine, coarse)
    assert not (swept.reshape((n,) + tuple(fine.counts)) & from_coarse).any()
    known = swept.reshape((n, 1) + tuple(fine.counts)) | from_coarse
    assert np.isclose(result.exact_share, known.mean())
    inputs, windows = swept.nonzero()
    flat, got = exact.reshape(n, 2, -1), values.reshape(n, 2, -1)
    np.testing.assert_array_equal(got[inputs, :, windows], flat[inputs, :, windows])
    for i in range(n):
        coarse_values = smooth_values(coarse) * (i + 1)
        expected = expected_estimates(fine, coarse, coarse_values, known[i], exact[i])
        unknown = np.broadcast_to(~known[i], expected.shape)
        np.testing.assert_allclose(values[i][unknown], expected[unknown], rtol=0, atol=1e-12)
    assert share >= 1.0 or swept.mean() <= min(1.0, share + 0.5)
    if share == 1.0:
        assert known.all() and result.estimated_ssim == 1.0
        np.testing.assert_allclose(values, exact, rtol=0, atol=1e-12)


def grid_sweeps(exact, calls=None):
    """``sweep_values`` for drill_down over one input's window values ``exact`` ((1, rows,
    cols, 1)): the coarse sweep reads every coarse stride's value, a sweep of pairs reads
    theirs; every sweep's pairs (None for the coarse one) are appended to ``calls``."""

    def sweep_values(g, pairs, tau):
        if calls is not None:
            calls.append(pairs)
        if pairs is None:
            return exact[:, :: g.stride[0], :: g.stride[1]]
        return exact.reshape(1, -1)[:, pairs[:, 1]].T

    return sweep_values


def test_a_cell_is_refined_level_by_level():
    """Coarse cells of 4 x 4 windows: the first sweep takes the 2 x 2 lattice of the cells
    it chooses (no window off it), a later one whole cells of 2 x 2 windows, and the
    estimated SSIM is below 1 while windows are left."""
    geometry = WindowGeometry((40, 40, 1), (2, 2, 1), (1, 1, 1), "valid", (2,))
    rows, cols = np.meshgrid(np.arange(39.0), np.arange(39.0), indexing="ij")
    exact = (np.sin(rows / 2.0) * np.cos(cols / 3.0))[None, :, :, None]
    calls = []
    sweep_values = grid_sweeps(exact, calls)

    approximation = Approximation(None, (4, 4, 1), 0.999)
    result = drill_down(geometry, approximation, 1, sweep_values, lambda v: v)
    first, later = calls[1], calls[-1]
    rows_of, cols_of = np.divmod(first[:, 1], 39)
    audit = max(8, int(np.ceil(0.01 * 39 * 39)))
    off_lattice = (rows_of % 2 == 1) | (cols_of % 2 == 1)
    assert off_lattice.sum() <= audit  # only the audit sample lies off the 2 x 2 lattice
    rows_of, cols_of = np.divmod(later[:, 1], 39)
    assert ((rows_of % 2 == 1) | (cols_of % 2 == 1)).sum() > audit  # whole cells
    assert len(calls) > 3
    assert 0.0 < result.estimated_ssim <= 1.0


# -- the sweeps of chosen pairs ------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 20), st.sampled_from([np.float32, np.float64]))
def test_a_fill_of_pairs_equals_the_stream_fill_of_each(seed, count, dtype):
    rng = np.random.default_rng(seed)
    grid = _core.WindowGrid((9, 7, 2), (3, 2, 2), (2, 1, 2))
    inputs = rng.normal(size=(3, 9, 7, 2)).astype(dtype)
    baseline = np.asarray(rng.normal(), dtype)
    pairs = np.stack([rng.integers(0, 3, count), rng.integers(0, grid.num_windows, count)], 1)
    pairs = pairs.astype(np.int64)
    out = np.empty((count, 9, 7, 2), dtype)
    _core.fill_occluded_batch(inputs, grid, baseline, 0, count, out, pairs=pairs)
    for j, (i, k) in enumerate(pairs):
        one = np.empty((1, 9, 7, 2), dtype)
        _core.fill_occluded_batch(inputs, grid, baseline, int(i * grid.num_windows + k), 1, one)
        np.testing.assert_array_equal(out[j], one[0])
    with pytest.raises(ValueError, match=r"pairs\[0\]=\(3, 0\) is invalid"):
        _core.fill_occluded_batch(inputs, grid, baseline, 0, 1, out,
                                  pairs=np.array([[3, 0]], np.int64))  # fmt: skip


@pytest.mark.parametrize("edges", ["valid", "cover"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_every_window_swept_gives_the_exact_maps(edges, reduction):
    options = dict(patch_size=(4, 3), patch_stride=(2, 1), edges=edges, reduction=reduction,
                   batch_size=7)  # fmt: skip
    exact = Occlusion(model, **options).explain(X, TARGETS).numpy()
    approximate = Occlusion(model, approximate={"drill_down": 1.0}, **options)
    maps = approximate.explain(X, TARGETS).numpy()
    np.testing.assert_allclose(maps, exact, rtol=0, atol=1e-6 * np.abs(exact).max())
    stats = approximate.last_stats
    assert stats.approximate_share == 1.0 and stats.approximate_ssim == 1.0
    assert "100% of the" in stats.approximate_note


def test_a_share_sweeps_that_share_and_says_so():
    options = dict(patch_size=(4, 3), patch_stride=1, batch_size=16)
    exact = Occlusion(model, **options).explain(X, TARGETS).numpy()
    model.calls = 0
    explainer = Occlusion(model, approximate={"drill_down": 0.25}, **options)
    maps = explainer.explain(X, TARGETS).numpy()
    stats = explainer.last_stats
    windows = 9 * 12
    assert stats.patches_per_input == windows
    assert 0.25 <= stats.approximate_share <= 0.45
    geometry = WindowGeometry((12, 14, 2), (4, 3, 2), (1, 1, 2), collapsed_axes=(2,))
    coarse = coarse_geometry(geometry, None).grid()
    both = int(coinciding(geometry.grid(), coarse).sum())  # exact from the coarse pass
    swept = round(stats.approximate_share * 3 * windows) - 3 * both
    assert stats.perturbed_samples == 3 * coarse.num_windows + swept
    assert stats.model_calls == model.calls
    assert 0.0 <= stats.approximate_ssim <= 1.0
    assert f"{stats.approximate_share:.0%} of the {windows} patches computed exactly" in (
        stats.approximate_note
    )
    assert all(ssim(m[..., 0], e[..., 0]) > 0.9 for m, e in zip(maps, exact))
    assert maps.shape == exact.shape and np.isfinite(maps).all()


def test_auto_reaches_its_estimate_and_the_default_stays_exact():
    options = dict(patch_size=4, patch_stride=1, batch_size=16)
    exact = Occlusion(model, **options).explain(X, TARGETS).numpy()
    default = Occlusion(model, approximate=None, **options)
    np.testing.assert_array_equal(default.explain(X, TARGETS).numpy(), exact)
    assert default.last_stats.approximate_share == 1.0 and default.last_stats.approximate_note == ""
    auto = Occlusion(model, approximate={"target_ssim": 0.95}, **options)
    auto.explain(X, TARGETS)
    assert auto.last_stats.approximate_ssim >= 0.95 or auto.last_stats.approximate_share == 1.0


def test_targets_none_resolves_once_for_every_sweep():
    options = dict(patch_size=4, patch_stride=2, batch_size=8)
    exact = Occlusion(model, **options)
    reference = exact.explain(X).numpy()
    approximate = Occlusion(model, approximate={"drill_down": 1.0}, **options)
    np.testing.assert_allclose(approximate.explain(X).numpy(), reference, rtol=0,
                               atol=1e-6 * np.abs(reference).max())  # fmt: skip
    np.testing.assert_array_equal(approximate.last_base_pass.targets, exact.last_base_pass.targets)


# -- SSIM and Spearman against naive loops ------------------------------------------------


def naive_ssim(a, b, width=7):
    span = b.max() - b.min() or 1.0
    c1, c2 = (0.01 * span) ** 2, (0.03 * span) ** 2
    widths = [min(width, s) for s in b.shape]
    values = []
    for corner in np.ndindex(*[s - w + 1 for s, w in zip(b.shape, widths)]):
        box = tuple(slice(c, c + w) for c, w in zip(corner, widths))
        x, y = a[box].ravel(), b[box].ravel()
        mx, my = x.mean(), y.mean()
        vx, vy = x.var(ddof=1), y.var(ddof=1)
        cov = ((x - mx) * (y - my)).sum() / (x.size - 1)
        values.append(((2 * mx * my + c1) * (2 * cov + c2))
                      / ((mx**2 + my**2 + c1) * (vx + vy + c2)))  # fmt: skip
    return float(np.mean(values))


@pytest.mark.parametrize("shape", [(9, 11), (8, 8, 9), (20,), (5, 30)])
def test_ssim_and_spearman_equal_naive_loops(shape):
    rng = np.random.default_rng(len(shape))
    b = rng.normal(size=shape)
    a = b + rng.normal(scale=0.4, size=shape)
    assert ssim(a, b) == pytest.approx(naive_ssim(a, b), abs=1e-12)
    assert ssim(b, b) == pytest.approx(1.0)
    ranks = lambda v: np.argsort(np.argsort(v.ravel())).astype(float)  # noqa: E731
    ra, rb = ranks(a), ranks(b)
    assert spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1], abs=1e-12)
    assert spearman(a, -a) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="approximate: shape"):
        ssim(a, b[..., :-1])


def test_the_audit_sample_sees_errors_where_the_coarse_map_points_nowhere():
    """A bump the coarse map sees (chosen first: no error there) beside a ripple that the
    coarse anchors miss in the flat part (and the 2 x 2 lattice too): only the audit sample
    of the windows left can measure the ripple, and the estimated SSIM must fall with the
    true one. It errs low here (it puts the errors where the map stands out, the bump),
    never high."""
    geometry = WindowGeometry((40, 40, 1), (2, 2, 1), (1, 1, 1), "valid", (2,))
    rows, cols = np.meshgrid(np.arange(39.0), np.arange(39.0), indexing="ij")
    bump = 5.0 * np.exp(-((rows - 6) ** 2 + (cols - 6) ** 2) / 8.0)
    ripple = 0.4 * np.sin(rows * np.pi / 2) * np.sin(cols * np.pi / 2) * (rows > 16)
    exact = (bump + ripple)[None, :, :, None]  # (planes, *counts), one input

    approximation = Approximation(0.1, (4, 4, 1))
    result = drill_down(geometry, approximation, 1, grid_sweeps(exact), lambda v: v)
    true = ssim(result.values[0], exact[0])
    assert true < 0.98  # the ripple is lost where it was not swept
    assert result.estimated_ssim < 0.98
    assert result.estimated_ssim <= true


def test_errors_are_measured_even_when_the_coarse_pass_spends_the_share():
    """Window 2, stride 1, coarse stride 2: the coarse windows are a quarter of the exact
    ones, more than drill_down=0.1 asks; an audit sample is still swept, so the estimate
    comes from measured errors, not a silent 1.0."""
    geometry = WindowGeometry((30, 30, 1), (2, 2, 1), (1, 1, 1), "valid", (2,))
    rows, cols = np.meshgrid(np.arange(29.0), np.arange(29.0), indexing="ij")
    exact = (np.sin(rows * 1.3) * np.cos(cols * 0.9))[None, :, :, None]
    calls = []
    sweep_values = grid_sweeps(exact, calls)

    result = drill_down(geometry, Approximation(0.1, None), 1, sweep_values, lambda v: v)
    assert len(calls) == 2 and 0 < len(calls[1]) <= 0.1 * 29 * 29  # the audit sample only
    true = ssim(result.values[0], exact[0])
    assert true < 0.9 and result.estimated_ssim < 0.9


def test_the_option_check_takes_a_drill_down_on_every_device():
    from fastocclusion.xplique.checks import check_options

    for device in ("gpu", "cpu", "auto"):
        assert check_options(device=device, approximate="auto")["approximate"] is not None
    with pytest.raises(ValueError, match="approximate"):
        check_options(device="cpu", approximate="sometimes")
