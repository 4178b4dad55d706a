"""Exact incremental inference for Keras CNNs (design §8), channels last, on the TensorFlow
backend of Keras 3.

- ``layers``: which Keras layers are local and how each runs on stacked boxes;
- ``graph``: a functional model's layer calls as the engine's graph, and the tensor
  operations the engine's runner needs (eager TensorFlow tensors).

The plan and the run are the engine's (engine.incremental_plan, engine.incremental_run).
"""

from __future__ import annotations

from typing import Any

from fastocclusion.backends.tensorflow.incremental.graph import (
    KerasOps,
    functional_of,
    graph_nodes,
)
from fastocclusion.engine.incremental_plan import LocalOp
from fastocclusion.engine.incremental_run import IncrementalRunner
from fastocclusion.engine.incremental_scorer import IncrementalScorer
from fastocclusion.engine.regions import IncrementalRequest, no_scorer

__all__ = ["make_scorer"]


def make_scorer(
    backend: Any, model: Any, request: IncrementalRequest
) -> tuple[IncrementalScorer | None, str]:
    """The incremental scorer of a Keras model for a sweep, or (None, why not); ValueError
    naming the reason (the first unsupported layer) when ``request.required``. No model
    call."""
    required = request.required
    graph = functional_of(model)
    if isinstance(graph, str):
        return no_scorer(f"model: {graph}", required)
    if getattr(model, "dtype_policy", None) is not None and model.dtype_policy.compute_dtype != (
        "float32"
    ):
        reason = f"model: {model.dtype_policy.compute_dtype} computations (float32 only)"
        return no_scorer(reason, required)
    nodes = graph_nodes(graph)
    readers = [node for node in nodes if nodes[0] in node.inputs]
    if not any(isinstance(node.op, LocalOp) for node in readers):
        first = readers[0].op if readers else "the model does not read its input"
        return no_scorer(f"model: {first}", required)
    runner = IncrementalRunner(nodes, KerasOps(nodes), request)
    return IncrementalScorer(EagerBaseCalls(backend), runner), runner.note


class EagerBaseCalls:
    """The TensorFlow backend's model calls (engine.incremental_scorer.ModelCalls), the base
    pass's own outputs computed by the model called eagerly on the real rows only. The
    backend's ``outputs`` calls the model traced for a full batch: a trace, and a call of
    the whole batch (VGG-16, one image in a batch of 32: 4.6 s where one image takes 0.2 s),
    while an incremental sweep may never call the traced model again."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def outputs(self, buffer: Any, rows: int) -> Any:
        """The model's own outputs of the first ``rows`` slots (its eager call)."""
        return self._backend.outputs_of(self._backend.adapter, buffer, rows)

    def outputs_of(self, model: Any, buffer: Any, rows: int) -> Any:
        return self._backend.outputs_of(model, buffer, rows)

    def scores_of(self, model: Any, buffer: Any, slots: Any, gather: bool, rows: int) -> Any:
        return self._backend.scores_of(model, buffer, slots, gather, rows)
