"""A backend whose maps are of the model's outputs themselves, not of score drops
(engine.Sweep.run_values): what MONAI's occlusion sensitivity maps.

Every occluded batch goes through ``module(batch, **kwargs)`` once, in eval mode, and its
(B, classes) outputs, activated (a sigmoid, a softmax over the classes, a callable, or
nothing), are kept as float64 bookkeeping arrays. Batches live in host memory (the host
filler; handed to a CPU module by DLPack without a copy, copied to another device) or, when
the input is on a CUDA device and fastocclusion's CUDA module is usable, in device memory
filled by the CUDA kernels (the device filler), with the bookkeeping as torch tensors there.

Exact incremental inference (design §8) where ``module`` is a ``torch.nn.Module`` called
without keyword arguments on a 1-D to 3-D image on the CPU or a CUDA device: the module
is traced (in eval mode) and the sweep recomputes only what the windows change
(backends.torch.incremental); the activation runs on its outputs as on the module's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

from fastocclusion.backends.torch.device import (
    BatchView,
    TorchDeviceArrays,
    is_compiled,
    uses_gpu_sweep,
)
from fastocclusion.backends.torch.operators import model_output
from fastocclusion.engine.objective import OutputValues
from fastocclusion.engine.regions import IncrementalRequest, no_scorer
from fastocclusion.types import BatchBuffer


@contextlib.contextmanager
def training_off(module: Any) -> Iterator[None]:
    """Every submodule of ``module`` in eval mode for the duration; each submodule's own
    training flag restored afterwards (also on errors)."""
    modules = list(module.modules()) if isinstance(module, torch.nn.Module) else []
    training = [m.training for m in modules]
    try:
        for m in modules:
            m.training = False
        yield
    finally:
        for m, flag in zip(modules, training):
            m.training = flag


@contextlib.contextmanager
def eval_mode(module: Any) -> Iterator[None]:
    """``training_off(module)`` and inference mode on, for the duration."""
    with training_off(module), torch.inference_mode():
        yield


class OutputsBackend:
    """engine.protocols.Backend (not a ScoringBackend: nothing is scored) returning the
    activated outputs of ``module`` on batches cast to ``device`` and ``dtype``.
    ``activation``: None, "sigmoid", "softmax" (over dim 1) or a callable on the (B,
    classes) outputs."""

    #: The outputs themselves are mapped: no targets, no scores.
    objective = OutputValues()

    def __init__(
        self,
        module: Callable[..., Any],
        device: torch.device,
        dtype: torch.dtype,
        activation: str | Callable[[torch.Tensor], Any] | None,
        kwargs: Mapping[str, Any],
        batch_dtype: np.dtype | None = None,
    ) -> None:
        #: The NumPy dtype the front-end builds the batches in (None: float32); a call casts
        #: them to ``dtype`` where it differs.
        self.batch_dtype = None if batch_dtype == np.float32 else batch_dtype
        self.module = module
        self.device = device
        self.dtype = dtype
        self.activation = activation
        self.kwargs = dict(kwargs)
        self._on_gpu = uses_gpu_sweep("auto", device)
        self._batch = BatchView(self.device, self.dtype)
        #: A compiled module gets every call at the full batch (a new size compiles again).
        self._full_batches = isinstance(module, torch.nn.Module) and is_compiled(module)

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

    def outputs(self, buffer: BatchBuffer, rows: int | None = None) -> Any:
        """MODEL CALL: the activated (B, classes) outputs of the first ``rows`` slots (None:
        all), float64, a copy. The padding is not computed: no call holds more than MONAI's
        ``n_batch`` images, and the base pass of one image is a call of one image (a
        compiled module gets the full batch every time)."""
        return self.outputs_of(None, buffer, rows)

    def outputs_of(self, model: Any, buffer: BatchBuffer, rows: int | None) -> Any:
        """As ``outputs``, computed by ``model(batch)`` (an incremental scorer's evaluation
        of the module; None: the module) and activated, with the same checks."""
        view = self._batch(buffer)
        version = None if view.is_inference() else view._version
        full = rows is None or rows >= len(view) or (model is None and self._full_batches)
        batch = view if full else view[:rows]
        if model is None:
            raw = self.module(batch, **self.kwargs)
        else:
            raw = model(batch)
        outputs = self._activate(model_output(raw, self.module))
        if version is not None and view._version != version:
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

    def static_output_shape(self, buffer: BatchBuffer) -> None:
        return None

    def incremental_scorer(self, request: IncrementalRequest) -> tuple[Any, str]:
        """Exact incremental inference over a torch.fx trace of the module, traced in eval
        mode (as it is called) when it is a ``torch.nn.Module`` called without keyword
        arguments; else (None, why not), a ValueError naming ``incremental`` when it was
        required."""
        from fastocclusion.backends.torch.incremental import make_scorer

        if not isinstance(self.module, torch.nn.Module):
            reason = (
                f"nn_module: the layers of a {type(self.module).__name__} are unknown "
                "(expected a torch.nn.Module)"
            )
            return no_scorer(reason, request.required)
        if self.kwargs:
            reason = (
                f"kwargs: {sorted(self.kwargs)} are invalid, expected none (a trace takes "
                "the image alone)"
            )
            return no_scorer(reason, request.required)
        with training_off(self.module):  # the trace's copy keeps the eval flags
            return make_scorer(self, self.module, request)

    def wrap_result(self, maps: Any) -> torch.Tensor:
        """The maps as a float32 tensor on the device."""
        self._batch.release()
        if not isinstance(maps, torch.Tensor):
            maps = torch.from_numpy(np.ascontiguousarray(maps))
        return maps.to(device=self.device, dtype=torch.float32)
