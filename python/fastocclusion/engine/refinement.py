"""The levels of a drill-down's refinement (engine.drill_down): which exact windows each
level sweeps, and how the windows not swept are interpolated from those that are.

The exact windows form a grid of ``counts`` windows per axis. The coarse pass samples it
every ``size`` windows per axis (a coarse cell). Instead of sweeping a chosen cell's windows
all at once, the drill-down refines it level by level: each level divides the spacing of
the windows it knows by its smallest prime factor (4 -> 2 -> 1; 6 -> 3 -> 1; 3 -> 1), so a
level-1 cell of 4 x 4 windows is first swept at its 2 x 2 lattice (3 new windows of 16),
and only the cells whose measured errors stand out are swept in full. A lattice of
multiplier m holds, per axis, the windows at multiples of m and the last window.

The estimate of a window not swept is hierarchical: the coarse map interpolated to every
window (``base``); then, level by level, the values on that level's lattice (exact where
swept, the previous estimate elsewhere) interpolated linearly to every window, along each
axis between the lattice windows' anchors. Where nothing was swept this reproduces the
coarse interpolation; a swept lattice window pulls its neighbours to its exact value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Cells", "Refinement", "dilated_max", "interpolate", "level_multipliers"]


def _smallest_factor(m: int) -> int:
    factor = 2
    while factor * factor <= m:
        if m % factor == 0:
            return factor
        factor += 1
    return m


def level_multipliers(size: Sequence[int]) -> list[tuple[int, ...]]:
    """The lattice multipliers per axis from the coarse cell ``size`` down to ones, each
    axis divided by its smallest prime factor per level (at least one level: cells of
    single windows when ``size`` is all ones).

    >>> level_multipliers((1, 4, 6))
    [(1, 4, 6), (1, 2, 3), (1, 1, 1)]
    """
    levels = [tuple(int(m) for m in size)]
    while any(m > 1 for m in levels[-1]) or len(levels) == 1:
        levels.append(tuple(m // _smallest_factor(m) if m > 1 else 1 for m in levels[-1]))
    return levels


def interpolate(
    values: np.ndarray, source: Sequence[np.ndarray], target: Sequence[np.ndarray]
) -> np.ndarray:  # fmt: skip
    """``values`` ((rows, *len(source[a]) per axis)) at the anchors ``source`` (one
    ascending array per axis), interpolated linearly along each axis to the anchors
    ``target`` (the nearest value past the ends): (rows, *len(target[a])).

    >>> interpolate(np.array([[0.0, 2.0]]), [np.array([0.0, 4.0])], [np.arange(5.0)])
    array([[0. , 0.5, 1. , 1.5, 2. ]])
    """
    out = values
    for axis, (src, dst) in enumerate(zip(source, target)):
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


def dilated_max(values: np.ndarray, radius: Sequence[int]) -> np.ndarray:
    """The largest of ``values`` within ``radius`` windows along each axis of every
    position (the same shape; the box clipped at the edges).

    >>> dilated_max(np.array([0.0, 0.0, 3.0, 0.0, 0.0]), (1,))
    array([0., 3., 3., 3., 0.])
    """
    out = values
    for axis, r in enumerate(radius):
        if r <= 0 or out.shape[axis] == 1:
            continue
        widths = [(0, 0)] * out.ndim
        widths[axis] = (r, r)
        padded = np.pad(out, widths, mode="constant", constant_values=-np.inf)
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * r + 1, axis=axis)
        out = windows.max(axis=-1)
    return out


class Cells:
    """The windows of a grid of ``counts`` cut into cells of ``size`` windows per axis
    (fewer at the far edges), numbered in C order."""

    def __init__(self, counts: tuple[int, ...], size: tuple[int, ...]) -> None:
        self.counts, self.size = counts, size
        self.shape = tuple(-(-c // s) for c, s in zip(counts, size))
        cell_of = np.zeros(counts, dtype=np.int64)  # each window's cell (flat index)
        for axis, (c, s) in enumerate(zip(counts, size)):
            index = np.arange(c) // s
            shape = [1] * len(counts)
            shape[axis] = c
            cell_of = cell_of * self.shape[axis] + index.reshape(shape)
        #: Each window's cell: (windows,) of flat indices.
        self.cell_of = cell_of.reshape(-1)

    @property
    def count(self) -> int:
        return int(np.prod(self.shape))

    def priority(self, per_window: np.ndarray) -> np.ndarray:
        """The largest of ``per_window`` ((windows,)) in each cell: (cells,)."""
        best = np.full(self.count, -np.inf)
        np.maximum.at(best, self.cell_of, per_window)
        return best

    def windows(self, chosen: np.ndarray) -> np.ndarray:
        """A mask (windows,) of the windows of the cells ``chosen``."""
        mask = np.zeros(self.count, dtype=bool)
        mask[chosen] = True
        return mask[self.cell_of]


class Refinement:
    """The levels of a refinement over a grid of ``counts`` windows whose ``anchors`` (one
    array per axis) the interpolation follows, from coarse cells of ``size`` windows per
    axis. Level j (1..levels) refines the cells of ``cells(j)`` by sweeping their windows
    on ``lattice(j)``; the last level's lattice is every window."""

    def __init__(
        self, counts: tuple[int, ...], size: tuple[int, ...], anchors: Sequence[np.ndarray]
    ) -> None:  # fmt: skip
        self.counts = counts
        self.multipliers = level_multipliers(size)
        self.anchors = [np.asarray(a, dtype=np.float64) for a in anchors]
        self._indices = [self._lattice_indices(m) for m in self.multipliers]

    @property
    def levels(self) -> int:
        """The number of refinement levels (at least 1)."""
        return len(self.multipliers) - 1

    def _lattice_indices(self, multiplier: tuple[int, ...]) -> list[np.ndarray]:
        out = []
        for c, m in zip(self.counts, multiplier):
            index = np.arange(0, c, m)
            out.append(index if index[-1] == c - 1 else np.append(index, c - 1))
        return out

    def cells(self, level: int) -> Cells:
        """The cells level ``level`` refines: those of the previous level's lattice."""
        return Cells(self.counts, self.multipliers[level - 1])

    def lattice(self, level: int) -> np.ndarray:
        """A mask (windows,) of the windows on level ``level``'s lattice."""
        mask = np.zeros(self.counts, dtype=bool)
        mask[np.ix_(*self._indices[level])] = True
        return mask.reshape(-1)

    def _from_lattice(self, values: np.ndarray, level: int) -> np.ndarray:
        """``values`` ((planes, windows)) on level ``level``'s lattice, interpolated to
        every window: (planes, windows)."""
        planes = len(values)
        index = self._indices[level]
        grid = values.reshape((planes,) + self.counts)
        on_lattice = grid[(slice(None),) + np.ix_(*index)]
        source = [a[i] for a, i in zip(self.anchors, index)]
        return interpolate(on_lattice, source, self.anchors).reshape(planes, -1)

    def sampled(self, field: np.ndarray) -> np.ndarray:
        """``field`` ((planes, windows)) on the coarsest lattice, interpolated to every
        window (as the coarse pass's values are)."""
        return self._from_lattice(field, 0)

    def estimate(self, base: np.ndarray, values: np.ndarray, known: np.ndarray) -> np.ndarray:
        """The estimate of every window ((planes, windows)) from the coarse interpolation
        ``base`` and the ``values`` of the ``known`` windows (a (windows,) mask; the
        others' values are ignored), level by level (see the module docstring)."""
        estimate = base
        for level in range(1, self.levels):
            estimate = self._from_lattice(np.where(known, values, estimate), level)
        return estimate
