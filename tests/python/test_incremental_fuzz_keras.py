"""Exact means exact (design §8), differentially, for Keras: random small functional CNNs
mixing the layers exact incremental inference supports (keras_models.random_local_step,
known activation functions of keras.activations, keras.ops and tf.nn, PReLU shared over
the rows and columns) with layers it must run in full (a spatial mean subtracted by a
Lambda, a custom layer, an Activation or a convolution's activation; PReLU and Rescaling
with per-position weights; up-sampling; Dense on a map; a flatten or global pooling head)
are explained with incremental=False, "auto" (without its cost floors, on every other
network, so that it takes the incremental path where it may) and True. "auto" and True
give the maps of False, or True raises a ValueError before any model call; a reasonable
share of the networks must run incrementally with True."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
layers = keras.layers

from keras_models import (  # noqa: E402
    assert_close,
    centre,
    count_model_calls,
    head,
    random_conv,
    random_local_step,
    random_options,
)

from fastocclusion import Occlusion  # noqa: E402
from fastocclusion.backends.tensorflow.incremental.graph import KerasOps  # noqa: E402

NETWORKS = 48

# Activations computed position by position (elementwise, or over the channels).
KNOWN = (
    "relu", "gelu", "swish", "selu", "softplus", "softsign", "softmax", "hard_sigmoid",
    keras.activations.mish, keras.activations.hard_silu, keras.activations.log_softmax,
    keras.activations.leaky_relu, keras.ops.sigmoid, tf.nn.relu6, tf.nn.silu, tf.math.tanh,
)  # fmt: skip


class Centre(layers.Layer):
    """centre as a custom layer."""

    def call(self, t):
        return centre(t)


def _known_step(rng, x):
    """x -> a layer computed position by position that the classification must accept."""
    kind = int(rng.integers(3))
    if kind == 0 and min(x.shape[1:3]) >= 5:
        return random_conv(rng, KNOWN)(x)
    if kind == 1:
        alpha = keras.initializers.RandomUniform(0.05, 0.5, seed=int(rng.integers(1000)))
        return layers.PReLU(alpha, shared_axes=[1, 2])(x)
    return layers.Activation(KNOWN[int(rng.integers(len(KNOWN)))])(x)


def _full_step(rng, x):
    """x -> a layer whose output at a position may read other positions (or that the
    classification does not know): it must run in full."""
    kind = int(rng.integers(8))
    if kind == 0:
        return layers.Lambda(centre)(x)
    if kind == 1:
        return Centre()(x)
    if kind == 2:
        return layers.Activation(centre)(x)
    if kind == 3:
        return layers.Conv2D(int(rng.integers(2, 5)), 3, padding="same", activation=centre)(x)
    if kind == 4:
        alpha = keras.initializers.RandomUniform(0.05, 0.5, seed=int(rng.integers(1000)))
        return layers.PReLU(alpha)(x)  # one alpha per position
    if kind == 5:
        scale = rng.uniform(0.5, 2, (*x.shape[1:3], 1)).astype(np.float32)
        return layers.Rescaling(scale)(x)
    if kind == 6:
        return layers.UpSampling2D(2)(x) if max(x.shape[1:3]) <= 20 else layers.ReLU()(x)
    return layers.Dense(int(rng.integers(2, 5)))(x)


def random_network(seed):
    """(model, inputs, options): a random functional CNN of 4 to 7 steps over a small
    image, each step supported (mostly), known pointwise, or to run in full."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    shape = (int(rng.integers(12, 21)), int(rng.integers(12, 21)), int(rng.integers(1, 4)))
    inputs = keras.Input(shape)
    x = inputs
    for _ in range(int(rng.integers(4, 8))):
        draw = rng.uniform()
        step = random_local_step if draw < 0.6 else _known_step if draw < 0.85 else _full_step
        x = step(rng, x)
    model = keras.Model(inputs, head(rng, x))
    batch = rng.normal(size=(int(rng.integers(1, 3)), *shape)).astype(np.float32)
    options = random_options(rng)
    return model, batch, options


def test_random_keras_networks_give_the_normal_sweeps_maps_or_refuse(monkeypatch):
    calls = count_model_calls(monkeypatch)
    tried = incremental = refused = auto_incremental = 0
    for seed in range(NETWORKS):
        model, x, options = random_network(1000 + seed)
        tried += 1
        reference = Occlusion(model, incremental=False, **options).explain(x).numpy()

        with monkeypatch.context() as floors:
            if seed % 2:  # "auto" without its cost floors: incremental wherever allowed
                floors.setattr(KerasOps, "auto_min_call_macs", 0.0)
                floors.setattr("fastocclusion.engine.regions.AUTO_MIN_SAVED_SHARE", 0.0)
            auto = Occlusion(model, incremental="auto", **options)
            maps = auto.explain(x).numpy()
        assert_close(maps, reference, model, x)
        auto_incremental += bool(auto.last_stats.incremental_layers)

        forced = Occlusion(model, incremental=True, **options)
        calls.clear()
        try:
            maps = forced.explain(x).numpy()
        except ValueError as error:
            assert calls == [], f"seed {seed}: refused after {calls}"
            names = [layer.name for layer in model.layers]
            message = str(error)
            assert message.startswith("incremental: True is invalid here, model: "), message
            assert any(f"model: {name}:" in message for name in names), message
            assert auto.last_stats.incremental_note.startswith("normal sweep"), seed
            refused += 1
            continue
        assert_close(maps, reference, model, x)
        incremental += bool(forced.last_stats.incremental_layers)
    summary = (
        f"{tried} networks: {incremental} ran incrementally with incremental=True, {refused} "
        f"refused, {auto_incremental} incrementally with 'auto'; no wrong map"
    )
    print(summary)
    assert incremental >= tried // 2 and refused >= 1, summary
