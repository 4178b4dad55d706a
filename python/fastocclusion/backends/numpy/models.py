"""Models over NumPy arrays: one calling convention, ``model(batch) -> float32 ndarray``.

Kinds (also those of the TensorFlow backend's NumPy models, backends/tensorflow/models.py):

* ``"sklearn"``: an object with ``predict_proba`` (used), or a non-callable one with
  ``predict``;
* ``"onnx"``: an ``onnxruntime.InferenceSession`` (a deployed model, no framework): its one
  input fed the batch in the input's declared element type (float32, float64 or float16),
  its first output read; a fixed batch dimension is honoured by calls of that size (the last
  one padded);
* ``"numpy_callable"``: any other callable (not a class), called with float32 NumPy arrays.

A model returns one array (or a one-element tuple, list or dict of one) of numbers, one row
per sample; it may also return anything ``np.asarray`` reads (a CPU torch tensor, a list).
On the NumPy backend, what only TensorFlow runs (a Keras model, a TFLite interpreter, a
TensorFlow object) is refused with an ImportError naming the extra to install
(``fastocclusion.frameworks``).

Imports NumPy only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from fastocclusion.frameworks import missing_tensorflow, tensorflow_need

__all__ = [
    "NumpyModel",
    "adapt_numpy_model",
    "float32_outputs",
    "numpy_model_call",
    "single_output",
]


def numpy_model_call(model: Any) -> tuple[str, Callable[[Any], Any]] | None:
    """(kind, what to call with a batch) for a model over NumPy arrays, None for anything
    else (see the module docstring for the kinds).

    >>> numpy_model_call(abs)[0]
    'numpy_callable'
    """
    if is_onnx_session(model):
        return "onnx", OnnxSessionCall(model)
    if callable(getattr(model, "predict_proba", None)):
        return "sklearn", model.predict_proba
    if not callable(model) and callable(getattr(model, "predict", None)):
        return "sklearn", model.predict
    if callable(model) and not isinstance(model, type):
        return "numpy_callable", model
    return None


def is_onnx_session(model: Any) -> bool:
    """True for an ``onnxruntime.InferenceSession`` (without importing onnxruntime: such an
    object cannot exist unless it is imported).

    >>> is_onnx_session(abs)
    False
    """
    onnxruntime = sys.modules.get("onnxruntime")
    return onnxruntime is not None and isinstance(model, onnxruntime.InferenceSession)


#: The ONNX element types a session's input may declare, as NumPy dtypes.
_ONNX_INPUT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}


class OnnxSessionCall:
    """``session.run`` on a batch: (B, ...) outputs of the session's first output. TypeError
    naming the model for a session with several inputs or an input that is not floats."""

    def __init__(self, session: Any) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1:
            names = [i.name for i in inputs]
            raise TypeError(
                f"model: an onnxruntime session with {len(inputs)} inputs {names} is invalid, "
                "expected one input (the batch)"
            )
        declared = inputs[0]
        if declared.type not in _ONNX_INPUT_TYPES:
            raise TypeError(
                f"model: the onnxruntime session's input {declared.name!r} of type "
                f"{declared.type} is invalid, expected {sorted(_ONNX_INPUT_TYPES)}"
            )
        self.session = session
        self.name = declared.name
        self.dtype = _ONNX_INPUT_TYPES[declared.type]
        batch = declared.shape[0] if declared.shape else None
        #: The session's fixed batch size, or None when it takes any.
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        self.output = session.get_outputs()[0].name

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output], {self.name: batch})[0]

    def __call__(self, batch: Any) -> np.ndarray:
        array = np.asarray(batch, dtype=self.dtype)
        size = self.fixed_batch
        if size is None or len(array) == size:
            return self._run(array)
        chunks = []
        for start in range(0, len(array), size):
            chunk = array[start : start + size]
            rows = len(chunk)
            if rows < size:  # the last call padded with copies of its last row
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - rows, axis=0)])
            chunks.append(self._run(chunk)[:rows])
        return np.concatenate(chunks)


def single_output(outputs: Any, model: Any) -> Any:
    """The model's one output: ``outputs`` itself, or the only value of a one-element dict,
    tuple or list. TypeError naming the model for several tensors.

    >>> single_output([np.zeros(2)], abs).shape
    (2,)
    """
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            raise TypeError(
                f"model returned a dict with {len(outputs)} outputs ({sorted(map(str, outputs))}); "
                f"expected a single tensor"
            )
        return next(iter(outputs.values()))
    if isinstance(outputs, (list, tuple)) and not isinstance(outputs, np.ndarray):
        if len(outputs) == 1:
            return outputs[0]
        if len(outputs) > 1 and all(hasattr(o, "shape") for o in outputs):
            raise TypeError(
                f"model {type(model).__name__} returned {len(outputs)} outputs; "
                "expected a single tensor"
            )
    return outputs


def float32_outputs(outputs: Any, model: Any) -> np.ndarray:
    """A model's result as a float32 NumPy array (no copy when it already is one); a
    TypeError naming the model for several outputs or anything but numbers.

    >>> float32_outputs((np.arange(3),), abs).dtype
    dtype('float32')
    """
    values = single_output(outputs, model)
    try:
        array = np.asarray(values)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"model {type(model).__name__} returned {type(values).__name__}, which is not "
            f"a tensor: {exc}"
        ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"model {type(model).__name__} returned {array.dtype} outputs; expected numbers"
        )
    return array.astype(np.float32, copy=False)


class NumpyModel:
    """``model(batch) -> (B, ...) float32 ndarray`` for a float32 NumPy batch.

    ``kind``: "sklearn" or "numpy_callable"; ``model``: the original object, which custom
    operators receive.

    >>> model = adapt_numpy_model(lambda batch: batch * 2)
    >>> model.kind, model(np.ones((1, 2), dtype=np.float32)).tolist()
    ('numpy_callable', [[2.0, 2.0]])
    """

    def __init__(self, model: Any, kind: str, call: Callable[[Any], Any]) -> None:
        self.model = model
        self.kind = kind
        self._call = call

    def __repr__(self) -> str:
        return f"NumpyModel(kind={self.kind!r}, model={type(self.model).__name__})"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return float32_outputs(self._call(batch), self.model)


def adapt_numpy_model(model: Any) -> NumpyModel:
    """``model`` as a NumpyModel. ImportError naming the TensorFlow extra for what only
    TensorFlow runs; TypeError naming ``model`` for anything that is not a model.

    >>> adapt_numpy_model(abs).kind
    'numpy_callable'
    """
    need = tensorflow_need(model)
    if need is not None:
        raise missing_tensorflow(f"model: {need}")
    found = numpy_model_call(model)
    if found is None:
        raise TypeError(
            f"model {model!r} (type {type(model).__name__}) is not a model: expected a "
            "callable over NumPy arrays, an object with predict_proba or an onnxruntime "
            "InferenceSession (Keras, TensorFlow "
            "and TFLite models need TensorFlow; PyTorch models, torch)"
        )
    kind, call = found
    return NumpyModel(model, kind, call)
