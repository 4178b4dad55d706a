"""Captum's arguments as Captum reads them, checked before any model call (ValueError
naming the argument): the input tensors, one window and stride tuple per input, the
baselines, the target forms and the extra forward arguments. Where Captum asserts (the
windows, the strides, the target, ``perturbations_per_eval``) the error is a
``CaptumArgumentError``: a ValueError that code written for Captum catches as its
AssertionError."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fastocclusion.arrays import to_numpy
from fastocclusion.backends.torch.device import host_bits
from fastocclusion.backends.torch.forward import TargetIndex
from fastocclusion.options import is_int

__all__ = [
    "CaptumArgumentError", "check_inputs", "extra_args", "is_int_tuple",
    "per_input_baselines", "per_input_sizes", "target_index",
]  # fmt: skip


class CaptumArgumentError(ValueError, AssertionError):
    """An invalid argument where Captum asserts: a ValueError naming the argument, also
    caught by ``except AssertionError`` as Captum's own check is."""


def is_int_tuple(value: Any) -> bool:
    """True for a tuple of integers."""
    return isinstance(value, tuple) and all(is_int(v) for v in value)


def check_inputs(tensors: tuple[Any, ...]) -> list[torch.Tensor]:
    """The input tensors, checked: real numbers (floats of any width or integers), (N, ...)
    with 0 to 5 non-empty axes after the batch axis (0: one scalar feature per example),
    one batch size."""
    if not tensors:
        raise ValueError("inputs: an empty tuple is invalid, expected at least one tensor")
    checked = []
    for k, tensor in enumerate(tensors):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"inputs: element {k} is a {type(tensor).__name__}, expected a tensor")
        if tensor.dim() < 1 or tensor.numel() == 0:
            raise ValueError(
                f"inputs: tensor {k} of shape {tuple(tensor.shape)} is invalid, expected "
                "(N, ...) with a batch axis and no empty axis"
            )
        if tensor.is_complex() or tensor.dtype == torch.bool:
            raise TypeError(
                f"inputs: tensor {k} has dtype {tensor.dtype}, expected real numbers (floats "
                "or integers)"
            )
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


def per_input_sizes(
    value: Any, tensors: list[torch.Tensor], name: str, allow_int: bool
) -> list[tuple[int, ...]]:
    """One tuple of sizes per input, each of its non-batch rank (an int means the same on
    every axis when ``allow_int``)."""
    single = len(tensors) == 1
    if single and (is_int_tuple(value) or (allow_int and is_int(value))):
        value = (value,)
    if allow_int and is_int(value):
        value = (value,) * len(tensors)
    if not isinstance(value, tuple) or len(value) != len(tensors):
        raise CaptumArgumentError(
            f"{name}: {value!r} is invalid, expected one tuple per input ({len(tensors)})"
        )
    sizes = []
    for k, (item, tensor) in enumerate(zip(value, tensors)):
        rank = tensor.dim() - 1
        if allow_int and is_int(item):
            item = (item,) * rank
        if not is_int_tuple(item) or len(item) != rank:
            raise CaptumArgumentError(
                f"{name}: {item!r} for input {k} of shape {tuple(tensor.shape)} is invalid, "
                f"expected {rank} ints (one per axis after the batch axis)"
            )
        sizes.append(tuple(int(v) for v in item))
    return sizes


def per_input_baselines(
    baselines: Any, tensors: list[torch.Tensor]
) -> list[tuple[torch.dtype, np.ndarray]]:
    """Per input: the dtype of its swept batches, as Captum's arithmetic gives it
    (``input * (1 - mask) + baseline * mask``: torch's promotion of the input's dtype and
    the baseline's, e.g. an integer input with a float baseline gives float32 batches), and
    the baseline in that dtype (``host_bits``): a 0-d scalar, one example's shape, or (N,
    ...) per example. ValueError naming ``baselines`` for a baseline that is not finite,
    not real or not broadcastable to its input."""
    if baselines is None:
        baselines = 0  # Captum's default: the integer 0 (promotes nothing)
    if not isinstance(baselines, tuple):
        baselines = (baselines,) * len(tensors)
    if len(baselines) != len(tensors):
        raise ValueError(
            f"baselines: {len(baselines)} baselines is invalid, expected one per input "
            f"({len(tensors)})"
        )
    out = []
    for k, (value, tensor) in enumerate(zip(baselines, tensors)):
        if not isinstance(value, (torch.Tensor, int, float)) or isinstance(value, bool):
            value = torch.from_numpy(np.array(to_numpy(value, "baselines")))
        if isinstance(value, torch.Tensor) and (value.is_complex() or value.dtype == torch.bool):
            raise ValueError(
                f"baselines: input {k}'s baseline has dtype {value.dtype}, expected real numbers"
            )
        dtype = torch.result_type(tensor, value)
        array = torch.as_tensor(value).detach().to("cpu")
        if not bool(torch.isfinite(array.to(torch.float64)).all()):
            raise ValueError(f"baselines: input {k}'s baseline has NaN or inf, expected finite")
        shape = tuple(tensor.shape)
        if array.dim() == 0:
            out.append((dtype, host_bits(array.to(dtype))))
            continue
        try:
            full = torch.broadcast_to(array, shape)
        except RuntimeError:
            raise ValueError(
                f"baselines: shape {tuple(array.shape)} for input {k} is invalid, expected a "
                f"number or a tensor broadcastable to {shape}"
            ) from None
        per_example = array.dim() == len(shape) and array.shape[0] == shape[0] and shape[0] > 1
        out.append((dtype, host_bits((full if per_example else full[0]).to(dtype))))
    return out


def _target(**fields: Any) -> TargetIndex:
    """A TargetIndex whose errors at scoring time are CaptumArgumentErrors."""
    return TargetIndex(**fields, error=CaptumArgumentError)


def target_index(target: Any, n: int) -> TargetIndex:
    """Captum's target forms as a TargetIndex (CaptumArgumentError naming ``target``
    otherwise)."""
    if target is None:
        return _target()
    if isinstance(target, torch.Tensor):
        if target.is_floating_point() or target.is_complex():
            raise CaptumArgumentError(
                f"target: a {target.dtype} tensor is invalid, expected integers"
            )
        if target.numel() == 1:  # Captum reads a one-element tensor as a scalar
            return _target(last=(int(target.item()),))
        if target.dim() == 1 and target.numel() == n:
            return _target(per_example=target.cpu().numpy().astype(np.int64)[:, None])
        raise CaptumArgumentError(
            f"target: a tensor of shape {tuple(target.shape)} is invalid, expected a scalar or "
            f"one integer index per example ({n},)"
        )
    if is_int(target):
        return _target(last=(int(target),))
    if is_int_tuple(target) and target:
        return _target(last=tuple(int(v) for v in target))
    if isinstance(target, list) and len(target) == n:
        if all(is_int(v) for v in target):
            return _target(per_example=np.asarray(target, np.int64)[:, None])
        if all(is_int_tuple(v) and v for v in target) and len({len(v) for v in target}) == 1:
            return _target(per_example=np.asarray(target, np.int64))
    raise CaptumArgumentError(
        f"target: {target!r} is invalid, expected None, an int, a tuple of ints, a tensor, or "
        f"a list of {n} ints or tuples (one per example)"
    )


def extra_args(args: Any) -> tuple[Any, ...]:
    """``additional_forward_args`` as a tuple (None: none; one object: a 1-tuple)."""
    if args is None:
        return ()
    return args if isinstance(args, tuple) else (args,)
