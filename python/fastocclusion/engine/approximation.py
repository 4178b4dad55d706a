"""The ``approximate`` option of every front-end, checked (engine.drill_down and
engine.projective_field run it): what the user asked for, and the coarse pass's windows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fastocclusion.engine.geometry import WindowGeometry

__all__ = [
    "DEFAULT_TARGET_SSIM",
    "Approximation",
    "check_approximate",
    "coarse_geometry",
    "for_geometry",
]

#: "auto"'s target SSIM of the map against the exact map (Krypton's default quality).
DEFAULT_TARGET_SSIM = 0.9
_KEYS = ("drill_down", "coarse_stride", "target_ssim", "projective_field")


@dataclass(frozen=True)
class Approximation:
    """Checked ``approximate`` options: ``share`` (the share r of windows computed exactly;
    None: chosen for ``target_ssim``), ``coarse_stride`` (as the user gave it: one value or
    one per patch axis of the front-end; per axis of the geometry after ``for_geometry``;
    None: at least the window, a multiple of the stride)."""

    share: float | None
    coarse_stride: tuple[int, ...] | None
    target_ssim: float = DEFAULT_TARGET_SSIM
    #: The projective-field truncation share tau (None: none).
    projective_field: float | None = None
    #: "projective_field": "auto": tau chosen among engine.projective_field.AUTO_SHARES
    #: for the target SSIM, measured on the coarse windows.
    tune_projective_field: bool = False


def _number(value: Any, name: str, low: float, high: float, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"approximate: {name}={value!r} is invalid, expected {expected}")
    number = float(value)
    if not (low < number <= high) or not math.isfinite(number):
        raise ValueError(f"approximate: {name}={value!r} is invalid, expected {expected}")
    return number


def check_approximate(value: Any) -> Approximation | None:
    """The options of ``approximate``: None (exact), "auto" (SSIM 0.9 to the exact map),
    or a dict with "drill_down" (r in (0, 1]) and/or "coarse_stride" (an int or one per
    patch axis), or "target_ssim" (in (0, 1)) instead of "drill_down", and/or
    "projective_field" (tau in (0, 1]; alone: every window swept, truncated; "auto": tau
    chosen for the target SSIM, 0.9 by default). ValueError
    naming ``approximate`` otherwise (before any model call).

    >>> check_approximate({"drill_down": 0.25}).share
    0.25
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(
                f"approximate: {value!r} is invalid, expected None, 'auto' or a dict of "
                f"{', '.join(_KEYS)}"
            )
        return Approximation(None, None)
    if not isinstance(value, dict):
        raise ValueError(
            f"approximate: {value!r} is invalid, expected None, 'auto' or a dict of "
            f"{', '.join(_KEYS)}"
        )
    unknown = sorted(set(value) - set(_KEYS), key=str)
    if unknown:
        raise ValueError(f"approximate: keys {unknown} are invalid, expected {list(_KEYS)}")
    if "drill_down" in value and "target_ssim" in value:
        raise ValueError(
            "approximate: give 'drill_down' (a share of windows) or 'target_ssim' (the share "
            "chosen for it), not both"
        )
    tau: float | None = None
    tuned = isinstance(value.get("projective_field"), str) and value["projective_field"] == "auto"
    if "projective_field" in value and not tuned:
        tau = _number(value["projective_field"], "projective_field", 0.0, 1.0,
                      "a share of a feature map in (0, 1] or 'auto'")  # fmt: skip
    share = None
    if "drill_down" in value:
        share = _number(value["drill_down"], "drill_down", 0.0, 1.0, "a share in (0, 1]")
    elif tau is not None and "target_ssim" not in value:
        share = 1.0  # truncation alone: every window swept, truncated
    target = DEFAULT_TARGET_SSIM
    if "target_ssim" in value:
        target = _number(value["target_ssim"], "target_ssim", 0.0, 1.0, "an SSIM in (0, 1)")
        if target >= 1.0:
            raise ValueError(
                f"approximate: target_ssim={value['target_ssim']!r} is invalid, expected an "
                "SSIM in (0, 1) (1 is the exact sweep: approximate=None)"
            )
    stride = value.get("coarse_stride")
    strides: tuple[int, ...] | None = None
    if stride is not None:
        items = stride if isinstance(stride, (tuple, list)) else (stride,)
        if not items or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in items
        ):
            raise ValueError(
                f"approximate: coarse_stride={stride!r} is invalid, expected a positive int "
                "or one per patch axis"
            )
        strides = tuple(int(s) for s in items)
    return Approximation(share, strides, target, tau, tuned)


def for_geometry(
    approximation: Approximation | None, geometry: WindowGeometry, axes: Sequence[int]
) -> Approximation | None:  # fmt: skip
    """``approximation`` with its coarse stride per axis of ``geometry``: the user's one
    value for every one of ``axes`` (the front-end's patch axes) or one per such axis, the
    other axes keeping their stride; None stays the default. ValueError naming
    ``approximate`` for another count, or a coarse grid that does not fit (no model call).
    None (exact) stays None."""
    if approximation is None:
        return None
    given = approximation.coarse_stride
    if given is None:
        return approximation
    if len(given) == 1:
        given = given * len(axes)
    if len(given) != len(axes):
        raise ValueError(
            f"approximate: coarse_stride={approximation.coarse_stride} is invalid, expected an "
            f"int or {len(axes)} values (one per patch axis)"
        )
    stride = list(geometry.stride)
    for axis, value in zip(axes, given):
        stride[axis] = value
    try:
        coarse_geometry(geometry, stride).grid()
    except ValueError as error:
        raise ValueError(f"approximate: coarse_stride={tuple(given)} is invalid: {error}") from None
    return replace(approximation, coarse_stride=tuple(stride))


def coarse_geometry(geometry: WindowGeometry, stride: Sequence[int] | None) -> WindowGeometry:
    """The coarse pass's windows: ``stride`` per axis of ``geometry`` (None: the smallest
    multiple of the stride that is at least the window, on axes with several windows)."""
    counts = tuple(geometry.grid().counts)
    if stride is None:
        stride = tuple(
            s * -(-w // s) if c > 1 else s
            for w, s, c in zip(geometry.window, geometry.stride, counts)
        )
    return WindowGeometry(
        geometry.sample_shape, geometry.window, tuple(stride), geometry.edges,
        geometry.collapsed_axes, geometry.region,
    )  # fmt: skip
