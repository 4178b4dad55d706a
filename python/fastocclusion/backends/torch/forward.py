"""A backend for forward functions over several torch tensors, with per-example target
indices: what Captum-style front-ends need (engine.protocols.Backend).

One sweep occludes one of the inputs; the others are the unperturbed inputs of each slot's
example, gathered per batch. The score of a slot is an element of its example's output,
picked by a ``TargetIndex``. Batches live in host memory (the host filler) and are handed
to the function by DLPack, copied to the inputs' device when that is not the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fastocclusion.backends.torch.device import BatchView
from fastocclusion.backends.torch.operators import model_output
from fastocclusion.engine.regions import IncrementalRequest, no_scorer


@dataclass(frozen=True)
class TargetIndex:
    """Which element of each example's output is its score.

    ``last``: indices of the last axes, the same for every example (Captum's int or tuple
    target); ``per_example``: (N, depth) indices of the axes after the batch axis, one row
    per example (Captum's per-example list or tensor). Neither: the output must hold one
    value per example."""

    last: tuple[int, ...] = ()
    per_example: np.ndarray | None = None

    def select(self, outputs: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """(B,) scores of (B, ...) outputs whose example indices are ``rows``."""
        batch = outputs.shape[0]
        picked = outputs
        if self.per_example is not None:
            index = torch.as_tensor(self.per_example, device=outputs.device)[rows]
            picked = outputs[(torch.arange(batch, device=outputs.device),) + tuple(index.T)]
        if self.last:
            picked = picked[(..., *self.last)]
        if picked.numel() != batch:
            raise ValueError(
                f"target: the selected outputs have shape {tuple(picked.shape)}, expected one "
                f"value per example ({batch},): give a target that picks one output of each"
            )
        return picked.reshape(batch)


class ForwardBackend:
    """engine.protocols.Backend calling ``forward(*inputs, *extra_args)``, sweeping input
    ``swept``; scores by ``target``. The function's train/eval state and gradients are left
    alone: it runs under ``torch.inference_mode()``."""

    builtin_operator = False  # scores are computed per batch, not from stored outputs
    target_kind = "any"
    device_arrays = None

    def __init__(
        self,
        forward: Callable[..., Any],
        inputs: Sequence[torch.Tensor],
        swept: int,
        target: TargetIndex,
        extra_args: tuple[Any, ...] = (),
    ) -> None:
        self.forward = forward
        self.inputs = [tensor.detach() for tensor in inputs]
        self.swept = swept
        self.target = target
        self.extra_args = extra_args
        self.device = self.inputs[swept].device
        self.dtype = self.inputs[swept].dtype
        self._batch = BatchView(self.device, self.dtype)
        self._gathered: list[torch.Tensor | None] = []
        self._gathered_rows = 0

    def _call(self, batch: torch.Tensor, rows: torch.Tensor, gather: bool) -> torch.Tensor:
        """The function on the batch for input ``swept`` and the slots' examples of the
        others (gathered again only when the slots changed examples or their number)."""
        if gather or not self._gathered or self._gathered_rows != len(rows):
            self._gathered_rows = len(rows)
            self._gathered = [
                None if k == self.swept else torch.index_select(tensor, 0, rows.to(tensor.device))
                for k, tensor in enumerate(self.inputs)
            ]
        args = [batch if k == self.swept else self._gathered[k] for k in range(len(self.inputs))]
        view = self._batch.view
        assert view is not None
        version = None if view.is_inference() else view._version
        with torch.inference_mode():  # a no-op inside the sweep's calls()
            outputs = model_output(self.forward(*args, *self.extra_args), self.forward)
        if version is not None and view._version != version:
            raise ValueError(
                "forward_func: wrote into its input tensor in place; fastocclusion reuses the "
                "batch buffer, expected a function that leaves its inputs unchanged"
            )
        if outputs.dim() == 0 or outputs.shape[0] != batch.shape[0]:
            raise ValueError(
                f"forward_func: returned outputs of shape {tuple(outputs.shape)} for a batch of "
                f"{batch.shape[0]} examples, expected a first dimension of {batch.shape[0]}"
            )
        return outputs

    def calls(self) -> Any:
        """Inference mode, entered once around a sweep's calls."""
        return torch.inference_mode()

    def check_targets(self, targets: np.ndarray | None, n: int) -> None:
        return None  # targets are checked by the front-end, as a TargetIndex

    def static_output_shape(self, buffer: Any) -> None:
        return None

    def outputs(self, buffer: Any, rows: int) -> np.ndarray:
        raise TypeError("ForwardBackend scores batches; it keeps no raw outputs")

    def resolve_targets(self, targets: Any, outputs: Any, output_shape: Any) -> np.ndarray:
        return np.zeros((len(self.inputs[0]), 0), np.float32)  # the TargetIndex is the target

    def set_targets(self, targets: np.ndarray, batch: int) -> None:
        self._gathered = []

    def scores(self, buffer: Any, slots: np.ndarray, gather: bool, rows: int) -> np.ndarray:
        """Scores of the first ``rows`` slots (the padding is not computed)."""
        examples = torch.from_numpy(np.ascontiguousarray(slots[:rows]))
        batch = self._batch(buffer)
        outputs = self._call(batch if rows >= len(batch) else batch[:rows], examples, gather)
        scores = self.target.select(outputs, examples.to(outputs.device))
        return scores.to("cpu", torch.float64).numpy()

    def scores_from_outputs(self, outputs: Any) -> Any:
        raise TypeError("ForwardBackend has no built-in operator")

    def incremental_scorer(self, request: IncrementalRequest) -> tuple[None, str]:
        """Not available: the sweep scores forward functions, whose layers are unknown."""
        return no_scorer(
            "model: a forward function's layers are unknown (the Captum front-end)",
            request.required,
        )

    def wrap_result(self, maps: np.ndarray) -> torch.Tensor:
        self._batch.release()
        return torch.from_numpy(np.ascontiguousarray(maps, np.float32)).to(self.device)
