"""Running a model by the plan of exact incremental inference (design §8), for any framework
(its tensors behind ``TensorOps``).

The base pass runs the graph in full on the unoccluded inputs, keeping the maps the plan
stores (one (N, ...) array per stored node); the scorer (incremental_scorer.py) checks the
graph's outputs against the model's own. A batch of occluded samples then runs the
plan: a region node stacks its slots' boxes (gathered from the kept maps with the slots' own
boxes spliced in, or read as they are) and calls its layer once on the stack; a full node
runs as the model would, on dense maps: a region node it reads is spliced into per-slot
copies of its kept map over a persistent buffer. The gathers and splices are the
framework's ``WindowKernels`` (engine.window_kernels): on the host (only the previous and
the new box of a slot are rewritten) or on the model's device (the kept maps stay there).

Maps are channels first (N, C, *axes) or channels last (N, *axes, C) over one to three
map axes (time; rows, columns; depth, rows, columns); the kernels see a channels-last map
as one channel whose last axis holds W * C values (a box of columns is a run of whole
pixels there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from fastocclusion.engine.incremental_plan import GraphNode, Plan, Source, build_plan
from fastocclusion.engine.regions import (
    IncrementalRequest,
    Regions,
    auto_declines,
    auto_measures,
)
from fastocclusion.engine.window_kernels import WindowKernels

__all__ = [
    "IncrementalRunner",
    "TensorOps",
]


class TensorOps(Protocol):
    """A framework's tensors, as the runner needs them. "Array": what ``kernels`` read and
    write (a NumPy array of a host tensor's memory, or a device tensor itself)."""

    #: True for (N, *axes, C) maps, False for (N, C, *axes).
    channels_last: bool
    #: The gathers and splices over this framework's arrays.
    kernels: WindowKernels
    #: incremental="auto" keeps the normal sweep below this many multiply-adds per full
    #: model call: the framework's own cost per layer call, measured (engine.regions).
    auto_min_call_macs: float
    #: The switch-back share where the request leaves it to the framework: past it a box
    #: costs more than the full layer (engine.regions, measured).
    switch_share: float

    def run(self, node: GraphNode, value_of: Callable[[GraphNode], Any]) -> Any:
        """The value of a "call", "size" or "output" node computed as the model computes
        it, from its inputs' dense values (``value_of``)."""

    def shape(self, value: Any) -> tuple[int, ...] | None:
        """A tensor's shape, None for anything else."""

    def array(self, tensor: Any) -> Any:
        """A C-contiguous array of a tensor's values (its memory where it can)."""

    def tensor(self, array: Any) -> Any:
        """A tensor of an array's values (its memory where it can: the array is not
        written again while the tensor is in use)."""

    def buffer(self, shape: tuple[int, ...], like: Any) -> tuple[Any, Any]:
        """A persistent tensor of ``like``'s dtype and device, and the array of its
        memory."""

    def synchronize(self) -> None:
        """Waits for the work enqueued on the tensors' device (nothing on the host)."""

    def model_input(self, batch: Any) -> Any:
        """The swept batch as the graph's layers read it (Keras: cast to the float32 its
        layers compute in, as their autocast does; PyTorch: the batch itself)."""

    def host(self, values: Any) -> np.ndarray:
        """A NumPy array of model outputs' values (a host copy of device values)."""

    def window_buffer(self, key: Any, shape: tuple[int, ...], like: Any) -> tuple[Any, Any] | None:
        """A persistent tensor of ``shape`` and ``like``'s dtype for the windows gathered
        for ``key`` (one source of one layer), and the array of its memory, the same for
        every call of the sweep (a gather writes the array, the layer reads the tensor: no
        allocation, no copy); None where the kernels' new arrays serve as well."""

    def rows(self, tensor: Any, count: int) -> Any:
        """The first ``count`` rows of a tensor (a view)."""

    def writable(self, tensor: Any, persistent: list[Any]) -> Any:
        """What a layer that writes into its input gets: ``tensor`` itself, or a copy when
        its memory is that of one of ``persistent`` (the sweep's buffers, kept across
        calls)."""

    def size_query(self, node: GraphNode, shape: tuple[int, ...], like: Any) -> Any:
        """A size query node's value for an input of ``shape``, without its values."""


class _Boxes:
    """A region node's value for a batch: ``data`` (rows, *box map), slot j's box at
    ``origins[j]`` (one position per map axis) of its map."""

    __slots__ = ("data", "origins")

    def __init__(self, data: Any, origins: np.ndarray) -> None:
        self.data = data
        self.origins = origins


class IncrementalRunner:
    """The model's evaluation for one sweep (see the module docstring): ``base`` for the
    unoccluded inputs (the first call plans), ``occluded`` for a batch of occluded samples.
    ``required``: no "auto" cost checks (incremental=True)."""

    def __init__(
        self, nodes: list[GraphNode], tensors: TensorOps, request: IncrementalRequest
    ) -> None:
        self.nodes, self.tensors, self.regions = nodes, tensors, request.regions
        self.n, self.batch = request.n, request.batch
        self.switch_share = (
            tensors.switch_share if request.switch_share is None else request.switch_share
        )
        self.required = request.required
        self.truncation = request.truncation
        self.plan: Plan | None = None
        self._aside = False  # stepped aside: the normal sweep from then on
        #: True when "auto" left the choice to a measurement of the sweep's calls.
        self.probing = False
        self.incremental_layers: tuple[str, ...] = ()
        self.note = "not planned yet (the base pass plans)"
        self.saved_share = 0.0
        self._shapes: dict[GraphNode, Any] = {}
        self.kernels = tensors.kernels
        self._stored: dict[GraphNode, Any] = {}
        self._spliced: dict[GraphNode, tuple[Any, Any, Any]] = {}
        index = {node: i for i, node in enumerate(nodes)}
        last_use: dict[GraphNode, int] = {}
        for node in nodes:
            for used in node.inputs:
                last_use[used] = index[node]
        self._release: list[list[GraphNode]] = [[] for _ in nodes]
        for used, at in last_use.items():
            self._release[at].append(used)

    @property
    def active(self) -> bool:
        """True while the runner is to compute the sweep's outputs: before the plan, and
        after it while some layer runs incrementally."""
        return not self._aside and (self.plan is None or bool(self.incremental_layers))

    @property
    def truncated_layers(self) -> tuple[str, ...]:
        """The incremental layers whose boxes projective-field truncation cut (approximate
        scores; empty while nothing runs incrementally)."""
        if self.plan is None or not self.incremental_layers:
            return ()
        return self.plan.truncated_layers

    def measured(self, incremental_seconds: float, full_seconds: float) -> bool:
        """The outcome of the sweep's measurement (``probing``): keeps the incremental calls
        (True) when one took less than a full call, else steps aside (False). Either way
        the note gives both times."""
        self.probing = False
        times = (
            f"an incremental call took {incremental_seconds * 1e3:.3g} ms, a full one "
            f"{full_seconds * 1e3:.3g} ms"
        )
        if incremental_seconds < full_seconds:
            self.note = f"{self.note} ('auto' measured: {times})"
            return True
        self.step_aside(f"measured: {times}")
        return False

    def unmeasured(self) -> bool:
        """ "auto" left the choice to a measurement the sweep cannot make (fewer than three
        batches): go on incrementally (True) where the framework's floor was measured on
        this hardware (the call lies near it), else step aside (False): on a device with
        no measured floor, a small model's incremental calls may well be slower."""
        self.probing = False
        if math.isinf(self.tensors.auto_min_call_macs):
            self.step_aside(
                "no floor is measured on this device and the sweep is too short to time its calls"
            )
            return False
        return True

    def step_aside(self, reason: str) -> None:
        """The normal sweep from here on, ``reason`` ("the argument: why") in the note; a
        ValueError naming ``incremental`` when it was required (True)."""
        if self.required:
            raise ValueError(f"incremental: True is invalid here, {reason}")
        self._aside = True
        self.incremental_layers, self.saved_share = (), 0.0
        self.note = f"normal sweep (incremental='auto'): {reason}"
        self._stored.clear()
        self._spliced.clear()

    # -- the base pass ----------------------------------------------------------------------

    def _map_size(self, shape: Any) -> tuple[int, ...] | None:
        """The map axes' lengths of a per-sample (C, *axes) or (*axes, C) shape with as
        many axes as the windows' boxes, else None."""
        if shape is None or len(shape) != self.regions.axes + 1:
            return None
        axes = shape[:-1] if self.tensors.channels_last else shape[1:]
        return tuple(int(length) for length in axes)

    def plan_on(self, sample: Any) -> Any:
        """Plans from the node shapes of ``sample``'s full run (one row: the first input)
        and returns that run's outputs; "auto" may decline here (``active`` turns False)."""
        outputs: list[Any] = []
        self.plan = self._make_plan(sample, outputs)
        return outputs[0]

    def _make_plan(self, sample: Any, outputs: list[Any] | None = None) -> Plan:
        """The plan, from the node shapes of one sample's full run (its outputs appended to
        ``outputs``)."""
        shapes = self._shapes
        sample = self.tensors.model_input(sample)

        def record(node: GraphNode, value: Any) -> None:
            shape = self.tensors.shape(value)
            shapes[node] = None if shape is None else tuple(shape[1:])

        result = self._run_full(sample, record)
        if outputs is not None:
            outputs.append(result)
        plan = build_plan(
            self.nodes, shapes, self._map_size, self.regions, self.switch_share, self.truncation
        )  # fmt: skip
        item = self.tensors.array(self.tensors.rows(sample, 1)).itemsize
        kept = sum(self.n * math.prod(shapes[v]) * item for v in plan.stored)
        kept += sum(self.batch * math.prod(shapes[v]) * item for v in plan.materialized)
        full, done = sum(m[1] for m in plan.macs), sum(m[2] for m in plan.macs)
        floor = self.tensors.auto_min_call_macs
        reason = auto_declines(full, done, self.batch, kept, floor)
        self.incremental_layers, self.note = plan.incremental_layers, plan.note
        self.saved_share = plan.saved_share
        self.probing = False
        if plan.incremental_layers and not self.required and reason is not None:
            if auto_measures(full, done, self.batch, kept, floor):
                self.probing = True  # the sweep times both kinds of call, then decides
            else:
                self.incremental_layers = ()
                self.note = f"normal sweep (incremental='auto'): {reason}"
        if not self.incremental_layers:
            plan.stored, plan.materialized, self.saved_share = set(), set(), 0.0
        for node in plan.stored:
            _, self._stored[node] = self.tensors.buffer((self.n,) + shapes[node], sample)
        for node in plan.materialized:
            tensor, array = self.tensors.buffer((self.batch,) + shapes[node], sample)
            self._spliced[node] = (tensor, array, self.kernels.splice_state())
        return plan

    def base(self, x: Any, start: int) -> Any:
        """The model's outputs for the unoccluded inputs [start, start + len(x)); keeps the
        maps the plan stores."""
        if self.plan is None:
            self.plan = self._make_plan(self.tensors.rows(x, 1))
        stored, tensors = self._stored, self.tensors

        def keep(node: GraphNode, value: Any) -> None:
            if node in stored:
                array = tensors.array(value)
                stored[node][start : start + len(array)] = array

        return self._run_full(x, keep)

    def _run_full(self, x: Any, visit: Callable[[GraphNode, Any], None]) -> Any:
        x = self.tensors.model_input(x)
        env: dict[GraphNode, Any] = {}
        for at, node in enumerate(self.nodes):
            value = x if node.kind == "input" else self.tensors.run(node, env.__getitem__)
            if node.kind == "output":
                return value
            env[node] = value
            visit(node, value)
            for used in self._release[at]:
                env.pop(used, None)
        raise AssertionError("the graph has no output")

    # -- occluded batches -----------------------------------------------------------------

    def occluded(self, x: Any, slots: Any, windows: Any) -> Any:
        """The model's outputs for a batch whose slot j holds input slots[j] occluded by
        window windows[j], computed by the plan."""
        assert self.plan is not None, "the base pass plans"
        tensors = self.tensors
        x = tensors.model_input(x)
        rows = tensors.shape(x)[0]  # type: ignore[index]
        ids = np.asarray(windows[:rows], dtype=np.int64)
        inputs = np.ascontiguousarray(slots[:rows], dtype=np.int64)
        env: dict[GraphNode, Any] = {}
        dense: dict[GraphNode, Any] = {}
        kept = [x, *(spliced[0] for spliced in self._spliced.values())]  # across calls

        def dense_of(node: GraphNode) -> Any:
            value = env[node]
            if not isinstance(value, _Boxes):
                return value
            if node not in dense:
                dense[node] = self._splice(node, value, inputs)
            return dense[node]

        for at, step in enumerate(self.plan.steps):
            node = step.node
            if step.kind == "input":
                env[node] = x
            elif step.kind == "region":
                parts = [self._read(source, env, ids, inputs) for source in step.sources]
                env[node] = _Boxes(step.op.apply(*parts), step.regions.begin[ids])  # type: ignore[union-attr]
            elif step.kind == "meta":
                env[node] = self._size_query(node, env)
            elif node.kind == "output":
                return tensors.run(node, dense_of)
            elif node.writes_input:  # the spliced buffers and the batch are kept: copies
                env[node] = tensors.run(node, lambda i: tensors.writable(dense_of(i), kept))
            else:
                env[node] = tensors.run(node, dense_of)
            for used in self._release[at]:
                env.pop(used, None)
                dense.pop(used, None)
        raise AssertionError("the graph has no output")

    def _columns(self, shape: tuple[int, ...]) -> int:
        """Values per map column in the kernels' view: C for channels last, else 1."""
        return int(shape[-1]) if self.tensors.channels_last else 1

    def _kernel_view(self, array: Any) -> Any:
        """(M, C, *axes) as it is; (M, *axes, C) as (M, 1, *axes[:-1], W * C)."""
        if not self.tensors.channels_last:
            return array
        shape = array.shape
        return array.reshape(shape[0], 1, *shape[1:-2], shape[-2] * shape[-1])

    def _scaled(self, origins: np.ndarray, columns: int) -> np.ndarray:
        """Origins in the kernels' view: the last axis's position times ``columns``."""
        if columns == 1:
            return origins
        scale = np.ones(origins.shape[1], dtype=np.int64)
        scale[-1] = columns
        return origins * scale

    def _read(
        self, source: Source, env: dict[GraphNode, Any], ids: np.ndarray, inputs: np.ndarray
    ) -> Any:
        """What a region node reads of ``source.node``: its boxes, or windows gathered from
        the input batch or from the kept maps with the slots' boxes spliced in."""
        value = env[source.node]
        if source.windows is None:
            return value.data
        windows: Regions = source.windows
        tensors, rows = self.tensors, len(ids)
        origins = windows.begin[ids]
        if isinstance(value, _Boxes):
            maps = self._stored[source.node]
            patches = self._kernel_view(tensors.array(value.data))
            patch_origins = value.origins
        else:  # the input batch (dense)
            maps, patches, patch_origins = tensors.array(value), None, None
            inputs = np.arange(rows, dtype=np.int64)
        columns = self._columns(maps.shape)
        size = windows.size[:-1] + (windows.size[-1] * columns,)
        if tensors.channels_last:
            shape = (rows, *windows.size, maps.shape[-1])
        else:
            shape = (rows, maps.shape[1], *windows.size)
        target = tensors.window_buffer(source, shape, maps)
        out = self.kernels.gather(
            self._kernel_view(maps), inputs, self._scaled(origins, columns), size, patches,
            None if patch_origins is None else self._scaled(patch_origins, columns),
            source.pad_value, None if target is None else self._kernel_view(target[1]),
        )  # fmt: skip
        if target is not None:
            return target[0]
        return tensors.tensor(out.reshape(shape))

    def _splice(self, node: GraphNode, value: _Boxes, inputs: np.ndarray) -> Any:
        """Dense maps of a region node: its kept maps with the slots' boxes in."""
        tensor, array, state = self._spliced[node]
        maps = self._stored[node]
        columns = self._columns(maps.shape)
        patches = self._kernel_view(self.tensors.array(value.data))
        self.kernels.splice(
            self._kernel_view(maps), inputs, patches, self._scaled(value.origins, columns),
            self._kernel_view(array), state,
        )  # fmt: skip
        return self.tensors.rows(tensor, len(inputs))

    def _size_query(self, node: GraphNode, env: dict[GraphNode, Any]) -> Any:
        """A size query of a region node, from its full map's shape."""
        source = node.inputs[0]
        value = env[source]
        if not isinstance(value, _Boxes):
            return self.tensors.run(node, env.__getitem__)
        rows = self.tensors.shape(value.data)[0]  # type: ignore[index]
        return self.tensors.size_query(node, (rows,) + self._shapes[source], value.data)
