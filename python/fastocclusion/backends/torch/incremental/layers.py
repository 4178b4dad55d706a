"""Which nodes of a ``torch.fx`` graph are local layers, and how each runs on the stacked
boxes of a batch (design §8).

A local layer's output at a position depends on a bounded neighbourhood of its input
there. Four kinds:

* ``window``: convolution, max and average pooling over one, two or three axes (Conv1d,
  Conv2d, Conv3d and their pools): reads an input window with the kernel's halo
  (engine.regions.LocalLayer), padded outside the map (0, or -inf for max pooling), and
  runs with no padding of its own;
* ``pointwise``: batch norm in eval mode, activations, dropout in eval mode, identity,
  arithmetic with numbers: the same boxes in and out;
* ``merge``: residual sums and products of maps of one shape, channel concatenation: the
  union of the inputs' boxes;
* ``pad``: constant padding: the boxes move by the padding.

Maps are channels first, (N, C, *axes); an operation whose meaning depends on the map's
rank (a softmax or a concatenation over dim -3, the channels of 2-D maps only) says so in
its LocalOp's ``map_axes``.

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
_DROPOUT_MODULES = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)  # fmt: skip
_CONV_MODULES = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}
_MAX_POOL_MODULES = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}
_AVG_POOL_MODULES = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3}
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_PAD_MODULES = (
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d,
    nn.ConstantPad3d,
)  # fmt: skip
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
# Local along the map axes when taken over the channels (dim 1 of a map).
_CHANNEL_FUNCTIONS = {torch.softmax, F.softmax, torch.log_softmax, F.log_softmax}
_CONV_FUNCTIONS = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}
_MAX_POOLS = {
    F.max_pool1d: 1, torch.max_pool1d: 1, F.max_pool2d: 2, torch.max_pool2d: 2,
    F.max_pool3d: 3, torch.max_pool3d: 3,
}  # fmt: skip
_AVG_POOLS = {F.avg_pool1d: 1, torch.avg_pool1d: 1, F.avg_pool2d: 2, F.avg_pool3d: 3}
_RUN_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_RUN_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def node_label(node: fx.Node) -> str:
    """The name a user knows a node by: the module's path, else the node's name."""
    return str(node.target) if node.op == "call_module" else node.name


def _per_axis(value: Any, axes: int) -> tuple[int, ...]:
    """A layer's kernel, stride, padding or dilation as one number per map axis (a number
    or a one-entry sequence: the same on every axis)."""
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            return (int(value[0]),) * axes
        return tuple(int(v) for v in value) if len(value) == axes else (-1,) * axes
    return (int(value),) * axes


def _channel_dim(dim: Any) -> tuple[bool, int | None]:
    """Whether ``dim`` can be the channels of a (N, C, *axes) map, and the map axes it must
    have then (None: any, for dim 1; dim -2, -3, -4: the channels of 1, 2, 3 axes)."""
    if dim == 1:
        return True, None
    if isinstance(dim, int) and not isinstance(dim, bool) and -4 <= dim <= -2:
        return True, -dim - 1
    return False, None


def _name(target: Any) -> str:
    return str(getattr(target, "__name__", target))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _conv_padding(padding: Any, kernel: tuple[int, ...], dilation: tuple[int, ...]) -> Any:
    """The padding before the first position per axis ('same': PyTorch puts the smaller
    half first)."""
    if padding == "valid":
        return (0,) * len(kernel)
    if padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    return _per_axis(padding, len(kernel))


def _conv(node: fx.Node, source: Any, weight: torch.Tensor, bias: Any, stride: Any,
          padding: Any, dilation: Any, groups: int) -> LocalOp | str:  # fmt: skip
    axes = weight.dim() - 2
    if axes not in _RUN_CONV:
        return f"{node_label(node)}: a convolution over {axes} axes is not supported"
    kernel = tuple(int(k) for k in weight.shape[2:])
    dil, step = _per_axis(dilation, axes), _per_axis(stride, axes)
    pad = _conv_padding(padding, kernel, dil)
    conv = _RUN_CONV[axes]

    def apply(x: torch.Tensor) -> torch.Tensor:
        return conv(x, weight, bias, step, 0, dil, groups)

    return LocalOp("window", (source,), apply, LocalLayer(kernel, step, pad, dil))


def _pool(node: fx.Node, source: Any, kind: str, axes: int, kernel: Any, stride: Any,
          padding: Any, dilation: Any, extra: dict[str, Any]) -> LocalOp | str:  # fmt: skip
    k = _per_axis(kernel, axes)
    s = _per_axis(stride if stride not in (None, [], ()) else kernel, axes)
    p, d = _per_axis(padding, axes), _per_axis(dilation, axes)
    layer = LocalLayer(k, s, p, d)
    if kind == "max":
        if extra.get("return_indices"):
            return f"{node_label(node)}: max pooling with return_indices is not supported"
        max_pool = _RUN_MAX_POOL[axes]

        def apply_max(x: torch.Tensor) -> torch.Tensor:
            return max_pool(x, k, s, 0, d)

        return LocalOp("window", (source,), apply_max, layer, pad_value=-math.inf)
    if any(p) and not extra.get("count_include_pad", True):
        return f"{node_label(node)}: average pooling without count_include_pad is not supported"
    divisor = extra.get("divisor_override")
    if axes == 1 and divisor is not None:
        return f"{node_label(node)}: avg_pool1d with divisor_override is not supported"

    def apply_avg(x: torch.Tensor) -> torch.Tensor:
        if axes == 1:
            return F.avg_pool1d(x, k, s, 0, False, True)
        if axes == 2:
            return F.avg_pool2d(x, k, s, 0, False, True, divisor)
        return F.avg_pool3d(x, k, s, 0, False, True, divisor)

    return LocalOp("window", (source,), apply_avg, layer, floor_shape=True)


def _module_op(node: fx.Node, module: nn.Module) -> LocalOp | str:
    label, kind = node_label(node), type(module)
    source = node.args[0] if node.args else None
    if kind in _CONV_MODULES:
        if module.padding_mode != "zeros":
            return (
                f"{label}: {kind.__name__} with padding_mode={module.padding_mode!r} is not "
                "supported"
            )
        return _conv(node, source, module.weight, module.bias, module.stride, module.padding,
                     module.dilation, module.groups)  # fmt: skip
    if kind in _MAX_POOL_MODULES:
        return _pool(node, source, "max", _MAX_POOL_MODULES[kind], module.kernel_size,
                     module.stride, module.padding, module.dilation,
                     {"return_indices": module.return_indices})  # fmt: skip
    if kind in _AVG_POOL_MODULES:
        extra = {"count_include_pad": module.count_include_pad,
                 "divisor_override": getattr(module, "divisor_override", None)}  # fmt: skip
        return _pool(node, source, "avg", _AVG_POOL_MODULES[kind], module.kernel_size,
                     module.stride, module.padding, 1, extra)  # fmt: skip
    if kind in _BATCH_NORMS:
        if module.training or module.running_mean is None:
            return f"{label}: {kind.__name__} in training mode (batch statistics) is not local"
        return LocalOp("pointwise", (source,), module)
    if kind in _DROPOUT_MODULES:
        if module.training:
            return f"{label}: {kind.__name__} in training mode is random"
        return LocalOp("pointwise", (source,), lambda x: x)
    if kind in _POINTWISE_MODULES:
        return LocalOp("pointwise", (source,), module)
    if kind in (nn.Softmax, nn.LogSoftmax):
        channels, map_axes = _channel_dim(module.dim)
        if not channels:
            return f"{label}: {kind.__name__} over dim {module.dim} is not local"
        return LocalOp("pointwise", (source,), module, map_axes=map_axes)
    if kind in _PAD_MODULES:
        return _padding(node, source, module.padding, getattr(module, "value", 0.0))
    return f"{label}: {kind.__name__} is not a supported local layer"


def _padding(node: fx.Node, source: Any, pad: Any, value: Any) -> LocalOp | str:
    """Constant padding of the last len(pad) // 2 axes: (before, after) per axis, the last
    axis first (F.pad's order); the boxes move by the padding before (the padded border
    holds the constant in every sample, occluded or not)."""
    pad = tuple(int(v) for v in pad) if isinstance(pad, (tuple, list)) else (int(pad),) * 2
    if value is None:
        value = 0.0
    if not pad or len(pad) % 2 or min(pad) < 0 or not _is_number(value):
        return f"{node_label(node)}: only constant padding (no cropping) of map axes is supported"
    offset = tuple(pad[len(pad) - 2 - 2 * a] for a in range(len(pad) // 2))
    return LocalOp("pad", (source,), lambda x: x, offset=offset)


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
        channels, map_axes = _channel_dim(a.get("dim"))
        if not channels or isinstance(a.get("dtype"), fx.Node):
            return f"{label}: {_name(target)} over dim {a.get('dim')} is not local"
        rest = {key: value for key, value in a.items() if key != "input"}
        return LocalOp("pointwise", (a["input"],), lambda x: target(x, **rest), map_axes=map_axes)
    if target in _CONCATS:
        parts = a.get("tensors")
        channels, map_axes = _channel_dim(a.get("dim", 0))
        if (
            not channels
            or not isinstance(parts, (list, tuple))
            or not all(isinstance(p, fx.Node) for p in parts)
        ):
            return f"{label}: only a concatenation of maps along the channels is supported"
        return LocalOp("merge", tuple(parts), lambda *xs: torch.cat(xs, 1), map_axes=map_axes)
    if target is F.pad:
        if a.get("mode", "constant") != "constant":
            return f"{label}: {a.get('mode')} padding is not supported"
        return _padding(node, a["input"], a["pad"], a.get("value"))
    if target in _CONV_FUNCTIONS:
        weight, bias = (_attribute(root, a.get(name)) for name in ("weight", "bias"))
        if not isinstance(weight, torch.Tensor) or weight.dim() != _CONV_FUNCTIONS[target] + 2:
            return f"{label}: {_name(target)} with a computed weight is not supported"
        return _conv(node, a["input"], weight, bias, a.get("stride", 1), a.get("padding", 0),
                     a.get("dilation", 1), a.get("groups", 1))  # fmt: skip
    if target in _MAX_POOLS or target in _AVG_POOLS:
        kind = "max" if target in _MAX_POOLS else "avg"
        axes = _MAX_POOLS.get(target) or _AVG_POOLS[target]
        return _pool(node, a["input"], kind, axes, a["kernel_size"], a.get("stride"),
                     a.get("padding", 0), a.get("dilation", 1), a)  # fmt: skip
    return f"{label}: {_name(target)} is not a supported local layer"


_SOFTMAX = ("input", "dim", "_stacklevel", "dtype")
_MAX_POOL = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
             "return_indices")  # fmt: skip
_CONV = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_AVG_POOL = ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
             "divisor_override")  # fmt: skip
#: The parameters of the functions classified by their arguments, in order: fx's own
#: normalisation finds overloaded builtins ambiguous (torch.conv2d, torch.max), so the
#: arguments are bound here, for these functions only.
_PARAMETERS: dict[Any, tuple[str, ...]] = {
    torch.softmax: ("input", "dim", "dtype"), torch.log_softmax: ("input", "dim", "dtype"),
    F.softmax: _SOFTMAX, F.log_softmax: _SOFTMAX,
    **{concat: ("tensors", "dim") for concat in _CONCATS},
    F.pad: ("input", "pad", "mode", "value"),
    **{conv: _CONV for conv in _CONV_FUNCTIONS},
    **{pool: _MAX_POOL for pool in _MAX_POOLS},
    F.avg_pool1d: _AVG_POOL[:-1], torch.avg_pool1d: _AVG_POOL[:-1],
    F.avg_pool2d: _AVG_POOL, F.avg_pool3d: _AVG_POOL,
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
