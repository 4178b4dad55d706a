"""A backend for forward functions over several torch tensors, with per-example target
indices: what Captum-style front-ends need (engine.protocols.Backend).

One sweep occludes one of the inputs; the others are the unperturbed inputs of each slot's
example, gathered per batch, and so are the extra arguments that are tensors with a first
dimension of N (per-example arguments: what Captum repeats along the batch). The score of
a slot is an element of its example's output, picked by a ``TargetIndex``. Batches live
in host memory (the host filler) and are handed to the function by DLPack, copied to the
inputs' device when that is not the CPU.

Exact incremental inference (design §8) where the function is a ``torch.nn.Module`` called
on one input tensor of (N, C, *axes) maps and nothing else, on the CPU or a CUDA device:
the module is traced and the sweep recomputes only what the windows change
(backends.torch.incremental).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from fastocclusion.backends.torch.device import BatchView
from fastocclusion.backends.torch.operators import model_output
from fastocclusion.engine.regions import IncrementalRequest, no_scorer
from fastocclusion.types import BatchBuffer


class AggregateOutputError(ValueError):
    """The function returned one value (a 0-d tensor) for a whole batch: Captum's aggregate
    mode, which a front-end may run otherwise (a ValueError naming ``forward_func``)."""


@dataclass(frozen=True)
class TargetIndex:
    """Which element of each example's output is its score: Captum's target forms as an
    objective (engine.protocols.Objective), whose targets are the indices themselves (the
    sweep's targets are (N, 0): nothing to gather beside them).

    ``last``: indices of the last axes, the same for every example (Captum's int or tuple
    target); ``per_example``: (N, depth) indices of the axes after the batch axis, one row
    per example (Captum's per-example list or tensor). Neither: the output must hold one
    value per example. ``error``: the ValueError type raised, naming ``target``, when the
    indices do not fit the outputs (a front-end's own type)."""

    last: tuple[int, ...] = ()
    per_example: np.ndarray | None = None
    error: type[ValueError] = ValueError
    #: True when the function sees nothing of an example but the swept batch (one input):
    #: its scores are picks of the raw outputs (set by ForwardBackend).
    from_outputs: bool = True
    target_kind = "any"

    def check_targets(self, targets: Any, n: int) -> None:
        """Nothing: the front-end checked the indices when it made them."""

    def resolve_targets(self, targets: Any, outputs: Any, output_shape: Any) -> np.ndarray:
        """(N, 0) targets: the indices are the target (``targets`` as given, (N, 0))."""
        return np.asarray(targets, dtype=np.float32)

    def select(self, outputs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """(B,) scores of (B, ...) outputs whose example indices are ``rows``."""
        batch = outputs.shape[0]
        picked = outputs
        try:
            if self.per_example is not None:
                index = torch.as_tensor(self.per_example, device=outputs.device)[rows]
                picked = outputs[(torch.arange(batch, device=outputs.device),) + tuple(index.T)]
            if self.last:
                picked = picked[(..., *self.last)]
        except IndexError as error:
            raise self.error(
                f"target: does not index outputs of shape {tuple(outputs.shape)} ({error})"
            ) from None
        if picked.numel() != batch:
            raise self.error(
                f"target: the selected outputs have shape {tuple(picked.shape)}, expected one "
                f"value per example ({batch},): give a target that picks one output of each"
            )
        return picked.reshape(batch)


def _scalar_as_tensor(result: Any) -> Any:
    """A Python number a function returned as a 0-d tensor (as Captum reads one: float64 or
    int64); anything else as it is."""
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        return torch.tensor(result, dtype=torch.float64 if isinstance(result, float) else None)
    return result


def _rows_of(tensor: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The rows ``rows`` of ``tensor`` (along its first axis), on its device."""
    return torch.index_select(tensor, 0, rows.to(tensor.device))


class ForwardBackend:
    """engine.protocols.Backend calling ``forward(*inputs, *extra_args)``, sweeping input
    ``swept``; scores by ``target``. The function's train/eval state and gradients are left
    alone: it runs under ``torch.inference_mode()``.

    With one input the batch is all the function sees of its examples, so their scores
    are read from its raw outputs (``objective.from_outputs``: the base pass keeps the outputs,
    and an incremental scorer can stand in for the function); with several, the other
    inputs are gathered per slot, and every score comes from a call of the function.
    """

    device_arrays = None
    #: The Captum front-end builds the batches in their own dtype (``swept_dtype``).
    batch_dtype = None

    def __init__(
        self,
        forward: Callable[..., Any],
        inputs: Sequence[torch.Tensor],
        swept: int,
        target: TargetIndex,
        extra_args: tuple[Any, ...] = (),
        *,
        swept_dtype: torch.dtype | None = None,
    ) -> None:
        self.forward = forward
        self.inputs = [tensor.detach() for tensor in inputs]
        self.swept = swept
        #: One input: scores are the TargetIndex's picks of the raw outputs.
        self.objective = self.target = replace(target, from_outputs=len(self.inputs) == 1)
        self.extra_args = extra_args
        n = len(self.inputs[0])
        #: Which extra arguments are per example (tensors of first dimension N): gathered.
        self._per_example = [
            isinstance(arg, torch.Tensor) and arg.dim() > 0 and arg.shape[0] == n
            for arg in extra_args
        ]
        self.device = self.inputs[swept].device
        #: The swept batches' dtype: the input's, or what Captum's arithmetic with the
        #: baseline promotes it to (``swept_dtype``).
        self.dtype = self.inputs[swept].dtype if swept_dtype is None else swept_dtype
        # One example's shape as the function takes it: the sweep's samples have at least
        # one axis, so a 0-d feature per example (an (N,) input) is swept as (N, 1).
        self._example_shape = tuple(self.inputs[swept].shape[1:])
        self._batch = BatchView(self.device, self.dtype)
        self._gathered: list[torch.Tensor | None] = []
        self._gathered_extra: list[Any] = []
        self._gathered_rows = 0

    def _call(
        self, batch: torch.Tensor, rows: torch.Tensor, gather: bool, model: Any = None
    ) -> torch.Tensor:
        """The function on the batch for input ``swept`` and the slots' examples of the
        others and of the per-example extra arguments (gathered again only when the slots
        changed examples or their number). ``model``: what stands in for the function (an
        incremental scorer's evaluation of it; None: the function)."""
        if gather or not self._gathered or self._gathered_rows != len(rows):
            self._gathered_rows = len(rows)
            self._gathered = [
                None if k == self.swept else _rows_of(tensor, rows)
                for k, tensor in enumerate(self.inputs)
            ]
            self._gathered_extra = [
                _rows_of(arg, rows) if per_example else arg
                for arg, per_example in zip(self.extra_args, self._per_example)
            ]
        if batch.shape[1:] != self._example_shape:  # 0-d features: (B, 1) -> (B,)
            batch = batch.reshape((batch.shape[0], *self._example_shape))
        args = [batch if k == self.swept else self._gathered[k] for k in range(len(self.inputs))]
        view = self._batch.view
        assert view is not None
        version = None if view.is_inference() else view._version
        with torch.inference_mode():  # a no-op inside the sweep's calls()
            call = self.forward if model is None else model
            outputs = model_output(_scalar_as_tensor(call(*args, *self._gathered_extra)),
                                   self.forward)  # fmt: skip
        if version is not None and view._version != version:
            raise ValueError(
                "forward_func: wrote into its input tensor in place; fastocclusion reuses the "
                "batch buffer, expected a function that leaves its inputs unchanged"
            )
        if outputs.dim() == 0 or outputs.shape[0] != batch.shape[0]:
            raise (AggregateOutputError if outputs.dim() == 0 else ValueError)(
                f"forward_func: returned outputs of shape {tuple(outputs.shape)} for a batch of "
                f"{batch.shape[0]} examples, expected a first dimension of {batch.shape[0]}"
            )
        return outputs

    def calls(self) -> Any:
        """Inference mode, entered once around a sweep's calls."""
        return torch.inference_mode()

    def static_output_shape(self, buffer: BatchBuffer) -> None:
        return None

    def outputs(self, buffer: BatchBuffer, rows: int) -> np.ndarray:
        """MODEL CALL: the raw outputs of the first ``rows`` slots (one input only: see the
        class docstring), a NumPy copy in the function's output dtype."""
        return self.outputs_of(None, buffer, rows)

    def outputs_of(self, model: Any, buffer: BatchBuffer, rows: int) -> np.ndarray:
        """As ``outputs``, computed by ``model(batch)`` (an incremental scorer's evaluation
        of the function; None: the function), with the same checks."""
        if not self.objective.from_outputs:
            raise TypeError("ForwardBackend keeps raw outputs of a single input only")
        batch = self._batch(buffer)
        examples = torch.arange(rows)  # one input: nothing is gathered by example
        outputs = self._call(batch if rows >= len(batch) else batch[:rows], examples, True, model)
        # A copy: outputs may alias the buffer (an identity function), refilled next.
        return outputs.detach().to("cpu").numpy().copy()

    def set_targets(self, targets: np.ndarray, batch: int) -> None:
        self._gathered = []

    def scores(self, buffer: BatchBuffer, slots: np.ndarray, gather: bool, rows: int) -> np.ndarray:
        """Scores of the first ``rows`` slots (the padding is not computed)."""
        return self.scores_of(None, buffer, slots, gather, rows)

    def scores_of(
        self, model: Any, buffer: BatchBuffer, slots: np.ndarray, gather: bool, rows: int
    ) -> np.ndarray:
        """As ``scores``, the outputs computed by ``model(batch)`` (an incremental scorer's
        evaluation of the function; None: the function)."""
        examples = torch.from_numpy(np.ascontiguousarray(slots[:rows]))
        batch = self._batch(buffer)
        batch = batch if rows >= len(batch) else batch[:rows]
        outputs = self._call(batch, examples, gather, model)
        scores = self.target.select(outputs, examples.to(outputs.device))
        return scores.to("cpu", torch.float64).numpy()

    def scores_from_outputs(self, outputs: Any) -> np.ndarray:
        """The (N,) float64 scores of the unperturbed inputs from their raw outputs (one
        input only)."""
        if not self.objective.from_outputs:
            raise TypeError("ForwardBackend reads scores from the outputs of a single input only")
        tensor = torch.from_numpy(np.asarray(outputs))
        scores = self.target.select(tensor, torch.arange(len(tensor)))
        return scores.to(torch.float64).numpy()

    def incremental_scorer(self, request: IncrementalRequest) -> tuple[Any, str]:
        """Exact incremental inference over a torch.fx trace of the function when it is a
        ``torch.nn.Module`` called on the swept input alone; else (None, why not), a
        ValueError naming ``incremental`` when it was required."""
        from fastocclusion.backends.torch.incremental import make_scorer

        reason = None
        if not isinstance(self.forward, torch.nn.Module):
            reason = (
                f"forward_func: the layers of a {type(self.forward).__name__} are unknown "
                "(expected the torch.nn.Module itself)"
            )
        elif len(self.inputs) != 1:
            reason = (
                f"inputs: {len(self.inputs)} input tensors are invalid, expected one (the "
                "module's only argument)"
            )
        elif self.extra_args:
            reason = (
                f"additional_forward_args: {len(self.extra_args)} extra arguments are "
                "invalid, expected none (the module's input is its only argument)"
            )
        if reason is not None:
            return no_scorer(reason, request.required)
        return make_scorer(self, self.forward, request)

    def wrap_result(self, maps: np.ndarray) -> torch.Tensor:
        self._batch.release()
        return torch.from_numpy(np.ascontiguousarray(maps, np.float32)).to(self.device)
