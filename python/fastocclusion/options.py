"""Validation of the constructor options of ``Occlusion`` (SPEC §2, §5, §6).

Every check raises before any model call, naming the argument, the value received and
what was expected.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

EDGES = ("valid", "cover")
REDUCTIONS = ("sum", "mean")
DEVICES = ("auto", "cpu", "gpu")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(
            f"batch_size: {batch_size!r} is invalid, expected an integer >= 1 or None"
        )
    return int(batch_size)


def check_pair(value: Any, name: str) -> tuple[int, ...]:
    """An int or a tuple of one or two ints >= 1; an int means the same on every axis."""
    items = (value,) if _is_int(value) else value
    if not isinstance(items, (tuple, list)) or not 1 <= len(items) <= 2 or not all(
        _is_int(v) for v in items
    ):
        raise ValueError(f"{name}: {value!r} is invalid, expected an int or a tuple of two ints")
    if any(v < 1 for v in items):
        raise ValueError(f"{name}: {value!r} is invalid, expected sizes >= 1")
    return tuple(int(v) for v in items)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        expected = " or ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: {value!r} is invalid, expected {expected}")
    return value


def check_occlusion_value(value: Any) -> np.ndarray:
    """The baseline as a finite float32 array (0-d for a scalar)."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"occlusion_value: {value!r} is not numeric, expected a float, a per-channel "
            "vector or an array broadcastable to one input"
        ) from None
    if array.size == 0:
        raise ValueError("occlusion_value: an empty array is invalid, expected at least one value")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"occlusion_value: contains NaN or inf ({int((~np.isfinite(array)).sum())} "
            "values), expected finite numbers"
        )
    return array.astype(np.float32)


def plane_patch(
    patch: tuple[int, ...], stride: tuple[int, ...], family: str, shape: tuple[int, ...]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The (rows, cols) patch and stride on the NHWC plane, checked against the input.

    Tabular inputs (N, W) have a 1-D patch along W; images and time series a 2-D patch.
    """
    if family == "tabular":
        if len(patch) != 1 or len(stride) != 1:
            raise ValueError(
                f"patch_size/patch_stride: {patch}/{stride} is invalid for tabular inputs "
                f"{shape}, expected ints (one patch axis)"
            )
        patch2, stride2 = (1, patch[0]), (1, stride[0])
        axes = [(1, shape[1], patch[0])]
    else:
        patch2 = (patch[0], patch[-1])
        stride2 = (stride[0], stride[-1])
        axes = [(1, shape[1], patch2[0]), (2, shape[2], patch2[1])]
    for axis, length, size in axes:
        if size > length:
            raise ValueError(
                f"patch_size: {size} along axis {axis} is larger than the input "
                f"(shape {shape}, length {length}), expected <= {length}"
            )
    return patch2, stride2


def plane_baseline(baseline: np.ndarray, family: str, nhwc_shape: tuple[int, ...],
                   original_shape: tuple[int, ...]) -> np.ndarray:
    """The baseline in a form the kernels take: () scalar, (C,) per channel or (H, W, C)."""
    if baseline.ndim == 0:
        return np.array(baseline, dtype=np.float32)  # ascontiguousarray would make it 1-D
    _, h, w, c = nhwc_shape
    if family == "images" and baseline.shape == (c,):
        return np.ascontiguousarray(baseline, dtype=np.float32)
    one_input = tuple(original_shape[1:])
    try:
        full = np.broadcast_to(baseline, one_input)
    except ValueError:
        raise ValueError(
            f"occlusion_value: shape {baseline.shape} is invalid for inputs {original_shape}, "
            f"expected a scalar, ({c},) per channel, or an array broadcastable to {one_input}"
        ) from None
    return np.ascontiguousarray(full.reshape(h, w, c), dtype=np.float32)
