"""Which Keras layers are local, and how each runs on the stacked boxes of a batch (design
§8), channels last. The kinds are engine.incremental_plan.LocalOp's:

* window: Conv2D (groups 1), DepthwiseConv2D, SeparableConv2D, MaxPooling2D, and
  AveragePooling2D with "valid" padding: run with "valid" padding on windows that carry the
  halo ("same" padding: TensorFlow's, from the input's length; -inf for max pooling);
* pointwise: BatchNormalization in inference, activations (Activation, ReLU, LeakyReLU,
  ELU, PReLU with its alpha shared over the rows and columns, Softmax over the channels),
  Rescaling by numbers or per-channel values, Identity, and the dropout and noise layers
  (identities in inference);
* merge: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate over the channels;
* pad: ZeroPadding2D.

Layers are matched by exact class: a subclass may compute something else. Activations
(the ``activation`` of an Activation layer or a convolution) are matched by identity:
``ELEMENTWISE`` holds the functions of ``keras.activations`` and ``keras.ops``, and their
``tf.nn``/``tf.math`` equivalents, that compute each position of a channels-last map from
that position alone (elementwise, or over the last axis: softmax, log_softmax, glu,
sparsemax); any other callable may read other positions (a spatial mean, say), so its layer
is not local.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from fastocclusion.engine.incremental_plan import LocalOp
from fastocclusion.engine.regions import LocalLayer

__all__ = ["classify", "inference_call"]

_POINTWISE = (layers.ReLU, layers.LeakyReLU, layers.ELU, layers.Identity)
# Activation functions computing each position from that position alone (their default
# axis, where they take one, is the last: the channels); see the module docstring.
_ACTIVATION_NAMES = (
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu",
    "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish",
    "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus",
    "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh",
    "tanh_shrink", "threshold",
)  # fmt: skip
_TF_NAMES = {
    tf.nn: ("elu", "gelu", "leaky_relu", "log_softmax", "relu", "relu6", "selu", "sigmoid",
            "silu", "softmax", "softplus", "softsign", "swish", "tanh"),
    tf.math: ("exp", "log_sigmoid", "sigmoid", "softplus", "tanh"),
}  # fmt: skip
ELEMENTWISE = tuple(
    function
    for module, names in (
        (keras.activations, _ACTIVATION_NAMES), (keras.ops, _ACTIVATION_NAMES),
        *_TF_NAMES.items(),
    )
    for function in (getattr(module, name, None) for name in names)
    if callable(function)
)  # fmt: skip
_ELEMENTWISE_IDS = frozenset(map(id, ELEMENTWISE))
_INFERENCE_IDENTITY = (
    layers.Dropout, layers.SpatialDropout2D, layers.GaussianNoise, layers.GaussianDropout,
    layers.AlphaDropout,
)  # fmt: skip
_MERGES = (
    layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum,
    layers.Minimum,
)  # fmt: skip


def _pair(value: Any) -> tuple[int, int]:
    return (
        (int(value[0]), int(value[-1])) if isinstance(value, (tuple, list)) else (int(value),) * 2
    )


def _not_elementwise(layer: Any) -> str | None:
    """Why the layer's ``activation`` may read other positions of its map (None when it is
    one of ELEMENTWISE, an exact ReLU, LeakyReLU, ELU or Identity layer, or absent)."""
    function = getattr(layer, "activation", None)
    if function is None or id(function) in _ELEMENTWISE_IDS or type(function) in _POINTWISE:
        return None
    name = getattr(function, "__name__", type(function).__name__)
    return (
        f"{layer.name}: activation {name!r} is not a known elementwise function (only the "
        "functions of keras.activations and their tf.nn equivalents are local)"
    )


def _per_channel(shape: Any) -> bool:
    """Whether values of this shape, broadcast against (rows, columns, channels) maps, are
    the same at every position (one per channel, or one)."""
    return all(int(length) == 1 for length in tuple(shape)[-3:-1])


def _pointwise_weights(layer: Any) -> str | None:
    """Why a PReLU or Rescaling layer's weights differ between the positions of its map
    (the boxes' positions are not the map's), or None."""
    if type(layer) is layers.PReLU:
        weights = {"alpha": tuple(layer.alpha.shape)}
        hint = " (shared_axes=[1, 2] shares it)"
    else:
        weights = {"scale": np.shape(layer.scale), "offset": np.shape(layer.offset)}
        hint = ""
    for what, shape in weights.items():
        if not _per_channel(shape):
            return (
                f"{layer.name}: {type(layer).__name__} with {what} of shape {shape} differs "
                f"between positions, so it is not local{hint}"
            )
    return None


def inference_call(layer: Any) -> Callable[..., Any]:
    """The layer's computation in inference on eager tensors: its ``call`` (Keras 3's
    ``__call__`` adds ~0.1-0.3 ms of bookkeeping per layer and call, as much as a small
    layer's arithmetic), with ``training=False`` where it takes it; ``__call__`` for nested
    models and layers that compute in another dtype (their inputs need its casts)."""
    plain = (
        isinstance(layer, layers.Layer)
        and not isinstance(layer, keras.Model)
        and getattr(layer, "compute_dtype", None) == "float32"
        and hasattr(layer, "_call_has_training_arg")
    )
    if not plain:  # keras.ops operations in a functional graph take no training argument
        if "training" not in getattr(layer, "_call_context_args", ()):
            return layer
        return lambda *args, **kwargs: layer(*args, training=False, **kwargs)
    if layer._call_has_training_arg:
        return lambda *args, **kwargs: layer.call(*args, training=False, **kwargs)
    return layer.call


def _finish(layer: Any, outputs: Any) -> Any:
    """A convolution layer's bias and activation, as its call adds them."""
    if layer.use_bias:
        outputs = tf.nn.bias_add(outputs, layer.bias)
    return layer.activation(outputs) if layer.activation is not None else outputs


def _conv(layer: Any, source: Any) -> LocalOp | str:
    """TensorFlow's own convolutions (keras.ops builds a tf.function per convolution call
    on CPU, ~0.8 ms), with Keras's where TensorFlow lacks stride and dilation together."""
    kind = type(layer)
    k = _pair(layer.kernel_size)
    strides, dilation = _pair(layer.strides), _pair(layer.dilation_rate)
    if kind is layers.Conv2D and layer.groups != 1:
        return f"{layer.name}: Conv2D with groups={layer.groups} is not supported"
    reason = _not_elementwise(layer)
    if reason is not None:
        return reason
    both = max(strides) > 1 and max(dilation) > 1
    steps = (1, *strides, 1)

    def apply(x: Any) -> Any:
        if kind is layers.Conv2D:
            out = tf.nn.convolution(x, layer.kernel, strides, "VALID", dilations=dilation)
        elif both and kind is layers.DepthwiseConv2D:
            out = ops.depthwise_conv(x, layer.kernel, strides, "valid", "channels_last", dilation)
        elif both:
            out = ops.separable_conv(
                x, layer.depthwise_kernel, layer.pointwise_kernel, strides, "valid",
                "channels_last", dilation,
            )  # fmt: skip
        elif kind is layers.DepthwiseConv2D:
            out = tf.nn.depthwise_conv2d(x, layer.kernel, steps, "VALID", dilations=dilation)
        else:
            out = tf.nn.separable_conv2d(
                x, layer.depthwise_kernel, layer.pointwise_kernel, steps, "VALID",
                dilations=dilation,
            )  # fmt: skip
        return _finish(layer, out)

    same = layer.padding == "same"
    return LocalOp("window", (source,), apply, LocalLayer(k, strides, (0, 0), dilation),
                   same_padding=same)  # fmt: skip


def _pool(layer: Any, source: Any) -> LocalOp | str:
    size, strides = _pair(layer.pool_size), _pair(layer.strides or layer.pool_size)
    same = layer.padding == "same"
    geometry = LocalLayer(size, strides, (0, 0), (1, 1))
    if type(layer) is layers.MaxPooling2D:

        def apply_max(x: Any) -> Any:
            return tf.nn.max_pool2d(x, size, strides, "VALID")

        return LocalOp("window", (source,), apply_max, geometry, -math.inf, same_padding=same)
    if same:  # TensorFlow divides by the positions inside the input
        return f"{layer.name}: AveragePooling2D with 'same' padding is not supported"

    def apply_average(x: Any) -> Any:
        return tf.nn.avg_pool2d(x, size, strides, "VALID")

    return LocalOp("window", (source,), apply_average, geometry)


def _called(layer: Any) -> Callable[..., Any]:
    """The layer called in inference on boxes (one tensor, or a list for merges)."""
    call = inference_call(layer)
    return lambda *xs: call(xs[0] if len(xs) == 1 else list(xs))


def classify(layer: Any, inputs: tuple[Any, ...], call_kwargs: dict[str, Any]) -> LocalOp | str:
    """The LocalOp of a Keras layer called on ``inputs`` (the nodes of its input tensors,
    in order), or why it is not local."""
    kind, name = type(layer), layer.name
    if call_kwargs:
        return f"{name}: called with {sorted(call_kwargs)} (not supported)"
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return f"{name}: channels-first Keras layers are not supported"
    if kind in (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D):
        return _conv(layer, inputs[0])
    if kind in (layers.MaxPooling2D, layers.AveragePooling2D):
        return _pool(layer, inputs[0])
    if kind is layers.BatchNormalization:
        if layer.axis not in (-1, 3):
            return f"{name}: BatchNormalization over axis {layer.axis} is not local"
        return LocalOp("pointwise", inputs[:1], _called(layer))
    if kind is layers.Softmax:
        if layer.axis not in (-1, 3):
            return f"{name}: Softmax over axis {layer.axis} is not local"
        return LocalOp("pointwise", inputs[:1], _called(layer))
    if kind in (layers.Activation, layers.PReLU, layers.Rescaling):
        reason = _not_elementwise(layer) if kind is layers.Activation else _pointwise_weights(layer)
        if reason is not None:
            return reason
        return LocalOp("pointwise", inputs[:1], _called(layer))
    if kind in _POINTWISE:
        return LocalOp("pointwise", inputs[:1], _called(layer))
    if kind in _INFERENCE_IDENTITY:
        return LocalOp("pointwise", inputs[:1], lambda x: x)
    if kind in _MERGES:
        return LocalOp("merge", inputs, _called(layer))
    if kind is layers.Concatenate:
        if layer.axis not in (-1, 3):
            return f"{name}: Concatenate over axis {layer.axis} is not supported"
        return LocalOp("merge", inputs, _called(layer))
    if kind is layers.ZeroPadding2D:
        (top, _), (left, _) = layer.padding
        return LocalOp("pad", inputs[:1], lambda x: x, offset=(int(top), int(left)))
    if isinstance(layer, keras.Model):
        return f"{name}: a nested model is not supported (call its layers in the model)"
    return f"{name}: {kind.__name__} is not a supported local layer"


def macs_per_output(layer: Any) -> int:
    """Multiply-adds per output element of a Conv2D, DepthwiseConv2D or Dense layer."""
    kind = type(layer)
    if kind is layers.Conv2D:
        shape = tuple(layer.kernel.shape)
        return int(shape[0] * shape[1] * shape[2])
    if kind is layers.DepthwiseConv2D:
        shape = tuple(layer.kernel.shape)
        return int(shape[0] * shape[1])
    if kind is layers.Dense:
        return int(layer.kernel.shape[0])
    return 0
