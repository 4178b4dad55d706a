"""Which nodes of a ``torch.fx`` graph are local layers, and how each runs on the stacked
boxes of a batch (design §8).

A local layer's output at a position depends on a bounded neighbourhood of its input
there. Four kinds:

* ``window``: convolution, max and average pooling: reads an input window with the
  kernel's halo (engine.regions.LocalLayer), padded outside the map (0, or -inf for max
  pooling), and runs with no padding of its own;
* ``pointwise``: batch norm in eval mode, activations, dropout in eval mode, identity,
  arithmetic with numbers: the same boxes in and out;
* ``merge``: residual sums and products of maps of one shape, channel concatenation: the
  union of the inputs' boxes;
* ``pad``: zero padding: the boxes move by the padding.

``classify`` returns the ``LocalOp`` (engine.incremental_plan) of a node, its inputs fx
nodes, or a sentence saying why the node is not local (then it runs in full). Modules are
matched by exact type: a subclass may compute something else.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import fx, nn

from fastocclusion.engine.incremental_plan import LocalOp
from fastocclusion.engine.regions import LocalLayer

__all__ = ["classify", "mutated_input", "node_label"]

_POINTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign,
    nn.Tanhshrink, nn.LogSigmoid, nn.PReLU, nn.Threshold, nn.Identity,
)  # fmt: skip
_DROPOUT_MODULES = (nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.FeatureAlphaDropout)
_POINTWISE_FUNCTIONS = {
    F.relu, F.relu6, F.leaky_relu, F.elu, F.celu, F.selu, F.gelu, F.silu, F.mish, F.hardtanh,
    F.hardswish, F.hardsigmoid, F.softplus, F.softsign, F.tanhshrink, F.logsigmoid,
    F.sigmoid, F.tanh, torch.relu, torch.sigmoid, torch.tanh, torch.clamp, torch.clip,
    torch.abs, torch.neg, torch.exp, operator.neg, operator.abs,
}  # fmt: skip
_POINTWISE_METHODS = {"relu", "sigmoid", "tanh", "clamp", "clip", "abs", "neg", "exp"}
_BINARY = {
    operator.add: torch.add, operator.sub: torch.sub, operator.mul: torch.mul,
    operator.truediv: torch.div, torch.add: torch.add, torch.sub: torch.sub,
    torch.mul: torch.mul, torch.div: torch.div,
}  # fmt: skip
_BINARY_METHODS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
_CONCATS = {torch.cat, torch.concat, torch.concatenate}
# Local along the map axes when taken over the channels (dim 1 of a 4-D map).
_CHANNEL_FUNCTIONS = {torch.softmax, F.softmax, torch.log_softmax, F.log_softmax}
_MAX_POOLS = {F.max_pool2d, torch.max_pool2d}
_AVG_POOLS = {F.avg_pool2d}


def node_label(node: fx.Node) -> str:
    """The name a user knows a node by: the module's path, else the node's name."""
    return str(node.target) if node.op == "call_module" else node.name


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1])) if len(value) in (1, 2) else (-1, -1)
    return (int(value), int(value))


def _name(target: Any) -> str:
    return str(getattr(target, "__name__", target))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _conv_padding(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]) -> Any:
    """The padding before the first position per axis ('same': PyTorch puts the smaller
    half first)."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    return _pair(padding)


def _conv(node: fx.Node, source: Any, weight: torch.Tensor, bias: Any, stride: Any,
          padding: Any, dilation: Any, groups: int) -> LocalOp | str:  # fmt: skip
    if weight.dim() != 4:
        return f"{node_label(node)}: a convolution over {weight.dim() - 2} axes is not supported"
    kernel, dil, step = _pair(tuple(weight.shape[2:])), _pair(dilation), _pair(stride)
    pad = _conv_padding(padding, kernel, dil)

    def apply(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, bias, step, 0, dil, groups)

    return LocalOp("window", (source,), apply, LocalLayer(kernel, step, pad, dil))


def _pool(node: fx.Node, source: Any, kind: str, kernel: Any, stride: Any, padding: Any,
          dilation: Any, extra: dict[str, Any]) -> LocalOp | str:  # fmt: skip
    k = _pair(kernel)
    s = _pair(stride if stride not in (None, [], ()) else kernel)
    p, d = _pair(padding), _pair(dilation)
    layer = LocalLayer(k, s, p, d)
    if kind == "max":
        if extra.get("return_indices"):
            return f"{node_label(node)}: max pooling with return_indices is not supported"

        def apply_max(x: torch.Tensor) -> torch.Tensor:
            return F.max_pool2d(x, k, s, 0, d)

        return LocalOp("window", (source,), apply_max, layer, pad_value=-math.inf)
    if p != (0, 0) and not extra.get("count_include_pad", True):
        return f"{node_label(node)}: average pooling without count_include_pad is not supported"
    divisor = extra.get("divisor_override")

    def apply_avg(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, k, s, 0, False, True, divisor)

    return LocalOp("window", (source,), apply_avg, layer, floor_shape=True)


def _module_op(node: fx.Node, module: nn.Module) -> LocalOp | str:
    label, kind = node_label(node), type(module)
    source = node.args[0] if node.args else None
    if kind is nn.Conv2d:
        if module.padding_mode != "zeros":
            return f"{label}: Conv2d with padding_mode={module.padding_mode!r} is not supported"
        return _conv(node, source, module.weight, module.bias, module.stride, module.padding,
                     module.dilation, module.groups)  # fmt: skip
    if kind is nn.MaxPool2d:
        return _pool(node, source, "max", module.kernel_size, module.stride, module.padding,
                     module.dilation, {"return_indices": module.return_indices})  # fmt: skip
    if kind is nn.AvgPool2d:
        extra = {"count_include_pad": module.count_include_pad,
                 "divisor_override": module.divisor_override}  # fmt: skip
        return _pool(node, source, "avg", module.kernel_size, module.stride, module.padding,
                     1, extra)  # fmt: skip
    if kind is nn.BatchNorm2d:
        if module.training or module.running_mean is None:
            return f"{label}: BatchNorm2d in training mode (batch statistics) is not local"
        return LocalOp("pointwise", (source,), module)
    if kind in _DROPOUT_MODULES:
        if module.training:
            return f"{label}: {kind.__name__} in training mode is random"
        return LocalOp("pointwise", (source,), lambda x: x)
    if kind in _POINTWISE_MODULES:
        return LocalOp("pointwise", (source,), module)
    if kind in (nn.Softmax, nn.LogSoftmax):
        if module.dim not in (1, -3):
            return f"{label}: {kind.__name__} over dim {module.dim} is not local"
        return LocalOp("pointwise", (source,), module)
    if kind in (nn.ZeroPad2d, nn.ConstantPad2d):
        return _padding(node, source, module.padding, getattr(module, "value", 0.0))
    return f"{label}: {kind.__name__} is not a supported local layer"


def _padding(node: fx.Node, source: Any, pad: Any, value: Any) -> LocalOp | str:
    pad = tuple(int(v) for v in pad) if isinstance(pad, (tuple, list)) else (int(pad),) * 4
    if len(pad) != 4 or min(pad) < 0 or value not in (None, 0, 0.0):
        return f"{node_label(node)}: only zero padding of the two map axes is supported"
    return LocalOp("pad", (source,), lambda x: x, offset=(pad[2], pad[0]))


def _call_on_box(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``target`` called as the node calls it, with the boxes in place of its first
    argument (the only node among its arguments)."""
    rest = args[1:]
    return lambda x: target(x, *rest, **kwargs)


def _elementwise(node: fx.Node, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A binary op: maps of one shape (merge) or a map and a number (pointwise)."""
    nodes = [a for a in args if isinstance(a, fx.Node)]
    if len(args) != 2 or any(isinstance(v, fx.Node) for v in kwargs.values()):
        return f"{node_label(node)}: {node.target} with these arguments is not supported"
    if len(nodes) == 2:
        return LocalOp("merge", tuple(nodes), lambda a, b: fn(a, b, **kwargs))
    if len(nodes) == 1 and _is_number(args[1 - args.index(nodes[0])]):
        first = args[0] is nodes[0]
        other = args[1] if first else args[0]
        if first:
            return LocalOp("pointwise", (nodes[0],), lambda x: fn(x, other, **kwargs))
        return LocalOp("pointwise", (nodes[0],), lambda x: fn(other, x, **kwargs))
    return f"{node_label(node)}: {node.target} with a constant tensor is not supported"


def _function_op(node: fx.Node, root: nn.Module) -> LocalOp | str:
    target, args, kwargs = node.target, node.args, dict(node.kwargs)
    label = node_label(node)
    if target in _BINARY:
        return _elementwise(node, _BINARY[target], args, kwargs)
    if target in _POINTWISE_FUNCTIONS or target is F.dropout:
        nodes = [a for a in args if isinstance(a, fx.Node)]
        if (
            len(nodes) != 1
            or args[0] is not nodes[0]
            or any(isinstance(v, fx.Node) for v in kwargs.values())
        ):
            return f"{label}: {_name(target)} on these arguments is not supported"
        if target is F.dropout:
            if kwargs.get("training", len(args) < 3 or args[2]):
                return f"{label}: dropout in training mode is random"
            return LocalOp("pointwise", (nodes[0],), lambda x: x)
        kwargs.pop("inplace", None)
        return LocalOp("pointwise", (nodes[0],), _call_on_box(target, args, kwargs))
    a = _bound_arguments(target, args, kwargs)
    if a is None:
        return f"{label}: {_name(target)} is not a supported local layer"
    if target in _CHANNEL_FUNCTIONS:
        if a.get("dim") not in (1, -3) or isinstance(a.get("dtype"), fx.Node):
            return f"{label}: {_name(target)} over dim {a.get('dim')} is not local"
        rest = {key: value for key, value in a.items() if key != "input"}
        return LocalOp("pointwise", (a["input"],), lambda x: target(x, **rest))
    if target in _CONCATS:
        parts = a.get("tensors")
        if (
            a.get("dim", 0) not in (1, -3)
            or not isinstance(parts, (list, tuple))
            or not all(isinstance(p, fx.Node) for p in parts)
        ):
            return f"{label}: only a concatenation of maps along the channels is supported"
        return LocalOp("merge", tuple(parts), lambda *xs: torch.cat(xs, 1))
    if target is F.pad:
        if a.get("mode", "constant") != "constant":
            return f"{label}: {a.get('mode')} padding is not supported"
        return _padding(node, a["input"], a["pad"], a.get("value"))
    if target is F.conv2d:
        weight, bias = (_attribute(root, a.get(name)) for name in ("weight", "bias"))
        if not isinstance(weight, torch.Tensor):
            return f"{label}: conv2d with a computed weight is not supported"
        return _conv(node, a["input"], weight, bias, a.get("stride", 1), a.get("padding", 0),
                     a.get("dilation", 1), a.get("groups", 1))  # fmt: skip
    if target in _MAX_POOLS or target in _AVG_POOLS:
        kind = "max" if target in _MAX_POOLS else "avg"
        return _pool(node, a["input"], kind, a["kernel_size"], a.get("stride"),
                     a.get("padding", 0), a.get("dilation", 1), a)  # fmt: skip
    return f"{label}: {_name(target)} is not a supported local layer"


_SOFTMAX = ("input", "dim", "_stacklevel", "dtype")
_MAX_POOL = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
             "return_indices")  # fmt: skip
#: The parameters of the functions classified by their arguments, in order: fx's own
#: normalisation finds overloaded builtins ambiguous (torch.conv2d, torch.max), so the
#: arguments are bound here, for these functions only.
_PARAMETERS: dict[Any, tuple[str, ...]] = {
    torch.softmax: ("input", "dim", "dtype"), torch.log_softmax: ("input", "dim", "dtype"),
    F.softmax: _SOFTMAX, F.log_softmax: _SOFTMAX,
    **{concat: ("tensors", "dim") for concat in _CONCATS},
    F.pad: ("input", "pad", "mode", "value"),
    F.conv2d: ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    F.max_pool2d: _MAX_POOL, torch.max_pool2d: _MAX_POOL,
    F.avg_pool2d: ("input", "kernel_size", "stride", "padding", "ceil_mode",
                   "count_include_pad", "divisor_override"),
}  # fmt: skip


def _bound_arguments(target: Any, args: Any, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """A known function's arguments by name (defaults left out), or None for another
    function or arguments that do not bind."""
    names = _PARAMETERS.get(target)
    if names is None or len(args) > len(names) or set(kwargs) - set(names):
        return None
    bound = dict(zip(names, args))
    if set(bound) & set(kwargs):
        return None
    return {**bound, **kwargs}


def _attribute(root: nn.Module, value: Any) -> Any:
    """The tensor of a get_attr node (a module's parameter), None for None."""
    if isinstance(value, fx.Node):
        if value.op != "get_attr":
            return "computed"
        obj: Any = root
        for part in str(value.target).split("."):
            obj = getattr(obj, part)
        return obj
    return value


def _method_op(node: fx.Node) -> LocalOp | str:
    name = str(node.target).rstrip("_")
    args, kwargs = node.args, dict(node.kwargs)
    if name in _BINARY_METHODS:
        return _elementwise(node, _BINARY_METHODS[name], args, kwargs)
    if name in _POINTWISE_METHODS and not any(
        isinstance(a, fx.Node) for a in list(args[1:]) + list(kwargs.values())
    ):
        method = getattr(torch.Tensor, name)
        return LocalOp("pointwise", (args[0],), _call_on_box(method, args, kwargs))
    if name == "contiguous":
        return LocalOp("pointwise", (args[0],), lambda x: x)
    return f"{node_label(node)}: the method {node.target} is not a supported local layer"


def classify(node: fx.Node, root: nn.Module, modules: dict[str, nn.Module]) -> LocalOp | str:
    """The LocalOp of a call node, or why it is not local."""
    if node.op == "call_module":
        return _module_op(node, modules[str(node.target)])
    if node.op == "call_function":
        return _function_op(node, root)
    if node.op == "call_method":
        return _method_op(node)
    return f"{node_label(node)}: {node.op} is not a local layer"


def mutated_input(node: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The input a node writes into in place (an inplace=True module or function, a
    method ending in '_'), or None."""
    first = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
    if node.op == "call_module":
        inplace = getattr(modules[str(node.target)], "inplace", False) is True
    elif node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        inplace = node.kwargs.get("inplace") is True or (
            name.endswith("_") and not name.startswith("_")
        )
    elif node.op == "call_method":
        name = str(node.target)
        inplace = name.endswith("_") and not name.startswith("_")
    else:
        inplace = False
    return first if inplace else None
