"""A Keras functional (or built Sequential) model as the engine's graph of exact
incremental inference (design §8): one ``GraphNode`` per call of a layer, in the order
Keras runs them (``Functional._run_through_graph``: by decreasing depth), and ``KerasOps``
(engine.incremental_run.TensorOps) that calls the layers in inference as that method does,
on eager TensorFlow tensors, channels last."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fastocclusion import _core
from fastocclusion.backends.tensorflow.incremental.layers import (
    classify,
    inference_call,
    macs_per_output,
)
from fastocclusion.engine.incremental_plan import GraphNode
from fastocclusion.engine.regions import AUTO_MIN_CALL_MACS_KERAS, DEFAULT_SWITCH_SHARE_KERAS
from fastocclusion.engine.window_kernels import HostWindowKernels

__all__ = ["KerasOps", "graph_nodes"]


def functional_of(model: Any) -> Any | str:
    """The Functional graph of a Keras model (a Sequential's inner one), or why none."""
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    if graph is None or not hasattr(graph, "_nodes_by_depth"):
        return "the Keras model has no functional graph (build it on a keras.Input first)"
    if len(graph.inputs) != 1:
        return f"the Keras model takes {len(graph.inputs)} inputs (one is swept)"
    return graph


def graph_nodes(graph: Any) -> list[GraphNode]:
    """The graph's layer calls as GraphNodes: the input, one node per call (payload: the
    Keras node), and the output (payload: the model's output tensors)."""
    producers: dict[int, GraphNode] = {}  # id(keras node) -> its GraphNode
    nodes: list[GraphNode] = [GraphNode("input", "input", payload=graph.inputs[0])]
    input_history = graph.inputs[0]._keras_history
    producers[id(input_history.operation._inbound_nodes[input_history.node_index])] = nodes[0]

    def producer(tensor: Any) -> GraphNode:
        history = tensor._keras_history
        return producers[id(history.operation._inbound_nodes[history.node_index])]

    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            inputs = tuple(producer(t) for t in node.input_tensors)
            distinct = tuple(dict.fromkeys(inputs))
            layer = node.operation
            kwargs = {k: v for k, v in node.arguments.kwargs.items() if v is not None}
            kwargs.pop("training", None)
            op = classify(layer, inputs, kwargs)
            if len(node.outputs) != 1 and not isinstance(op, str):
                op = f"{layer.name}: a layer with {len(node.outputs)} outputs is not local"
            graph_node = GraphNode(
                layer.name, "call", distinct, op, macs_per_output(layer), False, node
            )
            producers[id(node)] = graph_node
            nodes.append(graph_node)
    outputs = tuple(graph.outputs)
    nodes.append(
        GraphNode(
            "output", "output", tuple(dict.fromkeys(producer(t) for t in outputs)), payload=outputs
        )  # fmt: skip
    )
    return nodes


class KerasOps:
    """engine.incremental_run.TensorOps for eager TensorFlow tensors on the host, channels
    last."""

    channels_last = True
    auto_min_call_macs = AUTO_MIN_CALL_MACS_KERAS
    switch_share = DEFAULT_SWITCH_SHARE_KERAS

    def __init__(self, nodes: list[GraphNode]) -> None:
        self.kernels = HostWindowKernels()
        self._producer_of: dict[int, GraphNode] = {}  # id(keras tensor) -> node
        self._index_of: dict[int, int] = {}  # id(keras tensor) -> its output index
        for node in nodes:
            if node.kind == "input":
                self._producer_of[id(node.payload)] = node
                self._index_of[id(node.payload)] = -1
            elif node.kind == "call":
                for index, tensor in enumerate(node.payload.outputs):
                    self._producer_of[id(tensor)] = node
                    self._index_of[id(tensor)] = index if len(node.payload.outputs) > 1 else -1
        self._buffers: list[Any] = []  # the host buffers behind persistent tensors
        self._windows: dict[Any, tuple[Any, np.ndarray]] = {}  # window_buffer
        self._calls = {
            id(node.payload): inference_call(node.payload.operation)
            for node in nodes
            if node.kind == "call"
        }

    def _value(self, tensor: Any, value_of: Callable[[GraphNode], Any]) -> Any:
        value = value_of(self._producer_of[id(tensor)])
        index = self._index_of[id(tensor)]
        return value if index < 0 else value[index]

    def run(self, node: GraphNode, value_of: Callable[[GraphNode], Any]) -> Any:
        if node.kind == "output":
            values = [self._value(t, value_of) for t in node.payload]
            return values[0] if len(values) == 1 else values
        keras_node = node.payload
        tensors = {id(t): self._value(t, value_of) for t in keras_node.input_tensors}
        args, kwargs = keras_node.arguments.fill_in(tensors)
        kwargs.pop("training", None)
        return self._calls[id(keras_node)](*args, **kwargs)

    def shape(self, value: Any) -> tuple[int, ...] | None:
        return tuple(value.shape) if isinstance(value, tf.Tensor) else None

    def array(self, tensor: Any) -> np.ndarray:
        return np.ascontiguousarray(tensor.numpy())

    def tensor(self, array: np.ndarray) -> Any:
        return tf.convert_to_tensor(array)

    def synchronize(self) -> None:
        return None  # eager host tensors: every operation has finished when it returns

    def model_input(self, batch: Any) -> Any:
        """float32 (make_scorer takes float32 policies only): a float64 or float16 Input's
        batch is cast as the first layers' autocast casts it (the base pass checks that
        the model agrees)."""
        if batch.dtype.is_floating and batch.dtype != tf.float32:
            return tf.cast(batch, tf.float32)
        return batch

    def host(self, values: Any) -> np.ndarray:
        return np.asarray(values)

    def window_buffer(
        self, key: Any, shape: tuple[int, ...], like: Any
    ) -> tuple[Any, np.ndarray] | None:
        """float32: a 64-byte-aligned host buffer seen by TensorFlow through DLPack, kept
        per (key, shape) for the sweep (no copy into a tensor, no new pages per call)."""
        if like.dtype != np.float32:
            return None
        entry = self._windows.get((key, shape))
        if entry is None:
            host = _core.HostBuffer(shape)
            self._buffers.append(host)
            tensor = tf.experimental.dlpack.from_dlpack(host.__dlpack__())
            entry = self._windows[(key, shape)] = (tensor, np.asarray(host))
        return entry

    def buffer(self, shape: tuple[int, ...], like: Any) -> tuple[Any, np.ndarray]:
        """A 64-byte-aligned host buffer seen by TensorFlow through DLPack (no copy: the
        splices written into its NumPy view show through)."""
        if like.dtype != tf.float32:
            array = np.empty(shape, dtype=like.dtype.as_numpy_dtype)
            return tf.convert_to_tensor(array), array
        host = _core.HostBuffer(shape)
        self._buffers.append(host)
        return tf.experimental.dlpack.from_dlpack(host.__dlpack__()), np.asarray(host)

    def rows(self, tensor: Any, count: int) -> Any:
        return tensor if tensor.shape[0] == count else tensor[:count]

    def writable(self, tensor: Any, persistent: list[Any]) -> Any:
        return tensor  # TensorFlow tensors are not written in place

    def size_query(self, node: GraphNode, shape: tuple[int, ...], like: Any) -> Any:
        raise AssertionError("Keras graphs have no size queries")
