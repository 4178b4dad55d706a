"""The PyTorch backend (engine.protocols.Backend) for ``torch.nn.Module`` models.

Imports torch, NumPy and the compiled modules only: TensorFlow is never loaded on this path.

The model
    Any ``torch.nn.Module``, called as ``model(batch)`` under ``torch.inference_mode()`` on
    the model's device (its first parameter's, else its first buffer's, else the CPU).
    Its train/eval state is left as it is: put it in eval mode yourself (dropout, batch
    norm). Batches have the inputs' own shape (``batch_size`` samples, the last call padded)
    and are built in the model's floating dtype (float64, float16, bfloat16: batch_dtype).
    The model must not write into its input tensor in place: the batch buffer is reused,
    so that is detected (ValueError) rather than silently corrupting the next batches.

The operator
    Built-ins are computed by operators.py on the model's device, with the numerics of the
    TensorFlow built-ins; a custom operator is called as ``g(model, inputs, targets)`` with
    torch tensors on the model's device and must return one score per sample.

Where batches live (device.py): in host memory (the host filler; handed to a CPU model by
DLPack without a copy, copied to a model on another device), or, for the GPU sweep, in
CUDA memory filled by the CUDA kernels (the device filler), with the sweep's bookkeeping as
torch tensors on that device: only the maps come back.

``explain`` returns a float32 ``torch.Tensor`` on the model's device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fastocclusion.backends.torch.device import (
    BatchView,
    TorchDeviceArrays,
    is_compiled,
    model_device,
    model_dtype,
    uses_gpu_sweep,
)
from fastocclusion.backends.torch.operators import builtin_scores, model_output, scores_tensor
from fastocclusion.engine.objective import objective_of
from fastocclusion.engine.regions import IncrementalRequest, no_scorer
from fastocclusion.types import BFLOAT16_BITS, BatchBuffer

__all__ = ["TorchBackend"]

# The batch dtype of a model whose parameters are not float32: its own (bfloat16 as its bits).
_BATCH_DTYPES = {
    torch.float64: np.dtype(np.float64),
    torch.float16: np.dtype(np.float16),
    torch.bfloat16: BFLOAT16_BITS,
}


class TorchBackend:
    """engine.protocols.Backend for a ``torch.nn.Module`` (see the module docstring)."""

    def __init__(self, model: torch.nn.Module, operator: Any, device: str = "auto") -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model: {type(model).__name__} is invalid, expected a torch.nn.Module")
        self.model = model
        self.objective = objective_of(operator)
        task = self.objective.task
        self._score_fn = builtin_scores(task) if task is not None else None
        self.device = model_device(model)
        self.dtype = model_dtype(model)
        self._on_gpu = uses_gpu_sweep(device, self.device)
        # Eager modules skip the padding rows of a batch; compiled ones always get full
        # batches (one shape, no recompilation).
        self._full_batches = is_compiled(model)
        self._targets: torch.Tensor | None = None  # (N, ...) float32 on self.device
        self._gathered: torch.Tensor | None = None  # (batch, ...) targets of the batch's slots
        self._batch = BatchView(self.device, self.dtype)
        self._targets_array: np.ndarray | None = None  # CPU targets and their gathered rows
        self._gathered_array: np.ndarray | None = None
        self._output_shape: torch.Size | None = None  # of the calls checked so far

    @property
    def batch_dtype(self) -> np.dtype | None:
        """The model's own dtype where it is float64, float16 or bfloat16
        (types.BFLOAT16_BITS: NumPy holds its bits), on the host sweep and the GPU sweep
        alike: batches are built in it (the inputs keep their precision, no call casts);
        None for float32.

        >>> TorchBackend(torch.nn.Linear(2, 1).double(), None).batch_dtype
        dtype('float64')
        """
        return _BATCH_DTYPES.get(self.dtype)

    @property
    def device_arrays(self) -> TorchDeviceArrays | None:
        """The GPU sweep's arrays (on the model's CUDA device and current stream), or None
        for the host sweep. A new object per access: read it once per sweep."""
        return TorchDeviceArrays(self.device) if self._on_gpu else None

    # -- model calls ------------------------------------------------------------------------

    def _forward(self, batch: torch.Tensor, model: Any = None) -> torch.Tensor:
        """Raw model outputs of a full batch; checks one output row per sample (in full on the
        first call of a sweep, then only that a tensor of the same shape comes back).
        ``model``: what computes them, the model when None."""
        model = self.model if model is None else model
        if torch.is_inference_mode_enabled():
            outputs = model(batch)
        else:
            with torch.inference_mode():
                outputs = model(batch)
        if type(outputs) is torch.Tensor and outputs.shape == self._output_shape:
            return outputs
        outputs = model_output(outputs, self.model)
        size = batch.shape[0]
        if outputs.dim() == 0 or outputs.shape[0] != size:
            raise ValueError(
                f"model: returned outputs of shape {tuple(outputs.shape)} for a batch of {size} "
                f"inputs, expected a first dimension of {size} (one output per sample)"
            )
        self._output_shape = outputs.shape
        return outputs

    def _checked_unchanged(self, batch: torch.Tensor, version: int | None) -> None:
        if version is not None and batch._version != version:
            raise ValueError(
                "model: wrote into its input tensor in place (e.g. an inplace=True first layer "
                "or an in-place normalisation); fastocclusion reuses the batch buffer, expected "
                "a model (and operator) that leaves its input unchanged: clone it first"
            )

    def calls(self) -> Any:
        """The context of a sweep's model calls: inference mode, entered once per sweep."""
        return torch.inference_mode()

    def static_output_shape(self, buffer: BatchBuffer) -> None:
        return None  # PyTorch models are not traced: the shape comes from the base pass

    def outputs(self, buffer: BatchBuffer, rows: int) -> Any:
        """The outputs of the first ``rows`` slots: the padding is not computed (a PyTorch
        model is not traced, a shorter batch costs it nothing)."""
        return self.outputs_of(None, buffer, rows)

    def outputs_of(self, model: Any, buffer: BatchBuffer, rows: int) -> Any:
        """As ``outputs``, computed by ``model(batch)`` (an incremental scorer's evaluation
        of the model; None: the model), with the same checks and conversions."""
        view = self._batch(buffer)
        version = None if view.is_inference() else view._version
        batch = view if rows >= len(view) or self._full_batches else view[:rows]
        outputs = self._forward(batch, model)
        self._checked_unchanged(view, version)
        # A copy: outputs may alias the buffer (an identity model), which is refilled next.
        if self._on_gpu:
            return outputs.to(torch.float32, copy=True)
        return outputs.detach().to("cpu", torch.float32).numpy().copy()

    def scores(self, buffer: BatchBuffer, slots: Any, gather: bool, rows: int) -> Any:
        """Scores of the first ``rows`` slots (the padding is not computed); the slots'
        targets are gathered again only when the slots changed inputs (``gather``)."""
        return self.scores_of(None, buffer, slots, gather, rows)

    def scores_of(
        self, model: Any, buffer: BatchBuffer, slots: Any, gather: bool, rows: int
    ) -> Any:
        """As ``scores``, the outputs computed by ``model(batch)`` (an incremental scorer's
        evaluation; None: the model; built-in operators only when not None)."""
        assert self._targets is not None and self._gathered is not None
        if gather:
            self._gather(slots)
        view = self._batch(buffer)
        version = None if view.is_inference() else view._version
        if rows >= len(view) or self._full_batches:
            batch, targets = view, self._gathered
        else:
            batch, targets = view[:rows], self._gathered[:rows]
        if self._score_fn is not None:
            scores = self._score_fn(self._forward(batch, model), targets)
        else:
            custom = self.objective.custom
            assert custom is not None
            with torch.inference_mode():
                result = custom(self.model, batch, targets)
            scores = scores_tensor(result, batch.shape[0], self.objective.name, self.device)
        self._checked_unchanged(view, version)
        if self._on_gpu:
            return scores
        return scores.numpy() if scores.device.type == "cpu" else scores.cpu().numpy()

    def _gather(self, slots: Any) -> None:
        """The targets of the batch's slots into the persistent gathered-targets tensor: by
        NumPy into its shared memory for targets on the CPU (cheaper than a torch op),
        by index_select on the device otherwise."""
        if self._gathered_array is not None and not isinstance(slots, torch.Tensor):
            np.take(self._targets_array, slots, axis=0, out=self._gathered_array)
            return
        index = slots if isinstance(slots, torch.Tensor) else torch.from_numpy(slots)
        torch.index_select(self._targets, 0, index.to(self.device), out=self._gathered)

    # -- targets ----------------------------------------------------------------------------

    def set_targets(self, targets: np.ndarray, batch: int) -> None:
        array = np.array(targets, dtype=np.float32)  # a copy: never the caller's
        self._targets = torch.from_numpy(array).to(self.device)
        self._gathered = torch.empty(
            (batch,) + tuple(array.shape[1:]), dtype=torch.float32, device=self.device
        )
        on_cpu = self.device.type == "cpu"
        self._targets_array = array if on_cpu else None
        self._gathered_array = self._gathered.numpy() if on_cpu else None
        self._output_shape = None

    def scores_from_outputs(self, outputs: Any) -> Any:
        assert self._score_fn is not None and self._targets is not None
        tensor = outputs if isinstance(outputs, torch.Tensor) else torch.from_numpy(outputs)
        scores = self._score_fn(tensor.to(self.device), self._targets)
        if self._on_gpu:
            return scores.to(torch.float64)
        return scores.to("cpu", torch.float64).numpy()

    def wrap_result(self, maps: Any) -> torch.Tensor:
        """The maps as a float32 torch.Tensor on the model's device."""
        self._batch.release()  # the explain call is over
        if isinstance(maps, torch.Tensor):
            return maps.to(device=self.device, dtype=torch.float32)
        return torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)).to(self.device)

    def incremental_scorer(self, request: IncrementalRequest) -> tuple[Any, str]:
        """Exact incremental inference over a torch.fx trace of the model (incremental/)."""
        from fastocclusion.backends.torch.incremental import make_scorer

        if request.channels_last:
            reason = "inputs: PyTorch CNNs read channels-first images"
            return no_scorer(f"{reason} (data_format='channels_first')", request.required)
        if not self.objective.from_outputs:
            reason = "operator: a custom operator calls the model itself"
            return no_scorer(reason, request.required)
        return make_scorer(self, self.model, request)
