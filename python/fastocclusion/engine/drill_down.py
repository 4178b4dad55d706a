"""Adaptive drill-down: a coarse sweep first, the exact sweep only where it matters
(design §9; Krypton, Nakandala et al., SIGMOD 2019), for every model and front-end.

An occlusion map is an accumulation of one value per window (a score drop, or MONAI's
outputs). With windows every ``stride``, neighbouring windows' values are close where the
model's response is smooth, so:

1. the coarse pass sweeps the same windows every ``coarse_stride`` (a multiple of the
   stride, by default at least the window: no overlap), one sweep of all inputs;
2. every exact window's value is estimated from the coarse ones: linear interpolation
   along each axis between the coarse windows' anchors (the nearest coarse value past
   the last one);
3. the exact windows are cut into blocks of one coarse cell each (coarse_stride / stride
   windows per axis); per input, the blocks whose estimated values stand out most (the
   largest |value - median| of a window in them) are swept exactly, whole blocks until a
   share ``r`` of the windows is reached: one sweep of the chosen (input, window) pairs
   of every input (a ``Sweep`` of ``pairs``: one base pass, full batches);
4. the map accumulates every exact window's value: the swept ones, the estimates
   elsewhere (``_core.accumulate_window_deltas`` or ``blend_window_values``, as the exact
   sweep's own maps).

With r = 1 every window is swept and the maps are the exact sweep's (the same values, up to
the model's round-off in batches of other samples, through the same accumulation). Nothing
here calls a model: the front-end passes ``sweep_values(geometry, pairs)``, which runs one
sweep and returns its window values.

The measured error (``DrillDownResult``): the swept windows hold both their exact value and
their estimate, so their disagreement is measured every time. Over the last blocks swept
(the least outstanding ones, the nearest to those left estimated), and over an audit
sample of the windows left estimated (AUDIT_SHARE of the windows, at random, swept beside
the blocks), the errors are fitted as a multiple of how far each estimate stands out (plus
1 % of the largest value; the larger fit of the two), and every window left estimated is
given such an error: the estimated SSIM is that of the map
against the map with these errors added (independent normal draws per window, a fixed
seed; draws shared by a block's windows were measured far too pessimistic: 0.55 estimated
for a true 0.89 on a trained VGG-16). "auto" sweeps blocks in
rounds (5, 10, 20, 35, 50, 75, 100 % of the windows; one sweep per round, of the inputs
still short) until that estimate reaches the target SSIM for every input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastocclusion.engine.approximation import Approximation, coarse_geometry
from fastocclusion.engine.geometry import WindowGeometry
from fastocclusion.engine.projective_field import AUTO_SHARES, Truncation, measure_truncation
from fastocclusion.engine.similarity import ssim

__all__ = ["AUTO_ROUNDS", "DrillDownResult", "drill_down"]

#: Each round also sweeps a random sample of the windows it leaves estimated: this share
#: of the windows, at least AUDIT_MIN (or a tenth of a small grid's windows); their
#: errors enter the estimated SSIM.
AUDIT_SHARE = 0.02
AUDIT_MIN = 8
#: The cumulative shares of the windows "auto" sweeps exactly, round by round.
AUTO_ROUNDS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class DrillDownResult:
    """What a drill-down computed: ``values`` (N * planes, *counts) of the exact geometry's
    windows (swept, or estimated), ``swept_share`` (of those windows, swept exactly),
    ``coarse_windows`` (per input), ``estimated_ssim`` (of the maps against the exact ones,
    the lowest over the inputs, see the module docstring; 1.0 when every window was swept),
    ``disagreement`` (the root mean square of swept - estimated over the last blocks swept,
    relative to the largest |value|; the largest over the inputs), ``sweeps`` and
    ``truncation`` (the projective-field truncation used, and its measured SSIM)."""

    values: np.ndarray
    truncation: Truncation
    swept_share: float
    coarse_windows: int
    estimated_ssim: float
    disagreement: float
    sweeps: int


def _anchors(grid: Any, axis: int) -> np.ndarray:
    return np.asarray([anchor for anchor, _ in grid.spans(axis)], dtype=np.float64)


def _interpolate(values: np.ndarray, coarse: Any, fine: Any) -> np.ndarray:
    """Window values over ``coarse``'s windows ((rows, *coarse counts)) at ``fine``'s
    anchors: linear along each axis, the nearest value past the ends."""
    out = values
    for axis in range(len(fine.counts)):
        src, dst = _anchors(coarse, axis), _anchors(fine, axis)
        if len(src) == 1:
            out = np.repeat(out, len(dst), axis=axis + 1)
            continue
        right = np.clip(np.searchsorted(src, dst, side="right"), 1, len(src) - 1)
        left = right - 1
        t = np.clip((dst - src[left]) / (src[right] - src[left]), 0.0, 1.0)
        shape = [1] * out.ndim
        shape[axis + 1] = len(dst)
        t = t.reshape(shape)
        out = np.take(out, left, axis=axis + 1) * (1 - t) + np.take(out, right, axis=axis + 1) * t
    return out


class _Blocks:
    """The exact windows cut into blocks of ``size`` windows per axis."""

    def __init__(self, counts: tuple[int, ...], size: tuple[int, ...]) -> None:
        self.counts, self.size = counts, size
        self.shape = tuple(-(-c // s) for c, s in zip(counts, size))
        block_of = np.zeros(counts, dtype=np.int64)  # each window's block (flat index)
        for axis, (c, s) in enumerate(zip(counts, size)):
            index = np.arange(c) // s
            shape = [1] * len(counts)
            shape[axis] = c
            block_of = block_of * self.shape[axis] + index.reshape(shape)
        self.block_of = block_of.reshape(-1)

    @property
    def count(self) -> int:
        return int(np.prod(self.shape))

    @property
    def sizes(self) -> np.ndarray:
        """The number of windows of each block: (blocks,)."""
        return np.bincount(self.block_of, minlength=self.count)

    def priority(self, outstanding: np.ndarray) -> np.ndarray:
        """The most outstanding window of each block: (blocks,) of (windows,)."""
        best = np.full(self.count, -np.inf)
        np.maximum.at(best, self.block_of, outstanding)
        return best

    def windows(self, chosen: np.ndarray) -> np.ndarray:
        """The windows (flat indices, ascending) of the blocks ``chosen``."""
        mask = np.zeros(self.count, dtype=bool)
        mask[chosen] = True
        return np.flatnonzero(mask[self.block_of])


def _outstanding(estimate: np.ndarray) -> np.ndarray:
    """How far each window's estimate stands out: |value - median| summed over the planes,
    (windows,) of one input's (planes, windows) estimates."""
    return np.abs(estimate - np.median(estimate, axis=1, keepdims=True)).sum(axis=0)


def _estimated_ssim(
    values: np.ndarray, swept: np.ndarray, spread: np.ndarray,
    assemble: Callable[[np.ndarray], Any],
) -> float:  # fmt: skip
    """The SSIM of the map of ``values`` ((planes, *counts) of one input) against that map
    with errors added to the windows not ``swept`` (a flat mask): independent N(0, 1)
    draws per window and plane, times each window's ``spread`` (the error expected of its
    estimate)."""
    if not spread.any() or swept.all():
        return 1.0
    draws = np.random.default_rng(0).normal(0.0, 1.0, (len(values), swept.size))
    noise = draws * (spread * ~swept)
    return ssim(
        np.asarray(assemble(values + noise.reshape(values.shape))), np.asarray(assemble(values))
    )


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
    coarse_values = sweep_values(coarse, None, None)
    truncation = _truncation(approximation, coarse, fine, n, coarse_values, sweep_values, assemble)
    tau = truncation.share
    estimate = _interpolate(coarse_values, coarse.grid(), fine)
    planes = estimate.shape[0] // n
    estimate = estimate.reshape(n, planes, windows)
    values = estimate.copy()
    size = tuple(max(1, cs // s) if c > 1 else 1
                 for cs, s, c in zip(coarse.stride, geometry.stride, counts))  # fmt: skip
    blocks = _Blocks(counts, size)
    outstanding = [_outstanding(estimate[i]) for i in range(n)]
    orders = [np.argsort(-blocks.priority(outstanding[i]), kind="stable") for i in range(n)]
    swept = np.zeros((n, windows), dtype=bool)
    done = np.zeros(n, dtype=np.int64)  # blocks swept per input
    open_inputs = list(range(n))
    estimated = np.ones(n)
    disagreement = np.zeros(n)
    rounds = (approximation.share,) if approximation.share is not None else AUTO_ROUNDS
    sweeps = 1 + truncation.sweeps
    # Whole blocks in priority order until the share of windows is reached (edge blocks
    # hold fewer windows).
    reached = [np.cumsum(blocks.sizes[order]) for order in orders]
    for share in rounds:
        wanted = {
            i: min(blocks.count, int(np.searchsorted(reached[i], share * windows - 1e-9)) + 1)
            for i in open_inputs
        }
        blocks_of = {i: blocks.windows(orders[i][done[i] : wanted[i]]) for i in open_inputs}
        blocks_of = {i: w[~swept[i][w]] for i, w in blocks_of.items()}  # audited before
        audits = {i: _audit(swept[i], w, windows, i) for i, w in blocks_of.items()}
        chosen = {i: np.concatenate([w, audits[i]]) for i, w in blocks_of.items()}
        chosen = {i: w for i, w in chosen.items() if len(w)}
        if not chosen:
            continue
        pairs = np.concatenate(
            [np.stack([np.full(len(w), i), w], axis=1) for i, w in chosen.items()]
        ).astype(np.int64)
        exact = sweep_values(geometry, pairs, tau).reshape(len(pairs), planes)
        sweeps += 1
        at = 0
        for i, w in chosen.items():
            part = exact[at : at + len(w)].T  # (planes, windows)
            at += len(w)
            residual = part - estimate[i][:, w]
            values[i][:, w] = part
            swept[i, w] = True
            done[i] = wanted[i]
            scale = max(float(np.abs(values[i]).max()), 1e-300)
            disagreement[i] = _rms(residual) / scale
            # The errors grow with how far an estimate stands out (a floor of 1 % of the
            # largest value for the flat ones), fitted on the windows just swept: the
            # blocks, and the audit sample of the windows left (the larger of the two).
            level = outstanding[i] + 0.01 * scale
            errors = np.abs(residual).sum(axis=0) / level[w]
            split = len(w) - len(audits[i])  # the blocks' windows, then the audit's
            ratio = max(_rms(errors[:split]), _rms(errors[split:]))
            one = values[i].reshape((planes,) + counts)
            estimated[i] = _estimated_ssim(one, swept[i], ratio * level, assemble)
            estimated[i] *= truncation.ssim[i]
        if approximation.share is None:
            open_inputs = [i for i in open_inputs if estimated[i] < approximation.target_ssim]
            if not open_inputs:
                break
    return DrillDownResult(
        values=values.reshape((n * planes,) + counts),
        truncation=truncation,
        swept_share=float(swept.mean()),
        coarse_windows=int(coarse.grid().num_windows),
        estimated_ssim=float(estimated.min()),
        disagreement=float(disagreement.max()),
        sweeps=sweeps,
    )


def _rms(values: np.ndarray) -> float:
    """The root mean square of ``values`` (0.0 for none)."""
    return float(np.sqrt(np.mean(values**2))) if values.size else 0.0


def _audit(swept: np.ndarray, chosen: np.ndarray, windows: int, seed: int) -> np.ndarray:
    """An audit sample of one input's windows left estimated after this round (neither
    ``swept`` nor ``chosen``): AUDIT_SHARE of the windows (at least AUDIT_MIN), uniformly
    at random (a fixed seed per input and round), ascending. Their errors are measured
    where the coarse map did not point: the blocks chosen are the most outstanding, so
    their errors alone can understate those of the windows left."""
    left = np.ones(windows, dtype=bool)
    left[swept] = False
    left[chosen] = False
    candidates = np.flatnonzero(left)
    least = min(AUDIT_MIN, math.ceil(0.1 * windows))  # small grids: a tenth at most
    count = min(len(candidates), max(least, math.ceil(AUDIT_SHARE * windows)))
    if count == 0:
        return candidates
    rng = np.random.default_rng([seed, int(swept.sum())])
    return np.sort(rng.choice(candidates, size=count, replace=False))


def _truncation(
    approximation: Approximation, coarse: WindowGeometry, fine: Any, n: int,
    exact: np.ndarray, sweep_values: Callable[..., np.ndarray],
    assemble: Callable[[np.ndarray], Any],
) -> Truncation:  # fmt: skip
    """The projective-field truncation of the swept windows (engine.projective_field): the
    given tau, measured; for "projective_field": "auto" the smallest of AUTO_SHARES, tried
    from the mildest, whose coarse-window maps keep half the SSIM budget (1 - (1 - target)
    / 2); none asked (approximate="auto" included: measured, truncation kept that SSIM on
    no model of bench_approximate where it cut boxes): none."""
    if approximation.projective_field is not None:
        shares: tuple[float, ...] = (approximation.projective_field,)
        goal = None
    elif approximation.tune_projective_field:
        shares, goal = AUTO_SHARES, 1.0 - (1.0 - approximation.target_ssim) / 2
    else:
        return Truncation(None, np.ones(n), ())
    counts = tuple(int(c) for c in fine.counts)

    def maps_of(values: np.ndarray) -> Any:
        upsampled = _interpolate(values, coarse.grid(), fine)
        return assemble(upsampled.reshape((len(values),) + counts))

    return measure_truncation(
        exact, n, shares, goal, lambda tau: sweep_values(coarse, None, tau), maps_of
    )
