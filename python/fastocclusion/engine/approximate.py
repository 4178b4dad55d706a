"""An explain by drill-down (engine.drill_down) over the sweeps a front-end runs: the
values of every sweep, the maps assembled once, and the stats of all of them together."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fastocclusion.engine.approximation import Approximation
from fastocclusion.engine.drill_down import drill_down
from fastocclusion.engine.geometry import WindowGeometry
from fastocclusion.engine.stats import ExplainStats, combined_stats
from fastocclusion.engine.sweep import Sweep

__all__ = ["explain_by_drill_down"]


def explain_by_drill_down(
    geometry: WindowGeometry,
    approximation: Approximation,
    n: int,
    run: Callable[[WindowGeometry, np.ndarray | None, float | None], Sweep],
    assemble: Callable[[np.ndarray], Any],
    started: float,
) -> tuple[Any, ExplainStats, Sweep]:
    """(the maps, the stats, the first sweep) of ``n`` inputs over ``geometry``'s windows,
    approximated by drill-down. ``run(g, pairs, tau)``: a sweep of every input over the
    windows of ``g`` (``pairs`` None) or over the (input, window) ``pairs`` of ``geometry``
    only, with projective-field truncation ``tau`` (None: exact; engine.build's
    IncrementalOptions.truncation), run (its window values kept); ``assemble(values)``:
    the maps of (rows, *counts) window values, as the front-end's exact sweep makes them;
    ``started``: when the explain started (``time.perf_counter()``).

    >>> maps, stats, _ = explain_by_drill_down(g, a, 1, run, assemble, t0)  # doctest: +SKIP
    """
    sweeps: list[Sweep] = []

    def values(g: WindowGeometry, pairs: np.ndarray | None, tau: float | None) -> np.ndarray:
        sweep = run(g, pairs, tau)
        sweeps.append(sweep)
        return sweep.window_values(tuple(g.grid().counts))

    result = drill_down(geometry, approximation, n, values, assemble)
    maps = assemble(result.values)
    windows = int(geometry.grid().num_windows)
    note = (
        f"drill-down: a coarse sweep of {result.coarse_windows} patches per input, then "
        f"{result.exact_share:.0%} of the {windows} patches computed exactly ({result.sweeps} "
        f"sweeps in all, the coarse one included); the estimates of the swept patches were "
        f"off by {result.disagreement:.2g} (RMS, relative to the largest value); estimated SSIM "
        f"to the exact maps {result.estimated_ssim:.3f}"
    )
    if result.truncation.tried:
        note = f"{note}; {result.truncation.describe()}"
        if not any(sweep.truncated for sweep in sweeps):
            note += (
                " (no box was cut: the model did not run incrementally, or its boxes stay small)"
            )
    now = time.perf_counter()
    parts = [sweep.stats(now) for sweep in sweeps]
    stats = combined_stats(
        parts, started, n, windows, result.exact_share, result.estimated_ssim, note
    )
    return maps, stats, sweeps[0]
