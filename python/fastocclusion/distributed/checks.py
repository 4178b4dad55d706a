"""The checks of ``explain_dataset``'s arguments (all before any model call, errors naming
the argument), the run's fingerprint of the options, and each shard's targets and key."""

from __future__ import annotations

import hashlib
import inspect
import numbers
from typing import Any

import numpy as np

from fastocclusion import tasks
from fastocclusion.arrays import to_numpy
from fastocclusion.distributed.datasets import Shard
from fastocclusion.options import is_int, is_real
from fastocclusion.xplique import Occlusion
from fastocclusion.xplique.checks import check_options as check_occlusion_options
from fastocclusion.xplique.layouts import input_layout, sample_baseline, window_geometry

#: Occlusion's keyword arguments that explain_dataset does not pass through.
NOT_OPTIONS = ("self", "model", "progress")


def positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name}: {value!r} is invalid, expected an integer >= {minimum}")
    return int(value)


def non_negative(value: Any, name: str, positive: bool = False) -> float:
    ok = is_real(value) and np.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise ValueError(
            f"{name}: {value!r} is invalid, expected a number {'>' if positive else '>='} 0"
        )
    return float(value)


def check_options(options: dict[str, Any], sample_shape: tuple[int, ...]) -> dict[str, Any]:
    """``Occlusion``'s keyword arguments, checked as far as it can be without the model,
    with ``Occlusion``'s own checks: names (TypeError naming an unknown one), values, and
    the windows on inputs of ``sample_shape`` (ValueError naming the option). Returns them
    with defaults filled in. Every option ``Occlusion.__init__`` checks is checked here."""
    parameters = inspect.signature(Occlusion.__init__).parameters
    known = {name: p.default for name, p in parameters.items() if name not in NOT_OPTIONS}
    for name in options:
        if name not in known:
            raise TypeError(
                f"{name}: is not an option of Occlusion, expected one of {', '.join(known)}"
            )
    full = {**known, **options}
    checked = check_occlusion_options(**full)
    layout = input_layout((1, *sample_shape), checked["data_format"])
    window_geometry(layout, checked["patch_size"], checked["patch_stride"], checked["edges"])
    sample_baseline(checked["occlusion_value"], layout)
    return full


def canonical(value: Any) -> Any:
    """A JSON value that identifies an option's value (arrays by their SHA-256)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (tuple, list)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, tasks.Tasks):
        return value.value
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', value)}"
    try:
        array = to_numpy(value, "value")
    except TypeError:
        return repr(value)
    return {"shape": list(array.shape), "sha256": hashlib.sha256(array.tobytes()).hexdigest()}


def check_targets(targets: Any, count: int | None, operator: Any) -> tuple[str, Any]:
    """(mode, values): ("top", None) the model's top class; ("classes", int or (N,) int64)
    class indices; ("given", None or an (N, ...) array) as ``Occlusion.explain`` takes
    them. Class indices need the classification or regression operator. ValueError naming
    ``targets``."""
    task, _ = tasks.parse_operator(operator)
    vector = task is not None and tasks.TARGET_KINDS[task] == "vector"
    if targets is None:
        return ("top" if vector else "given"), None
    if isinstance(targets, numbers.Integral) and not isinstance(targets, bool):
        if not vector or targets < 0:
            raise ValueError(
                f"targets: {targets!r} is invalid, expected a class index >= 0 (for the "
                "classification or regression operator)"
            )
        return "classes", int(targets)
    array = to_numpy(targets, "targets")
    if array.ndim == 0:
        raise ValueError("targets: a 0-d array is invalid, expected one target per input")
    if count is not None and len(array) != count:
        raise ValueError(
            f"targets: {len(array)} targets for {count} inputs, expected one per input"
        )
    if vector and array.ndim == 1 and array.dtype.kind in "iu":
        if array.min() < 0:
            raise ValueError(f"targets: class {int(array.min())} is invalid, expected >= 0")
        return "classes", array.astype(np.int64)
    return "given", array


def shard_targets(targets: Any, shard: Shard) -> Any:
    """The targets of one shard (ValueError when an iterable outgrew them)."""
    if targets is None or isinstance(targets, int):
        return None if targets is None else np.full(shard.stop - shard.start, targets)
    if shard.stop > len(targets):
        raise ValueError(
            f"targets: {len(targets)} targets, but the dataset has more inputs, expected one "
            "per input"
        )
    return targets[shard.start : shard.stop]


def shard_key(shard: Shard, targets: Any) -> str:
    """The shard's input key combined with its targets."""
    if targets is None:
        return shard.key
    array = np.ascontiguousarray(targets)
    return hashlib.sha256(
        (shard.key + array.dtype.str + repr(array.shape)).encode() + array.tobytes()
    ).hexdigest()
