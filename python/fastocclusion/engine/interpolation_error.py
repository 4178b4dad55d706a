"""How far a drill-down's maps are from the exact ones (engine.drill_down): the errors of
its interpolated windows, simulated with the structure they have and the size measured.

The SSIM of an approximate map depends on where its errors lie and how they are shaped,
not only on their size: errors that neighbouring windows share survive the map's
accumulation, independent ones average out. Measured on the recorded window values of
bench_approximate's networks (benchmarks/replay_drill_down.py), independent errors of
the exact sizes overstate the SSIM by up to 0.13. The error of an interpolated window is
simulated as

    a * f(w) * (Z(w) - Z_known(w))

- ``Z``: a random field as smooth as the window values themselves (independent normal
  draws averaged over one window's extent, in windows, along each axis: neighbouring
  windows overlap), the same for every sweep of an input (a fixed seed);
- ``Z_known``: Z interpolated exactly as the drill-down interpolates the values, from the
  same windows known (engine.refinement). The difference is 0 at every known window and
  largest halfway between them, as an interpolation error is;
- ``f(w)``: how far the window's estimate stands out (|value - median| summed over the
  planes) plus 1 % of the largest value: errors are larger where the map has structure;
- ``a``: the measured errors of the swept windows against their simulated errors just
  before they were swept (the root of a ratio of sums of squares), fitted twice: on the
  windows the last sweep chose (the most outstanding), and on every audit sample so far
  (at random among the windows left: the surprises the coarse map missed). Each fit of k
  values is raised to its one-sided 95 % upper confidence bound (sqrt(k / chi2_k(0.05)),
  the chi-square quantile by Wilson and Hilferty's approximation), and the larger is kept.

The estimated SSIM is that of the map against the map with the simulated errors added. It
is an estimate, built to err low, and measured against the truth in RESULTS.md
(benchmarks/replay_drill_down.py, ten recorded configurations, "auto" and fixed shares): on
single images it was never more than 0.004 above the true SSIM, and up to 0.6 below it
(random-weight and stride-8 maps at small shares; 0.08 below where "auto" stopped on the
trained VGG-16). On the demo's 200 small images (9 audited windows per sweep) it was above
the truth for up to a quarter of them, by 0.11 at most.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fastocclusion.engine.refinement import Refinement
from fastocclusion.engine.similarity import ssim

__all__ = ["ErrorModel", "outstanding", "smooth_field", "upper_bound_factor"]

#: The one-sided confidence of a fitted error scale (its normal quantile).
_CONFIDENCE_QUANTILE = 1.6449  # 95 %


def outstanding(values: np.ndarray) -> np.ndarray:
    """How far each window's value stands out: |value - median| summed over the planes,
    (windows,) of one input's (planes, windows) values.

    >>> outstanding(np.array([[0.0, 1.0, 5.0]]))
    array([1., 0., 4.])
    """
    return np.abs(values - np.median(values, axis=1, keepdims=True)).sum(axis=0)


def smooth_field(shape: tuple[int, ...], width: Sequence[int], seed: int) -> np.ndarray:
    """Independent N(0, 1) draws of ``shape`` ((planes, *counts)) averaged over ``width``
    windows along each axis of the counts (the edges repeated), scaled to a root mean
    square of 1: (planes, windows).

    >>> smooth_field((1, 8), (2,), 0).shape
    (1, 8)
    """
    field = np.random.default_rng([seed, 0x5EED]).normal(size=shape)
    for axis, w in enumerate(width):
        if w <= 1:
            continue
        pad = [(0, 0)] * field.ndim
        pad[axis + 1] = (w // 2, w - 1 - w // 2)
        padded = np.pad(field, pad, mode="edge")
        field = np.lib.stride_tricks.sliding_window_view(padded, w, axis=axis + 1).mean(-1)
    rms = float(np.sqrt(np.mean(field**2)))
    return (field / max(rms, 1e-300)).reshape(shape[0], -1)


def upper_bound_factor(count: int) -> float:
    """sqrt(k / chi2_k(0.05)) for k = ``count`` squared errors: how much a root mean
    square fitted on them is raised to its 95 % upper confidence bound (inf for none).

    >>> round(upper_bound_factor(30), 2)
    1.26
    """
    if count <= 0:
        return math.inf
    k = float(count)
    h = 2.0 / (9.0 * k)
    quantile = k * (1.0 - h - _CONFIDENCE_QUANTILE * math.sqrt(h)) ** 3
    return math.sqrt(k / max(quantile, 1e-3))


class ErrorModel:
    """The simulated errors of one input's interpolated windows (see the module
    docstring) over ``refinement``'s grid of windows with ``planes`` values each, whose
    windows span ``width`` windows per axis; ``seed``: the input's.

    >>> model = ErrorModel(refinement, 1, (4, 4), seed=0)  # doctest: +SKIP
    """

    def __init__(
        self, refinement: Refinement, planes: int, width: Sequence[int], seed: int
    ) -> None:  # fmt: skip
        self.refinement = refinement
        self.field = smooth_field((planes,) + refinement.counts, width, seed)
        self._field_base = refinement.sampled(self.field)
        self._coarse = refinement.lattice(0)
        # [the last sweep's chosen windows, every audit] x [measured, simulated] squares
        self._squares = np.zeros((2, 2))
        self._counts = [0, 0]

    def simulated(self, values: np.ndarray, known: np.ndarray) -> np.ndarray:
        """f(w) * (Z(w) - Z_known(w)) for the current ``values`` ((planes, windows)) and
        ``known`` mask ((windows,)): (planes, windows), 0 where known."""
        exact = known | self._coarse
        estimate = self.refinement.estimate(self._field_base, self.field, exact)
        scale = max(float(np.abs(values).max()), 1e-300)
        shape = outstanding(values) + 0.01 * scale
        return (self.field - estimate) * ~exact * shape

    def fit(self, measured: np.ndarray, simulated: np.ndarray, audit: np.ndarray) -> None:
        """Takes the ``measured`` errors ((planes, k): exact - estimate) of the k windows
        a sweep just computed, against their ``simulated`` errors before it ((planes, k));
        ``audit``: a (k,) mask of those from its audit sample."""
        self._squares[0] = 0.0  # the chosen windows: the last sweep's only
        self._counts[0] = 0
        for row, part in enumerate((~audit, audit)):
            self._squares[row] += [np.sum(measured[:, part] ** 2), np.sum(simulated[:, part] ** 2)]
            self._counts[row] += int(measured[:, part].size)

    @property
    def factor(self) -> float:
        """a: the larger of the two fits' upper confidence bounds (0.0 before any)."""
        fits = [math.sqrt(m / s) * upper_bound_factor(k)
                for (m, s), k in zip(self._squares, self._counts) if s > 0]  # fmt: skip
        return max(fits, default=0.0)

    def estimated_ssim(
        self, values: np.ndarray, known: np.ndarray, assemble: Callable[[np.ndarray], Any],
        shape: tuple[int, ...],
    ) -> float:  # fmt: skip
        """The SSIM of the maps of ``values`` ((planes, windows), reshaped to ``shape`` for
        ``assemble``) against the maps with the simulated errors added (1.0 when every
        window is ``known`` or no error was measured)."""
        factor = self.factor
        if known.all() or factor == 0.0:
            return 1.0
        noise = factor * self.simulated(values, known)
        exact_maps = np.asarray(assemble(values.reshape(shape)))
        return ssim(np.asarray(assemble((values + noise).reshape(shape))), exact_maps)
