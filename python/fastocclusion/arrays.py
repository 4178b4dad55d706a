"""Turning what users pass (NumPy arrays, tf.Tensor, torch tensors, nested lists) into NumPy
arrays, naming the argument when that cannot be done (design §6). Imports no framework."""

from __future__ import annotations

from typing import Any

import numpy as np


def _torch_to_numpy(value: Any) -> np.ndarray:
    """A torch tensor on any device, with or without grad, as a NumPy array (a copy unless
    it is a plain CPU tensor)."""
    tensor = value.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if tensor.is_conj():
        tensor = tensor.resolve_conj()
    return tensor.numpy()


def to_numpy(value: Any, name: str, error: type[Exception] = TypeError) -> np.ndarray:
    """``value`` as a NumPy array of numbers (bool, integers or floats), without a copy when
    it already is one. Raises ``error`` naming ``name`` for anything else."""
    if not isinstance(value, np.ndarray):
        module = type(value).__module__
        try:
            if module.startswith("torch"):
                value = _torch_to_numpy(value)
            elif hasattr(value, "numpy") and callable(value.numpy):  # tf.Tensor and kin
                value = value.numpy()
        except (TypeError, ValueError, RuntimeError) as failure:
            raise error(
                f"{name}: a {type(value).__name__} could not be read as an array ({failure})"
            ) from None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as failure:
        raise error(f"{name}: could not be read as a numeric array ({failure})") from None
    if array.dtype.kind not in "biuf":
        raise error(
            f"{name}: dtype {array.dtype} is invalid, expected an array of numbers "
            "(bool, integer or floating point)"
        )
    return array
