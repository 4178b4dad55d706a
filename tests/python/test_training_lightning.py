"""``fastocclusion.lightning.OcclusionCallback`` in real ``Trainer.fit`` loops (issue "Maps
during training"): with a TensorBoardLogger the event files hold the grid image and the
costs (read back with TensorBoard's event reader); with a CSV logger the PNG and the .npy
land in the log directory; the .npy equals ``Occlusion.explain`` with the epoch's weights;
the callback leaves the training as it was (weights, optimizer and random states, every
submodule's train/eval mode) and skips the sanity check."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
pl = pytest.importorskip("lightning.pytorch", reason='needs Lightning: pip install ".[lightning]"')
event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason='needs tensorboard: pip install ".[lightning]"',
)
pytest.importorskip("matplotlib")

from fastocclusion import Occlusion  # noqa: E402
from fastocclusion.lightning import OcclusionCallback  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    # Lightning's own warnings about its use of torch and about this tiny run's loaders
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers"),
    pytest.mark.filterwarnings("ignore:.*is smaller than the logging interval"),
]


class TinyNet(pl.LightningModule):
    """A conv, dropout (so train and eval differ), a global pool and a linear layer."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Dropout(0.3),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _loaders():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 10, 10, generator=generator)
    y = (x[:, 0, 3:7, 3:7].mean(dim=(1, 2)) > 0).long()
    data = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    return x, y, loader


def _state(trainer, module):
    optimizer = trainer.optimizers[0].state_dict()["state"] if trainer.optimizers else {}
    return (
        {k: v.clone() for k, v in module.state_dict().items()},
        {k: {n: t.clone() if torch.is_tensor(t) else t for n, t in s.items()}
         for k, s in optimizer.items()},
        torch.get_rng_state().clone(),
        np.random.get_state()[1].copy(),
        random.getstate(),
        [m.training for m in module.modules()],
    )  # fmt: skip


def _same(a, b) -> bool:
    weights_a, optimizer_a, torch_a, numpy_a, python_a, modes_a = a
    weights_b, optimizer_b, torch_b, numpy_b, python_b, modes_b = b

    def equal(x, y):
        return torch.equal(x, y) if torch.is_tensor(x) else x == y

    return (
        all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
        and all(equal(optimizer_a[k][n], optimizer_b[k][n]) for k in optimizer_a
                for n in optimizer_a[k])
        and torch.equal(torch_a, torch_b)
        and np.array_equal(numpy_a, numpy_b)
        and python_a == python_b
        and modes_a == modes_b
    )  # fmt: skip


class Checked(pl.Callback):
    """Runs ``inner``'s hooks, its validation epoch end between two snapshots of the
    training's state; keeps the weights each epoch's maps were made with."""

    def __init__(self, inner):
        self.inner = inner
        self.unchanged = []
        self.weights = {}

    def on_train_epoch_start(self, trainer, module):
        self.inner.on_train_epoch_start(trainer, module)

    def on_validation_epoch_end(self, trainer, module):
        before = _state(trainer, module)
        self.inner.on_validation_epoch_end(trainer, module)
        self.unchanged.append(_same(before, _state(trainer, module)))
        self.weights[trainer.current_epoch] = {k: v.clone() for k, v in module.state_dict().items()}

    def on_train_epoch_end(self, trainer, module):
        self.inner.on_train_epoch_end(trainer, module)


def _trainer(tmp_path, logger, callbacks, epochs=3):
    return pl.Trainer(
        max_epochs=epochs, logger=logger, callbacks=callbacks, default_root_dir=tmp_path,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", limit_train_batches=3, limit_val_batches=1, num_sanity_val_steps=1,
    )  # fmt: skip


def _explained(module, weights, images, targets):
    module.load_state_dict(weights)
    module.eval()
    maps = Occlusion(module, patch_size=3, patch_stride=2, data_format="channels_first").explain(
        images, targets
    )
    return maps.numpy()[:, 0]


@pytest.mark.parametrize("targets", ["none", "indices"])
def test_tensorboard_logger_gets_grids_and_costs(tmp_path, targets):
    x, y, loader = _loaders()
    images = x[:4]
    given = None if targets == "none" else y[:4].numpy()
    callback = OcclusionCallback(images, given, every_n_epochs=1, patch_size=3, patch_stride=2)
    checked = Checked(callback)
    logger = pl.loggers.TensorBoardLogger(tmp_path, name="run")
    torch.manual_seed(0)
    module = TinyNet()
    _trainer(tmp_path, logger, [checked]).fit(module, loader, loader)
    assert checked.unchanged == [True, True, True, True]  # the sanity check too, untouched
    assert [c.epoch for c in callback.costs] == [0, 1, 2]
    assert all(c.seconds > 0 and 0 < c.share < 1 for c in callback.costs)
    accumulator = event_accumulator.EventAccumulator(
        logger.log_dir, size_guidance={event_accumulator.IMAGES: 0, event_accumulator.SCALARS: 0}
    )
    accumulator.Reload()
    images_logged = accumulator.Images("occlusion_maps")
    assert [e.step for e in images_logged] == [1, 2, 3]
    assert images_logged[0].width > 100 and images_logged[0].encoded_image_string[:4] == b"\x89PNG"
    assert [e.step for e in accumulator.Scalars("occlusion/epoch_share")] == [1, 2, 3]
    for epoch in range(3):
        saved = np.load(f"{logger.log_dir}/occlusion_maps_epoch_{epoch + 1:04d}.npy")
        one_hot = None if given is None else np.eye(2, dtype=np.float32)[given]
        expected = _explained(TinyNet(), checked.weights[epoch], images, one_hot)
        np.testing.assert_allclose(saved, expected, rtol=1e-5, atol=1e-6)


def test_other_loggers_get_png_and_npy_files(tmp_path):
    x, _, loader = _loaders()
    callback = OcclusionCallback(x[:3], every_n_epochs=2, patch_size=5, patch_stride=5)
    logger = pl.loggers.CSVLogger(tmp_path, name="csv")
    _trainer(tmp_path, logger, [callback], epochs=4).fit(TinyNet(), loader, loader)
    files = sorted(p.name for p in (tmp_path / "csv" / "version_0").iterdir())
    assert [f for f in files if f.startswith("occlusion")] == [
        "occlusion_maps_epoch_0002.npy", "occlusion_maps_epoch_0002.png",
        "occlusion_maps_epoch_0004.npy", "occlusion_maps_epoch_0004.png",
    ]  # fmt: skip
    saved = np.load(tmp_path / "csv" / "version_0" / "occlusion_maps_epoch_0004.npy")
    assert saved.shape == (3, 10, 10)


def test_bad_arguments_fail_before_any_training():
    x = torch.randn(2, 1, 8, 8)
    for kwargs, name in (
        ({"every_n_epochs": 1.5}, "every_n_epochs"),
        ({"max_images": -1}, "max_images"),
        ({"patch_stride": 0}, "patch_stride"),
        ({"data_format": "nchw"}, "data_format"),
    ):
        with pytest.raises(ValueError, match=f"^{name}"):
            OcclusionCallback(x, **kwargs)
