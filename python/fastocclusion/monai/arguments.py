"""MONAI's arguments as MONAI reads them, checked before any model call (ValueError naming
the argument): values per spatial axis (``ensure_tuple_rep``) and the image ``x``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["check_image", "per_axis"]


def per_axis(value: Any, axes: int, name: str, check: Callable[[Any], bool], what: str) -> tuple:
    """MONAI's ensure_tuple_rep: one value for every spatial axis, or one per axis."""
    values = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if values is None:
        values = (value,) * axes
    if len(values) != axes or not all(check(v) for v in values):
        raise ValueError(
            f"{name}: {value!r} is invalid for {axes} spatial axes, expected {what} or a "
            f"sequence of {axes} of them"
        )
    return values


def check_image(x: Any) -> np.ndarray:
    """x as a C-contiguous float32 (1, C, *spatial) array; ValueError naming x otherwise."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x: {type(x).__name__} is invalid, expected a torch.Tensor")
    if not x.is_floating_point() or x.dim() < 3 or x.dim() > 5 or x.numel() == 0:
        raise ValueError(
            f"x: a {x.dtype} tensor of shape {tuple(x.shape)} is invalid, expected floats of "
            "shape (1, C, *spatial) with 1 to 3 non-empty spatial axes"
        )
    if x.shape[0] != 1:
        raise ValueError(
            f"x: a batch of {x.shape[0]} images is invalid, expected a batch of 1 (as MONAI)"
        )
    plain = x.detach().as_subclass(torch.Tensor)  # a MONAI MetaTensor too
    image = np.ascontiguousarray(plain.to("cpu", torch.float32).numpy())
    if not np.all(np.isfinite(image)):
        raise ValueError("x: NaN or inf values are invalid, expected finite values")
    return image
