"""The NumPy backend (engine.protocols.Backend): models over NumPy arrays without any
framework (design §3, §4, §6).

The model
    A plain callable over NumPy arrays or a scikit-learn style object (models.py), called
    on every batch of the sweep (``batch_size`` samples, the last call padded) through the
    NumPy call policy (calls.py): a read-only view of the batch buffer, copies for a model
    that keeps or writes into its batches, outputs that share the batch's memory copied.

The operator
    Built-ins are computed in NumPy (operators.py) with the TensorFlow built-ins' numerics;
    a custom operator is called as ``g(model, inputs, targets)`` with the original model, a
    NumPy batch (under the same call policy) and read-only NumPy targets, and must return
    one score per sample.

``explain`` returns a float32 NumPy array. ``backends.make_backend`` gives NumPy models
this backend when TensorFlow is not installed (with TensorFlow, the TensorFlow backend runs
them and returns tf.Tensors, as Xplique does). Imports NumPy only.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from fastocclusion.backends.numpy.calls import NumpyModelCalls, checked_outputs, read_only
from fastocclusion.backends.numpy.models import adapt_numpy_model
from fastocclusion.backends.numpy.operators import builtin_scores, checked_scores
from fastocclusion.engine.objective import objective_of
from fastocclusion.engine.regions import IncrementalRequest, no_scorer
from fastocclusion.types import BatchBuffer

__all__ = ["NumpyBackend"]


class NumpyBackend:
    """engine.protocols.Backend for a model over NumPy arrays (see the module docstring).

    >>> from fastocclusion.backends.numpy import NumpyBackend
    >>> backend = NumpyBackend(lambda batch: batch.reshape(len(batch), -1), "regression")
    >>> backend.model.kind, backend.objective.target_kind
    ('numpy_callable', 'vector')
    """

    #: Batches are filled in host memory.
    device_arrays = None
    #: float32 batches.
    batch_dtype = None

    def __init__(self, model: Any, operator: Any) -> None:
        self.model = adapt_numpy_model(model)
        self.objective = objective_of(operator)
        task = self.objective.task
        self._score_fn = builtin_scores(task) if task is not None else None
        self._calls = NumpyModelCalls()
        self._targets: np.ndarray | None = None  # (N, ...) float32
        self._gathered: np.ndarray | None = None  # (batch, ...) targets of the batch's slots
        self._sample_shape: tuple[int, ...] | None = None  # of the outputs seen first

    # -- model calls ------------------------------------------------------------------------

    def _outputs(self, buffer: BatchBuffer) -> np.ndarray:
        """The model's float32 outputs of the full batch in ``buffer``, one row per sample,
        of the per-sample shape of the first outputs of the sweep (ValueError naming the
        model otherwise)."""
        outputs = checked_outputs(
            self._calls(self.model, buffer), buffer.shape[0], self._sample_shape
        )
        self._sample_shape = outputs.shape[1:]
        return outputs

    def calls(self) -> Any:
        """Nothing to enter around a sweep's model calls; a new sweep learns the shape of the
        model's outputs from its first call."""
        self._sample_shape = None
        return contextlib.nullcontext()

    def static_output_shape(self, buffer: BatchBuffer) -> None:
        return None  # not traced: the shape comes from the base pass

    def outputs(self, buffer: BatchBuffer, rows: int | None = None) -> np.ndarray:
        """The full batch's outputs (``rows`` ignored: every call has ``batch_size``
        samples, as on the TensorFlow backend)."""
        return self._outputs(buffer)

    def scores(
        self, buffer: BatchBuffer, slots: np.ndarray, gather: bool, rows: int | None = None
    ) -> np.ndarray:
        """(batch,) float32 scores of the full batch (``rows`` ignored); slot j is scored
        against the target of input ``slots[j]``, gathered again only when the slots changed
        inputs (``gather``)."""
        assert self._targets is not None and self._gathered is not None
        if gather:
            np.take(self._targets, slots, axis=0, out=self._gathered)
        if self._score_fn is not None:
            return self._score_fn(self._outputs(buffer), self._gathered)
        targets, custom = read_only(self._gathered), self.objective.custom
        assert custom is not None
        result = self._calls(lambda batch: custom(self.model.model, batch, targets), buffer)
        return checked_scores(result, buffer.shape[0], self.objective.name)

    # -- targets ----------------------------------------------------------------------------

    def set_targets(self, targets: np.ndarray, batch: int) -> None:
        self._targets = np.array(targets, dtype=np.float32)  # a copy: never the caller's
        self._gathered = np.empty((batch,) + self._targets.shape[1:], dtype=np.float32)

    def scores_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """(N,) float64 scores of the unperturbed inputs from their outputs (no model call)."""
        assert self._score_fn is not None and self._targets is not None
        return self._score_fn(outputs, self._targets).astype(np.float64).reshape(len(outputs))

    def wrap_result(self, maps: np.ndarray) -> np.ndarray:
        """The maps as what ``explain`` returns: a float32 NumPy array."""
        return np.ascontiguousarray(maps, dtype=np.float32)

    def incremental_scorer(self, request: IncrementalRequest) -> tuple[Any, str]:
        """None: exact incremental inference needs a model's layer graph."""
        reason = "model: exact incremental inference runs PyTorch and Keras (TensorFlow) models"
        return no_scorer(reason, request.required)
