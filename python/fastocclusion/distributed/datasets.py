"""What a distributed run reads: a dataset cut into shards, each loaded by the worker that
explains it.

Three kinds (``as_dataset`` picks one from what the user passes):

- ``ImageFiles``: image files (a directory's, sorted by name, or a list), read with Pillow in
  the worker: converted to ``mode`` ("L", "RGB" or "RGBA"), resized (bilinear) to ``size``,
  divided by ``scale`` -> (H, W, C) float32. Workers read the paths themselves: on several
  hosts they must see the same files (a shared file system).
- ``NumpyFile``: one ``.npy`` file of (N, ...) inputs, memory-mapped; a worker reads only its
  shard's rows (same remark for several hosts).
- ``ArrayData``: an in-memory array (N, ...) or any iterable of arrays, one input per item;
  the driver stacks a shard and ships it to the worker through Ray's object store.

A shard carries a ``key``: what identifies its inputs (images: each file's path, size and
modification time; a ``.npy`` file: its path, size, modification time and the row range;
arrays: a SHA-256 of the shard's bytes). A rerun skips a completed shard only when the key is
unchanged, so replacing an image or appending to a list recomputes exactly what changed.
"""

from __future__ import annotations

import hashlib
import itertools
import numbers
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastocclusion.arrays import to_numpy

#: File suffixes read as images in a directory (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
#: Pillow modes of the images given to the model, and their channel counts.
IMAGE_MODES = {"L": 1, "RGB": 3, "RGBA": 4}


def read_image(
    path: str, mode: str = "RGB", size: tuple[int, int] | None = None, scale: float = 255.0
) -> np.ndarray:
    """(H, W, C) float32: the image file at ``path`` converted to ``mode``, resized
    (bilinear) to ``size`` = (rows, cols) when given and not already so, divided by
    ``scale``. ValueError naming the file when Pillow cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = opened.convert(mode)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / np.float32(scale)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(
            f"{path!r} is not a readable image ({type(error).__name__}: {error})"
        ) from None
    return array[..., None] if array.ndim == 2 else array


def _sha256(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, (bytes, memoryview)) else repr(part).encode())
    return digest.hexdigest()


def _stat_key(path: str) -> tuple[str, int, int]:
    """(path, size, mtime_ns); (path, -1, -1) for a file that is gone (its shard fails when
    it is loaded)."""
    try:
        stat = os.stat(path)
    except OSError:
        return (path, -1, -1)
    return (path, stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class Shard:
    """Inputs [start, stop) of a dataset: ``source`` is what the worker loads (an object
    with ``load()``) or the inputs themselves (an array); ``names`` say which inputs they
    are in messages; ``key`` identifies their content (see the module docstring)."""

    index: int
    start: int
    stop: int
    source: Any
    names: tuple[str, ...]
    key: str

    def describe(self) -> str:
        """'shard 3 (a.png .. d.png)': how failures name a shard."""
        first, last = self.names[0], self.names[-1]
        return f"shard {self.index} ({first}{'' if first == last else f' .. {last}'})"


@dataclass(frozen=True)
class ImageShard:
    """Image files loaded in the worker (see ImageFiles)."""

    paths: tuple[str, ...]
    mode: str
    size: tuple[int, int]
    scale: float

    def load(self) -> np.ndarray:
        return np.stack([read_image(p, self.mode, self.size, self.scale) for p in self.paths])


@dataclass(frozen=True)
class NumpyShard:
    """Rows [start, stop) of a .npy file, read through a memory map in the worker."""

    path: str
    start: int
    stop: int

    def load(self) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r")[self.start : self.stop])


@dataclass(frozen=True)
class ImageFiles:
    """Image files explained in the given order. ``mode``: "L", "RGB" (default) or "RGBA";
    ``size``: (rows, cols) every image is resized to (None: the first image's size);
    ``scale``: pixel values are divided by it (255: inputs in [0, 1])."""

    paths: tuple[str, ...]
    mode: str = "RGB"
    size: tuple[int, int] | None = None
    scale: float = 255.0

    @classmethod
    def from_directory(
        cls,
        directory: str | os.PathLike[str],
        *,
        mode: str = "RGB",
        size: tuple[int, int] | None = None,
        scale: float = 255.0,
    ) -> ImageFiles:
        """The image files (IMAGE_SUFFIXES) directly inside ``directory``, sorted by name;
        ValueError naming ``dataset`` when there is none."""
        directory = os.path.abspath(os.fspath(directory))
        names = sorted(
            name
            for name in os.listdir(directory)
            if name.lower().endswith(IMAGE_SUFFIXES)
            and os.path.isfile(os.path.join(directory, name))
        )
        if not names:
            raise ValueError(
                f"dataset: directory {directory!r} holds no image files, expected files "
                f"ending in {', '.join(IMAGE_SUFFIXES)}"
            )
        return cls(tuple(os.path.join(directory, n) for n in names), mode, size, scale)

    def checked(self) -> ImageFiles:
        """A copy with absolute paths and ``size`` set (from the first image when None);
        ValueError naming ``dataset`` for bad settings or an unreadable first image."""
        if not self.paths:
            raise ValueError("dataset: no image files, expected at least one")
        if self.mode not in IMAGE_MODES:
            raise ValueError(f"dataset: mode {self.mode!r} is invalid, expected 'L', 'RGB', 'RGBA'")
        if not (
            isinstance(self.scale, (int, float)) and np.isfinite(self.scale) and self.scale > 0
        ):
            raise ValueError(f"dataset: scale {self.scale!r} is invalid, expected a number > 0")
        size = self.size
        if size is None:
            try:
                size = read_image(self.paths[0], self.mode).shape[:2]
            except ValueError as error:
                raise ValueError(f"dataset: {error}") from None
        if len(size) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in size
        ):
            raise ValueError(f"dataset: size {size!r} is invalid, expected (rows, cols) >= 1")
        paths = tuple(os.path.abspath(os.fspath(p)) for p in self.paths)
        return ImageFiles(paths, self.mode, (int(size[0]), int(size[1])), float(self.scale))

    @property
    def count(self) -> int:
        return len(self.paths)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        assert self.size is not None  # checked() sets it
        return (*self.size, IMAGE_MODES[self.mode])

    def describe(self) -> dict[str, Any]:
        size = list(self.sample_shape[:2])
        return {"kind": "images", "mode": self.mode, "size": size, "scale": self.scale}

    def shards(self, shard_size: int) -> Iterator[Shard]:
        assert self.size is not None
        for index, start in enumerate(range(0, len(self.paths), shard_size)):
            paths = self.paths[start : start + shard_size]
            key = _sha256(*(_stat_key(p) for p in paths))
            names = tuple(os.path.basename(p) for p in paths)
            source = ImageShard(paths, self.mode, self.size, self.scale)
            yield Shard(index, start, start + len(paths), source, names, key)


@dataclass(frozen=True)
class NumpyFile:
    """A ``.npy`` file of (N, ...) inputs (any numeric dtype), memory-mapped."""

    path: str

    def checked(self) -> NumpyFile:
        path = os.path.abspath(self.path)
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise ValueError(
                f"dataset: {path!r} could not be read as a .npy file ({error})"
            ) from None
        if array.ndim < 2 or array.shape[0] == 0 or array.dtype.kind not in "biuf":
            raise ValueError(
                f"dataset: {path!r} holds a {array.dtype} array of shape {array.shape}, "
                "expected numbers of shape (N, ...) with N >= 1 and one axis per sample at least"
            )
        return NumpyFile(path)

    def _header(self) -> np.memmap:
        return np.load(self.path, mmap_mode="r")

    @property
    def count(self) -> int:
        return int(self._header().shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self._header().shape[1:])

    def describe(self) -> dict[str, Any]:
        return {"kind": "npy", "path": self.path, "sample_shape": list(self.sample_shape)}

    def shards(self, shard_size: int) -> Iterator[Shard]:
        _, size, mtime = _stat_key(self.path)
        for index, start in enumerate(range(0, self.count, shard_size)):
            stop = min(start + shard_size, self.count)
            name = f"{os.path.basename(self.path)}[{start}:{stop}]"
            key = _sha256(self.path, size, mtime, start, stop)
            yield Shard(index, start, stop, NumpyShard(self.path, start, stop), (name,), key)


class ArrayData:
    """Inputs in memory: an array (N, ...) or an iterable of arrays, one input per item,
    all of one shape (NumPy arrays, torch or TensorFlow tensors). An iterable is read once,
    shard by shard, as workers become free; the first item is read when the run is set up
    (for the shape)."""

    def __init__(self, data: Any) -> None:
        if isinstance(data, np.ndarray) or hasattr(data, "shape") and hasattr(data, "dtype"):
            array = to_numpy(data, "dataset")
            if array.ndim < 2 or array.shape[0] == 0:
                raise ValueError(
                    f"dataset: an array of shape {array.shape} is invalid, expected (N, ...) "
                    "inputs with N >= 1"
                )
            self._array: np.ndarray | None = array
            self._items: Iterator[Any] | None = None
            self.count: int | None = int(array.shape[0])
            self.sample_shape = tuple(array.shape[1:])
            return
        if not isinstance(data, Iterable) or isinstance(data, (str, bytes)):
            raise TypeError(
                f"dataset: {type(data).__name__} is invalid, expected a directory of images, "
                "a .npy file, ImageFiles, an array (N, ...) or an iterable of arrays"
            )
        self._array = None
        self.count = len(data) if hasattr(data, "__len__") else None  # type: ignore[arg-type]
        items = iter(data)
        try:
            first = to_numpy(next(items), "dataset")
        except StopIteration:
            raise ValueError(
                "dataset: the iterable is empty, expected at least one array"
            ) from None
        if first.ndim < 1:
            raise ValueError("dataset: items are scalars, expected one array per input")
        self.sample_shape = tuple(first.shape)
        self._items = itertools.chain([first], items)

    def checked(self) -> ArrayData:
        return self

    def describe(self) -> dict[str, Any]:
        return {"kind": "arrays", "sample_shape": list(self.sample_shape)}

    def _chunks(self, shard_size: int) -> Iterator[np.ndarray]:
        if self._array is not None:
            for start in range(0, len(self._array), shard_size):
                yield self._array[start : start + shard_size]
            return
        assert self._items is not None
        while chunk := list(itertools.islice(self._items, shard_size)):
            arrays = [to_numpy(item, "dataset", ValueError) for item in chunk]
            for array in arrays:
                if array.shape != self.sample_shape:
                    raise ValueError(
                        f"dataset: an item of shape {array.shape} is invalid, expected the "
                        f"first item's shape {self.sample_shape}"
                    )
            yield np.stack(arrays)

    def shards(self, shard_size: int) -> Iterator[Shard]:
        """Raises the ValueError of a bad item when its shard is reached (the shards
        before it are explained)."""
        start = 0
        for index, chunk in enumerate(self._chunks(shard_size)):
            chunk = np.ascontiguousarray(chunk)
            stop = start + len(chunk)
            names = (f"input {start}", f"input {stop - 1}")
            key = _sha256(chunk.dtype.str, chunk.shape, memoryview(chunk).cast("B"))
            yield Shard(index, start, stop, chunk, names, key)
            start = stop


def as_dataset(dataset: Any) -> ImageFiles | NumpyFile | ArrayData:
    """The dataset kind of what the user passed, checked: a directory (its images), a path
    to a ``.npy`` file, ``ImageFiles``/``NumpyFile``, an array or an iterable of arrays.
    ValueError/TypeError naming ``dataset``."""
    if isinstance(dataset, (str, os.PathLike)):
        path = os.fspath(dataset)
        if os.path.isdir(path):
            return ImageFiles.from_directory(path).checked()
        if os.path.isfile(path) and path.endswith(".npy"):
            return NumpyFile(path).checked()
        raise ValueError(f"dataset: {path!r} is neither a directory of images nor a .npy file")
    if isinstance(dataset, (ImageFiles, NumpyFile)):
        return dataset.checked()
    return ArrayData(dataset)
