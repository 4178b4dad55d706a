"""The plan of exact incremental inference over a model's graph (design §8), for any
framework: a backend describes its model as ``GraphNode``s (its local layers as
``LocalOp``s) and gets which nodes run on boxes, which in full, what each box computation
reads, and what is kept.

From the input on, a node runs on boxes ("region") when it is a local layer, every map it
reads is the input or a region node's, and its changed box covers at most the switch-back
share of its output map; every other node runs in full ("full"), on dense maps: a region
node that a full node reads is spliced into per-slot copies of its unoccluded map
("materialised"). A size query of a region node ("meta") needs its shape only. Region nodes
read through windows, or materialised, keep their unoccluded maps ("stored").

Shapes are the frameworks' own per-sample shapes; ``map_size`` says where a value's map axes
are (channels first or last; one to three axes, as many as the input's boxes have).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastocclusion.engine.regions import (
    LocalLayer,
    Regions,
    hull_regions,
    input_windows,
    local_regions,
    shifted_regions,
    truncated_regions,
)

__all__ = ["GraphNode", "LocalOp", "Plan", "Source", "Step", "build_plan"]


@dataclass(frozen=True)
class LocalOp:
    """How a local layer runs on the stacked boxes of a batch. ``kind``:

    * "window" (convolution, pooling): reads input windows with the kernel's halo
      (``layer``), padded with ``pad_value`` outside the map, and runs with no padding;
      ``same_padding``: TensorFlow's "same" (the padding follows from the input's length);
      ``floor_shape``: exact on windows only when the output has the floor-mode size;
    * "pointwise": the same boxes in and out;
    * "merge" (sums, products, channel concatenations): the union of the inputs' boxes;
    * "pad" (zero padding): the boxes move by ``offset`` (per map axis).

    ``inputs``: the nodes whose maps it reads, in the order ``apply`` takes their boxes;
    ``map_axes``: local only on maps of this many axes (an operation whose meaning depends
    on the map's rank: a softmax over dim -3 is over the channels of 2-D maps only), None
    for any."""

    kind: str
    inputs: tuple[Any, ...]
    apply: Callable[..., Any]
    layer: LocalLayer | None = None
    pad_value: float = 0.0
    offset: tuple[int, ...] = ()
    floor_shape: bool = False
    same_padding: bool = False
    map_axes: int | None = None


@dataclass(eq=False)
class GraphNode:
    """One node of a model's graph, in topological order. ``kind``: "input" (the swept
    input), "call" (a layer: ``op`` its LocalOp, or why it is not local), "size" (a shape
    query of its input), "output"; ``inputs``: every node whose value it reads;
    ``macs_per_output``: multiply-adds per output element (convolutions, dense layers: the
    plan's count of saved work); ``writes_input``: the layer writes into an input in
    place; ``payload``: the framework's own node."""

    label: str
    kind: str
    inputs: tuple[GraphNode, ...] = ()
    op: LocalOp | str | None = None
    macs_per_output: int = 0
    writes_input: bool = False
    payload: Any = None


@dataclass(frozen=True)
class Source:
    """One map a region node reads: node ``node``'s boxes as they are (``windows`` None), or
    the windows ``windows`` of its map (padded with ``pad_value`` outside it)."""

    node: GraphNode
    windows: Regions | None
    pad_value: float = 0.0


@dataclass
class Step:
    node: GraphNode
    kind: str  # "input", "region", "meta", "full"
    op: LocalOp | None = None
    regions: Regions | None = None  # the changed boxes of an input or region node
    sources: list[Source] = field(default_factory=list)
    truncated: bool = False  # its boxes were cut (projective-field truncation)


@dataclass
class Plan:
    steps: list[Step]
    stored: set[GraphNode]
    materialized: set[GraphNode]
    #: (label, multiply-adds per sample of the full layer, of its boxes) per layer with
    #: macs_per_output, from the layer shapes.
    macs: list[tuple[str, int, int]]
    incremental_layers: tuple[str, ...]
    note: str
    #: The region layers whose boxes projective-field truncation cut (approximate).
    truncated_layers: tuple[str, ...] = ()

    @property
    def saved_share(self) -> float:
        full = sum(m[1] for m in self.macs)
        return 1.0 - sum(m[2] for m in self.macs) / full if full else 0.0


def _same_padding(length: int, layer: LocalLayer, axis: int) -> int:
    """TensorFlow's "same" padding before the first position of an axis of ``length``."""
    stride, span = layer.stride[axis], layer.dilation[axis] * (layer.kernel[axis] - 1) + 1
    total = max((-(-length // stride) - 1) * stride + span - length, 0)
    return total // 2


def _window_layer(op: LocalOp, size: tuple[int, ...]) -> LocalLayer:
    layer = op.layer
    assert layer is not None
    if not op.same_padding:
        return layer
    padding = tuple(_same_padding(length, layer, axis) for axis, length in enumerate(size))
    return LocalLayer(layer.kernel, layer.stride, padding, layer.dilation)


def _floor_size(length: int, layer: LocalLayer, axis: int) -> int:
    span = layer.dilation[axis] * (layer.kernel[axis] - 1) + 1
    return (length + 2 * layer.padding[axis] - span) // layer.stride[axis] + 1


def _source(node: GraphNode, boxes: Regions, known: dict[GraphNode, Regions]) -> Source:
    """``node`` read over ``boxes``: a region node whose own boxes they are is read as it
    is; otherwise (the input, or other boxes) its windows are gathered."""
    if node.kind != "input" and known[node].same_boxes(boxes):
        return Source(node, None)
    return Source(node, boxes)


def _box_regions(
    step: Step, op: LocalOp, known: dict[GraphNode, Regions], shapes: dict[GraphNode, Any],
    map_size: Callable[[Any], tuple[int, ...] | None], truncation: float | None,
) -> Regions | str:  # fmt: skip
    """The changed boxes of a local node over maps of known boxes (and its sources); or why
    the node cannot run on boxes. ``truncation``: the projective-field share (None: exact)
    that cuts the boxes of convolutions, poolings and merges (``truncated_regions``)."""
    node = step.node
    parts = [known[i] for i in op.inputs]
    axes = parts[0].axes
    out = map_size(shapes.get(node))
    ins = [map_size(shapes.get(i)) for i in op.inputs]
    if out is None or any(s is None for s in ins):
        return f"{node.label}: not a feature map over the input's {axes} map axes"
    if op.layer is not None and len(op.layer.kernel) != axes:
        return f"{node.label}: a layer over {len(op.layer.kernel)} axes on maps of {axes}"
    if op.map_axes is not None and op.map_axes != axes:
        return f"{node.label}: its dim is not the channels of maps of {axes} axes"
    if op.kind == "pad" and len(op.offset) > axes:
        return f"{node.label}: padding of {len(op.offset)} axes on maps of {axes}"
    if op.kind == "window":
        layer = _window_layer(op, ins[0])  # type: ignore[arg-type]
        floor = tuple(_floor_size(ins[0][a], layer, a) for a in range(axes))  # type: ignore[index]
        if op.floor_shape and out != floor:
            return f"{node.label}: pooling whose ceil mode adds positions is not supported"
        regions, windows = local_regions(parts[0], layer, out)
        if truncation is not None:
            cut = truncated_regions(regions, truncation)
            step.truncated = cut is not regions
            if step.truncated:
                regions, windows = cut, input_windows(cut, layer, parts[0].shape)
        step.sources = [Source(op.inputs[0], windows, op.pad_value)]
        return regions
    if op.kind == "merge":  # sums, products (channels may broadcast), concatenations
        if any(s != out for s in ins):
            return f"{node.label}: maps of different sizes are not supported"
        regions = hull_regions(parts, out)
        if truncation is not None:
            cut = truncated_regions(regions, truncation)
            step.truncated = cut is not regions
            regions = cut
    elif op.kind == "pad":  # the boxes move with the map; the input's own boxes are read
        step.sources = [_source(op.inputs[0], parts[0], known)]
        offset = (0,) * (axes - len(op.offset)) + op.offset  # F.pad pads the last axes
        return shifted_regions(parts[0], offset, out)
    else:  # pointwise
        if shapes.get(node) != shapes.get(op.inputs[0]):
            return f"{node.label}: changes the map's shape"
        regions = parts[0]
    step.sources = [_source(i, regions, known) for i in op.inputs]
    return regions


def _region_step(
    step: Step, known: dict[GraphNode, Regions], shapes: dict[GraphNode, Any],
    map_size: Callable[[Any], tuple[int, ...] | None], switch_share: float,
    truncation: float | None,
) -> str:  # fmt: skip
    """Makes ``step`` a region step when its node can run on boxes; else says why not ("":
    a node that reads no map with boxes)."""
    node = step.node
    op = node.op
    if node.kind == "size" and node.inputs and node.inputs[0] in known:
        step.kind = "meta"
        return ""
    if not isinstance(op, LocalOp):
        if node.kind == "call" and any(i in known for i in node.inputs):
            return str(op or f"{node.label}: not a local layer")
        return ""
    if not all(i in known for i in op.inputs):
        return ""
    boxes = _box_regions(step, op, known, shapes, map_size, truncation)
    if isinstance(boxes, str):
        return boxes
    if boxes.share > switch_share:
        return (
            f"{node.label}: its changed box covers {boxes.share:.0%} of the map, past the "
            f"switch-back share {switch_share:.0%}"
        )
    step.kind, step.op, step.regions = "region", op, boxes
    known[node] = boxes
    return ""


def build_plan(
    nodes: list[GraphNode],
    shapes: dict[GraphNode, Any],
    map_size: Callable[[Any], tuple[int, ...] | None],
    regions: Regions,
    switch_share: float,
    truncation: float | None = None,
) -> Plan:
    """The plan for one sweep: ``shapes`` the per-sample output shape of every node (None
    for what is not a tensor), ``map_size(shape)`` the map axes' lengths of a feature map
    of that shape (as many axes as ``regions`` has; None otherwise), ``regions`` the
    occlusion windows' boxes over the input's map axes; ``truncation``: None (exact), or
    the projective-field share in (0, 1] past which a layer's boxes are cut to their
    centre (approximate: the cut-off changes are dropped)."""
    known: dict[GraphNode, Regions] = {}
    steps: list[Step] = []
    stopped = ""  # why the first region boundary is where it is
    macs: list[tuple[str, int, int]] = []
    for node in nodes:
        step = Step(node, "full")
        if node.kind == "input":
            step.kind, step.regions = "input", regions
            known[node] = regions
        else:
            reason = _region_step(step, known, shapes, map_size, switch_share, truncation)
            stopped = stopped or reason
        steps.append(step)
        shape = shapes.get(node)
        if node.macs_per_output and shape is not None:
            full = node.macs_per_output * _elements(shape)
            share = step.regions.share if step.kind == "region" else 1.0  # type: ignore[union-attr]
            macs.append((node.label, full, round(full * share)))
    return _finish(steps, macs, stopped)


def _elements(shape: Any) -> int:
    count = 1
    for length in shape:
        count *= int(length)
    return count


def _finish(steps: list[Step], macs: list[tuple[str, int, int]], stopped: str) -> Plan:
    region_nodes = {s.node for s in steps if s.kind == "region"}
    stored: set[GraphNode] = set()
    materialized: set[GraphNode] = set()
    for step in steps:
        if step.kind == "region":
            stored.update(
                s.node for s in step.sources if s.windows is not None and s.node in region_nodes
            )
        elif step.kind == "full":
            materialized.update(i for i in step.node.inputs if i in region_nodes)
    stored |= materialized
    layers = tuple(s.node.label for s in steps if s.kind == "region")
    truncated = tuple(s.node.label for s in steps if s.kind == "region" and s.truncated)
    if not layers:
        note = f"normal sweep: no layer runs incrementally ({stopped or 'no local layer'})"
    else:
        note = f"{len(layers)} layers run incrementally; full from {stopped or 'the output'}"
        if truncated:
            note += (
                f"; projective-field truncation (approximate) cut the boxes of "
                f"{len(truncated)} layers from {truncated[0]}"
            )
    return Plan(steps, stored, materialized, macs, layers, note, truncated)
