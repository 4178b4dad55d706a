"""What one explain call did and where its time went."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ExplainStats:
    """Counts and times of one ``explain`` call (``Occlusion.last_stats``).

    ``model_seconds`` is the wall time spent inside the model (and operator) calls, result
    fetch included; ``total_seconds - model_seconds`` is fastocclusion's own work (input
    checks, batch filling, accumulation). None on the GPU sweep, whose calls are
    asynchronous (only the total is meaningful there).

    ``incremental_layers``: the model's layers computed over their changed boxes only
    (exact incremental inference, design §8), empty when the normal sweep ran;
    ``incremental_note``: what ran and why (where the full computation took over, or why
    the sweep was the normal one); ``incremental_saved``: the share of the model's
    multiply-adds per occluded sample that it saved (convolutions and linear layers, from
    their shapes).

    ``approximate_share``: the share of the patches whose values were computed exactly (1.0
    for an exact explain; below 1 with ``approximate``, engine.drill_down: the others are
    estimated from a coarse sweep); ``approximate_ssim``: the estimated SSIM of the maps
    against the exact ones (1.0 when exact); ``approximate_note``: what the approximation
    did, with the measured disagreement of its estimates."""

    inputs: int
    patches_per_input: int
    perturbed_samples: int
    batch_size: int
    model_calls: int
    total_seconds: float
    model_seconds: float | None
    incremental_layers: tuple[str, ...] = ()
    incremental_note: str = ""
    incremental_saved: float = 0.0
    approximate_share: float = 1.0
    approximate_ssim: float = 1.0
    approximate_note: str = ""

    @property
    def overhead_seconds(self) -> float | None:
        """``total_seconds - model_seconds`` (None when model_seconds is)."""
        if self.model_seconds is None:
            return None
        return self.total_seconds - self.model_seconds


def combined_stats(
    parts: list[ExplainStats], started: float, inputs: int, patches_per_input: int,
    share: float, estimated_ssim: float, note: str,
) -> ExplainStats:  # fmt: skip
    """The stats of an explain made of several sweeps (``parts``, in order; the last one's
    incremental fields are reported: the sweep of the exact windows) that computed
    ``patches_per_input`` patches of ``inputs`` inputs, a ``share`` of them exactly
    (engine.drill_down)."""
    seconds = [p.model_seconds for p in parts]
    first, last = parts[0], parts[-1]
    return ExplainStats(
        inputs=inputs,
        patches_per_input=patches_per_input,
        perturbed_samples=sum(p.perturbed_samples for p in parts),
        batch_size=first.batch_size,
        model_calls=sum(p.model_calls for p in parts),
        total_seconds=time.perf_counter() - started,
        model_seconds=None if None in seconds else sum(s for s in seconds if s is not None),
        incremental_layers=last.incremental_layers,
        incremental_note=last.incremental_note,
        incremental_saved=last.incremental_saved,
        approximate_share=share,
        approximate_ssim=estimated_ssim,
        approximate_note=note,
    )
