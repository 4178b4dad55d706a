"""The TensorFlow backend (engine.protocols.Backend): from a filled host batch to one score
per sample (design §3, §4), for TensorFlow models and for models over NumPy arrays.

A ``TFBackend`` owns the (traced) score function of one explainer:
- traceable models (Keras, tf.Module, tf.function) with a built-in operator run inside one
  ``tf.function``; batches always have the same shape, so it is traced once per input shape;
- NumPy callables, scikit-learn objects and TFLite interpreters are called eagerly on a
  read-only NumPy view of the batch, then the built-in operator runs on their outputs. The
  buffer behind that view is refilled for the next batch: a model that keeps a reference to
  its batch (a cache, a lazy or asynchronous framework) or writes into it gets a copy of
  every batch instead, and outputs that share the batch's memory are copied (the NumPy
  backend's call policy, backends/numpy/calls.py, shared);
- custom operators are called eagerly as g(model, inputs, targets), like the reference.
Batches cross into TensorFlow by DLPack from 64-byte-aligned buffers, without a copy.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from fastocclusion import _core
from fastocclusion.backends.numpy.calls import NumpyModelCalls, checked_outputs, read_only
from fastocclusion.backends.numpy.operators import is_row_dot, row_dot
from fastocclusion.backends.tensorflow.models import adapt_model, check_keras_input
from fastocclusion.backends.tensorflow.operators import resolve_operator
from fastocclusion.engine.objective import objective_of
from fastocclusion.engine.regions import IncrementalRequest, no_scorer
from fastocclusion.types import BatchBuffer


class TFBackend:
    """Backend for Keras models, tf.Modules, TensorFlow callables, NumPy callables,
    scikit-learn style objects and TFLite interpreters (kinds: models.adapt_model)."""

    #: Batches are filled in host memory (TensorFlow places the model call itself).
    device_arrays = None

    def __init__(self, model: Any, operator: Any) -> None:
        import tensorflow as tf

        self._tf = tf
        self.adapter = adapt_model(model)
        #: float64 or float16 for a Keras model whose input is declared so (its batches are
        #: built in it), else None: float32 batches.
        self.batch_dtype = self.adapter.batch_dtype
        self.objective = objective_of(operator)
        #: The objective's scores in TensorFlow.
        self.operator = resolve_operator(self.objective)
        adapter, operator = self.adapter, self.operator
        self._targets: np.ndarray | None = None
        self._gathered: Any = None
        self._gathered_view: np.ndarray | None = None
        self._checked_shape: tuple[int, ...] | None = None
        self._concrete: dict[tuple[Any, ...], Any] = {}
        self._views: dict[int, tuple[Any, Any]] = {}
        self._score_call: Any = None
        self._outputs_call: Any = None
        self._epilogue: bool | None = None
        # The per-sample output shape seen by the last base pass, for models whose traced
        # output has an unknown rank (a tf.function over tf.numpy_function, say).
        self._output_tail: tuple[int, ...] | None = None
        # How NumPy models get their batches (read-only views, or copies for a model that
        # keeps or writes into them), kept for the backend's life.
        self._numpy_call = NumpyModelCalls()
        if adapter.traceable:
            self._outputs_fn = tf.function(lambda batch: adapter(batch))
            if operator.builtin:
                self._scores_fn = tf.function(
                    lambda batch, targets: operator.scores_from_outputs(
                        self._with_known_rank(adapter(batch)), targets
                    )
                )
            else:
                self._scores_fn = None
        else:
            self._outputs_fn = None
            self._scores_fn = None

    def _with_known_rank(self, outputs: Any) -> Any:
        """At trace time: the outputs with the shape the base pass saw when tracing alone
        cannot tell their rank (the built-in operators need it)."""
        if outputs.shape.rank is None and self._output_tail is not None:
            return self._tf.ensure_shape(outputs, (None, *self._output_tail))
        return outputs

    # -- batches in ----------------------------------------------------------------------

    def _traced(self, fn: Any, *tensors: Any) -> Any:
        """The concrete function of ``fn`` for these tensors' shapes and dtypes: traced once
        per shape, and cheaper to call than the polymorphic tf.function (no argument
        canonicalisation on every batch)."""
        key = (id(fn),) + tuple((tuple(t.shape), t.dtype) for t in tensors)
        concrete = self._concrete.get(key)
        if concrete is None:
            specs = [self._tf.TensorSpec(t.shape, t.dtype) for t in tensors]
            concrete = fn.get_concrete_function(*specs)
            self._concrete[key] = concrete
        return concrete

    @staticmethod
    def _flat_call(concrete: Any) -> Any:
        """A caller of ``concrete`` through its flat entry point, which skips the public
        call's argument binding (tens of microseconds a call, as much as a cheap model
        costs); the public call when that entry is missing or refuses the arguments
        (another TensorFlow release): checked on the first call, no extra model call."""
        flat = getattr(concrete, "_call_flat", None)
        captured = getattr(concrete, "captured_inputs", None)
        if flat is None or captured is None:
            return concrete
        works: list[bool] = []

        def call(*args: Any) -> Any:
            if works and not works[0]:
                return concrete(*args)
            try:
                result = flat(list(args), captured)
            except (TypeError, AttributeError):
                if works:  # it worked before: a real error of this call
                    raise
                works.append(False)
                return concrete(*args)
            if not works:
                works.append(True)
            return result

        return call

    def _model_input(self, buffer: BatchBuffer) -> Any:
        """The model's view of a batch buffer, made once per buffer: the read-only NumPy
        view for models over NumPy arrays (which ``_numpy_call`` calls on views of their
        own), a tensor imported by DLPack for TensorFlow. Both alias the buffer, so later
        fills show through. (TensorFlow never writes into an input it does not own alone:
        the cached tensor is itself a reference, so no op forwards its memory.) A Keras
        model's declared input shape is checked here, before its first call on the
        buffer (ValueError naming ``inputs``)."""
        view = self._views.get(id(buffer))
        if view is None or view[0] is not buffer:
            if len(self._views) >= 4:  # buffers of earlier shapes: let them go
                self._views.clear()
            if self.adapter.kind in ("numpy_callable", "sklearn", "tflite", "onnx"):
                tensor = read_only(buffer)
            else:
                if self.adapter.kind == "keras":
                    check_keras_input(self.adapter.model, tuple(buffer.shape[1:]))
                tensor = self._tf.experimental.dlpack.from_dlpack(buffer.__dlpack__())
            view = (buffer, tensor)
            self._views[id(buffer)] = view
        return view[1]

    # -- base pass -----------------------------------------------------------------------

    def static_output_shape(self, buffer: BatchBuffer) -> tuple[int | None, ...] | None:
        """The model's output shape for a full batch, from tracing alone (no model call);
        None when the model is not traceable or tracing cannot tell the rank."""
        if self._outputs_fn is None:
            return None
        concrete = self._traced(self._outputs_fn, self._model_input(buffer))
        shape = concrete.structured_outputs.shape
        return None if shape.rank is None else tuple(shape)

    def outputs(self, buffer: BatchBuffer, rows: int | None = None) -> np.ndarray:
        """The full batch's outputs (``rows`` ignored: a traced model sees one shape)."""
        if self._outputs_fn is not None:
            batch = self._model_input(buffer)
            out = self._traced(self._outputs_fn, batch)(batch)
        else:
            out = self._numpy_call(self.adapter, buffer)
        return self._checked_outputs(out, buffer.shape[0])

    def _checked_outputs(self, out: Any, rows: int) -> np.ndarray:
        """The model's outputs for ``rows`` samples as NumPy, one row per sample (else a
        ValueError naming the model); their per-sample shape is kept."""
        outputs = checked_outputs(out, rows)
        self._output_tail = tuple(outputs.shape[1:])
        return outputs

    def calls(self) -> Any:
        """Nothing to enter around a sweep's model calls."""
        return contextlib.nullcontext()

    def set_targets(self, targets: np.ndarray, batch: int) -> None:
        self._targets = np.ascontiguousarray(targets, dtype=np.float32)
        shape = (batch,) + self._targets.shape[1:]
        self._gathered = _core.HostBuffer(shape)
        self._gathered_view = np.asarray(self._gathered)
        self._gathered_tensor = self._tf.experimental.dlpack.from_dlpack(
            self._gathered.__dlpack__()
        )
        self._checked_shape = None
        self._score_call = None
        self._outputs_call = None
        # Scores in NumPy from the raw outputs (None: decided at the first call).
        self._epilogue: bool | None = None

    def scores_from_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """(N,) float64 scores of the unperturbed inputs from their outputs (no model call)."""
        assert self._targets is not None
        tf = self._tf
        scores = self.operator.scores_from_outputs(
            tf.convert_to_tensor(outputs, dtype=tf.float32), tf.convert_to_tensor(self._targets)
        )
        return np.asarray(scores.numpy(), dtype=np.float64).reshape(len(outputs))

    def incremental_scorer(self, request: IncrementalRequest) -> tuple[Any, str]:
        """Exact incremental inference over a Keras model's functional graph (incremental/):
        Keras models on TensorFlow with a built-in operator, channels-last images."""
        if self.adapter.kind != "keras" or not self.adapter.traceable:
            reason = "model: exact incremental inference runs PyTorch and Keras (TensorFlow) models"
            return no_scorer(reason, request.required)
        if not self.operator.builtin:
            return no_scorer("operator: a custom operator calls the model itself", request.required)
        if not request.channels_last:
            reason = "inputs: Keras CNNs read channels-last images (data_format='channels_last')"
            return no_scorer(reason, request.required)
        from fastocclusion.backends.tensorflow.incremental import make_scorer

        return make_scorer(self, self.adapter.model, request)

    def outputs_of(self, model: Any, buffer: BatchBuffer, rows: int) -> np.ndarray:
        """As ``outputs``, computed by ``model(batch)`` on the first ``rows`` samples (an
        incremental evaluation of the model, eager: no traced shape to keep)."""
        return self._checked_outputs(model(self._model_input(buffer)[:rows]), rows)

    def scores_of(
        self, model: Any, buffer: BatchBuffer, slots: Any, gather: bool, rows: int
    ) -> Any:
        """As ``scores``, of the first ``rows`` samples, the outputs computed by
        ``model(batch)`` (built-in operators)."""
        tf = self._tf
        self._gather_targets(slots, gather)
        outputs = model(self._model_input(buffer)[:rows])
        scores = self.operator.scores_from_outputs(
            tf.convert_to_tensor(outputs, dtype=tf.float32), self._gathered_tensor[:rows]
        )
        return self._checked_scores(scores, rows)

    def _gather_targets(self, slot_inputs: np.ndarray, gather: bool) -> None:
        """The slots' targets into the gathered buffer (kept as they are when not
        ``gather``: the slots hold the same inputs as in the previous call)."""
        assert self._targets is not None and self._gathered_view is not None
        if gather:
            np.take(self._targets, slot_inputs, axis=0, out=self._gathered_view)

    def _checked_scores(self, scores: Any, rows: int) -> np.ndarray:
        """(rows,) scores as NumPy, their shape validated on the sweep's first call."""
        if self._checked_shape is None:
            scores = self.operator.validate_scores(scores, rows)
            self._checked_shape = tuple(np.shape(scores))
        values = scores.numpy() if hasattr(scores, "numpy") else np.asarray(scores)
        return values.reshape(rows)

    def wrap_result(self, maps: np.ndarray) -> Any:
        """The maps as what ``explain`` returns: a float32 tf.Tensor."""
        return self._tf.convert_to_tensor(maps)

    def _scores_in_numpy(self, buffer: BatchBuffer, size: int) -> np.ndarray | None:
        """Classification and regression on (B, K) outputs: the model's raw outputs (its
        traced concrete function, or the NumPy model itself), then sum(outputs * targets) in
        NumPy — cheaper per call than the same two ops inside TensorFlow's executor. None
        (and never again this sweep) when the operator or the outputs are not of that kind;
        then the TensorFlow operator scores this batch's outputs."""
        if self._epilogue is None and self.operator.target_kind != "vector":
            self._epilogue = False
            return None
        if self._outputs_fn is not None:
            batch = self._model_input(buffer)
            if self._outputs_call is None:
                self._outputs_call = self._flat_call(self._traced(self._outputs_fn, batch))
            outputs = self._outputs_call(batch).numpy()
        else:
            outputs = np.asarray(self._numpy_call(self.adapter.numpy_outputs, buffer))
        targets = self._gathered_view
        if self._epilogue is None:
            self._epilogue = is_row_dot(outputs, targets)
            if not self._epilogue:  # score these outputs the general way, no second call
                tf = self._tf
                scores = self.operator.validate_scores(
                    self.operator.scores_from_outputs(
                        tf.convert_to_tensor(outputs, dtype=tf.float32), self._gathered_tensor
                    ),
                    size,
                )
                return scores.numpy().reshape(size)
        return row_dot(outputs, targets)

    # -- the sweep -----------------------------------------------------------------------

    def scores(
        self, buffer: BatchBuffer, slot_inputs: np.ndarray, gather: bool, rows: int | None = None
    ) -> np.ndarray:
        """Scores (one per slot) of a full batch (``rows`` ignored: a traced model sees one
        shape); slot j's target is the target of input slot_inputs[j]. gather=False: the
        slots hold the same inputs as in the previous call, whose gathered targets are
        reused."""
        tf = self._tf
        self._gather_targets(slot_inputs, gather)
        if self._epilogue is not False:
            scores = self._scores_in_numpy(buffer, len(slot_inputs))
            if scores is not None:
                return scores
        targets = self._gathered_tensor
        batch = self._model_input(buffer)
        if self._scores_fn is not None:
            if self._score_call is None:
                self._score_call = self._flat_call(self._traced(self._scores_fn, batch, targets))
            scores = self._score_call(batch, targets)
        elif self.operator.builtin:
            scores = self.operator.scores_from_outputs(
                tf.convert_to_tensor(self._numpy_call(self.adapter, buffer), dtype=tf.float32),
                targets,
            )
        else:
            model_batch = batch if isinstance(batch, tf.Tensor) else tf.convert_to_tensor(batch)
            scores = self.operator(self.adapter.model, model_batch, targets)
        return self._checked_scores(scores, len(slot_inputs))
