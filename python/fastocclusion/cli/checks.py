"""The explain command's checks of its arguments against each other, the model and the file
system, made before any model call, with or without --workers; a failure is a
``UsageError`` naming the flag."""

from __future__ import annotations

import argparse

from fastocclusion.cli.errors import UsageError

__all__ = ["check_before_model_calls", "check_target", "check_workers_only_flags"]


def check_workers_only_flags(args: argparse.Namespace) -> None:
    """Without --workers: none of the flags that only a run on workers reads."""
    for flag, value in (
        ("--ray-address", args.ray_address),
        ("--shard-size", args.shard_size),
        ("--overwrite", args.overwrite or None),
    ):
        if value is not None:
            raise UsageError(f"{flag}: is only valid with --workers N")


def check_target(target: int | None, classes: int) -> None:
    """--target: a class index of the model's ``classes`` outputs, when given."""
    if target is not None and not 0 <= target < classes:
        raise UsageError(
            f"--target: {target} is invalid, expected a class index in "
            f"0..{classes - 1} (the model has {classes} outputs)"
        )


def _check_patch(value: int | tuple[int, int], flag: str, height: int, width: int) -> None:
    rows, cols = (value, value) if isinstance(value, int) else value
    if rows > height or cols > width:
        raise UsageError(
            f"{flag}: {value} is invalid, expected at most the model's input size {height}x{width}"
        )


def _output_directory(out: str) -> None:
    """--out created and checked writable, after every other check and before any model
    call (so that an error writes nothing and a bad DIR costs no model call)."""
    from fastocclusion.distributed.store import writable_directory

    try:
        writable_directory(out, "--out")
    except ValueError as error:
        raise UsageError(str(error)) from None


def check_before_model_calls(args: argparse.Namespace, size: tuple[int, int]) -> None:
    """The last checks, once the images are read (or left to the workers): --patch-size and
    --patch-stride within the model's input ``size`` (rows, cols), then --out created and
    writable."""
    _check_patch(args.patch_size, "--patch-size", *size)
    _check_patch(args.patch_stride, "--patch-stride", *size)
    _output_directory(args.out)
