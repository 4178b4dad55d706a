"""Captum's ``Occlusion`` API over fastocclusion's engine: ``Occlusion(forward_func)
.attribute(inputs, sliding_window_shapes, ...)`` with Captum 0.9's signature and results.

What Captum computes, and so this: for every input tensor in turn, a window of
``sliding_window_shapes`` slides over all its non-batch axes (channels included) with
``strides``; the last window of an axis is clipped at the far edge; each feature gets the
mean, over the windows covering it, of the drop of the target output when the window is
set to the baseline (engine geometry: "cover" edges, "mean" reduction, no collapsed axis).
The other inputs stay as they are. Attributions have the inputs' shapes and devices and are
float32, as Captum's are. Batches are built in float32 (the kernels' type) and cast to the
input's dtype for the call: a float64 input is seen at float32 precision.

Captum's arguments, as it reads them:
- ``inputs``: a tensor, or a tuple of tensors sharing their first (batch) dimension;
- ``sliding_window_shapes``: one tuple per input (a tuple of ints for one tensor);
- ``strides``: None (1), an int, a tuple of ints, or one per input; never larger than the
  window;
- ``baselines``: None (0), a number, a tensor broadcastable to the input (per example with
  a first dimension N), or one per input;
- ``target``: None (the output is one value per example), an int or a tuple of ints (the
  last axes of every example's output), a tensor (a scalar, or one index per example), or a
  list of ints or tuples, one per example (the axes after the batch axis);
- ``additional_forward_args``: extra arguments after the inputs (a tuple, or one object);
- ``perturbations_per_eval``: the function gets N x perturbations_per_eval examples per call
  (every call has exactly that many: the last one is padded).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fastocclusion.arrays import to_numpy
from fastocclusion.backends.torch.forward import ForwardBackend, TargetIndex
from fastocclusion.engine import WindowGeometry, build_sweep

__all__ = ["Occlusion"]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(_is_int(v) for v in value)


class Occlusion:
    """Captum's perturbation-based occlusion attribution, with the model calls as the only
    cost (see the module docstring)."""

    def __init__(self, forward_func: Callable[..., Any]) -> None:
        if not callable(forward_func):
            raise TypeError(f"forward_func: {forward_func!r} is invalid, expected a callable")
        self.forward_func = forward_func

    def attribute(
        self,
        inputs: Any,
        sliding_window_shapes: Any,
        strides: Any = None,
        baselines: Any = None,
        target: Any = None,
        additional_forward_args: Any = None,
        perturbations_per_eval: int = 1,
        show_progress: bool = False,
    ) -> Any:
        is_tuple = isinstance(inputs, tuple)
        tensors = _check_inputs(inputs if is_tuple else (inputs,))
        n = tensors[0].shape[0]
        windows = _per_input(
            sliding_window_shapes, tensors, "sliding_window_shapes", allow_int=False
        )
        steps = _per_input(1 if strides is None else strides, tensors, "strides", allow_int=True)
        for k, (window, step) in enumerate(zip(windows, steps)):
            for axis, (w, s, length) in enumerate(zip(window, step, tensors[k].shape[1:])):
                if w < 1 or w > length:
                    raise ValueError(
                        f"sliding_window_shapes: {w} along axis {axis + 1} of input {k} is "
                        f"invalid, expected 1 to {length}"
                    )
                if s < 1 or s > w:
                    raise ValueError(
                        f"strides: {s} along axis {axis + 1} of input {k} is invalid, expected "
                        f"1 to the window ({w}): Captum does not allow gaps"
                    )
        bases = _baselines(baselines, tensors)
        index = _target_index(target, n)
        extra = _extra_args(additional_forward_args)
        if not _is_int(perturbations_per_eval) or perturbations_per_eval < 1:
            raise ValueError(
                f"perturbations_per_eval: {perturbations_per_eval!r} is invalid, expected an "
                "integer >= 1"
            )
        if not isinstance(show_progress, bool):
            raise ValueError(f"show_progress: {show_progress!r} is invalid, expected a bool")
        batch = n * perturbations_per_eval
        results = []
        for k, tensor in enumerate(tensors):
            array = np.ascontiguousarray(to_numpy(tensor, "inputs"), dtype=np.float32)
            geometry = WindowGeometry(array.shape[1:], windows[k], steps[k], "cover")
            backend = ForwardBackend(self.forward_func, tensors, k, index, extra)
            sweep = build_sweep(backend, array, geometry, bases[k], batch, progress=show_progress)
            _, maps = sweep.run(np.zeros((n, 0), np.float32), "mean", ())
            results.append(backend.wrap_result(maps))
        return tuple(results) if is_tuple else results[0]


def _check_inputs(tensors: tuple[Any, ...]) -> list[torch.Tensor]:
    if not tensors:
        raise ValueError("inputs: an empty tuple is invalid, expected at least one tensor")
    checked = []
    for k, tensor in enumerate(tensors):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"inputs: element {k} is a {type(tensor).__name__}, expected a tensor")
        if tensor.dim() < 2 or tensor.numel() == 0:
            raise ValueError(
                f"inputs: tensor {k} of shape {tuple(tensor.shape)} is invalid, expected "
                "(N, ...) with at least one axis after the batch axis and no empty axis"
            )
        if not tensor.is_floating_point():
            raise TypeError(f"inputs: tensor {k} has dtype {tensor.dtype}, expected floats")
        if tensor.dim() - 1 > 5:
            raise ValueError(
                f"inputs: tensor {k} has {tensor.dim() - 1} axes after the batch axis, "
                "expected at most 5"
            )
        checked.append(tensor)
    if any(t.shape[0] != checked[0].shape[0] for t in checked):
        raise ValueError(
            f"inputs: first dimensions {[t.shape[0] for t in checked]} differ, expected one "
            "batch size"
        )
    return checked


def _per_input(
    value: Any, tensors: list[torch.Tensor], name: str, allow_int: bool
) -> list[tuple[int, ...]]:
    """One tuple of sizes per input, each of its non-batch rank (an int means the same on
    every axis when ``allow_int``)."""
    single = len(tensors) == 1
    if single and (_int_tuple(value) or (allow_int and _is_int(value))):
        value = (value,)
    if allow_int and _is_int(value):
        value = (value,) * len(tensors)
    if not isinstance(value, tuple) or len(value) != len(tensors):
        raise ValueError(
            f"{name}: {value!r} is invalid, expected one tuple per input ({len(tensors)})"
        )
    sizes = []
    for k, (item, tensor) in enumerate(zip(value, tensors)):
        rank = tensor.dim() - 1
        if allow_int and _is_int(item):
            item = (item,) * rank
        if not _int_tuple(item) or len(item) != rank:
            raise ValueError(
                f"{name}: {item!r} for input {k} of shape {tuple(tensor.shape)} is invalid, "
                f"expected {rank} ints (one per axis after the batch axis)"
            )
        sizes.append(tuple(int(v) for v in item))
    return sizes


def _baselines(baselines: Any, tensors: list[torch.Tensor]) -> list[np.ndarray]:
    """Per input: a 0-d scalar, one example's shape, or (N, ...) per example, float32."""
    if baselines is None:
        baselines = 0.0
    if not isinstance(baselines, tuple):
        baselines = (baselines,) * len(tensors)
    if len(baselines) != len(tensors):
        raise ValueError(
            f"baselines: {len(baselines)} baselines is invalid, expected one per input "
            f"({len(tensors)})"
        )
    out = []
    for k, (value, tensor) in enumerate(zip(baselines, tensors)):
        array = to_numpy(value, "baselines").astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"baselines: input {k}'s baseline has NaN or inf, expected finite")
        shape = tuple(tensor.shape)
        if array.ndim == 0:
            out.append(array)
            continue
        try:
            full = np.broadcast_to(array, shape)
        except ValueError:
            raise ValueError(
                f"baselines: shape {array.shape} for input {k} is invalid, expected a number "
                f"or a tensor broadcastable to {shape}"
            ) from None
        per_example = array.ndim == len(shape) and array.shape[0] == shape[0] and shape[0] > 1
        out.append(np.ascontiguousarray(full if per_example else full[0]))
    return out


def _target_index(target: Any, n: int) -> TargetIndex:
    """Captum's target forms as a TargetIndex (ValueError naming ``target`` otherwise)."""
    if target is None:
        return TargetIndex()
    if isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex():
            raise ValueError(f"target: a {target.dtype} tensor is invalid, expected integers")
        if target.numel() == 1:  # Captum reads a one-element tensor as a scalar
            return TargetIndex(last=(int(target.item()),))
        if target.dim() == 1 and target.numel() == n:
            return TargetIndex(per_example=target.cpu().numpy().astype(np.int64)[:, None])
        raise ValueError(
            f"target: a tensor of shape {tuple(target.shape)} is invalid, expected a scalar or "
            f"one integer index per example ({n},)"
        )
    if _is_int(target):
        return TargetIndex(last=(int(target),))
    if _int_tuple(target) and target:
        return TargetIndex(last=tuple(int(v) for v in target))
    if isinstance(target, list) and len(target) == n:
        if all(_is_int(v) for v in target):
            return TargetIndex(per_example=np.asarray(target, np.int64)[:, None])
        if all(_int_tuple(v) and v for v in target) and len({len(v) for v in target}) == 1:
            return TargetIndex(per_example=np.asarray(target, np.int64))
    raise ValueError(
        f"target: {target!r} is invalid, expected None, an int, a tuple of ints, a tensor, or "
        f"a list of {n} ints or tuples (one per example)"
    )


def _extra_args(args: Any) -> tuple[Any, ...]:
    if args is None:
        return ()
    return args if isinstance(args, tuple) else (args,)
