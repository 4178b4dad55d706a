"""The plan of exact incremental inference over a traced model (SPEC §8): which nodes run
on boxes, which in full, what each box computation reads, and what is kept.

From the input on, a node runs on boxes ("region") when it is a local layer
(layers.classify), every map it reads is the input or a region node's, and its changed box
covers at most the switch-back share of its output map; every other node runs in full
("full"), on dense maps: a region node that a full node reads is spliced into per-slot
copies of its base map ("materialised"). A size query of a region node ("meta") needs its
shape only. Region nodes that are read through windows, or materialised, keep their
unoccluded activations ("stored").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import fx

from fastocclusion.backends.torch.incremental.layers import LocalOp, node_label
from fastocclusion.engine.regions import (
    Regions,
    hull_regions,
    local_regions,
    shifted_regions,
)

__all__ = ["Plan", "Source", "Step", "build_plan", "is_size_query"]


@dataclass(frozen=True)
class Source:
    """One map a region node reads: node ``node``'s boxes as they are (``windows`` None),
    or the windows ``windows`` of its map (padded with ``pad_value`` outside it)."""

    node: fx.Node
    windows: Regions | None
    pad_value: float = 0.0


@dataclass
class Step:
    """One node of the plan, in graph order."""

    node: fx.Node
    kind: str  # "input", "region", "meta", "full"
    op: LocalOp | None = None
    regions: Regions | None = None  # the changed boxes of an input or region node
    sources: list[Source] = field(default_factory=list)


@dataclass
class Plan:
    steps: list[Step]
    stored: set[fx.Node]
    materialized: set[fx.Node]
    #: (label, multiply-adds of the full layer per sample, of its boxes) per convolution
    #: and linear layer, from the layer shapes.
    macs: list[tuple[str, int, int]]
    incremental_layers: tuple[str, ...]
    note: str


def is_size_query(node: fx.Node) -> bool:
    """x.size(...), x.dim(), x.shape / x.ndim / x.dtype / x.device: needs no values."""
    if node.op == "call_method":
        return node.target in ("size", "dim")
    return (
        node.op == "call_function"
        and node.target is getattr
        and len(node.args) == 2
        and (node.args[1] in ("shape", "ndim", "dtype", "device"))
    )


def _spatial(shape: torch.Size | None) -> tuple[int, int] | None:
    return (int(shape[2]), int(shape[3])) if shape is not None and len(shape) == 4 else None


def _floor_size(length: int, op: LocalOp, axis: int) -> int:
    layer = op.layer
    assert layer is not None
    span = layer.dilation[axis] * (layer.kernel[axis] - 1) + 1
    return (length + 2 * layer.padding[axis] - span) // layer.stride[axis] + 1


def _source(node: fx.Node, boxes: Regions, known: dict[fx.Node, Regions]) -> Source:
    """Node ``node`` read over ``boxes``: a region node whose own boxes they are is read as
    it is; otherwise (the input, or other boxes) its windows are gathered."""
    if node.op != "placeholder" and known[node].same_boxes(boxes):
        return Source(node, None)
    return Source(node, boxes)


def _box_regions(
    step: Step, op: LocalOp, known: dict[fx.Node, Regions], shapes: dict[fx.Node, torch.Size | None]
) -> Regions | str:
    """The changed boxes of a local node over maps of known boxes, and its sources; or why
    the node cannot run on boxes."""
    node, label = step.node, node_label(step.node)
    out = _spatial(shapes.get(node))
    ins = [_spatial(shapes.get(i)) for i in op.inputs]
    if out is None or any(s is None for s in ins):
        return f"{label}: not a 4-D (batch, channels, rows, columns) map"
    parts = [known[i] for i in op.inputs]
    if op.kind == "window":
        if op.floor_shape and out != tuple(_floor_size(ins[0][a], op, a) for a in range(2)):
            return f"{label}: average pooling whose ceil_mode adds positions is not supported"
        regions, windows = local_regions(parts[0], op.layer, out)  # type: ignore[arg-type]
        step.sources = [Source(op.inputs[0], windows, op.pad_value)]
        return regions
    if op.kind == "merge":  # sums, products (channels may broadcast), concatenations
        if any(s != out for s in ins):
            return f"{label}: maps of different sizes are not supported"
        regions = hull_regions(parts, out)
    elif op.kind == "pad":  # the boxes move with the map; the input's own boxes are read
        regions = shifted_regions(parts[0], op.offset, out)
        step.sources = [_source(op.inputs[0], parts[0], known)]
        return regions
    else:  # pointwise
        if shapes.get(node) != shapes.get(op.inputs[0]):
            return f"{label}: changes the map's shape"
        regions = parts[0]
    step.sources = [_source(i, regions, known) for i in op.inputs]
    return regions


def _macs(node: fx.Node, module: torch.nn.Module | None, shape: torch.Size | None) -> int:
    """Multiply-adds per sample of a Conv2d or Linear module's output of ``shape``."""
    if module is None or shape is None:
        return 0
    if isinstance(module, torch.nn.Conv2d):
        per_output = (
            module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        )
        return int(shape[1:].numel()) * per_output
    if isinstance(module, torch.nn.Linear):
        return int(shape[1:].numel()) * module.in_features
    return 0


def build_plan(
    graph: fx.Graph,
    ops: dict[fx.Node, LocalOp | str],
    modules: dict[str, torch.nn.Module],
    shapes: dict[fx.Node, torch.Size | None],
    regions: Regions,
    switch_share: float,
) -> Plan:
    """The plan for one sweep: ``ops`` the classification of every call node, ``shapes``
    the output shape of every node for one sample, ``regions`` the occlusion windows'
    boxes over the input's (rows, columns)."""
    known: dict[fx.Node, Regions] = {}
    steps: list[Step] = []
    stopped = ""  # why the first region boundary is where it is
    macs: list[tuple[str, int, int]] = []
    for node in graph.nodes:
        step = Step(node, "full")
        if node.op == "placeholder" and not steps:
            step.kind, step.regions = "input", regions
            known[node] = regions
        elif is_size_query(node) and node.args[0] in known:
            step.kind = "meta"
        elif isinstance(ops.get(node), LocalOp):
            op = ops[node]
            if all(i in known for i in op.inputs):  # type: ignore[union-attr]
                boxes = _box_regions(step, op, known, shapes)  # type: ignore[arg-type]
                if isinstance(boxes, str):
                    stopped = stopped or boxes
                elif boxes.share > switch_share:
                    stopped = stopped or (
                        f"{node_label(node)}: its changed box covers {boxes.share:.0%} of the "
                        f"map, past the switch-back share {switch_share:.0%}"
                    )
                else:
                    step.kind, step.op, step.regions = "region", op, boxes
                    known[node] = boxes
        elif any(a in known for a in node.all_input_nodes) and node.op != "output":
            stopped = stopped or str(ops.get(node, f"{node_label(node)}: not a local layer"))
        steps.append(step)
        module = modules.get(str(node.target)) if node.op == "call_module" else None
        full = _macs(node, module, shapes.get(node))
        if full:
            share = step.regions.share if step.kind == "region" else 1.0  # type: ignore[union-attr]
            macs.append((node_label(node), full, round(full * share)))
    region_nodes = {s.node for s in steps if s.kind == "region"}
    stored: set[fx.Node] = set()
    materialized: set[fx.Node] = set()
    for step in steps:
        if step.kind == "region":
            stored.update(
                s.node for s in step.sources if s.windows is not None and s.node in region_nodes
            )
        elif step.kind == "full":
            materialized.update(a for a in step.node.all_input_nodes if a in region_nodes)
    stored |= materialized
    layers = tuple(node_label(s.node) for s in steps if s.kind == "region")
    if not layers:
        note = f"normal sweep: no layer runs incrementally ({stopped or 'no local layer'})"
    else:
        note = f"{len(layers)} layers run incrementally; full from {stopped or 'the output'}"
    return Plan(steps, stored, materialized, macs, layers, note)
