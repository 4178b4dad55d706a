"""The ``explain`` command: its arguments checked, the model loaded and the images' size
decided, then the run in this process (``local``) or on Ray workers (``workers``), which
write the same outputs."""

from __future__ import annotations

import argparse
import os

from fastocclusion.cli.checks import check_target, check_workers_only_flags
from fastocclusion.cli.errors import UsageError
from fastocclusion.cli.extras import require_plot_extra
from fastocclusion.cli.loading import CHANNEL_MODES, image_paths, load_image, load_model
from fastocclusion.cli.local import explain_in_process
from fastocclusion.cli.stderr import quiet_tensorflow
from fastocclusion.cli.workers import explain_on_workers

__all__ = ["run_explain"]


def run_explain(args: argparse.Namespace) -> int:
    """``fastocclusion explain``: the exit status (0, or 1 when shards of a run on workers
    failed; a ``UsageError`` before any model call)."""
    args.images = image_paths(args.images)
    if not os.path.isfile(args.model):
        raise UsageError(f"--model: {args.model!r} does not exist or is not a file")
    if args.workers is None:
        check_workers_only_flags(args)
    require_plot_extra()
    quiet_tensorflow("--model: a Keras model")
    model = load_model(args.model)
    _, height, width, channels = model.input_shape
    check_target(args.target, model.output_shape[-1])
    mode = CHANNEL_MODES[channels]
    size = (height, width) if height is not None and width is not None else None
    first = None
    if size is None:  # a model with free spatial dimensions: every image as the first one
        first = load_image(args.images[0], mode, size, args.scale)
        size = first.shape[:2]
        print(f"note: the model accepts any size; images are resized to {size[0]}x{size[1]}")
    if args.workers is not None:  # the workers read the images
        return explain_on_workers(args, mode, size)
    return explain_in_process(args, model, mode, size, first)
