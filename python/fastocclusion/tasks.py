"""Operators without a framework: the ``Tasks`` enum, operator parsing and the NumPy checks
shared by the TensorFlow operators (operators.py) and the PyTorch ones (torch_operators.py).

Imports NumPy only, so the PyTorch path never loads TensorFlow. The numerics of the
built-in scores live with each framework; what a built-in expects of its targets, what a
custom operator must look like, and the one-hot default targets live here, once.

Target kinds of the built-ins: ``"vector"`` (N, K) weights, or the outputs' full shape;
``"segmentation"`` (N, H, W, K) masks; ``"boxes"`` (N, 4+1+K) or (N, T, 4+1+K) boxes.
A custom operator's targets are ``"any"``: only their first dimension is checked.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "DETECTION_FACTORS",
    "builtin_table",
    "EPSILON",
    "TARGET_KINDS",
    "Tasks",
    "check_score_shape",
    "check_targets_before_call",
    "default_targets",
    "parse_operator",
    "validate_targets",
]

#: The epsilon of design §3: IoU = intersection / (union + EPSILON), class similarity
#: dot(a, b) / (|a| |b| + EPSILON).
EPSILON = 1e-4


class Tasks(enum.Enum):
    """The built-in operators; ``Tasks("object_detection")`` etc. also accept loose spellings."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    SEMANTIC_SEGMENTATION = "semantic segmentation"
    OBJECT_DETECTION = "object detection"
    OBJECT_DETECTION_BOX_POSITION = "object detection box position"
    OBJECT_DETECTION_BOX_PROBA = "object detection box proba"
    OBJECT_DETECTION_BOX_CLASS = "object detection box class"

    @classmethod
    def _missing_(cls, value: object) -> Tasks | None:
        if isinstance(value, str):
            normalised = " ".join(value.strip().lower().replace("_", " ").replace("-", " ").split())
            for member in cls:
                if member.value == normalised:
                    return member
        return None


#: What the targets of each built-in are (see the module docstring).
TARGET_KINDS: dict[Tasks, str] = {
    Tasks.CLASSIFICATION: "vector",
    Tasks.REGRESSION: "vector",
    Tasks.SEMANTIC_SEGMENTATION: "segmentation",
    Tasks.OBJECT_DETECTION: "boxes",
    Tasks.OBJECT_DETECTION_BOX_POSITION: "boxes",
    Tasks.OBJECT_DETECTION_BOX_PROBA: "boxes",
    Tasks.OBJECT_DETECTION_BOX_CLASS: "boxes",
}

#: Object detection: which of (predicted objectness, class similarity) multiply the IoU.
DETECTION_FACTORS: dict[Tasks, tuple[bool, bool]] = {
    Tasks.OBJECT_DETECTION: (True, True),
    Tasks.OBJECT_DETECTION_BOX_POSITION: (False, False),
    Tasks.OBJECT_DETECTION_BOX_PROBA: (True, False),
    Tasks.OBJECT_DETECTION_BOX_CLASS: (False, True),
}


def builtin_table(
    vector: Callable[..., Any],
    segmentation: Callable[..., Any],
    detection: Callable[[bool, bool], Callable[..., Any]],
) -> dict[Tasks, Callable[..., Any]]:
    """Every built-in task's score function in one framework, from that framework's three
    kinds: ``vector`` (classification and regression), ``segmentation``, and
    ``detection(use_objectness, use_class_similarity)`` made per detection variant.

    >>> len(builtin_table(abs, abs, lambda proba, similarity: abs)) == len(TARGET_KINDS)
    True
    """
    table = {
        Tasks.CLASSIFICATION: vector,
        Tasks.REGRESSION: vector,
        Tasks.SEMANTIC_SEGMENTATION: segmentation,
        **{task: detection(*factors) for task, factors in DETECTION_FACTORS.items()},
    }
    assert set(table) == set(TARGET_KINDS)
    return table


def valid_names() -> str:
    """The task names, quoted, for error messages."""
    return ", ".join(repr(task.value) for task in Tasks)


# ----------------------------------------------------------------------------------------------
# Parsing


def check_custom_signature(function: Callable[..., Any]) -> None:
    """TypeError unless ``function`` can be called as function(model, inputs, targets)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        return
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()
    )
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    required_kw = [
        p.name
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    if (len(positional) < 3 and not variadic) or len(required) > 3 or required_kw:
        raise TypeError(
            f"operator {function!r} has signature {signature}; expected a callable taking three "
            f"positional arguments (model, inputs, targets) and returning one score per sample"
        )


def parse_operator(operator: Any) -> tuple[Tasks | None, Callable[..., Any] | None]:
    """``(task, None)`` for None (classification), a Tasks member or its name; ``(None, g)``
    for a custom callable g(model, inputs, targets). Anything else raises ValueError (an
    unknown name) or TypeError naming ``operator``."""
    if operator is None:
        return Tasks.CLASSIFICATION, None
    if isinstance(operator, str):
        try:
            return Tasks(operator), None
        except ValueError:
            raise ValueError(
                f"operator {operator!r} is not a known task; expected one of {valid_names()}, "
                f"a Tasks member, or a callable g(model, inputs, targets)"
            ) from None
    if isinstance(operator, Tasks):
        return operator, None
    if callable(operator) and not isinstance(operator, type):
        check_custom_signature(operator)
        return None, operator
    raise TypeError(
        f"operator {operator!r} (type {type(operator).__name__}) is not valid; expected None, "
        "a Tasks "
        f"member, one of {valid_names()}, or a callable g(model, inputs, targets)"
    )


def operator_name(task: Tasks | None, custom: Callable[..., Any] | None) -> str:
    """The name error messages use: the task's value, or the custom callable's name."""
    if task is not None:
        return task.value
    return getattr(custom, "__name__", None) or type(custom).__name__


# ----------------------------------------------------------------------------------------------
# Targets and scores (NumPy only)


def check_targets_before_call(targets: np.ndarray | None, n: int, kind: str, name: str) -> None:
    """What can be checked of the targets before any model call: their first dimension,
    numeric and finite values for a built-in operator's kind (``kind`` other than "any"),
    and that segmentation and detection get explicit targets."""
    if targets is not None and kind != "any":
        _check_target_values(np.asarray(targets))
    if targets is not None and (targets.ndim == 0 or targets.shape[0] != n):
        raise ValueError(
            f"targets: shape {targets.shape} is invalid, expected a first dimension equal "
            f"to the number of inputs ({n})"
        )
    if targets is None and kind in ("segmentation", "boxes"):
        raise ValueError(
            f"targets: None is invalid for the {name!r} operator, expected "
            "explicit targets (segmentation masks or boxes)"
        )


def default_targets(outputs: Any, kind: str = "vector", name: str = "classification") -> np.ndarray:
    """Targets for ``targets=None``: the one-hot of the model's top output (last axis).

    ``outputs`` are the model's outputs on the unperturbed inputs, (N, ..., K); outputs of shape
    (N,) give (N, 1) ones (the score is the output itself). Segmentation and detection need
    explicit targets: ValueError.
    """
    if kind in ("segmentation", "boxes"):
        raise ValueError(
            f"targets=None is not supported for operator {name!r}: pass targets explicitly "
            + (
                "((N, H, W, K) masks)"
                if kind == "segmentation"
                else "((N, 4+1+K) or (N, B, 4+1+K) boxes)"
            )
        )
    outputs = np.asarray(outputs, dtype=np.float32)
    if outputs.ndim == 0:
        raise ValueError(
            "model outputs have shape (); expected at least (N,) to derive default targets"
        )
    if outputs.ndim == 1:
        return np.ones((outputs.shape[0], 1), dtype=np.float32)
    top = np.argmax(outputs, axis=-1)
    return (np.arange(outputs.shape[-1]) == top[..., np.newaxis]).astype(np.float32)


def _check_target_values(array: np.ndarray) -> np.ndarray:
    """``array``, numeric and finite (also as float32), else a ValueError naming targets."""
    if array.dtype.kind not in "biuf":
        raise ValueError(f"targets: an array of dtype {array.dtype} is invalid, expected numbers")
    if array.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(array.astype(np.float32))))
        if bad:
            raise ValueError(
                f"targets: {bad} NaN or infinite value(s) (as float32) are invalid, expected "
                "finite values"
            )
    return array


def validate_targets(
    targets: Any, n_inputs: int, outputs_shape: Any, kind: str, name: str
) -> np.ndarray:
    """Check (and normalise) targets against an operator's target kind and the model's outputs.

    ``outputs_shape`` is the model's output shape for some batch (its first dimension is
    ignored). Returns float32 targets: (N, 1) for (N,) outputs, (N, 1, 4+1+K) for a single
    box per image, otherwise the targets as given. ValueError names ``targets``.
    """
    array = _check_target_values(np.asarray(targets)).astype(np.float32)
    if array.ndim == 0 or array.shape[0] != n_inputs:
        raise ValueError(
            f"targets has shape {array.shape}; expected a first dimension of {n_inputs} "
            "(one target per input)"
        )
    out = tuple(int(d) if d is not None else None for d in outputs_shape)[1:]
    if kind == "any":
        return array
    if kind == "vector":
        if len(out) == 0:
            if array.shape in ((n_inputs,), (n_inputs, 1)):
                return array.reshape(n_inputs, 1)
            raise _bad_targets(
                array,
                name,
                f"({n_inputs},) or ({n_inputs}, 1) for a model with one output per sample",
            )
        if array.shape[1:] == out:
            return array
        if len(out) > 1:
            # sum(f(x) * y, -1) would leave (B,) + out[:-1]: not one score per sample.
            raise ValueError(
                f"model output shape {tuple(outputs_shape)} cannot be reduced to one score per "
                f"sample by operator {name!r} with targets of shape {array.shape}: expected "
                f"(N, K) outputs, or targets of shape {(n_inputs, *out)} weighting every output"
            )
        raise _bad_targets(array, name, f"({n_inputs}, {out[-1]}) (one weight per model output)")
    if kind == "segmentation":
        if array.shape[1:] == out:
            return array
        raise _bad_targets(array, name, f"{(n_inputs, *out)} (one mask entry per model output)")
    # boxes
    if len(out) != 2 or out[-1] is None or out[-1] < 5:
        raise ValueError(
            f"model outputs have shape {tuple(outputs_shape)}; operator {name!r} expects "
            f"(N, boxes, 4+1+K) predictions [x1, y1, x2, y2, objectness, classes...]"
        )
    if array.ndim == 2 and array.shape[1] == out[-1]:
        return array.reshape(n_inputs, 1, out[-1])
    if array.ndim == 3 and array.shape[2] == out[-1]:
        return array
    raise _bad_targets(array, name, f"({n_inputs}, {out[-1]}) or ({n_inputs}, boxes, {out[-1]})")


def _bad_targets(array: np.ndarray, name: str, expected: str) -> ValueError:
    return ValueError(f"targets has shape {array.shape}; operator {name!r} expects {expected}")


def check_score_shape(dims: tuple[int | None, ...] | None, batch: int, name: str) -> None:
    """One score per sample: (B,), (B, 1), or () for a batch of one; unknown sizes (None)
    pass. ValueError naming the operator otherwise."""
    if dims is None:
        return
    ok = (
        (len(dims) == 1 and dims[0] in (batch, None))
        or (len(dims) == 2 and dims[0] in (batch, None) and dims[1] == 1)
        or (len(dims) == 0 and batch == 1)
    )
    if not ok:
        raise ValueError(
            f"operator {name!r} returned scores of shape {tuple(dims)} for a batch of {batch}; "
            f"expected one score per sample: ({batch},) or ({batch}, 1)"
        )
