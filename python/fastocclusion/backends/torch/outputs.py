"""A backend whose maps are of the model's outputs themselves, not of score drops
(engine.Sweep.run_values): what MONAI's occlusion sensitivity maps.

Every occluded batch goes through ``module(batch, **kwargs)`` once, in eval mode, and its
(B, classes) outputs, activated (a sigmoid, a softmax over the classes, a callable, or
nothing), are kept as float64 bookkeeping arrays. Batches live in host memory (the host
filler; handed to a CPU module by DLPack without a copy, copied to another device) or, when
the input is on a CUDA device and fastocclusion's CUDA module is usable, in device memory
filled by the CUDA kernels (the device filler), with the bookkeeping as torch tensors there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

from fastocclusion.backends.torch.device import BatchView, TorchDeviceArrays, uses_gpu_sweep
from fastocclusion.backends.torch.operators import model_output
from fastocclusion.engine.regions import IncrementalRequest, no_scorer


@contextlib.contextmanager
def eval_mode(module: Any) -> Iterator[None]:
    """Every submodule of ``module`` in eval mode and inference mode on, for the duration;
    each submodule's own training flag restored afterwards (also on errors)."""
    modules = list(module.modules()) if isinstance(module, torch.nn.Module) else []
    training = [m.training for m in modules]
    try:
        for m in modules:
            m.training = False
        with torch.inference_mode():
            yield
    finally:
        for m, flag in zip(modules, training):
            m.training = flag


class OutputsBackend:
    """engine.protocols.Backend returning the activated outputs of ``module`` on batches
    cast to ``device`` and ``dtype``. ``activation``: None, "sigmoid", "softmax" (over dim 1)
    or a callable on the (B, classes) outputs."""

    builtin_operator = False  # outputs are the result; there is no operator
    target_kind = "any"

    def __init__(
        self,
        module: Callable[..., Any],
        device: torch.device,
        dtype: torch.dtype,
        activation: str | Callable[[torch.Tensor], Any] | None,
        kwargs: Mapping[str, Any],
    ) -> None:
        self.module = module
        self.device = device
        self.dtype = dtype
        self.activation = activation
        self.kwargs = dict(kwargs)
        self._on_gpu = uses_gpu_sweep("auto", device)
        self._batch = BatchView(self.device, self.dtype)

    @property
    def device_arrays(self) -> TorchDeviceArrays | None:
        """The GPU sweep's arrays, or None for the host sweep (a new object per access)."""
        return TorchDeviceArrays(self.device) if self._on_gpu else None

    def calls(self) -> Any:
        return eval_mode(self.module)

    def _activate(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.activation == "sigmoid":
            return outputs.sigmoid()
        if self.activation == "softmax":
            return outputs.softmax(1)
        if callable(self.activation):
            result = self.activation(outputs)
            if not isinstance(result, torch.Tensor):
                raise ValueError(
                    f"activate: the callable returned {type(result).__name__}, expected a tensor"
                )
            return result
        return outputs

    def outputs(self, buffer: Any, rows: int | None = None) -> Any:
        """MODEL CALL: the activated (B, classes) outputs, float64, a copy (of the full batch:
        ``rows`` ignored, so every call has MONAI's batch)."""
        batch = self._batch(buffer)
        version = None if batch.is_inference() else batch._version
        outputs = self._activate(model_output(self.module(batch, **self.kwargs), self.module))
        if version is not None and batch._version != version:
            raise ValueError(
                "nn_module: wrote into its input tensor in place; fastocclusion reuses the batch "
                "buffer, expected a module that leaves its input unchanged"
            )
        size = batch.shape[0]
        if outputs.dim() != 2 or outputs.shape[0] != size:
            raise ValueError(
                f"nn_module: (activated) outputs of shape {tuple(outputs.shape)} for a batch of "
                f"{size} images are invalid, expected ({size}, classes): a classifier"
            )
        if self._on_gpu:
            return outputs.to(torch.float64, copy=True)
        return outputs.detach().to("cpu", torch.float64).numpy().copy()

    def check_targets(self, targets: np.ndarray | None, n: int) -> None:
        return None  # no targets: every output is mapped

    def static_output_shape(self, buffer: Any) -> None:
        return None

    def resolve_targets(self, targets: Any, outputs: Any, output_shape: Any) -> np.ndarray:
        raise TypeError("OutputsBackend maps outputs; it has no targets")

    def set_targets(self, targets: np.ndarray, batch: int) -> None:
        raise TypeError("OutputsBackend maps outputs; it has no targets")

    def scores(self, buffer: Any, slots: Any, gather: bool, rows: int | None = None) -> Any:
        raise TypeError("OutputsBackend maps outputs; it has no scores")

    def scores_from_outputs(self, outputs: Any) -> Any:
        raise TypeError("OutputsBackend has no built-in operator")

    def incremental_scorer(self, request: IncrementalRequest) -> tuple[None, str]:
        """Not available: the activated-outputs sweep (MONAI's) keeps the normal sweep."""
        return no_scorer(
            "model: the activated-outputs sweep (MONAI's front-end) runs in full",
            request.required,
        )

    def wrap_result(self, maps: Any) -> torch.Tensor:
        """The maps as a float32 tensor on the device."""
        self._batch.release()
        if not isinstance(maps, torch.Tensor):
            maps = torch.from_numpy(np.ascontiguousarray(maps))
        return maps.to(device=self.device, dtype=torch.float32)
