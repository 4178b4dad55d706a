"""Backends: the model side of a sweep, one package per framework, each implementing
``fastocclusion.engine.protocols.Backend``.

- ``tensorflow``: TensorFlow and Keras models, and models over NumPy arrays;
- ``torch``: ``torch.nn.Module`` models, on the CPU or a CUDA device (the GPU sweep).

``make_backend`` picks one without importing a framework the model cannot belong to.
"""

from __future__ import annotations

import sys
from typing import Any


def is_torch_model(model: Any) -> bool:
    """True for a ``torch.nn.Module``, without importing torch (a model of that kind cannot
    exist unless torch is already imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def make_backend(model: Any, operator: Any, device: str = "auto") -> Any:
    """The backend for this model: ``torch.nn.Module`` models (wrap a plain callable over
    torch tensors in ``fastocclusion.TorchCallable``) get the PyTorch backend, which never
    imports TensorFlow; everything else the TensorFlow backend. ``device``: "auto", "cpu"
    or "gpu" (PyTorch models only); ValueError naming it otherwise."""
    if is_torch_model(model):
        from fastocclusion.backends.torch import TorchBackend

        return TorchBackend(model, operator, device)
    if device == "gpu":
        raise ValueError(
            "device: 'gpu' is invalid for this model, expected 'auto' or 'cpu': the GPU path "
            "runs PyTorch models (TensorFlow models run where TensorFlow places them)"
        )
    from fastocclusion.backends.tensorflow import TFBackend

    return TFBackend(model, operator)
