"""Projective-field truncation (Krypton, Nakandala et al., SIGMOD 2019), measured: how much a
truncation share tau changes the maps, from the coarse windows of a drill-down.

With a share tau, the incremental plan cuts every changed box longer than tau of its map
along an axis to its central part (``engine.regions.truncated_regions``): the border
changes it drops are small, and the boxes of the deeper layers stay small enough to run
incrementally. The maps are then approximate; by how much is measured every time: the
coarse windows (a sample spread over every input) are swept both exactly and truncated,
and the maps interpolated from each (as the drill-down interpolates) are compared by SSIM.
For "auto", the shares in AUTO_SHARES are tried from the mildest one on, and the last
whose SSIM reaches the goal is kept (the first that misses it ends the search: a smaller
share cuts more; none reaches it: no truncation, for one extra coarse sweep), as Krypton
tunes tau on a sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fastocclusion.engine.similarity import ssim

__all__ = ["AUTO_SHARES", "Truncation", "measure_truncation"]

#: The truncation shares "auto" tries, the mildest (the least cut) first.
AUTO_SHARES = (0.7, 0.55, 0.4)


@dataclass(frozen=True)
class Truncation:
    """The truncation chosen: ``share`` (tau; None: none, the swept windows are exact),
    ``ssim`` per input (the interpolated maps of the truncated coarse windows against the
    exact ones; 1.0 without truncation) and ``tried`` ((tau, lowest SSIM) per share
    swept), ``sweeps`` (how many)."""

    share: float | None
    ssim: np.ndarray
    tried: tuple[tuple[float, float], ...]

    @property
    def sweeps(self) -> int:
        return len(self.tried)

    def describe(self) -> str:
        """One phrase for the stats' note."""
        tried = ", ".join(f"tau {t:g}: {s:.3f}" for t, s in self.tried)
        if self.share is None:
            return f"no projective-field truncation (coarse-window SSIM {tried})"
        return (
            f"projective-field truncation at tau {self.share:g} (the coarse windows' maps "
            f"against exact: SSIM {float(self.ssim.min()):.3f}; tried {tried})"
        )


def measure_truncation(
    exact: np.ndarray,
    n: int,
    shares: Sequence[float],
    goal: float | None,
    truncated_values: Callable[[float], np.ndarray],
    maps_of: Callable[[np.ndarray], np.ndarray],
) -> Truncation:
    """The truncation of ``shares`` to use, measured against the ``exact`` coarse values
    ((n * planes, *coarse counts)). ``truncated_values(tau)``: the same windows swept with
    truncation tau (one sweep); ``maps_of(values)``: the maps of one input's (planes,
    *coarse counts) values, as the explain assembles them. ``goal``: None for one given
    share (kept whatever its SSIM); else the SSIM every input must reach, the shares tried
    in order (each smaller than the one before) while they do: the last that does is kept
    (none does: no truncation).

    >>> measure_truncation(exact, 1, (0.5,), None, sweep, maps).share  # doctest: +SKIP
    0.5
    """
    per_input = exact.reshape((n, -1) + exact.shape[1:])
    reference = [np.asarray(maps_of(per_input[i])) for i in range(n)]
    tried: list[tuple[float, float]] = []
    kept: tuple[float | None, np.ndarray] = (None, np.ones(n))
    for share in shares:
        cut = truncated_values(share).reshape(per_input.shape)
        scores = np.array([_similarity(maps_of(cut[i]), reference[i]) for i in range(n)])
        tried.append((share, float(scores.min())))
        if goal is not None and scores.min() < goal:
            break
        kept = (share, scores)
        if goal is None:
            break
    return Truncation(*kept, tuple(tried))


def _similarity(maps: np.ndarray, reference: np.ndarray) -> float:
    """SSIM of ``maps`` against ``reference``; 1.0 where they are equal (flat maps too)."""
    maps = np.asarray(maps)
    if np.array_equal(maps, reference):
        return 1.0
    return ssim(maps, reference)
