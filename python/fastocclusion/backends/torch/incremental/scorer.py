"""The incremental scorer of a traced PyTorch model (engine.protocols.WindowScorer, SPEC §8).

The base pass runs the traced graph in full on the unoccluded inputs and keeps the
activations the plan stores (one (N, C, H, W) tensor per stored node). A batch of occluded
samples then runs the plan: a region node stacks its slots' boxes (gathered by the
``_core.gather_windows`` kernel from the kept activations with the slots' own boxes spliced
in, or read as they are) and calls the layer once on the stack; a full node runs as the
model would, on dense maps: a region node it reads is spliced into per-slot copies of its
kept activations by ``_core.splice_windows`` over a persistent buffer (only the previous
and the new box of a slot are rewritten). The backend does everything else of a call
(the batch's tensor, output checks, scores), so scores and outputs come out as its own.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import fx

from fastocclusion import _core
from fastocclusion.backends.torch.incremental.layers import mutated_input
from fastocclusion.backends.torch.incremental.plan import Plan, Step, build_plan
from fastocclusion.engine.regions import Regions, auto_declines

__all__ = ["IncrementalScorer"]


class _Boxes:
    """A region node's value for a batch: ``data`` (rows, C, h, w), slot j's box at
    ``origins[j]`` of its map."""

    __slots__ = ("data", "origins")

    def __init__(self, data: torch.Tensor, origins: np.ndarray) -> None:
        self.data = data
        self.origins = origins


def _run_node(node: fx.Node, root: fx.GraphModule, args: Any, kwargs: Any) -> Any:
    """One node evaluated as fx.Interpreter does."""
    if node.op == "call_module":
        return root.get_submodule(str(node.target))(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)  # type: ignore[operator]
    if node.op == "call_method":
        return getattr(args[0], str(node.target))(*args[1:], **kwargs)
    if node.op == "get_attr":
        value: Any = root
        for part in str(node.target).split("."):
            value = getattr(value, part)
        return value
    raise AssertionError(f"unexpected node {node.op}")


class IncrementalScorer:
    """engine.protocols.WindowScorer for a traced PyTorch model (see the module docstring).

    ``backend``: the TorchBackend that owns the call conventions (``outputs_of``,
    ``scores_of``); ``traced``: the model's fx.GraphModule; ``ops``: layers.classify of its
    call nodes; ``regions``: the windows' boxes; ``n`` inputs, ``batch`` slots."""

    def __init__(
        self,
        backend: Any,
        traced: fx.GraphModule,
        ops: dict[fx.Node, Any],
        regions: Regions,
        n: int,
        batch: int,
        switch_share: float,
        required: bool = False,
    ) -> None:
        self.backend = backend
        self.required = required
        self.traced = traced
        self.ops = ops
        self.regions = regions
        self.n = n
        self.batch = batch
        self.switch_share = switch_share
        self.plan: Plan | None = None
        self.incremental_layers: tuple[str, ...] = ()
        self.note = "not planned yet (the base pass plans)"
        self.saved_share = 0.0
        self._stored: dict[fx.Node, torch.Tensor] = {}
        self._stored_arrays: dict[fx.Node, np.ndarray] = {}
        self._spliced: dict[fx.Node, tuple[torch.Tensor, np.ndarray, Any]] = {}
        self._map_shapes: dict[fx.Node, tuple[int, int]] = {}  # of the input and region nodes
        self._modules = dict(traced.named_modules())
        nodes = list(traced.graph.nodes)
        # The index of the last node reading each node: values are dropped after it.
        last_use: dict[fx.Node, int] = {}
        for index, node in enumerate(nodes):
            for used in node.all_input_nodes:
                last_use[used] = index
        self._release: list[list[fx.Node]] = [[] for _ in nodes]
        for used, index in last_use.items():
            self._release[index].append(used)

    # -- the WindowScorer protocol --------------------------------------------------------

    def outputs(self, buffer: Any, start: int, count: int) -> Any:
        return self.backend.outputs_of(lambda x: self._base(x, start), buffer, count)

    def scores(self, buffer: Any, slots: Any, windows: Any, gather: bool, rows: int) -> Any:
        return self.backend.scores_of(
            lambda x: self._occluded(x, slots, windows), buffer, slots, gather, rows
        )

    def window_outputs(self, buffer: Any, slots: Any, windows: Any, rows: int) -> Any:
        return self.backend.outputs_of(lambda x: self._occluded(x, slots, windows), buffer, rows)

    # -- the base pass ----------------------------------------------------------------------

    def _plan(self, sample: torch.Tensor) -> Plan:
        """The plan, from the node shapes of one sample's full run."""
        shapes: dict[fx.Node, torch.Size | None] = {}

        def record(node: fx.Node, value: Any) -> None:
            shapes[node] = value.shape if isinstance(value, torch.Tensor) else None

        self._run_full(sample, record)
        plan = build_plan(
            self.traced.graph, self.ops, self._modules, shapes, self.regions, self.switch_share
        )
        self._map_shapes = {s.node: s.regions.shape for s in plan.steps if s.regions is not None}

        def per_slot(node: fx.Node) -> tuple[int, ...]:
            return tuple(shapes[node][1:])  # type: ignore[index]

        item = sample.element_size()
        kept = sum(self.n * math.prod(per_slot(v)) * item for v in plan.stored)
        kept += sum(self.batch * math.prod(per_slot(v)) * item for v in plan.materialized)
        full, done = sum(m[1] for m in plan.macs), sum(m[2] for m in plan.macs)
        reason = auto_declines(full, done, self.batch, kept)
        self.incremental_layers, self.note = plan.incremental_layers, plan.note
        self.saved_share = 1.0 - done / full if full else 0.0
        if plan.incremental_layers and not self.required and reason is not None:
            self.incremental_layers = ()
            self.note = f"normal sweep (incremental='auto'): {reason}"
        if not self.incremental_layers:
            plan.stored, plan.materialized, self.saved_share = set(), set(), 0.0
        for node in plan.stored:
            self._stored[node] = torch.empty((self.n,) + per_slot(node), dtype=sample.dtype)
            self._stored_arrays[node] = self._stored[node].numpy()
        for node in plan.materialized:
            buffer = torch.empty((self.batch,) + per_slot(node), dtype=sample.dtype)
            self._spliced[node] = (buffer, buffer.numpy(), _core.SpliceState())
        return plan

    def _base(self, x: torch.Tensor, start: int) -> Any:
        if self.plan is None:
            self.plan = self._plan(x[:1])
        stored, count = self._stored, x.shape[0]

        def keep(node: fx.Node, value: Any) -> None:
            if node in stored:
                stored[node][start : start + count] = value

        return self._run_full(x, keep)

    def _run_full(self, x: torch.Tensor, visit: Any) -> Any:
        """The traced graph on ``x``, calling visit(node, value) after every node."""
        env: dict[fx.Node, Any] = {}
        placeholders = 0
        for index, node in enumerate(self.traced.graph.nodes):
            if node.op == "placeholder":
                value = x if placeholders == 0 else node.args[0]  # later ones: defaults
                placeholders += 1
            elif node.op == "output":
                return fx.node.map_arg(node.args[0], env.__getitem__)
            else:
                args = fx.node.map_arg(node.args, env.__getitem__)
                kwargs = fx.node.map_arg(node.kwargs, env.__getitem__)
                value = _run_node(node, self.traced, args, kwargs)
            env[node] = value
            visit(node, value)
            for used in self._release[index]:
                env.pop(used, None)
        raise AssertionError("the graph has no output")

    # -- occluded batches -----------------------------------------------------------------

    def _occluded(self, x: torch.Tensor, slots: Any, windows: Any) -> Any:
        """The model's outputs for a batch whose slot j holds input slots[j] occluded by
        window windows[j], computed from the plan."""
        assert self.plan is not None, "the base pass plans"
        rows = x.shape[0]
        ids = np.asarray(windows[:rows], dtype=np.int64)
        inputs = np.ascontiguousarray(slots[:rows], dtype=np.int64)
        x_array = x.numpy()
        env: dict[fx.Node, Any] = {}
        dense: dict[fx.Node, Any] = {}

        def dense_of(node: fx.Node) -> Any:
            value = env[node]
            if not isinstance(value, _Boxes):
                return value
            if node not in dense:
                dense[node] = self._splice(node, value, inputs)
            return dense[node]

        for index, step in enumerate(self.plan.steps):
            node = step.node
            if step.kind == "input":
                env[node] = x
            elif step.kind == "region":
                parts = [self._read(source, env, ids, inputs, x_array) for source in step.sources]
                data = step.op.apply(*parts).contiguous()  # type: ignore[union-attr]
                env[node] = _Boxes(data, step.regions.begin[ids])  # type: ignore[union-attr]
            elif step.kind == "meta":
                env[node] = self._size_query(step, env)
            elif node.op == "output":
                return fx.node.map_arg(node.args[0], dense_of)
            else:
                env[node] = self._run_dense(step, dense_of)
            for used in self._release[index]:
                env.pop(used, None)
                dense.pop(used, None)
        raise AssertionError("the graph has no output")

    def _read(
        self, source: Any, env: dict[fx.Node, Any], ids: np.ndarray, inputs: np.ndarray, x: Any
    ) -> torch.Tensor:
        """What a region node reads of ``source.node``: its boxes, or windows gathered from
        the input batch or from the kept activations with the slots' boxes spliced in."""
        value = env[source.node]
        if source.windows is None:
            return value.data
        windows: Regions = source.windows
        rows = len(ids)
        origins = windows.begin[ids]
        if isinstance(value, _Boxes):
            maps = self._stored_arrays[source.node]
            out = torch.empty((rows, maps.shape[1]) + windows.size, dtype=value.data.dtype)
            _core.gather_windows(
                maps, inputs, origins, windows.size, out.numpy(), value.data.numpy(),
                value.origins, pad_value=source.pad_value,
            )  # fmt: skip
            return out
        out = torch.empty((rows, x.shape[1]) + windows.size, dtype=value.dtype)
        index = np.arange(rows, dtype=np.int64)
        _core.gather_windows(
            x, index, origins, windows.size, out.numpy(), pad_value=source.pad_value
        )
        return out

    def _splice(self, node: fx.Node, value: _Boxes, inputs: np.ndarray) -> torch.Tensor:
        """Dense maps of a region node: its kept activations with the slots' boxes in."""
        buffer, array, state = self._spliced[node]
        _core.splice_windows(
            self._stored_arrays[node], inputs, value.data.numpy(), value.origins, array, state
        )
        return buffer[: len(inputs)]

    def _run_dense(self, step: Step, dense_of: Any) -> Any:
        node = step.node
        if node.op == "placeholder":  # a later argument of forward: its default
            return node.args[0]
        args = fx.node.map_arg(node.args, dense_of)
        kwargs = fx.node.map_arg(node.kwargs, dense_of)
        written = mutated_input(node, self._modules)
        if written is not None and written in self._spliced:
            # A layer writing into its input would change the persistent spliced buffer.
            args = (args[0].clone(),) + tuple(args[1:])
        return _run_node(node, self.traced, args, kwargs)

    def _size_query(self, step: Step, env: dict[fx.Node, Any]) -> Any:
        """x.size() & co. of a region node, from a data-free stand-in of its full map."""
        node = step.node
        value = env[node.args[0]]
        if isinstance(value, _Boxes):
            shape = value.data.shape[:2] + self._map_shapes[node.args[0]]
            value = torch.empty(shape, dtype=value.data.dtype, device="meta")
        args = (value,) + tuple(node.args[1:])
        result = _run_node(node, self.traced, args, dict(node.kwargs))
        return torch.device("cpu") if isinstance(result, torch.device) else result
