"""The one place a sweep is built: from the inputs, their windows, the baseline, the
model's backend and the options, every front-end gets its ``Sweep`` here (design §4, §8).

``build_sweep`` picks the filler (host memory filled by the C++ kernels, or CUDA memory
filled by the CUDA kernels when the backend's model runs on a GPU) and, where the inputs
are images and the sweep runs on the host, asks the backend for exact incremental
inference (``IncrementalOptions``). A front-end translates its own arguments into these and
reads the maps and ``Sweep.stats`` back; it never constructs a filler or a sweep itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fastocclusion.engine.fillers import DeviceFiller, HostFiller
from fastocclusion.engine.geometry import WindowGeometry
from fastocclusion.engine.protocols import Backend, WindowScorer
from fastocclusion.engine.regions import (
    IncrementalRequest,
    no_scorer,
    window_regions,
)
from fastocclusion.engine.sweep import Sweep
from fastocclusion.types import BatchBuffer, WindowGrid

__all__ = ["IncrementalOptions", "build_sweep"]


@dataclass(frozen=True)
class IncrementalOptions:
    """What a front-end asks of exact incremental inference (design §8).

    ``mode``: "auto", True or False (the user's ``incremental``); ``threshold``: the
    switch-back share of a feature map (None: the framework's default); ``map_axes``: the
    map axes of one sample (one to three: time; rows, columns; depth, rows, columns; the
    channels on the remaining axis) when the inputs are feature maps a CNN reads, else
    None; ``channels_last``: samples are (*axes, C) rather than (C, *axes); ``family``:
    what the inputs are, for the note when they are not maps; ``truncation``: None
    (exact), or the projective-field share tau (approximate, engine.projective_field; set
    by the drill-down's sweeps only).

    >>> IncrementalOptions("auto", map_axes=(0, 1), channels_last=True).mode
    'auto'
    """

    mode: str | bool = False
    threshold: float | None = None
    map_axes: tuple[int, ...] | None = None
    channels_last: bool = False
    family: str = "images"
    truncation: float | None = None


def build_sweep(
    backend: Backend,
    inputs: np.ndarray,
    geometry: WindowGeometry,
    baseline: np.ndarray | None,
    batch: int,
    *,
    baseline_kind: str = "auto",
    progress: bool | str = False,
    incremental: IncrementalOptions | None = None,
    buffer: BatchBuffer | None = None,
    pairs: np.ndarray | None = None,
) -> Sweep:
    """The sweep of ``inputs`` ((N, *sample) float32, C-contiguous) under ``geometry``'s
    windows, ``batch`` samples per model call, the windows set to ``baseline`` (see
    ``HostFiller``; ``baseline_kind`` "auto", or MONAI's window kinds). ``buffer``: the
    host batch buffer of an earlier sweep, reused when its shape fits (``Sweep.host_buffer``
    hands it back). ``progress``: a tqdm bar (a string: its label). ``incremental``: None
    or mode False for the normal sweep. ``pairs``: sweep only these (input, window) pairs
    ((P, 2) int64, engine.drill_down; on the host or the device; ``batch`` is capped at P).
    ValueError naming ``incremental`` when True cannot run (before any model call); no
    model call is made here.

    >>> sweep = build_sweep(backend, x, geometry, np.zeros(()), 32)  # doctest: +SKIP
    >>> targets, maps = sweep.run(None, "sum", geometry.collapsed_axes)  # doctest: +SKIP
    """
    grid = geometry.grid()
    n = inputs.shape[0]
    if pairs is not None:
        batch = min(batch, len(pairs))  # no call larger than the pairs
    arrays = backend.device_arrays
    if arrays is not None:
        filler: Any = DeviceFiller(inputs, grid, baseline, batch, arrays, baseline_kind)
    else:
        filler = HostFiller(inputs, grid, baseline, batch, buffer, baseline_kind)
    filler.pairs = pairs
    scorer, note = _incremental_scorer(backend, incremental, grid, n, batch)
    return Sweep(backend, filler, n, grid.num_windows, batch, progress, scorer, note, pairs)


def _incremental_scorer(
    backend: Backend,
    options: IncrementalOptions | None,
    grid: WindowGrid,
    n: int,
    batch: int,
) -> tuple[WindowScorer | None, str]:
    """The sweep's incremental scorer and its note, or (None, why not); ValueError for
    mode True where it cannot run (before any model call)."""
    if options is None or options.mode is False:
        return None, "normal sweep: incremental=False"
    required = options.mode is True
    if options.map_axes is None:
        reason = f"inputs: exact incremental inference needs feature maps, not {options.family}"
        return no_scorer(reason, required)
    request = IncrementalRequest(
        window_regions(grid, options.map_axes), n, batch, options.threshold, required,
        options.channels_last, options.truncation,
    )  # fmt: skip
    return backend.incremental_scorer(request)
