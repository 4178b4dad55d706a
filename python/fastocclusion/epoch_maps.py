"""Occlusion maps during training: what the Keras and the Lightning callbacks share
(``fastocclusion.keras``, ``fastocclusion.lightning``).

``EpochMaps`` holds a callback's images, targets and ``Occlusion`` options, checked when the
callback is made (before any training); says which epochs explain; explains with the
model's current weights and times it; draws the overlay grid (``fastocclusion.plot``'s
rendering, one colour bar for the grid) as RGB pixels for an image logger; and saves the
raw maps of an epoch as a ``.npy``. The callbacks add only their framework: when to run,
the model's mode and device, and where the images and numbers are logged.

Framework-free: imports NumPy; matplotlib when a grid is drawn.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastocclusion.arrays import to_numpy
from fastocclusion.engine.objective import ClassIndices
from fastocclusion.options import is_int
from fastocclusion.xplique import Occlusion
from fastocclusion.xplique.checks import check_options

__all__ = ["EpochCost", "EpochMaps"]


@dataclass(frozen=True)
class EpochCost:
    """What the maps of one epoch cost: ``seconds`` in the explain, and the share of the
    epoch they took (``epoch_seconds``: the whole epoch, the maps included; None when the
    framework did not time the epoch)."""

    epoch: int
    seconds: float
    epoch_seconds: float | None

    @property
    def share(self) -> float | None:
        """seconds / epoch_seconds (None without an epoch time)."""
        if not self.epoch_seconds:
            return None
        return self.seconds / self.epoch_seconds


def _count(value: Any, name: str) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"{name}: {value!r} is invalid, expected an integer >= 1")
    return int(value)


class EpochMaps:
    """The maps of a training callback (see the module docstring).

    ``images``: (N, H, W, C) images (N, C, H, W with ``channels_first``) as NumPy arrays or
    framework tensors; the first ``max_images`` are explained. ``targets``: None (the
    model's top class at that epoch), one-hot (or any ``Occlusion.explain``) targets, one
    row per image, or (N,) integer class indices. ``options``: ``Occlusion``'s keyword
    arguments. ValueError naming the argument otherwise.

    >>> maps = EpochMaps(np.zeros((2, 8, 8, 1)), None, 1, 8, {"patch_size": 4})
    >>> maps.due(0), len(maps.images)
    (True, 2)
    """

    def __init__(
        self,
        images: Any,
        targets: Any,
        every_n_epochs: int,
        max_images: int,
        options: dict[str, Any],
        channels_first: bool = False,
    ) -> None:
        self.every_n_epochs = _count(every_n_epochs, "every_n_epochs")
        count = _count(max_images, "max_images")
        pixels = to_numpy(images, "images", ValueError)
        if pixels.ndim != 4:
            layout = "(N, C, H, W)" if channels_first else "(N, H, W, C)"
            raise ValueError(f"images: shape {pixels.shape} is invalid, expected {layout} images")
        count = min(count, len(pixels))
        self.images = images[:count]
        #: The images as the grid shows them: (N, H, W, C) NumPy.
        self.pixels = np.moveaxis(pixels[:count], 1, -1) if channels_first else pixels[:count]
        self.targets = self._targets(targets, count)
        check_options(**options)
        self.options = dict(options)
        self.costs: list[EpochCost] = []
        self._explainer: Occlusion | None = None
        self._model: Any = None

    @staticmethod
    def _targets(targets: Any, count: int) -> Any:
        """None, ClassIndices for (N,) integers, else the first ``count`` rows as given."""
        if targets is None:
            return None
        if isinstance(targets, ClassIndices):
            return ClassIndices(targets.labels[:count])
        array = to_numpy(targets, "targets", ValueError)
        if array.ndim == 1 and array.dtype.kind in "iu":
            return ClassIndices(array[:count])
        return array[:count]

    def due(self, epoch: int) -> bool:
        """Whether the maps are made at the end of ``epoch`` (0-based): every n-th epoch."""
        return (epoch + 1) % self.every_n_epochs == 0

    def explain(self, model: Any, images: Any = None) -> np.ndarray:
        """MODEL CALLS: the (N, H, W) maps of the images (``images``: them on the model's
        device, when the callback moved them) with the model's current weights; the
        ``Occlusion`` is made once per model and reused (its batch buffer too)."""
        if self._explainer is None or self._model is not model:
            self._explainer = Occlusion(model, **self.options)
            self._model = model
        maps = self._explainer.explain(self.images if images is None else images, self.targets)
        array = to_numpy(maps, "maps")
        channel = 1 if self._explainer.data_format == "channels_first" else -1
        return np.take(array, 0, axis=channel)

    def timed_explain(self, model: Any, images: Any = None) -> tuple[np.ndarray, float]:
        """``explain`` and the seconds it took."""
        started = time.perf_counter()
        maps = self.explain(model, images)
        return maps, time.perf_counter() - started

    def labels(self) -> list[int] | None:
        """The classes the last explain mapped ((N, K) targets), else None."""
        base = None if self._explainer is None else self._explainer.last_base_pass
        if base is None or base.targets.ndim != 2:
            return None
        return base.labels().tolist()

    def grid(self, maps: np.ndarray, epoch: int) -> np.ndarray:
        """The overlay grid of ``maps`` over the images, one colour bar for all, as (H, W, 3)
        uint8 RGB pixels, titled with the epoch (1-based) and each image's class."""
        from fastocclusion.plot import figure_pixels, plot_maps

        labels = self.labels()
        titles = None if labels is None else [f"class {label}" for label in labels]
        figure = plot_maps(
            self.pixels, maps, titles=titles, cols=4, title=f"occlusion maps, epoch {epoch + 1}"
        )
        return figure_pixels(figure)

    def record(self, epoch: int, seconds: float, epoch_seconds: float | None) -> EpochCost:
        """Keeps (and returns) the cost of an epoch's maps."""
        cost = EpochCost(epoch, seconds, epoch_seconds)
        self.costs.append(cost)
        return cost

    @staticmethod
    def save(directory: str, epoch: int, maps: np.ndarray) -> str:
        """``maps`` as ``DIR/occlusion_maps_epoch_NNNN.npy`` (1-based epoch); the path."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"occlusion_maps_epoch_{epoch + 1:04d}.npy")
        np.save(path, maps)
        return path
