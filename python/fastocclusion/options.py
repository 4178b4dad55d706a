"""Validation of the constructor options of ``Occlusion`` (design §2, §5, §6).

Every check raises before any model call, naming the argument, the value received and
what was expected.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from fastocclusion.arrays import to_numpy

EDGES = ("valid", "cover")
REDUCTIONS = ("sum", "mean")
DEVICES = ("auto", "cpu", "gpu")


def is_int(value: Any) -> bool:
    """True for an integer (Python or NumPy), not a bool.

    >>> is_int(3), is_int(True), is_int(3.0)
    (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """True for a real number (Python or NumPy), not a bool.

    >>> is_real(0.5), is_real(False)
    (True, False)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size: {batch_size!r} is invalid, expected an integer >= 1 or None")
    return int(batch_size)


def check_sizes(value: Any, name: str) -> tuple[int, ...]:
    """An int or a tuple of one to three ints >= 1 (rows, cols[, depth first for volumes]);
    an int means the same on every patch axis. Matched to the inputs at explain time."""
    items = (value,) if is_int(value) else value
    if (
        not isinstance(items, (tuple, list))
        or not 1 <= len(items) <= 3
        or not all(is_int(v) for v in items)
    ):
        raise ValueError(
            f"{name}: {value!r} is invalid, expected an int or a tuple of two (images) or "
            "three (volumes) ints"
        )
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


def check_classes(classes: Any) -> np.ndarray | None:
    """None (every class), or class indices: an int or a sequence of ints >= 0 (checked
    against the model's outputs once they are known). ValueError naming ``classes``."""
    if classes is None:
        return None
    items = [classes] if is_int(classes) else classes
    try:
        values = list(items)
    except TypeError:
        values = None
    if not values or not all(is_int(v) for v in values) or any(v < 0 for v in values):
        raise ValueError(
            f"classes: {classes!r} is invalid, expected None or class indices (ints >= 0)"
        )
    return np.asarray(values, dtype=np.int64)


def check_incremental(value: Any) -> str | bool:
    """ "auto", True or False (exactly); ValueError naming ``incremental`` otherwise."""
    if value is True or value is False or (isinstance(value, str) and value == "auto"):
        return value
    raise ValueError(f"incremental: {value!r} is invalid, expected 'auto', True or False")


def check_switch_share(value: Any) -> float | None:
    """None (the framework's default, engine.incremental_run.TensorOps.switch_share) or a
    number in (0, 1]: the share of a feature map past which incremental inference switches
    back to full layers; ValueError naming ``incremental_threshold`` otherwise.

    >>> check_switch_share(None), check_switch_share(1)
    (None, 1.0)
    """
    if value is None:
        return None
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not 0.0 < float(value) <= 1.0
    ):
        raise ValueError(
            f"incremental_threshold: {value!r} is invalid, expected None or a number in (0, 1]"
        )
    return float(value)
