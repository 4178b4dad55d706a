"""Every option of the Xplique-style ``Occlusion``, checked without a model: the one check
that ``Occlusion``, ``fastocclusion.distributed`` and the training callbacks run."""

from __future__ import annotations

from typing import Any

from fastocclusion import tasks
from fastocclusion.engine.approximation import check_approximate
from fastocclusion.options import (
    DEVICES,
    EDGES,
    REDUCTIONS,
    check_batch_size,
    check_choice,
    check_incremental,
    check_occlusion_value,
    check_sizes,
    check_switch_share,
)
from fastocclusion.xplique.layouts import DATA_FORMATS

__all__ = ["check_options"]


def check_options(
    *,
    batch_size: Any = 32,
    operator: Any = None,
    patch_size: Any = 3,
    patch_stride: Any = 3,
    occlusion_value: Any = 0.0,
    data_format: Any = "channels_last",
    edges: Any = "valid",
    reduction: Any = "sum",
    progress: Any = False,
    device: Any = "auto",
    incremental: Any = "auto",
    incremental_threshold: Any = None,
    approximate: Any = None,
) -> dict[str, Any]:
    """Every option of ``Occlusion`` checked without a model, in the constructor's order (a
    ValueError naming the first invalid one, a TypeError for an invalid operator): the one
    check ``Occlusion`` and ``fastocclusion.distributed`` run. Returns the checked values
    (patch sizes as tuples, the baseline as an array, the switch-back share resolved).

    >>> check_options(patch_size=4, incremental=False)["patch_size"]
    (4,)
    """
    checked: dict[str, Any] = {"batch_size": check_batch_size(batch_size)}
    checked["patch_size"] = check_sizes(patch_size, "patch_size")
    checked["patch_stride"] = check_sizes(patch_stride, "patch_stride")
    checked["occlusion_value"] = check_occlusion_value(occlusion_value)
    checked["data_format"] = check_choice(data_format, "data_format", DATA_FORMATS)
    checked["edges"] = check_choice(edges, "edges", EDGES)
    checked["reduction"] = check_choice(reduction, "reduction", REDUCTIONS)
    if not isinstance(progress, bool):
        raise ValueError(f"progress: {progress!r} is invalid, expected True or False")
    checked["progress"] = progress
    checked["device"] = check_choice(device, "device", DEVICES)
    checked["incremental"] = check_incremental(incremental)
    checked["incremental_threshold"] = check_switch_share(incremental_threshold)
    checked["operator"] = tasks.parse_operator(operator)
    checked["approximate"] = check_approximate(approximate)
    return checked
