"""``TorchCallable``: a plain callable over torch tensors as a PyTorch model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class TorchCallable(torch.nn.Module):
    """A callable over torch tensors as a PyTorch model: ``Occlusion(TorchCallable(fn,
    device="cuda"))`` calls ``fn(batch)`` with batches on ``device`` (default: the CPU).

    ``fn`` takes a float32 tensor of the inputs' shape and returns (B, ...) outputs; it is
    called under ``torch.inference_mode()``. ``.to(device)`` moves the wrapper as it moves
    any module. (The rule: callables are NumPy callables unless wrapped, so one callable
    never changes meaning with the type of the inputs passed to ``explain``.)
    """

    def __init__(self, fn: Callable[[torch.Tensor], Any], device: Any = "cpu") -> None:
        super().__init__()
        if not callable(fn) or isinstance(fn, type):
            raise TypeError(f"fn: {fn!r} is invalid, expected a callable over torch tensors")
        self.fn = fn
        # An empty buffer records the device: model_device() reads it, .to() moves it.
        self.register_buffer("_device_anchor", torch.empty(0, device=device), persistent=False)

    def forward(self, batch: torch.Tensor) -> Any:
        return self.fn(batch)
