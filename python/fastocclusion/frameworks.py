"""Which optional framework a value needs, and the one-line error when it is not installed.

TensorFlow is an optional extra (``pip install 'fastocclusion[tensorflow]'``). Without it,
NumPy models run on the NumPy backend (backends/numpy) and PyTorch models on the PyTorch
one; what only TensorFlow can run (a Keras model, a TFLite interpreter, a ``tf.data``
dataset, Xplique's mask helpers, the demo's CNN) fails before any model call with an
``ImportError`` that names the extra:

    model: a Keras model needs TensorFlow: pip install 'fastocclusion[tensorflow]'

Nothing here imports a framework: Keras is looked up in ``sys.modules`` (a Keras model
cannot exist unless Keras is imported), TensorFlow with ``importlib.util.find_spec``.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

__all__ = [
    "TENSORFLOW_EXTRA",
    "import_tensorflow",
    "installed",
    "is_keras_model",
    "looks_like_tflite",
    "missing_tensorflow",
    "tensorflow_installed",
    "tensorflow_need",
]

#: What to run to get TensorFlow with fastocclusion.
TENSORFLOW_EXTRA = "pip install 'fastocclusion[tensorflow]'"

#: The top-level modules whose objects only TensorFlow can run.
TENSORFLOW_MODULES = ("tensorflow", "keras", "tf_keras")

#: The methods of a TFLite interpreter (``tf.lite.Interpreter``, LiteRT's, tflite_runtime's).
TFLITE_METHODS = (
    "get_input_details",
    "get_output_details",
    "set_tensor",
    "invoke",
    "get_tensor",
    "allocate_tensors",
)


def installed(name: str) -> bool:
    """Whether the top-level module ``name`` can be imported (found on the path, or already
    imported), without importing it. A module that cannot be found (``sys.modules[name] =
    None``, a finder that refuses it, a broken one) counts as not installed.

    >>> installed("numpy"), installed("no_such_module_here")
    (True, False)
    """
    module = sys.modules.get(name, False)
    if module is not False:
        return module is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported, without importing it (see ``installed``).

    >>> isinstance(tensorflow_installed(), bool)
    True
    """
    return installed("tensorflow")


def missing_tensorflow(what: str) -> ImportError:
    """The error for ``what`` (the argument or feature, and what it is), which needs
    TensorFlow when it is not installed.

    >>> str(missing_tensorflow("model: a Keras model"))
    "model: a Keras model needs TensorFlow: pip install 'fastocclusion[tensorflow]'"
    """
    return ImportError(f"{what} needs TensorFlow: {TENSORFLOW_EXTRA}", name="tensorflow")


def import_tensorflow(what: str) -> ModuleType:
    """The ``tensorflow`` module, imported; ``missing_tensorflow(what)`` when it is not
    installed.

    >>> tf = import_tensorflow("Occlusion._get_masks")  # doctest: +SKIP
    """
    if not tensorflow_installed():
        raise missing_tensorflow(what)
    import tensorflow

    return tensorflow


def is_keras_model(model: Any) -> bool:
    """True for a Keras 3 (or tf.keras) layer or model, or a tf_keras one, without importing
    Keras.

    >>> is_keras_model(lambda x: x)
    False
    """
    for name in ("keras", "tf_keras"):
        module = sys.modules.get(name)
        layer = getattr(getattr(module, "layers", None), "Layer", None) if module else None
        if isinstance(layer, type) and isinstance(model, layer):
            return True
    return False


def looks_like_tflite(model: Any) -> bool:
    """True for an object with a TFLite interpreter's methods (``TFLITE_METHODS``).

    >>> looks_like_tflite(object())
    False
    """
    return all(callable(getattr(model, name, None)) for name in TFLITE_METHODS)


def tensorflow_need(value: Any) -> str | None:
    """What ``value`` is when only TensorFlow can run or read it ("a Keras model", "a TFLite
    interpreter", or an object of a TensorFlow or Keras type such as a ``tf.data`` dataset:
    "a tensorflow object (DatasetV2)"), else None.

    >>> tensorflow_need(lambda x: x) is None
    True
    """
    if is_keras_model(value):
        return "a Keras model"
    if looks_like_tflite(value):
        return "a TFLite interpreter"
    for cls in type(value).__mro__:
        root = cls.__module__.split(".")[0]
        if root in TENSORFLOW_MODULES:
            return f"a {root} object ({cls.__qualname__})"
    return None
