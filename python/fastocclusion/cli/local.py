"""``explain`` in this process: the images read, the maps from ``Occlusion`` of the model's
top class (or --target), then the outputs written; the labels and their outputs come from
the explain's own base pass (no model call of the CLI's)."""

from __future__ import annotations

import argparse
from typing import Any

from fastocclusion.cli.checks import check_before_model_calls
from fastocclusion.cli.errors import UsageError
from fastocclusion.cli.loading import load_image
from fastocclusion.cli.outputs import write_outputs
from fastocclusion.cli.parser import OCCLUSION_OPTIONS, options

__all__ = ["explain_in_process"]


def explain_in_process(
    args: argparse.Namespace, model: Any, mode: str, size: tuple[int, int], first: Any
) -> int:
    """Explains every --images file under ``model`` (the Keras model of --model), read in
    ``mode`` at ``size`` (``first``: the first image when already read, else None) and
    writes the outputs; 0."""
    import numpy as np

    from fastocclusion import ClassIndices, Occlusion

    if first is None:
        first = load_image(args.images[0], mode, size, args.scale)
    images = np.stack([first] + [load_image(p, mode, size, args.scale) for p in args.images[1:]])
    check_before_model_calls(args, size)

    targets = None if args.target is None else ClassIndices(np.full(len(images), args.target))
    try:
        explainer = Occlusion(model, **options(args, *OCCLUSION_OPTIONS))
        maps = explainer.explain(images, targets).numpy()[..., 0]
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    base = explainer.last_base_pass
    assert base is not None
    # The base score of class c's one-hot target is the model's output c.
    write_outputs(args, list(images), maps, base.labels(), base.scores)
    return 0
