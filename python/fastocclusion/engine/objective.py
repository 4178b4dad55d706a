"""Objectives: what a sweep scores, apart from how a framework runs the model (design §3).

A backend is a *model runner*: it runs the model in its framework and computes, with that
framework's numerics, the scores its objective asks for. The *objective* is framework-free:
it says what is scored and owns the targets (the checks before any model call, the default
targets from the base pass's outputs, their validation against the model's output shape).

- ``OperatorObjective``: Xplique's operators, a built-in task (scores are a function of the
  model's outputs and the targets) or a custom ``g(model, inputs, targets)``; targets may
  also be given as ``ClassIndices`` (one class per input, turned into one-hot targets once
  the model's output shape is known);
- ``OutputValues``: no targets, the outputs themselves are mapped (MONAI's maps, run by
  ``Sweep.run_values``);
- Captum's target forms are ``backends.torch.forward.TargetIndex``, an objective whose
  picks are made on the outputs' device.

Imports NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fastocclusion import tasks
from fastocclusion.arrays import to_numpy

__all__ = ["BasePass", "ClassIndices", "OperatorObjective", "OutputValues", "objective_of"]


class ClassIndices:
    """Targets given as one class index per input (classification and regression
    operators): the objective turns them into one-hot targets once the model's (N, K)
    output shape is known, so a caller needs no model call of its own to learn K.

    >>> ClassIndices([2, 0]).labels.tolist()
    [2, 0]
    """

    def __init__(self, labels: Any) -> None:
        array = to_numpy(labels, "targets", ValueError)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise ValueError(
                f"targets: class indices of dtype {array.dtype} and shape {array.shape} are "
                "invalid, expected (N,) integers"
            )
        self.labels = array.astype(np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def one_hot(self, output_shape: tuple[int | None, ...]) -> np.ndarray:
        """(N, K) float32 one-hot targets for outputs of ``output_shape`` (N, K); ValueError
        naming ``targets`` for other outputs or an index outside 0..K-1."""
        if len(output_shape) != 2 or output_shape[1] is None:
            raise ValueError(
                f"targets: class indices need (N, K) model outputs, the model gave "
                f"{tuple(output_shape)}"
            )
        count = int(output_shape[1])
        bad = self.labels[(self.labels < 0) | (self.labels >= count)]
        if bad.size:
            raise ValueError(
                f"targets: class {int(bad[0])} is invalid, expected a class index in "
                f"0..{count - 1} (the model has {count} outputs)"
            )
        return np.eye(count, dtype=np.float32)[self.labels]


@dataclass(frozen=True)
class BasePass:
    """What a sweep's base pass found (``Occlusion.last_base_pass``): the targets it scored
    (float32, after defaults and checks), the (N,) float64 base scores, and the model's
    outputs on the unperturbed inputs when the base pass computed them (targets None, a
    model whose output shape tracing cannot tell, incremental inference), else None. NumPy
    arrays: a caller needs no second model call for the top classes or their outputs.

    >>> base = BasePass(np.eye(2, dtype=np.float32), np.array([1.0, 2.0]), None)
    >>> base.labels().tolist()
    [0, 1]
    """

    targets: np.ndarray
    scores: np.ndarray
    outputs: np.ndarray | None

    def labels(self) -> np.ndarray:
        """(N,) int64 classes of (N, K) one-hot (or weight) targets: the largest target
        of each input. ValueError for targets of another shape."""
        if self.targets.ndim != 2:
            raise ValueError(
                f"targets: shape {self.targets.shape} has no class labels, expected (N, K)"
            )
        return self.targets.argmax(axis=1).astype(np.int64)


class OperatorObjective:
    """Xplique's operator as an objective: a built-in task or a custom g(model, inputs,
    targets) (``tasks.parse_operator``: None is classification). ``task`` and ``custom``
    are what a model runner scores with.

    >>> objective = OperatorObjective("regression")
    >>> objective.target_kind, objective.from_outputs
    ('vector', True)
    """

    def __init__(self, operator: Any) -> None:
        self.task, self.custom = tasks.parse_operator(operator)
        self.name = tasks.operator_name(self.task, self.custom)
        #: True for the built-ins: scores are a function of the outputs and the targets.
        self.from_outputs = self.task is not None
        #: "vector", "segmentation", "boxes" (built-ins) or "any" (custom).
        self.target_kind = tasks.TARGET_KINDS[self.task] if self.task is not None else "any"

    def check_targets(self, targets: np.ndarray | ClassIndices | None, n: int) -> None:
        """What can be checked of the targets before any model call (ValueError naming
        ``targets``)."""
        if isinstance(targets, ClassIndices):
            if self.target_kind != "vector":
                raise ValueError(
                    f"targets: class indices are invalid for the {self.name!r} operator, "
                    "expected the classification or regression operator"
                )
            if len(targets) != n:
                raise ValueError(
                    f"targets: {len(targets)} class indices are invalid, expected one per "
                    f"input ({n})"
                )
            return
        tasks.check_targets_before_call(targets, n, self.target_kind, self.name)

    def resolve_targets(
        self,
        targets: np.ndarray | ClassIndices | None,
        outputs: Any,
        output_shape: tuple[int | None, ...] | None,
    ) -> np.ndarray:
        """The sweep's float32 targets: the model's top class from ``outputs`` (the
        unperturbed inputs' outputs, NumPy or a framework tensor) when ``targets`` is None,
        else ``targets`` checked against the output shape (``outputs.shape`` when given,
        else ``output_shape``)."""
        if targets is None:
            host = to_numpy(outputs, "outputs")  # no copy for a NumPy array
            return tasks.default_targets(host, self.target_kind, self.name)
        shape = tuple(outputs.shape) if outputs is not None else output_shape
        if isinstance(targets, ClassIndices):
            assert shape is not None  # a built-in operator: the base pass knows the shape
            return targets.one_hot(shape)
        if self.from_outputs:
            assert shape is not None
            return tasks.validate_targets(targets, len(targets), shape, self.target_kind, self.name)
        return np.asarray(targets, dtype=np.float32)


class OutputValues:
    """The objective of maps of the outputs themselves (MONAI's): no targets, nothing
    scored; ``Sweep.run_values`` keeps every output."""

    from_outputs = False
    target_kind = "any"
    name = "outputs"

    def check_targets(self, targets: Any, n: int) -> None:
        if targets is not None:
            raise ValueError("targets: output maps take no targets, expected None")

    def resolve_targets(self, targets: Any, outputs: Any, output_shape: Any) -> np.ndarray:
        raise TypeError("OutputValues maps the outputs themselves; it has no targets")


def objective_of(operator: Any) -> OperatorObjective:
    """The objective of an Xplique operator (an ``OperatorObjective`` passes through).

    >>> objective_of(None).name
    'classification'
    """
    return operator if isinstance(operator, OperatorObjective) else OperatorObjective(operator)
