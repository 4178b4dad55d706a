"""Exact incremental inference for PyTorch CNNs (design §8; Nakandala et al., SIGMOD 2019).

- ``layers``: which fx nodes are local layers and how each runs on stacked boxes;
- ``graph``: the trace as the engine's graph (engine.incremental_plan) and the tensor
  operations the engine's runner needs (engine.incremental_run), for CPU torch tensors;
- ``device``: the same on a CUDA device (the maps stay there; _cuda's kernels).

The plan (which nodes run on boxes) and the run (gathers, splices) are the engine's.

``make_scorer`` checks what can be checked before any model call (where the model runs,
compiled models, hooks, that torch.fx traces it, the first layers) and returns the scorer
or why not. It serves every torch backend (``TorchBackend``, Captum's ``ForwardBackend``,
MONAI's ``OutputsBackend``): each checks what is its own (an operator, its inputs, its
arguments) and hands over the module it calls.

The model is traced anew for every sweep, on a copy of its module tree (tracing runs
``forward`` on proxies: what it assigns, counts or appends lands on the copy), and the
engine checks the trace's outputs against the model's in the base pass: a trace is never
trusted over the model (engine.incremental_run).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import fx
from torch.nn.modules import module as module_globals

from fastocclusion.backends.torch.callable import TorchCallable
from fastocclusion.backends.torch.device import is_compiled
from fastocclusion.backends.torch.incremental.device import TorchDeviceOps, device_kernels
from fastocclusion.backends.torch.incremental.graph import TorchOps, graph_nodes
from fastocclusion.backends.torch.incremental.layers import mutated_input, node_label
from fastocclusion.engine.incremental_plan import GraphNode, LocalOp
from fastocclusion.engine.incremental_run import IncrementalRunner
from fastocclusion.engine.incremental_scorer import IncrementalScorer
from fastocclusion.engine.regions import IncrementalRequest, no_scorer

__all__ = ["make_scorer"]


def _tracing_copy(module: torch.nn.Module, copies: dict[int, torch.nn.Module]) -> Any:
    """A copy of ``module``'s tree for tracing: every module copied with its own attribute
    dict and containers (lists, dicts, sets copied one level), sharing the parameters and
    buffers (the same tensors): what ``forward`` writes while traced stays on the copy."""
    if id(module) in copies:
        return copies[id(module)]
    clone = copy.copy(module)
    copies[id(module)] = clone
    state = clone.__dict__
    for name, value in list(state.items()):
        if isinstance(value, (list, dict, set)):
            state[name] = copy.copy(value)
    state["_modules"] = {
        name: None if child is None else _tracing_copy(child, copies)
        for name, child in module._modules.items()  # noqa: SLF001
    }
    return clone


def _trace(model: torch.nn.Module) -> fx.GraphModule | str:
    """The fx trace of a copy of the model (see ``_tracing_copy``), or why it has none."""
    try:
        return fx.symbolic_trace(_tracing_copy(model, {}))
    except Exception as error:  # noqa: BLE001 - any tracing failure means "not traceable"
        return f"torch.fx cannot trace the model ({type(error).__name__}: {error})"


def _hooks(model: torch.nn.Module) -> str | None:
    """Why hooks forbid a trace of the model (a trace does not see a hook on the model or on
    a module it inlines, and would run a leaf's hook on boxes), or None."""
    if module_globals._global_forward_hooks or module_globals._global_forward_pre_hooks:  # noqa: SLF001
        return "global module forward hooks are registered (torch.nn.modules.module)"
    for name, module in model.named_modules():
        if module._forward_hooks or module._forward_pre_hooks:  # noqa: SLF001
            return f"{name or 'the model'} has forward hooks (they change what a trace computes)"
    return None


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
    backend: Any, model: torch.nn.Module, request: IncrementalRequest
) -> tuple[IncrementalScorer | None, str]:
    """The incremental scorer of ``model`` for a sweep, or (None, why not); ValueError
    naming the reason (the first unsupported layer) when ``request.required``. No model call
    (the trace runs ``forward`` on proxies, on a copy of the model).

    ``backend``: engine.incremental_run.ModelCalls whose model calls are ``model(batch)``
    alone (no custom operator calling the model: the caller checks that), with the
    ``device`` and ``dtype`` of its batches and its ``device_arrays`` (a model on a CUDA
    device, or a GPU sweep: the runner works on device tensors).

    >>> scorer, note = make_scorer(backend, backend.model, request)  # doctest: +SKIP
    """
    reason: str | None = None
    if is_compiled(model):
        reason = "model: a compiled or TorchScript model cannot be traced by torch.fx"
    elif backend.device.type not in ("cpu", "cuda"):
        reason = (
            f"device: the gather and splice kernels run on the CPU or CUDA, not {backend.device}"
        )
    elif backend.dtype not in (torch.float32, torch.float64):
        reason = f"model: {backend.dtype} parameters (the kernels take float32 or float64)"
    elif isinstance(model, TorchCallable):
        reason = "model: a TorchCallable's function is called as it is, never traced"
    elif (hooks := _hooks(model)) is not None:
        reason = f"model: {hooks}"
    kernels: Any = None
    if reason is None and (backend.device.type == "cuda" or backend.device_arrays is not None):
        kernels = device_kernels(backend.device)  # the maps stay on the model's device
        if isinstance(kernels, str):
            reason, kernels = kernels, None
    traced: Any = None
    if reason is None:
        traced = _trace(model)
        if isinstance(traced, str):
            reason, traced = f"model: {traced}", None
    if reason is None:
        modules = dict(traced.named_modules())
        try:
            nodes, of = graph_nodes(traced, modules)
            reason = _writes_shared_input(traced, modules) or _first_layers(traced, nodes)
        except Exception as error:  # noqa: BLE001 - a graph this code cannot read
            reason = f"its trace cannot be read ({type(error).__name__}: {error})"
        reason = f"model: {reason}" if reason else None
    if reason is not None:
        return no_scorer(reason, request.required)
    ops = TorchOps(traced, of) if kernels is None else TorchDeviceOps(traced, of, kernels)
    runner = IncrementalRunner(nodes, ops, request)
    return IncrementalScorer(backend, runner), runner.note
