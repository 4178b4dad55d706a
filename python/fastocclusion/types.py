"""Named types of fastocclusion's public signatures and interfaces.

The engine and the front-ends never import a framework at module level, so what crosses
them (a model, a framework's tensor, a batch buffer) cannot be spelled as a framework's
class there: each is named here by its role, with what it may be at run time. The names are
aliases, documentation for readers and type checkers alike; imports nothing but NumPy.

>>> from fastocclusion.types import Model, Operator
>>> def explain_with(model: Model, operator: Operator = None) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from fastocclusion.engine.objective import ClassIndices

__all__ = [
    "BFLOAT16_BITS",
    "ArrayLike",
    "BatchBuffer",
    "Bookkeeping",
    "DeviceArray",
    "FrameworkTensor",
    "Model",
    "ModelOutputs",
    "Operator",
    "Scores",
    "Targets",
    "WindowGrid",
]

#: A framework's tensor: a ``tf.Tensor`` or a ``torch.Tensor`` (on any device).
FrameworkTensor: TypeAlias = Any
#: Values a user passes as data: a NumPy array, a framework tensor, or nested sequences of
#: numbers (read by ``fastocclusion.arrays.to_numpy``).
ArrayLike: TypeAlias = "np.ndarray | FrameworkTensor | Any"
#: A model: a Keras model, ``tf.Module`` or TensorFlow callable, a ``torch.nn.Module``, a
#: callable over NumPy arrays, an object with ``predict_proba``, a ``tf.lite.Interpreter``.
Model: TypeAlias = Any
#: What a model returns for a batch, before the backend converts it (a framework tensor, a
#: NumPy array, a tuple or dict holding one).
ModelOutputs: TypeAlias = Any
#: An operator: None (classification), a ``Tasks`` member or its name, or a callable
#: ``g(model, inputs, targets)`` returning one score per sample.
Operator: TypeAlias = "None | str | Any | Callable[[Any, Any, Any], Any]"
#: Targets as a user passes them: None (the top class), an array-like, one row per input, or
#: ``fastocclusion.ClassIndices`` (one class index per input).
Targets: TypeAlias = "ArrayLike | ClassIndices | None"
#: A batch buffer that a filler refills in place, (batch,) + one input's shape, float32: a
#: ``_core.HostBuffer`` in host memory or a ``_cuda.DeviceBuffer`` on a CUDA device.
BatchBuffer: TypeAlias = Any
#: An array on a CUDA device that the device filler's bookkeeping uses (a torch tensor).
DeviceArray: TypeAlias = Any
#: The sweep's bookkeeping arrays (slot and window tables, scores, deltas, maps): NumPy
#: arrays beside a host filler, device arrays beside a device filler.
Bookkeeping: TypeAlias = "np.ndarray | DeviceArray"
#: One score per sample, float (NumPy on the host, a device array on a GPU).
Scores: TypeAlias = "np.ndarray | DeviceArray"
#: A compiled grid of windows (``fastocclusion._core.WindowGrid``).
WindowGrid: TypeAlias = Any

#: The host dtype of bfloat16 batches (a bfloat16 PyTorch model): NumPy has no bfloat16, so
#: their values are held as their bits in int16 (which every PyTorch imports by DLPack); the
#: kernels copy values by their width and PyTorch views the batches back as bfloat16
#: (``inputs.bfloat16_bits`` makes them).
BFLOAT16_BITS = np.dtype(np.int16)
