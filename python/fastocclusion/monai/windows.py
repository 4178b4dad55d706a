"""MONAI 1.6's numbers for its occlusion sensitivity, rewritten with torch alone (MONAI is
not needed): where its sliding windows go (``_get_scan_interval`` and the bounding-box
crops of ``OcclusionSensitivity``), the "gaussian" occlusion mask (``gaussian_occlusion``:
``GaussianSmooth`` with its erf kernel truncated at 4 sigma, negated, ``ScaleIntensity``) and
the "gaussian" blending weights (``compute_importance_map``). The same torch operations in
the same order, so the masks and weights equal MONAI's bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Crop", "crops", "gaussian_importance", "gaussian_mask", "scan_intervals"]


@dataclass(frozen=True)
class Crop:
    """Per spatial axis: the region the windows slide over ([begin, end), MONAI's cropped
    meshgrid), the mask size clamped to it, and the slice of the returned map."""

    region: tuple[tuple[int, int], ...]
    mask_size: tuple[int, ...]
    output: tuple[slice, ...]


def crops(b_box: Sequence[int] | None, mask_size: Sequence[int], shape: Sequence[int]) -> Crop:
    """MONAI's ``crop_meshgrid`` and final crop for ``b_box`` ([min1, max1, min2, ...]; None:
    the whole image) over a spatial ``shape``. ValueError naming b_box for a box that selects
    nothing along some axis."""
    if b_box is None:
        whole = tuple((0, s) for s in shape)
        return Crop(whole, tuple(mask_size), tuple(slice(0, s) for s in shape))
    edges = [(m - 1) // 2 for m in mask_size]
    lows = [max(b - m, 0) for b, m in zip(b_box[::2], edges)]
    highs = [s if b == -1 else min(b + m, s) for b, m, s in zip(b_box[1::2], edges, shape)]
    outputs = []
    for axis, (lo, hi, s, b_lo, b_hi) in enumerate(
        zip(lows, highs, shape, b_box[::2], b_box[1::2])
    ):
        start = max(b_lo, 0)  # SpatialCrop(roi_start, roi_end): ends below starts are empty
        stop = min(max(b_hi if b_hi > 0 else s, start), s)
        if hi <= lo or stop <= start:
            raise ValueError(
                f"b_box: {list(b_box)} selects nothing along spatial axis {axis} (of size {s}), "
                "expected min < max within the image, or -1 for the whole axis"
            )
        outputs.append(slice(start, stop))
    clamped = tuple(min(hi - lo, m) for lo, hi, m in zip(lows, highs, mask_size))
    return Crop(tuple(zip(lows, highs)), clamped, tuple(outputs))


def scan_intervals(
    sizes: Sequence[int], mask_size: Sequence[int], overlap: Sequence[float]
) -> tuple[int, ...]:
    """MONAI's ``_get_scan_interval``: the window itself where it spans the axis, else
    ``int(window * (1 - overlap))``, at least 1."""
    intervals = []
    for size, window, o in zip(sizes, mask_size, overlap):
        if window == size:
            intervals.append(int(window))
        else:
            interval = int(window * (1 - o))
            intervals.append(interval if interval > 0 else 1)
    return tuple(intervals)


def _gaussian_1d(sigma: float) -> torch.Tensor:
    """monai.networks.layers.convutils.gaussian_1d(sigma, truncated=4.0, approx="erf")."""
    s = torch.as_tensor(sigma, dtype=torch.float)
    tail = int(max(float(s) * 4.0, 0.5) + 0.5)
    x = torch.arange(-tail, tail + 1, dtype=torch.float)
    t = 0.70710678 / torch.abs(s)
    return (0.5 * ((t * (x + 0.5)).erf() - (t * (x - 0.5)).erf())).clamp(min=0)


def _separable_filter(x: torch.Tensor, kernels: list[torch.Tensor]) -> torch.Tensor:
    """monai.networks.layers.separable_filtering with zero padding: every axis padded first
    (last axis first), then one depthwise convolution per axis, first axis first."""
    dims, channels = x.dim() - 2, x.shape[1]
    conv = [F.conv1d, F.conv2d, F.conv3d][dims - 1]

    def level(tensor: torch.Tensor, d: int) -> torch.Tensor:
        if d < 0:
            return tensor
        shape = [1] * tensor.dim()
        shape[d + 2] = -1
        kernel = kernels[d].reshape(shape)
        if kernel.numel() == 1 and kernel[0] == 1:
            return level(tensor, d - 1)
        kernel = kernel.repeat([channels, 1] + [1] * dims)
        padding = [0] * dims
        padding[d] = (kernels[d].shape[0] - 1) // 2
        padded = F.pad(tensor, sum([[p, p] for p in reversed(padding)], []), mode="constant")
        return conv(input=level(padded, d - 1), weight=kernel, groups=channels)

    return level(x, dims - 1)


def gaussian_mask(channels: int, mask_size: Sequence[int]) -> torch.Tensor:
    """MONAI's "gaussian" occlusion multiplier, float32 (channels, *mask_size): a one at the
    centre smoothed with sigma = mask / 4 per axis, negated and scaled to [0, 1] (0 at the
    centre, 1 at the far corners; all zeros when constant, e.g. a 1-voxel mask). Float32
    whatever the image's dtype: MONAI's GaussianSmooth and ScaleIntensity compute in float32.

    >>> gaussian_mask(1, (3,)).tolist()
    [[1.0, 0.0, 1.0]]
    """
    kernel = torch.zeros((channels, *mask_size), dtype=torch.float)
    kernel[(slice(None), *(slice(s // 2, s // 2 + 1) for s in mask_size))] = 1.0
    kernels = [_gaussian_1d(b * 0.25) for b in mask_size]
    smooth = -_separable_filter(kernel.unsqueeze(0), kernels).squeeze(0)
    low, high = smooth.min(), smooth.max()
    if low == high:
        return smooth * 0.0
    return (smooth - low) / (high - low) * 1.0 + 0.0


def gaussian_importance(mask_size: Sequence[int], sigma_scale: float = 0.125) -> torch.Tensor:
    """MONAI's ``compute_importance_map(mask_size, mode="gaussian")``, float32: a separable
    Gaussian of sigma = window * sigma_scale, clamped below at max(its minimum, 1e-3)."""
    sigmas = [i * sigma_scale for i in mask_size]
    importance = torch.ones(())
    for i, size in enumerate(mask_size):
        x = torch.arange(start=-(size - 1) / 2.0, end=(size - 1) / 2.0 + 1, dtype=torch.float)
        x = torch.exp(x**2 / (-2 * sigmas[i] ** 2))
        importance = importance.unsqueeze(-1) * x[(None,) * i] if i > 0 else x
    floor = max(torch.min(importance).item(), 1e-3)
    return torch.clamp_(importance.to(torch.float), min=floor)
