"""Captum's ``Occlusion`` class: its arguments translated (arguments.py) into the engine's
windows, baselines and a ForwardBackend per input tensor (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fastocclusion.arrays import to_numpy
from fastocclusion.backends.torch.forward import ForwardBackend
from fastocclusion.captum.arguments import (
    check_inputs,
    extra_args,
    per_input_baselines,
    per_input_sizes,
    target_index,
)
from fastocclusion.engine import WindowGeometry, build_sweep
from fastocclusion.options import is_int
from fastocclusion.types import ArrayLike

__all__ = ["Occlusion"]


class Occlusion:
    """Captum's perturbation-based occlusion attribution, with the model calls as the only
    cost (see the package docstring).

    >>> attributions = Occlusion(model).attribute(  # doctest: +SKIP
    ...     images, sliding_window_shapes=(3, 8, 8), strides=(3, 4, 4), target=0
    ... )
    """

    def __init__(self, forward_func: Callable[..., Any]) -> None:
        if not callable(forward_func):
            raise TypeError(f"forward_func: {forward_func!r} is invalid, expected a callable")
        self.forward_func = forward_func

    def attribute(
        self,
        inputs: torch.Tensor | tuple[torch.Tensor, ...],
        sliding_window_shapes: Any,
        strides: Any = None,
        baselines: float | ArrayLike | tuple[float | ArrayLike, ...] | None = None,
        target: Any = None,
        additional_forward_args: Any = None,
        perturbations_per_eval: int = 1,
        show_progress: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        is_tuple = isinstance(inputs, tuple)
        tensors = check_inputs(inputs if is_tuple else (inputs,))
        n = tensors[0].shape[0]
        windows = per_input_sizes(
            sliding_window_shapes, tensors, "sliding_window_shapes", allow_int=False
        )
        steps = per_input_sizes(
            1 if strides is None else strides, tensors, "strides", allow_int=True
        )
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
        bases = per_input_baselines(baselines, tensors)
        index = target_index(target, n)
        extra = extra_args(additional_forward_args)
        if not is_int(perturbations_per_eval) or perturbations_per_eval < 1:
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
