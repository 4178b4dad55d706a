"""Steps a torch.fx trace gets wrong or cannot classify, for the tests of exact
incremental inference ("exact means exact"): each keeps the map's shape (C, H, W), so it
can sit anywhere in a random CNN of incremental_models."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

#: Functions fx's argument normalisation finds ambiguous, methods fx returns as nodes, and
#: steps that are not local (they read the whole map): the incremental path must run them
#: in full, never raise.
FUNCTIONS = {
    "where": lambda x: torch.where(x > 0, x, 0.1 * x),
    "pow": lambda x: torch.pow(x, 2),
    "sqrt": lambda x: torch.sqrt(x.abs() + 0.1),
    "max": lambda x: torch.max(x, 0.5 * x),
    "min": lambda x: torch.min(x, 0.5 * x),
    "std": lambda x: x / (torch.std(x) + 1.0),
    "var_mean": lambda x: x - torch.var_mean(x)[1],
    "clamp_min": lambda x: torch.clamp_min(x, 0.0),
    "erf": torch.erf,
    "chunk_swap": lambda x: torch.cat(x.chunk(2, 1)[::-1], 1),
    "spatial_mean": lambda x: x - x.mean((2, 3), keepdim=True),
    "spatial_softmax": lambda x: torch.softmax(x.flatten(2), -1).view_as(x) * x.shape[-1],
}


class Step(nn.Module):
    """One of FUNCTIONS as a module."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x):
        return FUNCTIONS[self.kind](x)


class FunctionalConv(nn.Conv2d):
    """A Conv2d subclass calling F.conv2d itself (3x3, padding 1, channels kept)."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, channels, 3, padding=1)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=1)


class TensorBranch(nn.Module):
    """A Python branch a symbolic trace drops: fx proxies are not tensors."""

    def forward(self, x):
        if isinstance(x, torch.Tensor):
            return x * 3.0 + 0.5
        return x


class JitBranch(nn.Module):
    """The same with torch.jit.isinstance (MONAI's BasicUNet uses it)."""

    def forward(self, x):
        if torch.jit.isinstance(x, torch.Tensor):
            return x * 3.0 + 0.5
        return x


class Temperature(nn.Module):
    """x / temperature, a plain attribute, and x * scale, a buffer: both changed between
    explains by the tests (a trace made before would be stale)."""

    def __init__(self) -> None:
        super().__init__()
        self.temperature = 1.0
        self.register_buffer("scale", torch.tensor(1.0))

    def forward(self, x):
        return x / self.temperature * self.scale


class SideEffects(nn.Module):
    """Writes what it saw onto itself: an attribute, a counter and a list."""

    def __init__(self) -> None:
        super().__init__()
        self.features = None
        self.calls = 0
        self.seen: list[type] = []

    def forward(self, x):
        self.features = x
        self.calls += 1
        self.seen.append(type(x))
        return x


def hostile_step(kind: str, channels: int) -> nn.Module:
    """The named step over maps of ``channels`` channels."""
    if kind in FUNCTIONS:
        return Step(kind)
    return {
        "functional_conv": lambda: FunctionalConv(channels),
        "tensor_branch": TensorBranch,
        "jit_branch": JitBranch,
        "temperature": Temperature,
        "side_effects": SideEffects,
    }[kind]()


KINDS = (*FUNCTIONS, "functional_conv", "tensor_branch", "jit_branch", "temperature",
         "side_effects")  # fmt: skip


def change_attributes(model: nn.Module, factor: float) -> None:
    """Every Temperature's attribute and buffer changed (the buffer reassigned)."""
    for module in model.modules():
        if isinstance(module, Temperature):
            module.temperature = module.temperature * factor
            module.scale = torch.tensor(float(module.scale) / factor + 0.5)
