"""MONAI's arguments as MONAI reads them, checked before any model call (ValueError naming
the argument): values per spatial axis (``ensure_tuple_rep``) and the image ``x``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from fastocclusion.backends.torch.device import host_bits
from fastocclusion.types import BFLOAT16_BITS

__all__ = ["batch_dtype", "batch_image", "check_image", "per_axis"]


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


def batch_dtype(x_dtype: torch.dtype, mode: Any) -> np.dtype:
    """The dtype the batches of an image of ``x_dtype`` are built in, so that every
    occluded image is MONAI's (which computes in the image's dtype): float64 for float64
    images, in every mode; for float16 and bfloat16 images their own dtype (bfloat16 as its
    bits, types.BFLOAT16_BITS) where the mode only copies a constant (a number,
    ``"mean_img"``), float32 where it multiplies (``"gaussian"``, ``"mean_patch"``: the
    kernels multiply in float32 or float64; MONAI's half product is computed in float32
    and rounded, as the batch is when cast for the call); float32 otherwise.

    >>> batch_dtype(torch.float64, "gaussian"), batch_dtype(torch.float16, 0.5)
    (dtype('float64'), dtype('float16'))
    """
    if x_dtype == torch.float64:
        return np.dtype(np.float64)
    copies = mode == "mean_img" or not isinstance(mode, str)
    if copies and x_dtype == torch.float16:
        return np.dtype(np.float16)
    if copies and x_dtype == torch.bfloat16:
        return BFLOAT16_BITS
    return np.dtype(np.float32)


def batch_image(x: torch.Tensor, image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The image as the batches hold it: ``image`` (check_image's float32 copy) for float32,
    else ``x``'s own values (batch_dtype gives another dtype only as ``x``'s own: float64,
    float16, or bfloat16's bits)."""
    if dtype == np.float32:
        return image
    return host_bits(x.detach().as_subclass(torch.Tensor))
