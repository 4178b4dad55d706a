"""``OcclusionCallback`` for ``keras.Model.fit`` (see the package docstring)."""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fastocclusion.epoch_maps import EpochMaps
from fastocclusion.types import ArrayLike, Targets

__all__ = ["OcclusionCallback"]


class OcclusionCallback(keras.callbacks.Callback):
    """At the end of every ``every_n_epochs``-th epoch, explains ``images`` with the model's
    current weights and writes to TensorBoard under ``log_dir``:

    - ``occlusion_maps``: one overlay grid (``fastocclusion.plot``'s rendering, one colour
      bar), step = the epoch (1-based);
    - ``occlusion/seconds`` and ``occlusion/epoch_share``: what the maps cost, in seconds
      and as a share of the epoch (the maps included);

    and the raw maps beside the event files, ``occlusion_maps_epoch_NNNN.npy`` ((N, H, W)).

    ``images``: (N, H, W, C) images (NumPy or tf), the first ``max_images`` explained;
    ``targets``: None (the model's top class at each epoch), one-hot targets, or (N,) class
    indices. Keyword options go to ``fastocclusion.Occlusion`` as they are (its defaults,
    ``incremental="auto"`` included); they are checked here, before any training
    (ValueError naming the argument). The training is left as it
    was: the model is called in inference mode, weights, optimizer and random states are
    not touched. ``costs``: an ``EpochCost`` per epoch that made maps.

    >>> callback = OcclusionCallback(x_val[:8], patch_size=4)  # doctest: +SKIP
    >>> model.fit(x, y, epochs=5, callbacks=[callback])  # doctest: +SKIP
    """

    def __init__(
        self,
        images: ArrayLike,
        targets: Targets = None,
        *,
        every_n_epochs: int = 1,
        log_dir: str = "logs/occlusion",
        max_images: int = 8,
        **occlusion_options: Any,
    ) -> None:
        super().__init__()
        channels_first = occlusion_options.get("data_format") == "channels_first"
        self.maps = EpochMaps(
            images, targets, every_n_epochs, max_images, occlusion_options, channels_first
        )
        if not isinstance(log_dir, (str, bytes)) and not hasattr(log_dir, "__fspath__"):
            raise ValueError(f"log_dir: {log_dir!r} is invalid, expected a directory path")
        self.log_dir = str(log_dir)
        self._writer: Any = None
        self._epoch_started: float | None = None

    @property
    def costs(self) -> list[Any]:
        """The cost of every epoch's maps so far (``fastocclusion.epoch_maps.EpochCost``)."""
        return self.maps.costs

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.maps.due(epoch):
            return
        maps, seconds = self.maps.timed_explain(self.model)
        ended = time.perf_counter()
        epoch_seconds = None if self._epoch_started is None else ended - self._epoch_started
        cost = self.maps.record(epoch, seconds, epoch_seconds)
        pixels = self.maps.grid(maps, epoch)
        self.maps.save(self.log_dir, epoch, maps)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        step = epoch + 1
        with self._writer.as_default():
            tf.summary.image("occlusion_maps", pixels[np.newaxis], step=step)
            tf.summary.scalar("occlusion/seconds", cost.seconds, step=step)
            if cost.share is not None:
                tf.summary.scalar("occlusion/epoch_share", cost.share, step=step)
        self._writer.flush()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
