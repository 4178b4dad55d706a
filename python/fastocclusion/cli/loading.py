"""What ``explain`` reads: the --images paths (directories expanded), the images as the model
sees them, and the --model file as a Keras model of one image input and one class vector.
Every failure is a ``UsageError`` naming the flag."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from fastocclusion.cli.errors import UsageError

__all__ = ["CHANNEL_MODES", "ImagesRead", "image_paths", "load_image", "load_model"]

#: Pillow mode per channel count of the model's input.
CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def image_paths(entries: Sequence[str]) -> list[str]:
    """--images: image files as given, and for a directory the image files directly inside
    it, sorted by name."""
    from fastocclusion.distributed.datasets import ImageFiles

    paths: list[str] = []
    for entry in entries:
        if os.path.isdir(entry):
            try:
                paths += ImageFiles.from_directory(entry).paths
            except ValueError as error:
                raise UsageError(f"--images: {str(error).removeprefix('dataset: ')}") from None
        elif os.path.isfile(entry):
            paths.append(entry)
        else:
            raise UsageError(f"--images: {entry!r} does not exist or is not a file or a directory")
    return paths


def load_image(path: str, mode: str, size: tuple[int, int] | None, scale: float) -> Any:
    """(H, W, C) float32: the file in ``mode``, resized to ``size`` (rows, cols) when given,
    divided by ``scale`` (the reader the distributed workers use too)."""
    from fastocclusion.distributed.datasets import read_image

    try:
        return read_image(path, mode, size, scale)
    except ValueError as error:
        raise UsageError(f"--images: {error}") from None


class ImagesRead:
    """The images as the model sees them, each read from its file when indexed."""

    def __init__(self, paths: Sequence[str], mode: str, size: tuple[int, int], scale: float):
        self.paths, self.mode, self.size, self.scale = paths, mode, size, scale

    def __getitem__(self, index: int) -> Any:
        return load_image(self.paths[index], self.mode, self.size, self.scale)


def load_model(path: str) -> Any:
    """The Keras model saved at ``path`` (TensorFlow imported: ``quiet_tensorflow``), checked
    to take one image input (batch, height, width, 1|3|4) and give (batch, classes)."""
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - any load failure is the user's file
        raise UsageError(
            f"--model: {path!r} could not be loaded as a Keras model "
            f"({type(error).__name__}: {error})"
        ) from None
    input_shape = getattr(model, "input_shape", None)
    if not (
        isinstance(input_shape, tuple)
        and len(input_shape) == 4
        and input_shape[-1] in CHANNEL_MODES
    ):
        raise UsageError(
            f"--model: input shape {input_shape} is not supported, expected "
            "one image input (batch, height, width, 1|3|4)"
        )
    output_shape = getattr(model, "output_shape", None)
    if not (
        isinstance(output_shape, tuple)
        and len(output_shape) == 2
        and isinstance(output_shape[-1], int)
    ):
        raise UsageError(
            f"--model: output shape {output_shape} is not supported, expected (batch, classes)"
        )
    return model
