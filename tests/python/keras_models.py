"""Random channels-last Keras CNNs made of every layer kind exact incremental inference
supports (design §8), for test_incremental_keras.py and test_incremental_fuzz_keras.py:
convolutions with "same" and "valid" padding, strides, dilations, depthwise and separable
ones, batch norm with random statistics, activations, max and average pooling, zero
padding, sums, products and concatenations, dropout; then a head (global pooling or a
flatten) and a dense layer. Also an activation that is not local, the closeness of two
maps, and a count of the sweep's model calls."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

layers = keras.layers


def centre(t: Any) -> Any:
    """Each channel minus its mean over the rows and columns: every position reads all (an
    activation function that is not elementwise)."""
    return t - tf.reduce_mean(t, axis=[1, 2], keepdims=True)


def random_conv(rng: np.random.Generator, activations: Any = ("relu", "tanh", "linear")) -> Any:
    """A Conv2D, DepthwiseConv2D or SeparableConv2D of random kernel, stride, padding and
    dilation; the first two with an activation drawn from ``activations``."""
    kind = int(rng.integers(3))
    k, s = int(rng.integers(1, 5)), int(rng.integers(1, 3))
    d = int(rng.integers(1, 3)) if s == 1 else 1
    padding = str(rng.choice(["same", "valid"]))
    activation = activations[int(rng.choice(len(activations)))]  # as rng.choice draws
    if kind == 0:
        return layers.Conv2D(int(rng.integers(2, 7)), k, s, padding, dilation_rate=d,
                             activation=activation)  # fmt: skip
    if kind == 1:
        return layers.DepthwiseConv2D(k, s, padding, depth_multiplier=int(rng.integers(1, 3)),
                                      dilation_rate=d, activation=activation)  # fmt: skip
    return layers.SeparableConv2D(int(rng.integers(2, 6)), k, s, padding, dilation_rate=d)


def random_batch_norm(rng: np.random.Generator, channels: int) -> Any:
    """A built BatchNormalization with random moving statistics."""
    bn = layers.BatchNormalization()
    bn.build((None, None, None, channels))
    bn.moving_mean.assign(rng.normal(0, 0.3, channels).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2, channels).astype("float32"))
    return bn


def random_local_step(rng: np.random.Generator, x: Any) -> Any:
    """x -> a random supported layer (or block) applied to it."""
    channels, size = int(x.shape[-1]), min(int(x.shape[1]), int(x.shape[2]))
    kind = int(rng.integers(9))
    if kind <= 1 and size >= 5:
        return random_conv(rng)(x)
    if kind == 2:
        return random_batch_norm(rng, channels)(x)
    if kind == 3:
        pick = rng.integers(4)
        activation = [layers.ReLU(), layers.LeakyReLU(0.2), layers.ELU(), layers.Activation("gelu")]
        return activation[pick](x)
    if kind == 4 and size >= 3:
        pool, stride = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        if rng.integers(2):
            return layers.MaxPooling2D(pool, stride, str(rng.choice(["same", "valid"])))(x)
        return layers.AveragePooling2D(pool, stride, "valid")(x)
    if kind == 5:
        pads = tuple(tuple(int(v) for v in rng.integers(0, 3, 2)) for _ in range(2))
        return layers.ZeroPadding2D(pads)(x)
    if kind == 6:  # residual sum or product
        branch = layers.Conv2D(channels, 3, padding="same")(x)
        merge = layers.Add() if rng.integers(2) else layers.Multiply()
        return merge([x, layers.BatchNormalization()(branch)])
    if kind == 7:
        a = layers.Conv2D(int(rng.integers(1, 4)), 1)(x)
        b = layers.Conv2D(int(rng.integers(1, 4)), 3, padding="same", activation="relu")(x)
        return layers.Concatenate()([a, b])
    return layers.Dropout(0.3)(x)


def head(rng: np.random.Generator, x: Any, outputs: int = 4) -> Any:
    """A global average pooling or a flatten, then a dense layer of ``outputs``."""
    x = layers.GlobalAveragePooling2D()(x) if rng.integers(2) else layers.Flatten()(x)
    return layers.Dense(outputs)(x)


def random_keras_cnn(seed: int, shape: tuple[int, int, int]) -> Any:
    """A functional CNN over (H, W, C) inputs: six random supported steps and a head."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    x = inputs
    for _ in range(6):
        x = random_local_step(rng, x)
    return keras.Model(inputs, head(rng, x))


def random_options(rng: np.random.Generator) -> dict[str, Any]:
    """Random Occlusion options for a small Keras CNN: batch, patch, stride, edges, and the
    switch-back share."""
    return {
        "batch_size": int(rng.integers(4, 12)),
        "patch_size": int(rng.integers(2, 7)),
        "patch_stride": int(rng.integers(2, 5)),
        "edges": str(rng.choice(["valid", "cover"])),
        "incremental_threshold": float(rng.choice([0.5, 1.0])),
    }


def assert_close(maps: np.ndarray, reference: np.ndarray, model: Any, x: np.ndarray) -> None:
    """1e-4 of the maps' maximum plus the float32 round-off of the scores."""
    outputs = float(np.abs(model(x, training=False).numpy()).max())
    error = np.abs(maps - reference).max()
    assert error <= 1e-4 * np.abs(reference).max() + 2**-18 * outputs, error


def count_model_calls(monkeypatch: Any) -> list[str]:
    """The model calls of every sweep from now on (the sweep's own count, which
    ``last_stats.model_calls`` reports): one entry, the backend method, per call."""
    from fastocclusion.engine.sweep import Sweep

    calls: list[str] = []
    counted = Sweep._call

    def call(self: Sweep, method: Any, *args: Any) -> Any:
        calls.append(getattr(method, "__name__", repr(method)))
        return counted(self, method, *args)

    monkeypatch.setattr(Sweep, "_call", call)
    return calls
