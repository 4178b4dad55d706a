"""MONAI's ``OcclusionSensitivity`` class: its arguments translated into the engine's
windows ("shift" edges), baselines, blending and incremental options, over an
OutputsBackend (see the package docstring)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from fastocclusion import _core
from fastocclusion.backends.torch.outputs import OutputsBackend
from fastocclusion.engine import ExplainStats, IncrementalOptions, WindowGeometry, build_sweep
from fastocclusion.engine.approximate import explain_by_drill_down
from fastocclusion.engine.approximation import check_approximate, for_geometry
from fastocclusion.frameworks import installed
from fastocclusion.inputs import as_batch_dtype
from fastocclusion.monai.arguments import batch_dtype, batch_image, check_image, per_axis
from fastocclusion.monai.windows import crops, gaussian_importance, gaussian_mask, scan_intervals
from fastocclusion.options import check_incremental, check_switch_share, is_int, is_real

__all__ = ["MODES", "MonaiModeError", "OcclusionSensitivity"]

MODES = ("gaussian", "mean_patch", "mean_img")


class MonaiModeError(ValueError, NotImplementedError):
    """An invalid ``mode``: a ValueError naming it, also caught by ``except
    NotImplementedError`` as MONAI's own check is."""


class OcclusionSensitivity:
    """MONAI 1.6's occlusion sensitivity, with MONAI's arguments and results (see the module
    docstring).

    ``incremental`` (keyword only, beyond MONAI's signature): exact incremental inference
    (design §8) when ``nn_module`` is a ``torch.nn.Module``, ``x`` a 1-D, 2-D or 3-D image
    on the CPU or a CUDA device and no keyword arguments go to the module: only the boxes
    of the feature maps a window can change are recomputed, from the unoccluded image's
    activations (every mode qualifies: each changes only the window's box; Conv1d/2d/3d and their
    pools, batch norms, activations, residual sums and concatenations run on boxes).
    "auto" (default): where the module and the sweep allow it and it saves work, else the
    normal sweep; True: always (ValueError naming ``incremental`` and the first
    unsupported layer or argument, before any model call); False: the normal sweep, with
    MONAI's model calls. The maps are the same either way (float32 round-off).
    ``incremental_threshold``: the switch-back share of a feature map, in (0, 1] (None:
    PyTorch's default, engine.regions.DEFAULT_SWITCH_SHARE). ``last_stats``: the
    ExplainStats of the last call (``incremental_layers``, ``incremental_note``: what ran
    incrementally and why).
    ``approximate`` (keyword only): None (default, exact), "auto" or a dict, as
    ``fastocclusion.Occlusion``'s (engine.drill_down: a coarse sweep, then the exact windows
    only where the coarse map stands out; ``coarse_stride`` one value or one per spatial
    axis; ``last_stats.approximate_share`` / ``approximate_ssim`` / ``approximate_note``
    report the share computed exactly and the estimated error); its batches are filled where
    exact ones are (on the device of a module on a GPU).

    >>> occ_sens = OcclusionSensitivity(net, mask_size=12, n_batch=16)  # doctest: +SKIP
    >>> occ_map, most_probable_class = occ_sens(image)  # (1, C, H, W)  # doctest: +SKIP
    >>> occ_sens.last_stats.incremental_note  # doctest: +SKIP
    """

    def __init__(
        self,
        nn_module: Callable[..., Any],
        mask_size: int | Sequence[int] = 16,
        n_batch: int = 16,
        verbose: bool = True,
        mode: str | float = "gaussian",
        overlap: float | Sequence[float] = 0.6,
        activate: bool | Callable[[torch.Tensor], Any] = True,
        *,
        incremental: str | bool = "auto",
        incremental_threshold: float | None = None,
        approximate: str | dict[str, Any] | None = None,
    ) -> None:
        self._approximation = check_approximate(approximate)
        self.approximate = approximate
        if not callable(nn_module):
            raise ValueError(f"nn_module: {nn_module!r} is invalid, expected a torch module")
        if not is_int(n_batch) or n_batch < 1:
            raise ValueError(f"n_batch: {n_batch!r} is invalid, expected an integer >= 1")
        if not isinstance(verbose, bool):
            raise ValueError(f"verbose: {verbose!r} is invalid, expected a bool")
        if not (is_real(mode) or (isinstance(mode, str) and mode in MODES)):
            extra = (
                " (a callable mode needs a Python call per window: not supported)"
                if callable(mode)
                else ""
            )
            raise MonaiModeError(
                f"mode: {mode!r} is invalid, expected a number, 'gaussian', 'mean_patch' or "
                f"'mean_img'{extra}"
            )
        if is_real(mode) and not np.isfinite(float(mode)):
            raise MonaiModeError(f"mode: {mode!r} is invalid, expected a finite occlusion value")
        if not (isinstance(activate, bool) or callable(activate)):
            raise ValueError(f"activate: {activate!r} is invalid, expected a bool or a callable")
        self.nn_module = nn_module
        self.mask_size = mask_size
        self.n_batch = n_batch
        self.verbose = verbose
        self.mode = mode
        self.overlap = overlap
        self.activate = activate
        self.incremental = check_incremental(incremental)
        self.incremental_threshold = check_switch_share(incremental_threshold)
        #: ExplainStats of the last call (None before the first).
        self.last_stats: ExplainStats | None = None

    def __call__(
        self, x: torch.Tensor, b_box: Sequence[int] | None = None, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        started = time.perf_counter()
        image = check_image(x)
        axes = image.ndim - 2
        mask = per_axis(
            self.mask_size, axes, "mask_size", lambda v: is_int(v) and v >= 1, "an integer >= 1"
        )
        overlap = per_axis(
            self.overlap,
            axes,
            "overlap",
            lambda v: is_real(v) and 0 <= v < 1,
            "a number in [0, 1)",
        )
        if b_box is not None:
            given = b_box.tolist() if hasattr(b_box, "tolist") else b_box  # NumPy, torch
            given = list(given) if isinstance(given, (list, tuple)) else []
            if len(given) != 2 * axes or not all(is_int(b) for b in given):
                raise ValueError(
                    f"b_box: {b_box!r} is invalid, expected {2 * axes} integers [min1, max1, ...]"
                )
            b_box = [int(b) for b in given]
        spatial = image.shape[2:]
        crop = crops(b_box, mask, spatial)
        sizes = tuple(hi - lo for lo, hi in crop.region)
        if any(m > s for m, s in zip(crop.mask_size, sizes)):
            raise ValueError(
                f"mask_size: {crop.mask_size} is invalid for the image's spatial shape {sizes}, "
                "expected a mask no larger than the image"
            )
        channels = image.shape[1]
        geometry = WindowGeometry(
            sample_shape=image.shape[1:],
            window=(channels, *crop.mask_size),
            stride=(channels, *scan_intervals(sizes, crop.mask_size, overlap)),
            edges="shift",
            collapsed_axes=(0,),
            region=((0, channels), *crop.region),
        )
        dtype = batch_dtype(x.dtype, self.mode)
        image = batch_image(x, image, dtype)
        baseline, kind, importance = self._baseline(x, channels, crop.mask_size, dtype)
        activation = (
            self.activate
            if callable(self.activate)
            else ("sigmoid" if channels == 1 else "softmax")
            if self.activate
            else None
        )
        backend = OutputsBackend(self.nn_module, x.device, x.dtype, activation, kwargs,
                                 batch_dtype=dtype)  # fmt: skip
        batch = min(self.n_batch, geometry.grid().num_windows)
        # MONAI shows its bar "if tqdm available": no bar (and no error) without it.
        progress = self.verbose and installed("tqdm")
        collapsed = geometry.collapsed_axes
        approximation = for_geometry(self._approximation, geometry, tuple(range(1, axes + 1)))

        def sweep_of(
            g: WindowGeometry, pairs: np.ndarray | None = None, tau: float | None = None
        ) -> Any:  # fmt: skip
            return build_sweep(
                backend, image, g, baseline, batch, baseline_kind=kind, progress=progress,
                incremental=self._incremental_options(axes, tau), pairs=pairs,
            )  # fmt: skip

        if approximation is None:
            sweep = sweep_of(geometry)
            classes, maps = sweep.run_values(importance, collapsed)
            self.last_stats = sweep.stats(started)
        else:
            grid = geometry.grid()

            def run(g: WindowGeometry, pairs: np.ndarray | None, tau: float | None) -> Any:
                sweep = sweep_of(g, pairs, tau)
                sweep.run_values(importance, collapsed)
                return sweep

            def assemble(values: np.ndarray) -> np.ndarray:
                if importance is None:
                    return _core.accumulate_window_deltas(values, grid, "mean", collapsed)
                return _core.blend_window_values(values, grid, importance, collapsed)

            maps, self.last_stats, _ = explain_by_drill_down(
                geometry, approximation, 1, run, assemble, started
            )  # fmt: skip
            classes = len(maps)
        result = backend.wrap_result(maps.reshape((1, classes) + tuple(spatial)))
        result = result[(slice(None), slice(None), *crop.output)]
        return result, result.argmax(dim=1, keepdim=True)

    def _incremental_options(self, axes: int, tau: float | None = None) -> IncrementalOptions:
        """The engine's incremental options for an image of ``axes`` spatial axes (1 to 3:
        signals, images, volumes), channels first: the map axes are 1 to ``axes`` of (C,
        *spatial); ``tau``: the drill-down's projective-field truncation (None: exact)."""
        return IncrementalOptions(
            self.incremental, self.incremental_threshold, tuple(range(1, axes + 1)),
            channels_last=False, truncation=tau,
        )  # fmt: skip

    def _baseline(
        self, x: torch.Tensor, channels: int, mask: tuple[int, ...], dtype: np.dtype
    ) -> tuple[np.ndarray | None, str, np.ndarray | None]:
        """(the baseline values in the batches' ``dtype``, the engine's baseline kind, the
        blending importance). A constant is rounded as MONAI's ``ones * value`` rounds it
        in the image's dtype (via float32 for the half types, as torch computes); the
        Gaussian mask is float32 values (MONAI's)."""
        if is_real(self.mode) or self.mode == "mean_img":
            value = self.mode if is_real(self.mode) else x.detach().mean().item()
            return as_batch_dtype(np.asarray(value), dtype), "auto", None
        if self.mode == "mean_patch":
            return None, "window_mean_scale", None
        occlusion = as_batch_dtype(gaussian_mask(channels, mask).numpy(), dtype)
        importance = gaussian_importance(mask).numpy()[None]  # (1, *mask): channels collapsed
        return occlusion, "window_mask", importance
