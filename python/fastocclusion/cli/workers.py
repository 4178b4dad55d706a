"""``explain --workers N``: the images explained on Ray workers (``fastocclusion.distributed``),
the shards and manifest kept in DIR so that the same command resumes, then the outputs
written as without --workers."""

from __future__ import annotations

import argparse
import os
import sys

from fastocclusion.cli.checks import check_before_model_calls
from fastocclusion.cli.errors import UsageError
from fastocclusion.cli.loading import ImagesRead
from fastocclusion.cli.outputs import write_outputs
from fastocclusion.cli.parser import DEFAULT_SHARD_SIZE, OCCLUSION_OPTIONS, options

__all__ = ["explain_on_workers"]


def _in_flags(message: str) -> str:
    """A message of ``explain_dataset`` in the command line's words: --out for ``out_dir``,
    --overwrite for ``overwrite=True``."""
    from fastocclusion.distributed.store import OVERWRITE

    if message.startswith("out_dir: "):
        message = "--out: " + message.removeprefix("out_dir: ")
    return message.replace(OVERWRITE, "--overwrite")


def explain_on_workers(args: argparse.Namespace, mode: str, size: tuple[int, int]) -> int:
    """``explain --workers N``: the images explained on Ray workers (each loads the model
    file), the shards and manifest kept in DIR; then the same outputs as without
    --workers. 1 when shards failed (named on stderr; the same command resumes). The model
    file's SHA-256 identifies the model: DIR holding another model's run is an error
    (exit 2, before any model call) unless --overwrite."""
    import functools

    import keras

    check_before_model_calls(args, size)  # before Ray is looked for
    try:
        import ray
    except ImportError:
        raise UsageError('--workers: needs Ray: pip install "fastocclusion[ray]"') from None
    from fastocclusion.distributed import ImageFiles, explain_dataset, load_results
    from fastocclusion.distributed.models import file_digest

    try:
        model_id = file_digest(args.model, "--model")
    except ValueError as error:
        raise UsageError(str(error)) from None

    started = not ray.is_initialized()
    if started:  # the workers' own log lines (TensorFlow's start-up) are not shown
        try:
            ray.init(address=args.ray_address, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise UsageError(f"--ray-address: {args.ray_address!r}: {error}") from None
    try:
        summary = explain_dataset(
            ImageFiles(tuple(args.images), mode, size, args.scale),
            functools.partial(keras.models.load_model, os.path.abspath(args.model), compile=False),
            args.out,
            targets=args.target,
            workers=args.workers,
            shard_size=args.shard_size or DEFAULT_SHARD_SIZE,
            ray_address=args.ray_address,
            model_id=model_id,
            overwrite=args.overwrite,
            **options(args, *OCCLUSION_OPTIONS),
        )
    except (ValueError, TypeError) as error:
        raise UsageError(_in_flags(str(error))) from None
    finally:
        if started:
            ray.shutdown()
    print(summary)
    if not summary.complete:
        for name, error in summary.failed.items():
            print(f"fastocclusion explain: error: {name}: {error}", file=sys.stderr)
        print(
            "fastocclusion explain: the run is incomplete; fix the inputs and run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return 1
    results = load_results(args.out)
    images = ImagesRead(args.images, mode, size, args.scale)
    write_outputs(args, images, results.maps[..., 0], results.labels, results.outputs)
    return 0
