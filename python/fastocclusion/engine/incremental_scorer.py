"""The scorer of exact incremental inference (design §8): a backend's model calls with the
runner's evaluations of the model in their place (engine.protocols.WindowScorer).

The graph is never trusted over the model: the base pass calls the model itself too, and
the graph's outputs must equal the model's (round-off aside) on every unoccluded input,
else the sweep steps aside to the normal sweep with the model's own outputs
(``incremental=True``: a ValueError naming the cause). What a graph does not see (a hook, a
Python branch its trace dropped, an attribute or tensor changed since it was made) thus
never reaches the maps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from fastocclusion.engine.incremental_run import IncrementalRunner
from fastocclusion.types import BatchBuffer

__all__ = ["IncrementalScorer", "ModelCalls", "outputs_difference"]


class ModelCalls(Protocol):
    """How a backend makes a model call with another evaluation of its model in place of
    the model (same batch tensor, output checks, conversions and scores)."""

    def outputs(self, buffer: BatchBuffer, rows: int) -> Any:
        """Backend.outputs: the model's own outputs (at least ``rows`` of them)."""

    def outputs_of(self, model: Callable[[Any], Any], buffer: BatchBuffer, rows: int) -> Any:
        """As Backend.outputs, the outputs computed by ``model(batch)``."""

    def scores_of(
        self, model: Callable[[Any], Any], buffer: BatchBuffer, slots: Any, gather: bool, rows: int
    ) -> Any:
        """As Backend.scores, the outputs computed by ``model(batch)``."""


class IncrementalScorer:
    """engine.protocols.WindowScorer: a backend's model calls (``calls``) with the runner's
    evaluations of the model. The base pass checks the runner's graph against the model
    (see the module docstring)."""

    def __init__(self, calls: ModelCalls, runner: IncrementalRunner) -> None:
        self.calls = calls
        self.runner = runner

    @property
    def incremental_layers(self) -> tuple[str, ...]:
        return self.runner.incremental_layers

    @property
    def note(self) -> str:
        return self.runner.note

    @property
    def probing(self) -> bool:
        """True when "auto" leaves the choice to a measurement of the sweep's calls."""
        return self.runner.probing

    def measured(self, incremental_seconds: float, full_seconds: float) -> bool:
        """See IncrementalRunner.measured."""
        return self.runner.measured(incremental_seconds, full_seconds)

    def unmeasured(self) -> bool:
        """See IncrementalRunner.unmeasured."""
        return self.runner.unmeasured()

    def synchronize(self) -> None:
        self.runner.tensors.synchronize()

    def failed(self, error: Exception) -> bool:
        """See WindowScorer.failed: "auto" steps aside, naming the error."""
        if self.runner.required:
            return False
        cause = f"{type(error).__name__}: {error}"
        self.runner.step_aside(f"model: its graph failed on an occluded batch ({cause})")
        return True

    @property
    def saved_share(self) -> float:
        return self.runner.saved_share

    @property
    def truncated_layers(self) -> tuple[str, ...]:
        return self.runner.truncated_layers

    def outputs(self, buffer: BatchBuffer, start: int, count: int) -> Any:
        """The unoccluded inputs' outputs: the model's own, and the graph's while it runs
        (kept when they agree, so that base and occluded scores come from one graph)."""
        model_outputs = self.calls.outputs(buffer, count)[:count]
        runner = self.runner
        try:
            if runner.plan is None and runner.active:  # plan on one sample: auto may decline
                self.calls.outputs_of(runner.plan_on, buffer, 1)
            if not runner.active:
                return model_outputs
            graph_outputs = self.calls.outputs_of(lambda x: runner.base(x, start), buffer, count)
        except Exception as error:  # noqa: BLE001 - any failure of the graph: step aside
            cause = f"{type(error).__name__}: {error}"
            runner.step_aside(f"model: its graph failed on the unoccluded inputs ({cause})")
            return model_outputs
        host = runner.tensors.host  # device outputs are compared on the host
        difference = outputs_difference(host(graph_outputs[:count]), host(model_outputs))
        if difference is None:
            return graph_outputs[:count]
        runner.step_aside(
            f"model: the outputs of its traced graph differ from the model's on the unoccluded "
            f"inputs ({difference}): something the trace does not see changes them (a hook, a "
            "Python branch, an attribute or tensor changed since tracing)"
        )
        return model_outputs

    def scores(self, buffer: BatchBuffer, slots: Any, windows: Any, gather: bool, rows: int) -> Any:
        return self.calls.scores_of(
            lambda x: self.runner.occluded(x, slots, windows), buffer, slots, gather, rows
        )

    def window_outputs(self, buffer: BatchBuffer, slots: Any, windows: Any, rows: int) -> Any:
        return self.calls.outputs_of(
            lambda x: self.runner.occluded(x, slots, windows), buffer, rows
        )


#: The graph's outputs agree with the model's when no element differs by more than this
#: share of the largest model output (float32 round-off of a different evaluation order is
#: ~1e-7 of it; a hook, a dropped branch or a changed attribute moves outputs far more).
OUTPUTS_TOLERANCE = 1e-5


def outputs_difference(graph: np.ndarray, model: np.ndarray) -> str | None:
    """None when two output arrays agree (same shape, non-finite values at the same places
    and equal, finite values within OUTPUTS_TOLERANCE of the largest), else how they
    differ."""
    graph, model = np.asarray(graph), np.asarray(model)
    if graph.shape != model.shape:
        return f"shapes {graph.shape} and {model.shape}"
    finite = np.isfinite(model)
    if not np.array_equal(finite, np.isfinite(graph)) or not np.array_equal(
        graph[~finite], model[~finite], equal_nan=True
    ):
        return "non-finite values at other places"
    if not finite.any():
        return None
    difference = np.abs(graph[finite].astype(np.float64) - model[finite])
    scale = float(np.abs(model[finite]).max())
    largest = float(difference.max())
    if largest <= OUTPUTS_TOLERANCE * scale:
        return None
    return f"max |difference| {largest:.3g}, max |output| {scale:.3g}"
