"""Exact incremental inference for PyTorch CNNs (SPEC §8; Nakandala et al., SIGMOD 2019).

- ``layers``: which fx nodes are local layers and how each runs on stacked boxes;
- ``graph``: the trace as the engine's graph (engine.incremental_plan) and the tensor
  operations the engine's runner needs (engine.incremental_run), for CPU torch tensors.

The plan (which nodes run on boxes) and the run (gathers, splices) are the engine's.

``make_scorer`` checks what can be checked before any model call (the operator, where the
model runs, that torch.fx traces it, the first layers) and returns the scorer or why not.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from fastocclusion.backends.torch.incremental.graph import TorchOps, graph_nodes
from fastocclusion.backends.torch.incremental.layers import mutated_input, node_label
from fastocclusion.engine.incremental_plan import GraphNode, LocalOp
from fastocclusion.engine.incremental_run import IncrementalRunner, IncrementalScorer
from fastocclusion.engine.regions import IncrementalRequest, no_scorer

__all__ = ["make_scorer"]


def _trace(model: torch.nn.Module, cache: dict[str, Any]) -> fx.GraphModule | str:
    """The model's fx trace, or why it has none; kept in ``cache`` (the backend's) while the
    model holds the same modules (a submodule replaced since: traced again)."""
    key = tuple(id(module) for module in model.modules())
    if cache.get("key") != key:
        try:
            cache["traced"] = fx.symbolic_trace(model)
        except Exception as error:  # noqa: BLE001 - any tracing failure means "not traceable"
            cache["traced"] = f"torch.fx cannot trace the model ({type(error).__name__}: {error})"
        cache["key"] = key
    return cache["traced"]


def _first_layers(traced: fx.GraphModule, nodes: list[GraphNode]) -> str | None:
    """None when some layer reading the input is local; else why not (the first one)."""
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if not placeholders:
        return "the model takes no input"
    for extra in placeholders[1:]:
        if not extra.args:
            return f"forward's argument {extra.name} has no default (one input is swept)"
    readers = [n for n in nodes if nodes[0] in n.inputs]
    if any(isinstance(n.op, LocalOp) for n in readers):
        return None
    for node in readers:
        return str(node.op or f"{node.label}: not a local layer")
    return "the model does not read its input"


def _writes_shared_input(traced: fx.GraphModule, modules: dict[str, Any]) -> str | None:
    """Why the graph's in-place layers forbid it (a layer writing into a map another node
    reads too, or into the model's input), or None."""
    for node in traced.graph.nodes:
        written = mutated_input(node, modules)
        if written is None:
            continue
        if written.op == "placeholder":
            return f"{node_label(node)}: writes into the model's input in place"
        if len(written.users) > 1:
            return f"{node_label(node)}: writes in place into a map that other layers read"
    return None


def make_scorer(
    backend: Any,
    model: torch.nn.Module,
    request: IncrementalRequest,
    cache: dict[str, Any],
) -> tuple[IncrementalScorer | None, str]:
    """The incremental scorer of ``model`` for a sweep, or (None, why not); ValueError
    naming the reason (the first unsupported layer) when ``request.required``. No model call.
    ``cache``: a dict the caller keeps per model (the trace is made once)."""
    reason: str | None = None
    if not backend.builtin_operator:
        reason = "operator: a custom operator calls the model itself"
    elif backend.device.type != "cpu" or backend.device_arrays is not None:
        reason = "device: the gather and splice kernels run on the CPU (the model is not there)"
    elif backend.dtype not in (torch.float32, torch.float64):
        reason = f"model: {backend.dtype} parameters (the kernels take float32 or float64)"
    traced: Any = None
    if reason is None:
        traced = _trace(model, cache)
        if isinstance(traced, str):
            reason, traced = f"model: {traced}", None
    if reason is None:
        modules = dict(traced.named_modules())
        nodes, of = graph_nodes(traced, modules)
        reason = _writes_shared_input(traced, modules) or _first_layers(traced, nodes)
        reason = f"model: {reason}" if reason else None
    if reason is not None:
        return no_scorer(reason, request.required)
    runner = IncrementalRunner(nodes, TorchOps(traced, of), request)
    return IncrementalScorer(backend, runner), runner.note
