"""``OcclusionCallback`` for ``lightning.pytorch.Trainer`` (see the package docstring)."""

from __future__ import annotations

import os
import time
from typing import Any

import lightning.pytorch as pl
import torch

from fastocclusion.backends.torch.outputs import training_off
from fastocclusion.epoch_maps import EpochMaps
from fastocclusion.types import ArrayLike, Targets

__all__ = ["OcclusionCallback"]


class OcclusionCallback(pl.Callback):
    """At the end of every ``every_n_epochs``-th validation epoch (not the sanity check),
    explains ``images`` with the module's current weights, on the module's device and in
    eval mode (each submodule's mode restored afterwards), and logs:

    - with a ``TensorBoardLogger``: the overlay grid as the image ``occlusion_maps``
      (``fastocclusion.plot``'s rendering, one colour bar) and the scalars
      ``occlusion/seconds`` and ``occlusion/epoch_share`` (the share of the training epoch,
      the maps included), step = the epoch (1-based);
    - with any other logger (or none): the grid as ``occlusion_maps_epoch_NNNN.png``;

    and always the raw (N, H, W) maps as ``occlusion_maps_epoch_NNNN.npy``, in the trainer's
    log directory.

    ``images``: (N, C, H, W) tensors (or arrays), the first ``max_images`` explained;
    ``targets``: None (the module's top class at each epoch), one-hot targets, or (N,) class
    indices. Keyword options go to ``fastocclusion.Occlusion`` (``data_format`` defaults to
    "channels_first" here, the layout of PyTorch images), checked here, before any training
    (ValueError naming the argument). The training is left as it was: no gradients, the
    weights, optimizer and random states untouched. ``costs``: an ``EpochCost`` per epoch
    that made maps.

    >>> trainer = Trainer(callbacks=[OcclusionCallback(val_images[:8])])  # doctest: +SKIP
    """

    def __init__(
        self,
        images: ArrayLike,
        targets: Targets = None,
        *,
        every_n_epochs: int = 1,
        max_images: int = 8,
        **occlusion_options: Any,
    ) -> None:
        super().__init__()
        options = {"data_format": "channels_first", **occlusion_options}
        channels_first = options["data_format"] == "channels_first"
        images = images if isinstance(images, torch.Tensor) else torch.as_tensor(images)
        self.maps = EpochMaps(images, targets, every_n_epochs, max_images, options, channels_first)
        self._epoch_started: float | None = None
        self._pending: tuple[int, float] | None = None  # (epoch, seconds) to log at its end

    @property
    def costs(self) -> list[Any]:
        """The cost of every epoch's maps so far (``fastocclusion.epoch_maps.EpochCost``)."""
        return self.maps.costs

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_started = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if trainer.sanity_checking or not self.maps.due(epoch):
            return
        images = self.maps.images.to(pl_module.device)
        with training_off(pl_module), torch.inference_mode():
            maps, seconds = self.maps.timed_explain(pl_module, images)
        self._pending = (epoch, seconds)
        pixels = self.maps.grid(maps, epoch)
        directory = _log_dir(trainer)
        self.maps.save(directory, epoch, maps)
        board = _tensorboard(trainer)
        if board is None:
            from fastocclusion.plot import save_pixels

            save_pixels(
                os.path.join(directory, f"occlusion_maps_epoch_{epoch + 1:04d}.png"), pixels
            )
        else:
            board.add_image("occlusion_maps", pixels, global_step=epoch + 1, dataformats="HWC")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is None or self._pending[0] != trainer.current_epoch:
            return
        epoch, seconds = self._pending
        self._pending = None
        ended = time.perf_counter()
        epoch_seconds = None if self._epoch_started is None else ended - self._epoch_started
        cost = self.maps.record(epoch, seconds, epoch_seconds)
        board = _tensorboard(trainer)
        if board is not None:
            board.add_scalar("occlusion/seconds", cost.seconds, global_step=epoch + 1)
            if cost.share is not None:
                board.add_scalar("occlusion/epoch_share", cost.share, global_step=epoch + 1)


def _tensorboard(trainer: pl.Trainer) -> Any:
    """The SummaryWriter of the trainer's first TensorBoardLogger, or None."""
    from lightning.pytorch.loggers import TensorBoardLogger

    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def _log_dir(trainer: pl.Trainer) -> str:
    """Where the trainer logs (its first logger's directory), else its root directory."""
    return trainer.log_dir or trainer.default_root_dir
