"""Adaptive drill-down: a coarse sweep first, the exact sweep only where it matters
(design §10; Krypton, Nakandala et al., SIGMOD 2019), for every model and front-end.

An occlusion map is an accumulation of one value per window (a score drop, or MONAI's
outputs). With windows every ``stride``, neighbouring windows' values are close where the
model's response is smooth, so:

1. the coarse pass sweeps the same windows every ``coarse_stride`` (a multiple of the
   stride, by default at least the window: no overlap), one sweep of all inputs; every
   exact window's value is first estimated from the coarse ones (linear interpolation
   along each axis between the coarse windows' anchors);
2. chosen coarse cells are refined level by level (engine.refinement): a level sweeps the
   windows of its lattice in the cells it chose (a cell of 4 x 4 windows first at its
   2 x 2 lattice, then in full), and the windows not swept are interpolated from the
   finest lattice around them. The first level chooses the cells whose estimated values
   stand out most (the largest |value - median| of a window in them); a later one the
   cells nearest to the largest errors measured so far (a swept window's exact value
   against the estimate it had), the most outstanding first among equals. Each sweep is
   one ``Sweep`` of the chosen (input, window) pairs of every input (one base pass, full
   batches);
3. the map accumulates every exact window's value: the swept ones, the estimates
   elsewhere (``_core.accumulate_window_deltas`` or ``blend_window_values``, as the exact
   sweep's own maps).

``{"drill_down": r}`` sweeps a share r of the windows (whole cells, so a little more):
every level before the last in full while r allows, the rest at the last level, one sweep
per level. With r = 1 every window is swept and the maps are the exact sweep's (the same
values, up to the model's round-off in batches of other samples, through the same
accumulation). Nothing here calls a model: the front-end passes ``sweep_values(geometry,
pairs)``, which runs one sweep and returns its window values.

The measured error (``DrillDownResult``): every swept window holds both its exact value
and the estimate it had, so the estimates' errors are measured every time, on the windows
a sweep chose and on an audit sample of the windows it leaves estimated (AUDIT_SHARE of
the windows, at random, swept beside them). engine.interpolation_error turns them into an
estimated SSIM of the maps against the exact ones (errors simulated with the structure of
an interpolation's, their size fitted to the measured ones, raised to a 95 % upper
confidence bound). "auto" sweeps in rounds (a level before the last: 25, 50, 75, 100 % of
its cells; the last level: 5, 10, 20, 35, 50, 75, 100 %; one sweep per round, of the
inputs still short) until that estimate reaches the target SSIM for every input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastocclusion.engine.approximation import Approximation, coarse_geometry
from fastocclusion.engine.geometry import WindowGeometry
from fastocclusion.engine.interpolation_error import ErrorModel, outstanding
from fastocclusion.engine.projective_field import AUTO_SHARES, Truncation, measure_truncation
from fastocclusion.engine.refinement import Refinement, dilated_max, interpolate

__all__ = ["AUTO_ROUNDS", "LEVEL_ROUNDS", "DrillDownResult", "drill_down"]

#: Each sweep also sweeps a random sample of the windows it leaves estimated: this share
#: of the windows, at least AUDIT_MIN (or a tenth of a small grid's windows); their
#: errors enter the estimated SSIM.
AUDIT_SHARE = 0.01
AUDIT_MIN = 8
#: The cumulative shares of a level's cells "auto" refines, round by round: at a level
#: before the last, and at the last level (every window of its cells swept).
LEVEL_ROUNDS = (0.25, 0.5, 0.75, 1.0)
AUTO_ROUNDS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class DrillDownResult:
    """What a drill-down computed: ``values`` (N * planes, *counts) of the exact geometry's
    windows (exact, or estimated), ``exact_share`` (of those windows, computed exactly:
    swept, or coarse windows that are windows of the geometry too),
    ``coarse_windows`` (per input), ``estimated_ssims`` (of each input's maps against the
    exact ones, see the module docstring; 1.0 where every window is exact) and
    ``estimated_ssim`` (the lowest of them), ``disagreement`` (the root mean square of
    swept - estimated over the windows the last sweep chose, relative to the largest
    |value|; the largest over the inputs),
    ``sweeps`` and ``truncation`` (the projective-field truncation used, and its measured
    SSIM)."""

    values: np.ndarray
    truncation: Truncation
    exact_share: float
    coarse_windows: int
    estimated_ssims: np.ndarray
    estimated_ssim: float
    disagreement: float
    sweeps: int


def _anchors(grid: Any, axis: int) -> np.ndarray:
    return np.asarray([anchor for anchor, _ in grid.spans(axis)], dtype=np.float64)


def _coinciding(fine: Any, coarse: Any) -> np.ndarray:
    """A mask (windows,) of the exact windows that are coarse windows too (the same anchor
    and length on every axis): the coarse pass computed their values exactly."""
    mask = np.ones((), dtype=bool)
    for axis in range(len(fine.counts)):
        spans = {tuple(span) for span in coarse.spans(axis)}
        on_axis = np.array([tuple(span) in spans for span in fine.spans(axis)])
        mask = mask[..., None] & on_axis
    return mask.reshape(-1)


def _rms(values: np.ndarray) -> float:
    """The root mean square of ``values`` (0.0 for none)."""
    return float(np.sqrt(np.mean(values**2))) if values.size else 0.0


class _Input:
    """One input's drill-down: its values (exact where known, estimated elsewhere), what
    is known, the errors measured and the model of those left."""

    def __init__(self, base: np.ndarray, known: np.ndarray, model: ErrorModel) -> None:
        self.base = base  # (planes, windows): the coarse interpolation
        self.values = base.copy()
        self.known = known.copy()  # swept, or a coarse window
        self.errors = np.zeros(known.shape)  # |exact - estimate| of the swept windows
        self.model = model
        self.order = np.zeros(0, dtype=np.int64)  # the cells of the level, in order
        self.done = 0  # how many of them are refined
        self.estimated = 1.0
        self.disagreement = 0.0
        self.measured = False  # whether a sweep measured its estimates' errors

    def learn(
        self, chosen: np.ndarray, audit: np.ndarray, exact: np.ndarray, refinement: Refinement
    ) -> None:  # fmt: skip
        """Takes the exact values ((planes, len(chosen) + len(audit))) of the windows
        ``chosen`` and ``audit`` (flat indices): the errors of their estimates, then the
        new estimates of the others."""
        windows = np.concatenate([chosen, audit])
        self.measured = True
        simulated = self.model.simulated(self.values, self.known)[:, windows]
        residual = exact - self.values[:, windows]
        self.model.fit(residual, simulated, np.arange(len(windows)) >= len(chosen))
        scale = max(float(np.abs(self.values).max()), float(np.abs(exact).max()), 1e-300)
        self.disagreement = _rms(residual[:, : len(chosen)]) / scale
        self.errors[windows] = np.abs(residual).sum(axis=0)
        self.values[:, windows] = exact
        self.known[windows] = True
        estimate = refinement.estimate(self.base, self.values, self.known)
        self.values = np.where(self.known, self.values, estimate)


def _audit(known: np.ndarray, chosen: np.ndarray, seed: list[int]) -> np.ndarray:
    """An audit sample of one input's windows left estimated after this sweep (neither
    ``known`` nor ``chosen``): AUDIT_SHARE of the windows (at least AUDIT_MIN), uniformly
    at random (a fixed ``seed`` per input and sweep), ascending. Their errors are measured
    where the sweep did not point: its windows are the most outstanding, so their errors
    alone can understate those of the windows left."""
    windows = known.size
    left = ~known
    left[chosen] = False
    candidates = np.flatnonzero(left)
    least = min(AUDIT_MIN, math.ceil(0.1 * windows))  # small grids: a tenth at most
    count = min(len(candidates), max(least, math.ceil(AUDIT_SHARE * windows)))
    if count == 0:
        return candidates
    return np.sort(np.random.default_rng(seed).choice(candidates, size=count, replace=False))


def _rounds(levels: int, share: float | None) -> list[tuple[int, float]]:
    """The sweeps, as (level, cumulative share of its cells): "auto"'s rounds, or one per
    level for a given share (its budget decides)."""
    if share is not None:
        return [(level, 1.0) for level in range(1, levels + 1)]
    return [(level, s) for level in range(1, levels + 1)
            for s in (LEVEL_ROUNDS if level < levels else AUTO_ROUNDS)]  # fmt: skip


def _cell_order(one: _Input, refinement: Refinement, level: int) -> np.ndarray:
    """The cells of ``level`` in the order they are refined: the first level by how far
    their estimates stand out, a later one by the largest error measured within one of its
    cells (then by how far they stand out)."""
    cells = refinement.cells(level)
    standing_out = cells.priority(outstanding(one.values))
    if level == 1:
        return np.argsort(-standing_out, kind="stable")
    near = dilated_max(one.errors.reshape(refinement.counts), cells.size)
    return np.lexsort((-standing_out, -cells.priority(near.reshape(-1))))


def drill_down(
    geometry: WindowGeometry,
    approximation: Approximation,
    n: int,
    sweep_values: Callable[[WindowGeometry, np.ndarray | None, float | None], np.ndarray],
    assemble: Callable[[np.ndarray], Any],
) -> DrillDownResult:
    """The window values of ``geometry`` for ``n`` inputs, by drill-down (see the module
    docstring). ``sweep_values(g, None, tau)``: one sweep of every window of ``g`` for every
    input, returning their values (n * planes, *g's counts), input-major;
    ``sweep_values(geometry, pairs, tau)``: one sweep of the (input, window) ``pairs``
    ((P, 2) int64) only, returning (P, planes); ``tau``: the projective-field truncation
    share of the sweep (None: exact); ``assemble(values)``: the maps of one input's
    (planes, *counts) values (for the error estimates).

    >>> result = drill_down(geometry, Approximation(0.2, None), 1, run, maps)  # doctest: +SKIP
    """
    fine = geometry.grid()
    counts = tuple(int(c) for c in fine.counts)
    windows = int(fine.num_windows)
    coarse = coarse_geometry(geometry, approximation.coarse_stride)
    coarse_grid = coarse.grid()
    coarse_values = sweep_values(coarse, None, None)
    anchors = [_anchors(fine, axis) for axis in range(len(counts))]
    source = [_anchors(coarse_grid, axis) for axis in range(len(counts))]

    def coarse_maps(values: np.ndarray) -> Any:  # coarse values interpolated, assembled
        return assemble(interpolate(values, source, anchors).reshape((len(values),) + counts))

    truncation = _truncation(approximation, coarse, n, coarse_values, sweep_values, coarse_maps)
    base = interpolate(coarse_values, source, anchors)
    planes = base.shape[0] // n
    base = base.reshape(n, planes, windows)
    size = tuple(max(1, cs // s) if c > 1 else 1
                 for cs, s, c in zip(coarse.stride, geometry.stride, counts))  # fmt: skip
    refinement = Refinement(counts, size, anchors)
    # The coarse windows that are exact windows too are known, unless the sweeps truncate
    # (their values would then differ from the others' in kind).
    from_coarse = _coinciding(fine, coarse_grid) & (truncation.share is None)
    width = tuple(max(1, round(w / s)) if c > 1 else 1
                  for w, s, c in zip(geometry.window, geometry.stride, counts))  # fmt: skip
    inputs = [_Input(base[i], from_coarse, ErrorModel(refinement, planes, width, i))
              for i in range(n)]  # fmt: skip
    budget = None if approximation.share is None else approximation.share * windows
    open_inputs = list(range(n))
    sweeps = 1 + truncation.sweeps
    level_of = 0
    for level, share in _rounds(refinement.levels, approximation.share):
        lattice = refinement.lattice(level)
        cells = refinement.cells(level)
        chosen: dict[int, np.ndarray] = {}
        for i in open_inputs:
            one = inputs[i]
            if level != level_of:
                one.order, one.done = _cell_order(one, refinement, level), 0
            wanted = max(one.done, min(cells.count, math.ceil(share * cells.count - 1e-9)))
            picked = one.order[one.done : wanted]
            fresh = lattice & ~one.known  # the windows a refined cell would sweep
            if budget is not None:  # whole cells until the share of windows is reached
                left = budget - one.known.sum()
                per_cell = np.bincount(cells.cell_of[fresh], minlength=cells.count)[picked]
                keep = int(np.searchsorted(np.cumsum(per_cell), left - 1e-9)) + 1
                picked = picked[: keep if left > 0 else 0]
            one.done += len(picked)
            new = np.flatnonzero(cells.windows(picked) & fresh)
            last = level == refinement.levels and share == 1.0
            if len(new) or (last and not one.measured and not one.known.all()):
                chosen[i] = new  # (none: an input's errors are measured at least once)
        level_of = level
        if not chosen:
            continue
        audits = {i: _audit(inputs[i].known, w, [i, sweeps]) for i, w in chosen.items()}
        pairs = np.concatenate([
            np.stack([np.full(len(w) + len(audits[i]), i), np.concatenate([w, audits[i]])], 1)
            for i, w in chosen.items()
        ]).astype(np.int64)  # fmt: skip
        exact = sweep_values(geometry, pairs, truncation.share).reshape(len(pairs), planes)
        sweeps += 1
        at = 0
        for i, w in chosen.items():
            one = inputs[i]
            count = len(w) + len(audits[i])
            one.learn(w, audits[i], exact[at : at + count].T, refinement)
            at += count
            one.estimated = truncation.ssim[i] * one.model.estimated_ssim(
                one.values, one.known, assemble, (planes,) + counts
            )
        if approximation.share is None:
            open_inputs = [i for i in open_inputs
                           if inputs[i].estimated < approximation.target_ssim]  # fmt: skip
            if not open_inputs:
                break
    known = np.stack([one.known for one in inputs])
    estimated = np.array([1.0 if one.known.all() else one.estimated for one in inputs])
    values = np.stack([one.values for one in inputs])
    return DrillDownResult(
        values=values.reshape((n * planes,) + counts),
        truncation=truncation,
        exact_share=float(known.mean()),
        coarse_windows=int(coarse_grid.num_windows),
        estimated_ssims=estimated,
        estimated_ssim=float(estimated.min()),
        disagreement=float(max(one.disagreement for one in inputs)),
        sweeps=sweeps,
    )


def _truncation(
    approximation: Approximation, coarse: WindowGeometry, n: int, exact: np.ndarray,
    sweep_values: Callable[..., np.ndarray], maps_of: Callable[[np.ndarray], Any],
) -> Truncation:  # fmt: skip
    """The projective-field truncation of the swept windows (engine.projective_field): the
    given tau, measured; for "projective_field": "auto" the smallest of AUTO_SHARES, tried
    from the mildest, whose coarse-window maps keep half the SSIM budget (1 - (1 - target)
    / 2); none asked (approximate="auto" included: measured, truncation kept that SSIM on
    no model of bench_approximate where it cut boxes): none. ``maps_of(values)``: the maps
    of coarse window values (rows, *coarse counts), interpolated to every window."""
    if approximation.projective_field is not None:
        shares: tuple[float, ...] = (approximation.projective_field,)
        goal = None
    elif approximation.tune_projective_field:
        shares, goal = AUTO_SHARES, 1.0 - (1.0 - approximation.target_ssim) / 2
    else:
        return Truncation(None, np.ones(n), ())
    return measure_truncation(
        exact, n, shares, goal, lambda tau: sweep_values(coarse, None, tau), maps_of
    )
