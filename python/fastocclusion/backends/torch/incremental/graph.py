"""A torch.fx trace as the engine's graph of exact incremental inference (design §8):
``GraphNode``s for engine.incremental_plan, and ``TorchOps`` (engine.incremental_run.
TensorOps) that runs them as fx.Interpreter does, on host tensors, channels first (device
tensors: incremental/device.py)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from fastocclusion.backends.torch.incremental.layers import classify, mutated_input, node_label
from fastocclusion.engine.incremental_plan import GraphNode, LocalOp
from fastocclusion.engine.regions import AUTO_MIN_CALL_MACS, DEFAULT_SWITCH_SHARE
from fastocclusion.engine.window_kernels import HostWindowKernels

__all__ = ["TorchOps", "graph_nodes"]


def _is_size_query(node: fx.Node) -> bool:
    """x.size(...), x.dim(), x.shape / x.ndim / x.dtype / x.device: needs no values."""
    if node.op == "call_method":
        return node.target in ("size", "dim")
    return (
        node.op == "call_function"
        and node.target is getattr
        and len(node.args) == 2
        and node.args[1] in ("shape", "ndim", "dtype", "device")
    )


def _macs_per_output(node: fx.Node, modules: dict[str, nn.Module]) -> int:
    module = modules.get(str(node.target)) if node.op == "call_module" else None
    if type(module) in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
        return module.in_channels // module.groups * math.prod(module.kernel_size)
    if type(module) is nn.Linear:
        return module.in_features
    return 0


def graph_nodes(
    traced: fx.GraphModule, modules: dict[str, nn.Module]
) -> tuple[list[GraphNode], dict[fx.Node, GraphNode]]:
    """The trace's nodes as GraphNodes (the first placeholder is the swept input; later
    ones, arguments with defaults, are calls), and the map from fx nodes to them."""
    nodes: list[GraphNode] = []
    of: dict[fx.Node, GraphNode] = {}
    for node in traced.graph.nodes:
        inputs = tuple(of[i] for i in node.all_input_nodes)
        if node.op == "placeholder" and not nodes:
            kind, op = "input", None
        elif node.op == "output":
            kind, op = "output", None
        elif _is_size_query(node):
            kind, op = "size", None
        elif node.op in ("call_module", "call_function", "call_method"):
            kind, op = "call", _classified(node, traced, modules)
            if isinstance(op, LocalOp):
                op = dataclasses.replace(op, inputs=tuple(of[i] for i in op.inputs))
        else:  # get_attr, later placeholders
            kind, op = "call", f"{node_label(node)}: not a layer"
        graph_node = GraphNode(
            node_label(node), kind, inputs, op, _macs_per_output(node, modules),
            mutated_input(node, modules) is not None, node,
        )  # fmt: skip
        nodes.append(graph_node)
        of[node] = graph_node
    return nodes, of


def _classified(node: fx.Node, traced: fx.GraphModule, modules: dict[str, nn.Module]) -> Any:
    """``classify``, a node it cannot read (e.g. fx's ambiguous schema match of an
    overloaded function) being not local: it runs in full."""
    try:
        return classify(node, traced, modules)
    except Exception as error:  # noqa: BLE001 - unreadable means not local
        return f"{node_label(node)}: not a supported local layer ({type(error).__name__}: {error})"


class TorchOps:
    """engine.incremental_run.TensorOps for CPU torch tensors, channels first: arrays are
    NumPy views of their memory, the kernels _core's."""

    channels_last = False
    auto_min_call_macs = AUTO_MIN_CALL_MACS
    switch_share = DEFAULT_SWITCH_SHARE

    def __init__(self, traced: fx.GraphModule, of: dict[fx.Node, GraphNode]) -> None:
        self.traced = traced
        self.of = of
        self.kernels: Any = HostWindowKernels()

    def run(self, node: GraphNode, value_of: Callable[[GraphNode], Any]) -> Any:
        fx_node: fx.Node = node.payload
        of = self.of

        def value(n: fx.Node) -> Any:
            return value_of(of[n])

        if fx_node.op == "output":
            return fx.node.map_arg(fx_node.args[0], value)
        if fx_node.op == "placeholder":  # a later argument of forward: its default
            return fx_node.args[0] if fx_node.args else None
        args = fx.node.map_arg(fx_node.args, value)
        kwargs = fx.node.map_arg(fx_node.kwargs, value)
        if fx_node.op == "call_module":
            return self.traced.get_submodule(str(fx_node.target))(*args, **kwargs)
        if fx_node.op == "call_function":
            return fx_node.target(*args, **kwargs)  # type: ignore[operator]
        if fx_node.op == "call_method":
            return getattr(args[0], str(fx_node.target))(*args[1:], **kwargs)
        return _attribute(self.traced, str(fx_node.target))  # get_attr

    def shape(self, value: Any) -> tuple[int, ...] | None:
        return tuple(value.shape) if isinstance(value, torch.Tensor) else None

    def array(self, tensor: Any) -> np.ndarray:
        return tensor.contiguous().numpy()

    def tensor(self, array: np.ndarray) -> Any:
        return torch.from_numpy(array)

    def buffer(self, shape: tuple[int, ...], like: Any) -> tuple[Any, np.ndarray]:
        tensor = torch.empty(shape, dtype=like.dtype)
        return tensor, tensor.numpy()

    def window_buffer(self, key: Any, shape: tuple[int, ...], like: Any) -> None:
        """None: torch.from_numpy views a gather's new array as it is (persistent buffers
        measured no faster: VGG-16, bench_incremental's vgg16/32)."""
        return None

    def model_input(self, batch: Any) -> Any:
        return batch  # the backends give batches in the model's own dtype

    def synchronize(self) -> None:
        return None  # host tensors: every operation has finished when it returns

    def host(self, values: Any) -> np.ndarray:
        if isinstance(values, torch.Tensor):
            return values.detach().to("cpu").numpy()
        return np.asarray(values)

    def rows(self, tensor: Any, count: int) -> Any:
        return tensor[:count]

    def writable(self, tensor: Any, persistent: list[Any]) -> Any:
        if not isinstance(tensor, torch.Tensor):
            return tensor
        memory = tensor.untyped_storage().data_ptr()
        if any(memory == kept.untyped_storage().data_ptr() for kept in persistent):
            return tensor.clone()
        return tensor  # computed in this call: the model's own forward writes it too

    def size_query(self, node: GraphNode, shape: tuple[int, ...], like: Any) -> Any:
        """The query run on a data-free (meta) tensor of the full map's shape."""
        stand_in = torch.empty(shape, dtype=like.dtype, device="meta")
        result = self.run(node, lambda _: stand_in)
        return like.device if isinstance(result, torch.device) else result


def _attribute(root: nn.Module, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        value = getattr(value, part)
    return value
