"""Validation of the constructor options of ``Occlusion`` (SPEC §2, §5, §6).

Every check raises before any model call, naming the argument, the value received and
what was expected.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from fastocclusion.arrays import to_numpy
from fastocclusion.engine.geometry import WindowGeometry

EDGES = ("valid", "cover")
REDUCTIONS = ("sum", "mean")
DEVICES = ("auto", "cpu", "gpu")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size: {batch_size!r} is invalid, expected an integer >= 1 or None")
    return int(batch_size)


def check_pair(value: Any, name: str) -> tuple[int, ...]:
    """An int or a tuple of one or two ints >= 1; an int means the same on every axis."""
    items = (value,) if _is_int(value) else value
    if (
        not isinstance(items, (tuple, list))
        or not 1 <= len(items) <= 2
        or not all(_is_int(v) for v in items)
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
    array = to_numpy(value, "occlusion_value").astype(np.float64)
    if array.size == 0:
        raise ValueError("occlusion_value: an empty array is invalid, expected at least one value")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"occlusion_value: contains NaN or inf ({int((~np.isfinite(array)).sum())} "
            "values), expected finite numbers"
        )
    return array.astype(np.float32)


def family_geometry(
    patch: tuple[int, ...], stride: tuple[int, ...], family: str, shape: tuple[int, ...], edges: str
) -> WindowGeometry:
    """The windows of Xplique's families (SPEC §2, §7) over one input of ``shape[1:]``:
    images (H, W, C) windows (ph, pw, C) with strides (sh, sw, C), maps (H, W, 1); time
    series (T, W) windows (pt, pw); tabular (W,) windows (pw,). Patches are checked
    against the input (ValueError naming patch_size)."""
    sample = tuple(int(d) for d in shape[1:])
    if family == "tabular":
        if len(patch) != 1 or len(stride) != 1:
            raise ValueError(
                f"patch_size/patch_stride: {patch}/{stride} is invalid for tabular inputs "
                f"{shape}, expected ints (one patch axis)"
            )
        window, steps = (patch[0],), (stride[0],)
    else:
        window, steps = (patch[0], patch[-1]), (stride[0], stride[-1])
    for axis, size in enumerate(window, start=1):
        length = shape[axis]
        if size > length:
            raise ValueError(
                f"patch_size: {size} along axis {axis} is larger than the input "
                f"(shape {shape}, length {length}), expected <= {length}"
            )
    if family == "images":
        channels = sample[2]
        return WindowGeometry(
            sample, window + (channels,), steps + (channels,), edges, collapsed_axes=(2,)
        )
    return WindowGeometry(sample, window, steps, edges)


def sample_baseline(baseline: np.ndarray, family: str, shape: tuple[int, ...]) -> np.ndarray:
    """The baseline as the kernels take it: a 0-d scalar, or one float32 array of one
    input's shape (a per-channel vector of images, or any array broadcastable to one input,
    broadcast to it)."""
    if baseline.ndim == 0:
        return np.array(baseline, dtype=np.float32)  # ascontiguousarray would make it 1-D
    one_input = tuple(shape[1:])
    try:
        full = np.broadcast_to(baseline, one_input)
    except ValueError:
        channels = f"({one_input[-1]},) per channel, or " if family == "images" else ""
        raise ValueError(
            f"occlusion_value: shape {baseline.shape} is invalid for inputs {shape}, "
            f"expected a scalar, {channels}an array broadcastable to {one_input}"
        ) from None
    return np.ascontiguousarray(full, dtype=np.float32)
