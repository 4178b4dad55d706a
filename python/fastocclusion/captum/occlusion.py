"""Captum's ``Occlusion`` class: its arguments translated (arguments.py) into the engine's
windows, baselines, incremental options and a ForwardBackend per input tensor (see the
package docstring)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from fastocclusion import _core
from fastocclusion.backends.torch.device import host_bits
from fastocclusion.backends.torch.forward import AggregateOutputError, ForwardBackend, TargetIndex
from fastocclusion.captum.arguments import (
    CaptumArgumentError,
    check_inputs,
    extra_args,
    per_input_baselines,
    per_input_sizes,
    target_index,
)
from fastocclusion.engine import ExplainStats, IncrementalOptions, WindowGeometry, build_sweep
from fastocclusion.engine.approximate import explain_by_drill_down
from fastocclusion.engine.approximation import check_approximate, for_geometry
from fastocclusion.options import check_incremental, check_switch_share, is_int
from fastocclusion.types import ArrayLike

__all__ = ["Occlusion"]


class Occlusion:
    """Captum's perturbation-based occlusion attribution, with the model calls as the only
    cost (see the package docstring).

    ``incremental`` (keyword only, beyond Captum's signature): exact incremental inference
    (design §8) when ``forward_func`` is a ``torch.nn.Module`` and ``attribute`` gets one
    float32 or float64 (N, C, *axes) tensor of one to three map axes (signals, images,
    volumes) on the CPU or a CUDA device and no ``additional_forward_args``: only the
    boxes of the feature maps a window can change are recomputed, from the unoccluded
    images' activations, up to the layer where they grow past ``incremental_threshold``
    of the map (windows over all channels or one channel alike). "auto" (default): where the module
    and the sweep allow it and it saves work, else the normal sweep; True: always
    (ValueError naming ``incremental`` and the first unsupported layer, input or argument,
    before any model call); False: the normal sweep. The attributions are the same either
    way (float32 round-off). ``incremental_threshold``: the switch-back share of a feature
    map, in (0, 1] (None: PyTorch's default, engine.regions.DEFAULT_SWITCH_SHARE).

    ``approximate`` (keyword only): None (default, exact), "auto" or a dict, as
    ``fastocclusion.Occlusion``'s (engine.drill_down: a coarse sweep, then the exact windows
    only where it stands out; ``coarse_stride`` one value or one per axis of an example),
    per input tensor; ``last_stats.approximate_*`` report the share computed exactly and the
    measured error. Batches are filled in host memory (copied to a model on a GPU), as always
    here.

    ``last_stats``: the ExplainStats of the last ``attribute`` call's sweep of its last
    input tensor (one sweep per tensor: its model calls and time, and
    ``incremental_layers`` / ``incremental_note`` saying what ran incrementally and why).

    >>> explainer = Occlusion(model, incremental="auto")  # doctest: +SKIP
    >>> attributions = explainer.attribute(  # doctest: +SKIP
    ...     images, sliding_window_shapes=(3, 8, 8), strides=(3, 4, 4), target=0
    ... )
    >>> explainer.last_stats.incremental_layers  # doctest: +SKIP
    ('conv1', 'bn1', 'relu', ...)
    """

    def __init__(
        self,
        forward_func: Callable[..., Any],
        *,
        incremental: str | bool = "auto",
        incremental_threshold: float | None = None,
        approximate: str | dict[str, Any] | None = None,
    ) -> None:
        if not callable(forward_func):
            raise TypeError(f"forward_func: {forward_func!r} is invalid, expected a callable")
        self._approximation = check_approximate(approximate)
        self.approximate = approximate
        self.forward_func = forward_func
        self.incremental = check_incremental(incremental)
        self.incremental_threshold = check_switch_share(incremental_threshold)
        #: ExplainStats of the last attribute call's last input tensor (None before).
        self.last_stats: ExplainStats | None = None

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
                    raise CaptumArgumentError(
                        f"sliding_window_shapes: {w} along axis {axis + 1} of input {k} is "
                        f"invalid, expected 1 to {length}"
                    )
                if s < 1 or (s > w and w < length):  # one window covers a full axis
                    raise CaptumArgumentError(
                        f"strides: {s} along axis {axis + 1} of input {k} is invalid, expected "
                        f"1 to the window ({w}): Captum does not allow gaps"
                    )
        index = target_index(target, n)
        extra = extra_args(additional_forward_args)
        if not is_int(perturbations_per_eval) or perturbations_per_eval < 1:
            raise CaptumArgumentError(
                f"perturbations_per_eval: {perturbations_per_eval!r} is invalid, expected an "
                "integer >= 1"
            )
        if not isinstance(show_progress, bool):
            raise ValueError(f"show_progress: {show_progress!r} is invalid, expected a bool")
        progress = show_progress and f"{self.get_name()} attribution"  # Captum's label
        bases = per_input_baselines(baselines, tensors)
        try:
            results = self._sweeps(
                self.forward_func, tensors, windows, steps, bases, index, extra,
                n * perturbations_per_eval, progress,
            )  # fmt: skip
        except AggregateOutputError:
            if index.last or index.per_example is not None:
                raise
            if perturbations_per_eval != 1:
                raise CaptumArgumentError(
                    "forward_func: returned one value for the whole batch (Captum's aggregate "
                    f"mode), which needs perturbations_per_eval=1, not {perturbations_per_eval}"
                ) from None
            results = self._aggregate(tensors, windows, steps, baselines, extra, progress)
        return tuple(results) if is_tuple else results[0]

    def _aggregate(
        self,
        tensors: list[torch.Tensor],
        windows: list[tuple[int, ...]],
        steps: list[tuple[int, ...]],
        baselines: Any,
        extra: tuple[Any, ...],
        progress: bool | str,
    ) -> list[torch.Tensor]:
        """Captum's aggregate mode (a function returning one value for the whole batch):
        every window is occluded in all N examples at once, one call of the N examples per
        window, and the attributions, (1, ...), are the drops of that value. The sweep sees
        the batch as one example of shape (N, ...) whose windows span the N examples."""
        n = tensors[0].shape[0]
        whole = [tensor.unsqueeze(0) for tensor in tensors]
        count = len(tensors)

        def per_batch(*args: Any) -> torch.Tensor:
            """The function on each (N, ...) example of a batch of them: (B,) values."""
            return torch.stack(
                [
                    torch.as_tensor(
                        self.forward_func(*(arg[b] for arg in args[:count]), *args[count:])
                    ).reshape(())
                    for b in range(len(args[0]))
                ]
            )

        maps = self._sweeps(
            per_batch, whole, [(n, *w) for w in windows], [(n, *s) for s in steps],
            per_input_baselines(baselines, whole), TargetIndex(), extra, 1, progress,
        )  # fmt: skip
        return [result[:, 0] for result in maps]

    def _sweeps(
        self,
        forward: Callable[..., Any],
        tensors: list[torch.Tensor],
        windows: list[tuple[int, ...]],
        steps: list[tuple[int, ...]],
        bases: list[tuple[torch.dtype, np.ndarray]],
        index: TargetIndex,
        extra: tuple[Any, ...],
        batch: int,
        progress: bool | str,
    ) -> list[torch.Tensor]:
        """One sweep of ``forward`` per input tensor, ``batch`` samples per call: the
        attributions of each tensor (``last_stats``: the last sweep's)."""
        results = []
        for k, tensor in enumerate(tensors):
            started = time.perf_counter()
            dtype, baseline = bases[k]
            array = host_bits(tensor.to(dtype))
            window, step = windows[k], steps[k]
            if tensor.dim() == 1:  # one scalar feature per example: swept as (N, 1)
                array, window, step = array.reshape(-1, 1), (1,), (1,)
                baseline = baseline.reshape(baseline.shape + (1,) * (baseline.ndim > 0))
            geometry = WindowGeometry(array.shape[1:], window, step, "cover")
            backend = ForwardBackend(forward, tensors, k, index, extra, swept_dtype=dtype)
            options = self._incremental_options(tensor, dtype)
            if self._approximation is None:
                sweep = build_sweep(
                    backend, array, geometry, baseline, batch, progress=progress,
                    incremental=options,
                )  # fmt: skip
                _, maps = sweep.run(np.zeros((len(array), 0), np.float32), "mean", ())
                self.last_stats = sweep.stats(started)
            else:
                maps = self._drill_down(
                    backend, array, geometry, baseline, batch, progress, options, started
                )  # fmt: skip
            results.append(backend.wrap_result(maps).reshape(tensor.shape))
        return results

    def _drill_down(
        self, backend: Any, array: np.ndarray, geometry: WindowGeometry, baseline: np.ndarray,
        batch: int, progress: bool | str, options: IncrementalOptions, started: float,
    ) -> np.ndarray:  # fmt: skip
        """One tensor's attributions with ``approximate`` (engine.drill_down); ValueError
        naming ``approximate`` for a bad coarse stride, before any call."""
        axes = tuple(range(len(geometry.sample_shape)))
        approximation = for_geometry(self._approximation, geometry, axes)
        assert approximation is not None
        no_targets = np.zeros((len(array), 0), np.float32)
        grid = geometry.grid()

        def run(g: WindowGeometry, pairs: np.ndarray | None, tau: float | None) -> Any:
            sweep = build_sweep(
                backend, array, g, baseline, batch, progress=progress,
                incremental=replace(options, truncation=tau), pairs=pairs,
            )  # fmt: skip
            sweep.run(no_targets, "mean", ())
            return sweep

        def assemble(values: np.ndarray) -> np.ndarray:
            return _core.accumulate_window_deltas(values, grid, "mean", ())

        maps, self.last_stats, _ = explain_by_drill_down(
            geometry, approximation, len(array), run, assemble, started
        )
        return maps

    def attribute_future(self) -> None:
        """Not implemented, as Captum's ``Occlusion.attribute_future`` is not."""
        raise NotImplementedError("attribute_future is not implemented for Occlusion")

    def has_convergence_delta(self) -> bool:
        """False, as Captum's: occlusion has no convergence delta."""
        return False

    @property
    def multiplies_by_inputs(self) -> bool:
        """True, as Captum's perturbation attributions: the drops are global attributions
        (the inputs' values are part of them)."""
        return True

    @classmethod
    def get_name(cls) -> str:
        """Captum's readable class name: a space before every capital but the first
        ("Occlusion")."""
        return "".join(c if c.islower() or i == 0 else " " + c for i, c in enumerate(cls.__name__))

    def _incremental_options(self, tensor: torch.Tensor, dtype: torch.dtype) -> IncrementalOptions:
        """The engine's incremental options for one input tensor swept in ``dtype``: (N, C,
        *axes) float32 or float64 tensors with one to three map axes (signals, images,
        volumes) are channels-first feature maps (the map axes: 1 to rank - 2 of one
        example); any other rank or dtype is not."""
        maps = 3 <= tensor.dim() <= 5
        floats = dtype in (torch.float32, torch.float64)
        family = f"a tensor of shape {tuple(tensor.shape)} (maps are (N, C, *axes))"
        if maps and not floats:
            family = f"{dtype} batches (maps are float32 or float64 (N, C, *axes) tensors)"
        axes = tuple(range(1, tensor.dim() - 1)) if maps and floats else None
        return IncrementalOptions(
            self.incremental, self.incremental_threshold, axes, channels_last=False,
            family=family,
        )  # fmt: skip
