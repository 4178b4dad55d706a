"""What one explain call did and where its time went."""

from __future__ import annotations

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
    their shapes)."""

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

    @property
    def overhead_seconds(self) -> float | None:
        """``total_seconds - model_seconds`` (None when model_seconds is)."""
        if self.model_seconds is None:
            return None
        return self.total_seconds - self.model_seconds
