"""Exact incremental inference for a PyTorch model on a CUDA device: the kept maps, the
gathered windows and the spliced maps stay on the model's device, and the gathers and
splices are fastocclusion._cuda's kernels, enqueued on PyTorch's current stream of that
device (the model's kernels use it too, so everything is ordered, with no host wait).

``TorchDeviceOps`` is ``TorchOps`` with device tensors as the runner's arrays;
``CudaWindowKernels`` the kernels over them (engine.window_kernels.WindowKernels). The CUDA
splice writes every element of each slot (no state: a memory-bound copy on a GPU), where
the host splice rewrites only the boxes that change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fastocclusion.backends.torch.incremental.graph import TorchOps
from fastocclusion.engine.fillers import load_cuda_module
from fastocclusion.engine.regions import AUTO_MIN_CALL_MACS_UNMEASURED

__all__ = ["CudaWindowKernels", "TorchDeviceOps", "device_kernels"]


class CudaWindowKernels:
    """engine.window_kernels.WindowKernels on torch tensors of a CUDA device, by
    fastocclusion._cuda (``cuda``) on ``stream``.

    >>> kernels = CudaWindowKernels(cuda, torch.cuda.current_stream())  # doctest: +SKIP
    >>> out = kernels.gather(maps, index, origins, (5, 5), None, None, 0.0)  # doctest: +SKIP
    """

    def __init__(self, cuda: Any, stream: Any) -> None:
        self.cuda = cuda
        self.stream = stream

    def gather(
        self,
        maps: torch.Tensor,
        map_index: np.ndarray,
        origins: np.ndarray,
        size: tuple[int, ...],
        patches: torch.Tensor | None,
        patch_origins: np.ndarray | None,
        pad_value: float,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if out is None:
            out = torch.empty(
                (len(map_index), maps.shape[1], *size), dtype=maps.dtype, device=maps.device
            )
        self.cuda.gather_windows(
            maps, map_index, origins, size, out, patches, patch_origins,
            pad_value=pad_value, stream=self.stream,
        )  # fmt: skip
        return out

    def splice(
        self,
        maps: torch.Tensor,
        map_index: np.ndarray,
        patches: torch.Tensor,
        origins: np.ndarray,
        out: torch.Tensor,
        state: Any,
    ) -> None:
        self.cuda.splice_windows(maps, map_index, patches, origins, out, stream=self.stream)

    def splice_state(self) -> None:
        return None  # every slot is written in full


class TorchDeviceOps(TorchOps):
    """TorchOps whose arrays are the tensors themselves, on the model's device, and whose
    kernels are ``kernels`` (CudaWindowKernels). "auto" measures rather than trusts a floor
    (the CPU's floors say nothing of a GPU's costs)."""

    auto_min_call_macs = AUTO_MIN_CALL_MACS_UNMEASURED

    def __init__(self, traced: Any, of: Any, kernels: Any) -> None:
        super().__init__(traced, of)
        self.kernels = kernels

    def array(self, tensor: Any) -> Any:
        return tensor.contiguous()

    def tensor(self, array: Any) -> Any:
        return array

    def buffer(self, shape: tuple[int, ...], like: Any) -> tuple[Any, Any]:
        tensor = torch.empty(shape, dtype=like.dtype, device=like.device)
        return tensor, tensor

    def synchronize(self) -> None:
        """Waits for the kernels' stream (which the model's kernels use too)."""
        stream = self.kernels.stream
        if stream is not None:
            stream.synchronize()


def device_kernels(device: torch.device) -> CudaWindowKernels | str:
    """The kernels of a model's device that is not the CPU (a CUDA device, on PyTorch's
    current stream of it), or why there are none."""
    cuda = load_cuda_module()
    if cuda is None:
        return "device: fastocclusion was built without its CUDA module (fastocclusion._cuda)"
    if not cuda.is_available():
        return "device: fastocclusion._cuda finds no usable CUDA device"
    stream = torch.cuda.current_stream(device) if device.type == "cuda" else None
    return CudaWindowKernels(cuda, stream)
