"""``fastocclusion.keras.OcclusionCallback`` in real ``model.fit`` loops (issue "Maps during
training"): the TensorBoard event files hold the overlay grid and the costs (read back with
TensorBoard's own event reader), the .npy maps equal ``Occlusion.explain`` with the
epoch's weights, and the callback leaves the training as it was (weights, optimizer and
random states before and after each of its calls)."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
pytest.importorskip("matplotlib")
event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason='needs tensorboard: pip install ".[test]"',
)

from fastocclusion import Occlusion  # noqa: E402
from fastocclusion.keras import OcclusionCallback  # noqa: E402


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, 12, 12, 1)).astype(np.float32)
    y = (x[:, 3:9, 3:9, 0].mean(axis=(1, 2)) > 0).astype(np.int64)
    return x, y


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _state(model):
    """Everything the callback must leave as it was."""
    return (
        [w.copy() for w in model.get_weights()],
        [keras.ops.convert_to_numpy(v).copy() for v in model.optimizer.variables],
        np.random.get_state()[1].copy(),
        random.getstate(),
        tf.random.get_global_generator().state.numpy().copy(),
    )


def _same(a, b) -> bool:
    weights_a, optimizer_a, numpy_a, python_a, tf_a = a
    weights_b, optimizer_b, numpy_b, python_b, tf_b = b
    return (
        all(np.array_equal(p, q) for p, q in zip(weights_a, weights_b))
        and all(np.array_equal(p, q) for p, q in zip(optimizer_a, optimizer_b))
        and np.array_equal(numpy_a, numpy_b)
        and python_a == python_b
        and np.array_equal(tf_a, tf_b)
    )


class Checked(keras.callbacks.Callback):
    """Runs ``inner``'s epoch end between two snapshots of the training's state; keeps the
    weights each epoch ended with."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.unchanged = []
        self.weights = []

    def set_model(self, model):
        super().set_model(model)
        self.inner.set_model(model)

    def on_epoch_begin(self, epoch, logs=None):
        self.inner.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        before = _state(self.model)
        self.inner.on_epoch_end(epoch, logs)
        self.unchanged.append(_same(before, _state(self.model)))
        self.weights.append([w.copy() for w in self.model.get_weights()])

    def on_train_end(self, logs=None):
        self.inner.on_train_end(logs)


def _events(log_dir):
    accumulator = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return accumulator


@pytest.mark.parametrize("targets", ["none", "indices", "one-hot"])
def test_fit_logs_grids_costs_and_maps_and_leaves_training_alone(tmp_path, targets):
    x, y = _data()
    images = x[:5]
    given = {"none": None, "indices": y[:5], "one-hot": np.eye(2, dtype=np.float32)[y[:5]]}
    callback = OcclusionCallback(
        images, given[targets], every_n_epochs=2, log_dir=tmp_path, max_images=4,
        patch_size=4, patch_stride=2,
    )  # fmt: skip
    checked = Checked(callback)
    model = _model()
    model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[checked])
    assert checked.unchanged == [True] * 4
    assert [c.epoch for c in callback.costs] == [1, 3]
    assert all(c.seconds > 0 and 0 < c.share < 1 for c in callback.costs)
    events = _events(tmp_path)
    assert {"occlusion_maps", "occlusion/seconds", "occlusion/epoch_share"} <= set(
        events.Tags()["tensors"]
    )
    grids = events.Tensors("occlusion_maps")
    assert [e.step for e in grids] == [2, 4]
    from PIL import Image

    width, height, png = grids[-1].tensor_proto.string_val[:3]
    picture = np.asarray(Image.open(io.BytesIO(png)))
    assert picture.shape[:2] == (int(height), int(width)) and picture.std() > 0
    seconds = events.Tensors("occlusion/seconds")
    assert [e.step for e in seconds] == [2, 4]
    # The .npy of an epoch: the maps of the weights it ended with.
    for epoch in (1, 3):
        saved = np.load(tmp_path / f"occlusion_maps_epoch_{epoch + 1:04d}.npy")
        assert saved.shape == (4, 12, 12)
        model.set_weights(checked.weights[epoch])
        labels = given[targets]
        expected = Occlusion(model, patch_size=4, patch_stride=2).explain(
            images[:4], None if labels is None else _one_hot(labels[:4])
        )
        np.testing.assert_allclose(saved, expected.numpy()[..., 0], rtol=1e-5, atol=1e-6)


def _one_hot(labels):
    labels = np.asarray(labels)
    return labels if labels.ndim == 2 else np.eye(2, dtype=np.float32)[labels]


def test_bad_arguments_fail_before_any_training(tmp_path):
    x, _ = _data()
    for kwargs, name in (
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"max_images": 0}, "max_images"),
        ({"patch_size": 0}, "patch_size"),
        ({"reduction": "max"}, "reduction"),
    ):
        with pytest.raises(ValueError, match=f"^{name}"):
            OcclusionCallback(x[:2], log_dir=tmp_path, **kwargs)
    with pytest.raises(ValueError, match=r"images: shape \(2, 12, 12\) is invalid"):
        OcclusionCallback(x[:2, ..., 0], log_dir=tmp_path)
