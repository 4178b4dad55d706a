"""Models over NumPy arrays: one calling convention, ``model(batch) -> float32 ndarray``.

Kinds (also those of the TensorFlow backend's NumPy models, backends/tensorflow/models.py):

* ``"sklearn"``: an object with ``predict_proba`` (used), or a non-callable one with
  ``predict``;
* ``"numpy_callable"``: any other callable (not a class), called with float32 NumPy arrays.

A model returns one array (or a one-element tuple, list or dict of one) of numbers, one row
per sample; it may also return anything ``np.asarray`` reads (a CPU torch tensor, a list).
On the NumPy backend, what only TensorFlow runs (a Keras model, a TFLite interpreter, a
TensorFlow object) is refused with an ImportError naming the extra to install
(``fastocclusion.frameworks``).

Imports NumPy only.
"""

from __future__ import annotations

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
    if callable(getattr(model, "predict_proba", None)):
        return "sklearn", model.predict_proba
    if not callable(model) and callable(getattr(model, "predict", None)):
        return "sklearn", model.predict
    if callable(model) and not isinstance(model, type):
        return "numpy_callable", model
    return None


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
            "callable over NumPy arrays or an object with predict_proba (Keras, TensorFlow "
            "and TFLite models need TensorFlow; PyTorch models, torch)"
        )
    kind, call = found
    return NumpyModel(model, kind, call)
