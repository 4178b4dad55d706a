"""Backends: the model side of a sweep, one package per framework, each implementing
``fastocclusion.engine.protocols.Backend``.

- ``tensorflow``: TensorFlow and Keras models, TFLite interpreters, and, when TensorFlow is
  installed, models over NumPy arrays (``explain`` returns tf.Tensors, as Xplique does);
- ``numpy``: models over NumPy arrays (plain callables, scikit-learn style objects) when
  TensorFlow is not installed (``explain`` returns NumPy arrays); it imports no framework;
- ``torch``: ``torch.nn.Module`` models, on the CPU or a CUDA device (the GPU sweep).

``make_backend`` picks one without importing a framework the model cannot belong to.
"""

from __future__ import annotations

import sys
from typing import Any

from fastocclusion.frameworks import tensorflow_installed


def is_torch_model(model: Any) -> bool:
    """True for a ``torch.nn.Module``, without importing torch (a model of that kind cannot
    exist unless torch is already imported).

    >>> is_torch_model(lambda x: x)
    False
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def make_backend(model: Any, operator: Any, device: str = "auto") -> Any:
    """The backend for this model:

    1. ``torch.nn.Module`` models (wrap a plain callable over torch tensors in
       ``fastocclusion.TorchCallable``): the PyTorch backend, which never imports
       TensorFlow;
    2. everything else, when TensorFlow is installed: the TensorFlow backend (NumPy models
       included: their maps are tf.Tensors, Xplique's contract);
    3. without TensorFlow: the NumPy backend, for plain callables over NumPy arrays and
       scikit-learn style objects (maps as NumPy arrays); what only TensorFlow runs (a
       Keras model, a TFLite interpreter) is an ImportError naming the extra to install.

    ``device``: "auto", "cpu" or "gpu" (PyTorch models only); ValueError naming it otherwise.

    >>> type(make_backend(lambda batch: batch, None)).__name__  # doctest: +SKIP
    'TFBackend'
    """
    if is_torch_model(model):
        from fastocclusion.backends.torch import TorchBackend

        return TorchBackend(model, operator, device)
    if device == "gpu":
        raise ValueError(
            "device: 'gpu' is invalid for this model, expected 'auto' or 'cpu': the GPU path "
            "runs PyTorch models (TensorFlow models run where TensorFlow places them)"
        )
    if tensorflow_installed():
        from fastocclusion.backends.tensorflow import TFBackend

        return TFBackend(model, operator)
    from fastocclusion.backends.numpy import NumpyBackend

    return NumpyBackend(model, operator)
