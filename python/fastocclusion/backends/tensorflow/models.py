"""Model adapters: one calling convention, ``adapter(batch) -> float32 tf.Tensor``, for every
model kind.

Kinds, detected in this order:

* ``"keras"``: a Keras 3 ``keras.Layer``/``keras.Model`` (also ``tf.keras``) or a ``tf_keras``
  model; called as ``model(batch, training=False)``. Traceable when the Keras backend is TensorFlow.
* ``"tflite"``: a ``tf.lite.Interpreter`` (or anything with its methods, e.g. LiteRT's); the input
  tensor is resized (once per new batch shape), then set_tensor / invoke / get_tensor(output 0).
* ``"tf_callable"``: a ``tf.function`` (PolymorphicFunction) or a ConcreteFunction. Traceable.
* ``"tf_module"``: a callable ``tf.Module`` / TensorFlow AutoTrackable (e.g. ``tf.saved_model.load``
  results). Traceable.
* ``"sklearn"``: an object with ``predict_proba`` (used) or a non-callable one with ``predict``;
  fed NumPy arrays. Not traceable.
* ``"onnx"``: an ``onnxruntime.InferenceSession`` (backends/numpy/models.py);
* ``"numpy_callable"``: any other callable. The rule: a plain Python callable is called with NumPy
  float32 arrays and its result converted; wrap it in ``tf.function`` to have it traced instead.
  In a sweep those arrays are read-only views of a reused batch buffer, or copies for a model
  that keeps or writes into them (the policy of backends/numpy/calls.py).

The last two kinds, and how their outputs are read, are the NumPy backend's
(backends/numpy/models.py), which runs them when TensorFlow is not installed.
PyTorch modules are not models here: they have a backend of their own (backends/torch).
Keras and tf_keras are looked up in ``sys.modules`` (a model of that kind cannot exist unless
its library is already imported: ``fastocclusion.frameworks.is_keras_model``).
``check_keras_input``: the input shape a Keras model declares, checked before any call.
Non-traceable adapters still work inside ``tf.function`` through ``tf.numpy_function``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from fastocclusion.backends.numpy.models import float32_outputs, numpy_model_call, single_output
from fastocclusion.frameworks import is_keras_model, looks_like_tflite

__all__ = ["ModelAdapter", "adapt_model", "check_keras_input"]

KINDS = ("keras", "tf_module", "tf_callable", "numpy_callable", "sklearn", "tflite", "onnx")


def _keras_backend_is_tensorflow(model: Any) -> bool:
    if type(model).__module__.startswith("tf_keras"):
        return True
    keras = sys.modules.get("keras")
    try:
        return keras.backend.backend() == "tensorflow"  # type: ignore[union-attr]
    except AttributeError:  # pragma: no cover - exotic keras builds
        return True


def keras_input_shape(model: Any) -> tuple[int | None, ...] | None:
    """The input shape a Keras model declares, batch axis first (``(None, 32, 32, 3)``), or
    None when it declares none (a subclassed or unbuilt model) or several inputs."""
    try:
        inputs = model.inputs
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 1:
            return None
        return tuple(None if length is None else int(length) for length in inputs[0].shape)
    except (AttributeError, TypeError, ValueError):
        return None


def keras_batch_dtype(model: Any) -> np.dtype | None:
    """The dtype a Keras model's batches are built in when its one declared input is
    float64 or float16 (its values then keep their precision: float32 batches would round
    a float64 model's inputs before Keras casts them), else None (float32 batches).

    >>> import keras
    >>> keras_batch_dtype(keras.Sequential([keras.Input((2,), dtype="float64")]))
    dtype('float64')
    """
    try:
        inputs = model.inputs
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 1:
            return None
        dtype = np.dtype(str(inputs[0].dtype))
    except (AttributeError, TypeError, ValueError):
        return None
    return dtype if dtype in (np.float64, np.float16) else None


def _keras_checks_lengths(model: Any) -> bool:
    """Whether Keras itself refuses inputs whose axes differ in length from the declared
    ones (a Functional model's input spec), not only in number (a Sequential model takes
    other image sizes)."""
    specs = getattr(model, "input_spec", None)
    spec = specs[0] if isinstance(specs, (list, tuple)) and len(specs) == 1 else specs
    return getattr(spec, "shape", None) is not None


def check_keras_input(model: Any, sample: tuple[int, ...]) -> None:
    """ValueError naming ``inputs`` when samples of shape ``sample`` do not fit the input
    shape the Keras ``model`` declares, as Keras would refuse them (no model call): a
    different number of axes, where a trailing axis of length 1 may be added or dropped
    (``Functional._adjust_input_rank``), and, where the model's input spec has them, axes
    of other lengths. Models that declare no input shape are not checked."""
    shape = keras_input_shape(model)
    if shape is None:
        return
    declared, given = shape[1:], sample
    if len(given) == len(declared) + 1 and given[-1] == 1:
        given = given[:-1]
    elif len(given) + 1 == len(declared) and declared[-1] == 1:
        given = (*given, 1)
    if len(given) == len(declared) and (
        not _keras_checks_lengths(model)
        or all(length is None or length == got for got, length in zip(given, declared))
    ):
        return
    hint = "; is the channel axis missing?" if len(sample) + 1 == len(declared) else ""
    expected = ", ".join("?" if length is None else str(length) for length in declared)
    raise ValueError(
        f"inputs: samples of shape {sample} (inputs of shape (N, {', '.join(map(str, sample))}))"
        f" do not fit the Keras model {getattr(model, 'name', '')!r}, whose input shape is "
        f"{shape}: expected inputs of shape (N, {expected}){hint}"
    )


def _is_tflite_interpreter(model: Any) -> bool:
    lite = getattr(tf, "lite", None)
    interpreter = getattr(lite, "Interpreter", None)
    if isinstance(interpreter, type) and isinstance(model, interpreter):
        return True
    return looks_like_tflite(model)


def _tf_function_types() -> tuple[type, ...]:
    experimental = tf.types.experimental
    names = ("PolymorphicFunction", "GenericFunction", "ConcreteFunction")
    return tuple(t for t in (getattr(experimental, n, None) for n in names) if isinstance(t, type))


def _to_float32_tensor(outputs: Any, model: Any) -> tf.Tensor:
    outputs = single_output(outputs, model)
    try:
        tensor = tf.convert_to_tensor(outputs)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"model {type(model).__name__} returned {type(outputs).__name__}, which is not "
            f"a tensor: {exc}"
        ) from None
    if not (tensor.dtype.is_floating or tensor.dtype.is_integer or tensor.dtype.is_bool):
        raise TypeError(
            f"model {type(model).__name__} returned {tensor.dtype.name} outputs; expected numbers"
        )
    return tf.cast(tensor, tf.float32)


def _to_float32_array(batch: Any) -> np.ndarray:
    if isinstance(batch, tf.Tensor):
        batch = batch.numpy()
    return np.asarray(batch, dtype=np.float32)


class _TFLiteRunner:
    """Calls a TFLite interpreter on NumPy batches; resizes its input once per new batch shape."""

    def __init__(self, interpreter: Any) -> None:
        self.interpreter = interpreter
        inputs = interpreter.get_input_details()
        if len(inputs) != 1:
            raise ValueError(
                f"model is a TFLite interpreter with {len(inputs)} inputs; expected exactly one "
                "input tensor"
            )
        self.input = inputs[0]
        self.shape: tuple[int, ...] | None = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        interp, index = self.interpreter, self.input["index"]
        if batch.shape != self.shape:
            interp.resize_tensor_input(index, list(batch.shape))
            interp.allocate_tensors()
            self.shape = batch.shape
        interp.set_tensor(index, self._quantize(batch, self.input))
        interp.invoke()
        output = interp.get_output_details()[0]
        return self._dequantize(interp.get_tensor(output["index"]), output)

    @staticmethod
    def _quantize(batch: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
        dtype = np.dtype(detail["dtype"])
        scale, zero = detail.get("quantization", (0.0, 0))
        if dtype.kind == "f" or not scale:
            return np.ascontiguousarray(batch, dtype=dtype)
        info = np.iinfo(dtype)
        return np.clip(np.round(batch / scale + zero), info.min, info.max).astype(dtype)

    @staticmethod
    def _dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
        scale, zero = detail.get("quantization", (0.0, 0))
        if np.dtype(values.dtype).kind != "f" and scale:
            return ((values.astype(np.float32) - zero) * scale).astype(np.float32)
        return values.astype(np.float32)


class ModelAdapter:
    """``adapter(batch) -> (B, ...) float32 tf.Tensor`` for a float32 ``tf.Tensor`` or
    ``np.ndarray`` batch (``batch_dtype``'s for a Keras model declaring a float64 or float16
    input: its batches are built in it, and reach it uncast).

    ``kind``: one of KINDS. ``traceable``: calling the model inside ``tf.function`` traces it
    (otherwise the adapter falls back to ``tf.numpy_function`` there). ``model``: the original
    object, which custom operators receive. ``output_tail``: the per-sample output shape seen by
    the last eager call of a non-traceable adapter (None before): call it once eagerly before
    tracing so that its outputs inside ``tf.function`` have a static shape.
    """

    def __init__(self, model: Any, kind: str, traceable: bool, call: Callable[[Any], Any]) -> None:
        self.model = model
        self.kind = kind
        self.traceable = traceable
        self._call = call
        self.output_tail: tuple[int, ...] | None = None
        #: The NumPy dtype the model's batches are built in (keras_batch_dtype), None:
        #: float32.
        self.batch_dtype = keras_batch_dtype(model) if kind == "keras" else None
        self._input_dtype = tf.as_dtype(self.batch_dtype or np.float32)

    def __repr__(self) -> str:
        return (
            f"ModelAdapter(kind={self.kind!r}, traceable={self.traceable}, "
            f"model={type(self.model).__name__})"
        )

    def __call__(self, batch: Any) -> tf.Tensor:
        if self.traceable:
            tensor = tf.cast(tf.convert_to_tensor(batch), self._input_dtype)
            return _to_float32_tensor(self._call(tensor), self.model)
        if isinstance(batch, tf.Tensor) and not tf.executing_eagerly():
            # Inside tf.function: run eagerly through numpy_function. Its static shape is unknown;
            # use the per-sample output shape of the last eager call when there was one.
            outputs = tf.numpy_function(
                self.numpy_outputs, [tf.cast(batch, tf.float32)], tf.float32, stateful=True
            )
            if self.output_tail is not None:
                outputs.set_shape((batch.shape[0], *self.output_tail))
            return outputs
        outputs = _to_float32_tensor(self._call(_to_float32_array(batch)), self.model)
        self.output_tail = tuple(outputs.shape[1:])
        return outputs

    def numpy_outputs(self, batch: np.ndarray) -> np.ndarray:
        """The model's float32 outputs of a NumPy batch, as NumPy (not traced)."""
        return float32_outputs(self._call(np.asarray(batch, dtype=np.float32)), self.model)


def adapt_model(model: Any) -> ModelAdapter:
    """Wrap ``model`` in a ModelAdapter (kinds and rule in the module docstring).

    Raises TypeError naming ``model`` when it is neither callable nor has predict_proba/predict.
    """
    if isinstance(model, ModelAdapter):
        return model
    if is_keras_model(model):
        return ModelAdapter(
            model,
            "keras",
            _keras_backend_is_tensorflow(model),
            lambda batch: model(batch, training=False),
        )
    if _is_tflite_interpreter(model):
        return ModelAdapter(model, "tflite", False, _TFLiteRunner(model))
    if isinstance(model, _tf_function_types()):
        return ModelAdapter(model, "tf_callable", True, model)
    if callable(model) and isinstance(model, (tf.Module, tf.__internal__.tracking.AutoTrackable)):
        return ModelAdapter(model, "tf_module", True, model)
    found = numpy_model_call(model)
    if found is not None:
        kind, call = found
        return ModelAdapter(model, kind, False, call)
    raise TypeError(
        f"model {model!r} (type {type(model).__name__}) is not a model: expected a Keras "
        "model, a tf.Module, a tf.function, a callable over NumPy arrays, an object with "
        "predict_proba, a tf.lite.Interpreter, or an onnxruntime InferenceSession"
    )
