"""Where a PyTorch model runs, and the device arrays of the GPU sweep.

``device`` option: "auto" runs the GPU sweep when the model lives on a CUDA device and
fastocclusion's CUDA module is usable, else the host sweep; "gpu" the GPU sweep or a
ValueError saying why not; "cpu" the host sweep (a model on a CUDA device is then fed a
copy of each host batch; it is never moved).
"""

from __future__ import annotations

import numpy as np
import torch

from fastocclusion.engine.fillers import load_cuda_module
from fastocclusion.types import BatchBuffer


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's batches go to: its first parameter's, else its first buffer's,
    else the CPU."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The floating dtype of the model's first floating parameter (float32 when none)."""
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def is_compiled(model: torch.nn.Module) -> bool:
    """True for a model that specialises on input shapes: torch.compile's OptimizedModule,
    TorchScript (scripted or traced), or a module holding one. Such a model always gets
    full batches (a new batch size would compile it again)."""
    compiled = (torch.jit.ScriptModule,)
    optimized = getattr(getattr(torch, "_dynamo", None), "eval_frame", None)
    optimized_type = getattr(optimized, "OptimizedModule", None)
    if isinstance(optimized_type, type):
        compiled = compiled + (optimized_type,)
    return any(isinstance(module, compiled) for module in model.modules())


def uses_gpu_sweep(device: str, where: torch.device) -> bool:
    """Whether the ``device`` option and the model's device give the GPU sweep; ValueError
    for "gpu" when it cannot run, saying why."""
    if device == "cpu":
        return False
    if device == "auto":
        if where.type != "cuda":
            return False
        cuda = load_cuda_module()
        return cuda is not None and cuda.is_available()
    reason = None
    if not torch.cuda.is_available():
        reason = "PyTorch sees no CUDA device (torch.cuda.is_available() is False)"
    else:
        cuda = load_cuda_module()
        if cuda is None:
            reason = "fastocclusion was built without its CUDA module (fastocclusion._cuda)"
        elif not cuda.is_available():
            reason = "fastocclusion._cuda finds no usable CUDA device"
        elif where.type != "cuda":
            reason = f"the model is on {where}; move it to a CUDA device first (model.to('cuda'))"
    if reason is not None:
        raise ValueError(f"device: 'gpu' is invalid here, expected 'auto' or 'cpu': {reason}")
    return True


def host_bits(tensor: torch.Tensor) -> np.ndarray:
    """A C-contiguous NumPy array holding ``tensor``'s values bit for bit, on the host:
    bfloat16, which NumPy lacks, as its bits in int16 (types.BFLOAT16_BITS; the kernels
    copy values by their width, and BatchView views such a batch back as bfloat16).

    >>> host_bits(torch.ones(2, dtype=torch.bfloat16)).tolist()
    [16256, 16256]
    """
    tensor = tensor.detach().to("cpu").contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy()
    return tensor.numpy()


_TORCH_DTYPES = {
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.int64): torch.int64,
}


class TorchDeviceArrays:
    """engine.protocols.DeviceArrays with torch tensors on one CUDA device. Everything is
    enqueued on PyTorch's current stream of that device (taken when the sweep starts),
    which the model's kernels use too, so fills, model calls and score ops are ordered."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.device_index = (
            device.index if device.index is not None else torch.cuda.current_device()
        )
        self.stream = torch.cuda.current_stream(device)

    def asarray(self, values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, device=self.device)

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
        return torch.empty(shape, dtype=_TORCH_DTYPES[np.dtype(dtype)], device=self.device)

    def concatenate(self, arrays: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(arrays)

    def view(self, buffer: BatchBuffer) -> torch.Tensor:
        # A normal tensor even when explain runs under inference mode: the sweep writes
        # through it, and the batch's version counter detects in-place model writes.
        with torch.inference_mode(False):
            return torch.from_dlpack(buffer)


class BatchView:
    """The sweep's batch buffer as a tensor on the model's device, in the model's dtype: a
    zero-copy DLPack view, made once per buffer (the sweep reuses one buffer per explain
    call), and a copy per call only where the buffer lives elsewhere or holds another dtype.
    The view is a normal tensor even under inference mode: its version counter tells when a
    model wrote into its input."""

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.dtype = dtype
        self._buffer: BatchBuffer = None
        self.view: torch.Tensor | None = None  # the last buffer's view (None when released)
        self._convert = False

    def __call__(self, buffer: BatchBuffer) -> torch.Tensor:
        if self.view is None or self._buffer is not buffer:
            with torch.inference_mode(False):
                self.view = torch.from_dlpack(buffer)
                if self.dtype == torch.bfloat16 and self.view.dtype == torch.int16:
                    self.view = self.view.view(torch.bfloat16)  # NumPy holds its bits
            self._buffer = buffer
            self._convert = self.view.device != self.device or self.view.dtype != self.dtype
        if self._convert:
            return self.view.to(device=self.device, dtype=self.dtype)
        return self.view

    def release(self) -> None:
        """Drops the buffer (the explain call is over)."""
        self._buffer = self.view = None
