"""MONAI's ``OcclusionSensitivity`` over fastocclusion's engine: the constructor and call of
MONAI 1.6 (``monai.visualize.OcclusionSensitivity``) and its results, with the model calls
as the only cost. MONAI itself is not needed.

What MONAI computes, and so this: for one image ``x`` of shape (1, C, *spatial) (1 to 3
spatial axes), a window of ``mask_size`` slides over the spatial axes (all channels at once)
at MONAI's sliding-window positions: steps of ``int(mask * (1 - overlap))`` (at least 1;
the window itself where it spans the axis), the last window moved back to end at the edge
(engine geometry: "shift" edges). Each window's region is occluded:

- a number: set to that value;
- ``"mean_img"``: set to the mean of the whole image;
- ``"mean_patch"``: multiplied by the mean of the occluded region (all channels): MONAI
  1.6 documents "replaced with the mean" but multiplies (``add, mul`` swapped in its
  predictor), and this reproduces what MONAI computes;
- ``"gaussian"``: multiplied by 1 - a Gaussian (0 at the window's centre, 1 at its corners).

Every occluded image goes through ``nn_module`` (in eval mode, with ``**kwargs``), and its
outputs, activated (``activate=True``: a sigmoid when ``x`` has one channel, else a softmax
over the classes; a callable; or ``False``: none), are the map: each voxel gets, per class,
the mean of the outputs of the windows covering it, weighted by a Gaussian over the window
for ``"gaussian"`` (MONAI's ``sliding_window_inference`` blending), evenly otherwise. The map
is of the outputs themselves, not of a drop. ``b_box`` ([min1, max1, min2, ...], -1: the
whole axis) restricts the windows to the box widened by half a mask (MONAI's margins) and
crops the map to [min, max) per axis.

Returns ``(occ_sens_map, most_probable_class)``: the map (1, classes, *spatial cropped),
float32 on ``x``'s device (MONAI 1.6 returns float32 whatever ``x``'s dtype), and its argmax
over the classes (1, 1, *spatial cropped), int64.
Batches are built in float32 (the kernels' type) and cast to ``x``'s dtype for the call.
Not supported: a callable ``mode`` (MONAI calls it once per window: a Python loop per
window is what this package exists to avoid).
"""

from __future__ import annotations

import importlib.util
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from fastocclusion.backends.torch.outputs import OutputsBackend
from fastocclusion.engine import WindowGeometry, build_sweep
from fastocclusion.monai_windows import crops, gaussian_importance, gaussian_mask, scan_intervals

__all__ = ["OcclusionSensitivity"]

MODES = ("gaussian", "mean_patch", "mean_img")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _per_axis(value: Any, axes: int, name: str, check: Callable[[Any], bool], what: str) -> tuple:
    """MONAI's ensure_tuple_rep: one value for every spatial axis, or one per axis."""
    values = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if values is None:
        values = (value,) * axes
    if len(values) != axes or not all(check(v) for v in values):
        raise ValueError(
            f"{name}: {value!r} is invalid for {axes} spatial axes, expected {what} or a "
            f"sequence of {axes} of them"
        )
    return values


class OcclusionSensitivity:
    """MONAI 1.6's occlusion sensitivity, with MONAI's arguments and results (see the module
    docstring)."""

    def __init__(
        self,
        nn_module: Callable[..., Any],
        mask_size: int | Sequence[int] = 16,
        n_batch: int = 16,
        verbose: bool = True,
        mode: str | float = "gaussian",
        overlap: float | Sequence[float] = 0.6,
        activate: bool | Callable[[torch.Tensor], Any] = True,
    ) -> None:
        if not callable(nn_module):
            raise ValueError(f"nn_module: {nn_module!r} is invalid, expected a torch module")
        if not _is_int(n_batch) or n_batch < 1:
            raise ValueError(f"n_batch: {n_batch!r} is invalid, expected an integer >= 1")
        if not isinstance(verbose, bool):
            raise ValueError(f"verbose: {verbose!r} is invalid, expected a bool")
        if not (_is_real(mode) or (isinstance(mode, str) and mode in MODES)):
            extra = (
                " (a callable mode needs a Python call per window: not supported)"
                if callable(mode)
                else ""
            )
            raise ValueError(
                f"mode: {mode!r} is invalid, expected a number, 'gaussian', 'mean_patch' or "
                f"'mean_img'{extra}"
            )
        if _is_real(mode) and not np.isfinite(float(mode)):
            raise ValueError(f"mode: {mode!r} is invalid, expected a finite occlusion value")
        if not (isinstance(activate, bool) or callable(activate)):
            raise ValueError(f"activate: {activate!r} is invalid, expected a bool or a callable")
        self.nn_module = nn_module
        self.mask_size = mask_size
        self.n_batch = n_batch
        self.verbose = verbose
        self.mode = mode
        self.overlap = overlap
        self.activate = activate

    def __call__(
        self, x: torch.Tensor, b_box: Sequence[int] | None = None, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        image = _check_image(x)
        axes = image.ndim - 2
        mask = _per_axis(
            self.mask_size, axes, "mask_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1"
        )
        overlap = _per_axis(
            self.overlap,
            axes,
            "overlap",
            lambda v: _is_real(v) and 0 <= v < 1,
            "a number in [0, 1)",
        )
        if b_box is not None:
            given = b_box.tolist() if hasattr(b_box, "tolist") else b_box  # NumPy, torch
            given = list(given) if isinstance(given, (list, tuple)) else []
            if len(given) != 2 * axes or not all(_is_int(b) for b in given):
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
        baseline, kind, importance = self._baseline(x, channels, crop.mask_size)
        activation = (
            self.activate
            if callable(self.activate)
            else ("sigmoid" if channels == 1 else "softmax")
            if self.activate
            else None
        )
        backend = OutputsBackend(self.nn_module, x.device, x.dtype, activation, kwargs)
        batch = min(self.n_batch, geometry.grid().num_windows)
        # MONAI shows its bar "if tqdm available": no bar (and no error) without it.
        progress = self.verbose and importlib.util.find_spec("tqdm") is not None
        sweep = build_sweep(
            backend, image, geometry, baseline, batch, baseline_kind=kind, progress=progress
        )
        classes, maps = sweep.run_values(importance, geometry.collapsed_axes)
        result = backend.wrap_result(maps.reshape((1, classes) + tuple(spatial)))
        result = result[(slice(None), slice(None), *crop.output)]
        return result, result.argmax(dim=1, keepdim=True)

    def _baseline(
        self, x: torch.Tensor, channels: int, mask: tuple[int, ...]
    ) -> tuple[np.ndarray | None, str, np.ndarray | None]:
        """(the baseline values, the engine's baseline kind, the blending importance)."""
        if _is_real(self.mode):
            return np.asarray(self.mode, np.float32), "auto", None
        if self.mode == "mean_img":
            return np.asarray(x.detach().mean().item(), np.float32), "auto", None
        if self.mode == "mean_patch":
            return None, "window_mean_scale", None
        occlusion = gaussian_mask(channels, mask).numpy()
        importance = gaussian_importance(mask).numpy()[None]  # (1, *mask): channels collapsed
        return occlusion, "window_mask", importance


def _check_image(x: Any) -> np.ndarray:
    """x as a C-contiguous float32 (1, C, *spatial) array; ValueError naming x otherwise."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x: {type(x).__name__} is invalid, expected a torch.Tensor")
    if not x.is_floating_point() or x.dim() < 3 or x.dim() > 5 or x.numel() == 0:
        raise ValueError(
            f"x: a {x.dtype} tensor of shape {tuple(x.shape)} is invalid, expected floats of "
            "shape (1, C, *spatial) with 1 to 3 non-empty spatial axes"
        )
    if x.shape[0] != 1:
        raise ValueError(
            f"x: a batch of {x.shape[0]} images is invalid, expected a batch of 1 (as MONAI)"
        )
    plain = x.detach().as_subclass(torch.Tensor)  # a MONAI MetaTensor too
    image = np.ascontiguousarray(plain.to("cpu", torch.float32).numpy())
    if not np.all(np.isfinite(image)):
        raise ValueError("x: NaN or inf values are invalid, expected finite values")
    return image
