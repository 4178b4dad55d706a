"""How a model over NumPy arrays is called on the batches of a sweep (design §6): the one
policy of the NumPy backend and of the TensorFlow backend's NumPy models (plain callables,
scikit-learn style objects, TFLite interpreters).

A sweep refills one batch buffer in place between model calls. A NumPy model therefore gets
a read-only view of it that it cannot make writable again, and what it gets next follows
what it did with its batches (``NumpyModelCalls``): a model that keeps a reference to its
batch (a cache, a lazy or asynchronous framework) gets a fresh copy of every batch, one
that writes into its batch gets a writable copy (with a RuntimeWarning), and outputs that
share memory with the batch are copied. ``checked_outputs``: one output row per sample, or
a ValueError naming the model.

Imports NumPy only.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from fastocclusion.types import BatchBuffer

__all__ = ["NumpyModelCalls", "checked_outputs", "owned", "read_only"]


def read_only(array: Any) -> np.ndarray:
    """A read-only NumPy view of ``array`` (a NumPy array or a batch buffer) that the model
    cannot make writable again (its base is a read-only memoryview).

    >>> view = read_only(np.zeros(3, dtype=np.float32))
    >>> view.flags.writeable
    False
    """
    return np.asarray(memoryview(array).toreadonly())


def owned(outputs: Any, batch: np.ndarray) -> Any:
    """A NumPy model's outputs, copied when they share memory with its ``batch`` (a view of
    a buffer that the next batch rewrites).

    >>> batch = np.ones((2, 3), dtype=np.float32)
    >>> np.shares_memory(owned(batch[:, :1], batch), batch)
    False
    """
    values = outputs.numpy() if hasattr(outputs, "numpy") else outputs
    if isinstance(values, np.ndarray) and np.may_share_memory(values, batch):
        return np.array(values)
    return outputs


def checked_outputs(
    outputs: Any, rows: int, sample_shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """The model's outputs for a batch of ``rows`` samples as NumPy (tensors through their
    ``numpy()``), one row per sample, and, when ``sample_shape`` is given, of that shape per
    sample; else a ValueError naming the model.

    >>> checked_outputs(np.zeros((4, 2)), 4).shape
    (4, 2)
    """
    array = np.asarray(outputs.numpy() if hasattr(outputs, "numpy") else outputs)
    if array.ndim == 0 or array.shape[0] != rows:
        raise ValueError(
            f"model: returned outputs of shape {array.shape} for a batch of {rows} "
            f"inputs, expected a first dimension of {rows} (one output per sample)"
        )
    if sample_shape is not None and array.shape[1:] != sample_shape:
        raise ValueError(
            f"model: returned outputs of shape {array.shape} for a batch of {rows} inputs, "
            f"expected {(rows, *sample_shape)} (the shape of its outputs on the unoccluded "
            "inputs)"
        )
    return array


class NumpyModelCalls:
    """Calls a NumPy model on the batches of one buffer: ``calls(model, buffer)`` is
    ``model(batch)``, ``batch`` the batch in ``buffer``, read-only and not made writable
    again by the model. The buffer is refilled in place for the next batch, so what the
    model gets follows what it does with its batches (``mode``, kept for the backend's
    life):

    * "probe", the first call: a copy; then, unless the model kept it, "view";
    * "view": a view of the buffer, no copy, made for each call: after the call, when
      nothing but the model refers to it (a weak reference), the model did not keep it;
    * "copy": a model that still refers to its batch after the call returns (a cache, a
      lazy or asynchronous framework) gets a fresh copy of every batch, which later
      batches never rewrite: its maps are those of a model that does not keep its
      batches. A model that keeps its batch only from a later call on sees that one
      batch rewritten (a RuntimeWarning says so);
    * "writable": a model that writes into its batch fails on the read-only one: the
      failed call is repeated on a writable copy, and it gets one for every batch from
      then on (as the reference gives it), with a RuntimeWarning.

    Outputs that share memory with the batch are copied (``owned``).

    >>> calls = NumpyModelCalls()
    >>> calls(lambda batch: batch.sum(axis=1), np.ones((2, 3), dtype=np.float32))
    array([3., 3.], dtype=float32)
    >>> calls.mode
    'view'
    """

    def __init__(self) -> None:
        #: "probe", "view", "copy" or "writable" (see the class docstring).
        self.mode = "probe"

    def __call__(self, call: Callable[[np.ndarray], Any], buffer: BatchBuffer) -> Any:
        mode = self.mode
        if mode == "writable":
            return call(np.array(buffer))
        batch = read_only(buffer if mode == "view" else np.array(buffer))
        try:
            if mode == "copy":  # a fresh copy, never rewritten: no output to copy
                return call(batch)
            seen = weakref.ref(batch)
            outputs = owned(call(batch), batch)
        except ValueError as error:
            if "read-only" not in str(error):
                raise
            return self._writable_call(call, batch)
        del batch
        if seen() is not None:
            self.mode = "copy"
            if mode == "view":
                warnings.warn(
                    "model: keeps a reference to its input array after the call returns; "
                    "fastocclusion now gives it a copy of every batch, but the batch it kept "
                    "from this call is rewritten by the next ones (a model that keeps its "
                    "inputs from its first call on is given copies from the start)",
                    RuntimeWarning,
                    stacklevel=4,
                )
        elif mode == "probe":
            self.mode = "view"
        return outputs

    def _writable_call(self, call: Callable[[np.ndarray], Any], batch: np.ndarray) -> Any:
        """``call`` repeated on a writable copy of ``batch`` (the model failed writing into
        it), and on one for every later batch."""
        result = call(np.array(batch))  # an error here is the model's own: it propagates
        self.mode = "writable"
        warnings.warn(
            "model: writes into its input array in place; fastocclusion now gives it a copy "
            "of every batch (correct maps, one more copy per call); copy the input inside "
            "the model, or avoid in-place operations on it, to skip that copy",
            RuntimeWarning,
            stacklevel=5,
        )
        return result
