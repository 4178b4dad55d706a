"""Exact incremental inference (SPEC §8) for Keras models on TensorFlow, channels last:
random functional CNNs of every supported layer kind (convolutions with "same" and "valid"
padding, strides, dilations, depthwise and separable ones, batch norm with random
statistics, activations, max and average pooling, zero padding, sums, products and
concatenations, dropout) give the normal sweep's maps within float32 round-off; Sequential
models too; where it cannot run, incremental=True names the first unsupported layer or
option and "auto" keeps the normal sweep."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
layers = keras.layers

from detection import keras_box_head, random_box_targets  # noqa: E402

from fastocclusion import Occlusion  # noqa: E402


def _conv(rng, channels):
    kind = int(rng.integers(3))
    k, s = int(rng.integers(1, 5)), int(rng.integers(1, 3))
    d = int(rng.integers(1, 3)) if s == 1 else 1
    padding = str(rng.choice(["same", "valid"]))
    activation = str(rng.choice(["relu", "tanh", "linear"]))
    if kind == 0:
        return layers.Conv2D(int(rng.integers(2, 7)), k, s, padding, dilation_rate=d,
                             activation=activation)  # fmt: skip
    if kind == 1:
        return layers.DepthwiseConv2D(k, s, padding, depth_multiplier=int(rng.integers(1, 3)),
                                      dilation_rate=d, activation=activation)  # fmt: skip
    return layers.SeparableConv2D(int(rng.integers(2, 6)), k, s, padding, dilation_rate=d)


def _batch_norm(rng, channels):
    bn = layers.BatchNormalization()
    bn.build((None, None, None, channels))
    bn.moving_mean.assign(rng.normal(0, 0.3, channels).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2, channels).astype("float32"))
    return bn


def _step(rng, x):
    """x -> a random supported layer (or block) applied to it."""
    channels, size = int(x.shape[-1]), min(int(x.shape[1]), int(x.shape[2]))
    kind = int(rng.integers(9))
    if kind <= 1 and size >= 5:
        return _conv(rng, channels)(x)
    if kind == 2:
        return _batch_norm(rng, channels)(x)
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


def random_keras_cnn(seed, shape):
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    x = inputs
    for _ in range(6):
        x = _step(rng, x)
    x = layers.GlobalAveragePooling2D()(x) if rng.integers(2) else layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(4)(x))


def explain_both(model, x, **options):
    normal = Occlusion(model, incremental=False, **options)
    reference = normal.explain(x).numpy()
    options.setdefault("incremental_threshold", 1.0)
    incremental = Occlusion(model, incremental=True, **options)
    maps = incremental.explain(x).numpy()
    assert incremental.last_stats.model_calls == normal.last_stats.model_calls
    return maps, incremental.last_stats, reference


def assert_close(maps, reference, model, x):
    """1e-4 of the maps' maximum plus the float32 round-off of the scores."""
    outputs = float(np.abs(model(x, training=False).numpy()).max())
    assert np.abs(maps - reference).max() <= 1e-4 * np.abs(reference).max() + 2**-18 * outputs


def test_random_keras_cnns_give_the_normal_sweeps_maps():
    ran = 0
    for seed in range(12):
        rng = np.random.default_rng(500 + seed)
        shape = (int(rng.integers(11, 24)), int(rng.integers(11, 24)), int(rng.integers(1, 4)))
        model = random_keras_cnn(seed, shape)
        x = rng.normal(size=(int(rng.integers(1, 3)),) + shape).astype(np.float32)
        options = {
            "batch_size": int(rng.integers(4, 12)),
            "patch_size": int(rng.integers(2, 7)),
            "patch_stride": int(rng.integers(2, 5)),
            "edges": str(rng.choice(["valid", "cover"])),
            "incremental_threshold": float(rng.choice([0.5, 1.0])),
        }
        maps, stats, reference = explain_both(model, x, **options)
        assert_close(maps, reference, model, x)
        ran += bool(stats.incremental_layers)
    assert ran >= 9


def test_a_sequential_model_and_what_ran():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((20, 18, 3)), layers.Conv2D(8, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2), layers.Conv2D(8, 3, activation="relu"),
        layers.GlobalAveragePooling2D(), layers.Dense(3),
    ])  # fmt: skip
    x = np.random.default_rng(2).normal(size=(2, 20, 18, 3)).astype(np.float32)
    maps, stats, reference = explain_both(model, x, batch_size=8, patch_size=4, patch_stride=3)
    assert len(stats.incremental_layers) == 3
    assert "global_average_pooling2d" in stats.incremental_note
    assert_close(maps, reference, model, x)


@pytest.mark.parametrize(
    ("first", "options", "message"),
    [
        (layers.UpSampling2D(2), {}, "model: up_sampling2d.*: UpSampling2D is not a supported"),
        (
            layers.AveragePooling2D(2, padding="same"),
            {},
            "model: average_pooling2d.*'same' padding",
        ),
        (layers.Conv2D(2, 3), {"data_format": "channels_first"}, "inputs: Keras CNNs read"),
        (layers.Conv2D(2, 3), {"operator": lambda m, x, y: m(x)[:, 0]}, "operator: a custom"),
    ],
)
def test_unsupported_keras_models_and_options(first, options, message):
    model = keras.Sequential([keras.Input((12, 12, 3)), first, layers.Flatten(), layers.Dense(2)])
    x = np.random.default_rng(3).normal(size=(2, 12, 12, 3)).astype(np.float32)
    if options.get("data_format") == "channels_first":
        x = x.transpose(0, 3, 1, 2).copy()
        model = keras.Sequential([keras.Input((3, 12, 12)), layers.Flatten(), layers.Dense(2)])
    common = {"batch_size": 8, "patch_size": 4, "patch_stride": 4, **options}
    with pytest.raises(ValueError, match=f"incremental: True is invalid here, {message}"):
        Occlusion(model, incremental=True, **common).explain(x)
    method = Occlusion(model, **common)
    method.explain(x)
    assert method.last_stats.incremental_note.startswith("normal sweep")


def test_tensorflow_callables_say_why():
    import tensorflow as tf

    model = tf.function(lambda x: tf.reduce_mean(x, axis=(1, 2)))
    x = np.random.default_rng(4).normal(size=(1, 8, 8, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="runs PyTorch and Keras"):
        Occlusion(model, incremental=True, batch_size=4, patch_size=4).explain(x)


NUM_CLASSES = 3


def _detection_model():
    """(N, 16, 16, 3) -> convolutions -> (N, 2 boxes, 4 + 1 + classes) valid boxes."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(4, 3, 2, "same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dense(2 * (5 + NUM_CLASSES))(layers.Flatten()(x))
    return keras.Model(inputs, keras_box_head(keras, 2, NUM_CLASSES)(x))


def _operator_case(task):
    from fastocclusion import Tasks

    rng = np.random.default_rng(7)
    if task is Tasks.SEMANTIC_SEGMENTATION:
        keras.utils.set_random_seed(3)
        model = keras.Sequential([
            keras.Input((15, 13, 2)), layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.Conv2D(NUM_CLASSES, 3, padding="same"), layers.Softmax(),
        ])  # fmt: skip
        x = rng.normal(size=(2, 15, 13, 2)).astype(np.float32)
        targets = (rng.uniform(size=(2, 15, 13, NUM_CLASSES)) > 0.7).astype(np.float32)
        return model, x, targets
    if task.value.startswith("object detection"):
        x = rng.uniform(size=(3, 16, 16, 3)).astype(np.float32)
        return _detection_model(), x, random_box_targets(rng, (1, 2, 1), 2, NUM_CLASSES)
    model = random_keras_cnn(11, (17, 15, 3))
    x = rng.normal(size=(3, 17, 15, 3)).astype(np.float32)
    return model, x, rng.normal(size=(3, 4)).astype(np.float32)


def _every_task():
    from fastocclusion import Tasks

    return list(Tasks)


@pytest.mark.parametrize("task", _every_task())
def test_every_operator(task):
    model, x, targets = _operator_case(task)
    options = {"operator": task, "batch_size": 7, "patch_size": 3, "patch_stride": 2}
    normal = Occlusion(model, incremental=False, **options)
    reference = normal.explain(x, targets).numpy()
    incremental = Occlusion(model, incremental=True, incremental_threshold=1.0, **options)
    maps = incremental.explain(x, targets).numpy()
    assert incremental.last_stats.incremental_layers
    assert_close(maps, reference, model, x)


@pytest.mark.parametrize("method", ["explain", "explain_classes"])
def test_default_targets_and_all_class_maps(method):
    model = random_keras_cnn(4, (19, 21, 2))
    x = np.random.default_rng(2).normal(size=(2, 19, 21, 2)).astype(np.float32)
    options = {"batch_size": 9, "patch_size": 5, "patch_stride": 3}
    reference = getattr(Occlusion(model, incremental=False, **options), method)(x).numpy()
    incremental = Occlusion(model, incremental=True, incremental_threshold=1.0, **options)
    maps = getattr(incremental, method)(x).numpy()
    assert incremental.last_stats.incremental_layers
    assert maps.shape == reference.shape
    assert_close(maps, reference, model, x)


def test_border_patches_and_a_patch_as_large_as_the_image():
    keras.utils.set_random_seed(6)
    model = keras.Sequential([
        keras.Input((13, 11, 3)), layers.Conv2D(5, 3, 2, padding="same", activation="relu"),
        layers.MaxPooling2D(2, 1), layers.Conv2D(4, 2, padding="valid", dilation_rate=2),
        layers.Flatten(), layers.Dense(3),
    ])  # fmt: skip
    x = np.random.default_rng(4).normal(size=(1, 13, 11, 3)).astype(np.float32)
    for patch, stride in (((13, 11), (1, 1)), ((12, 10), (1, 1)), ((5, 4), (4, 4))):
        options = {"batch_size": 4, "patch_size": patch, "patch_stride": stride, "edges": "cover"}
        maps, stats, reference = explain_both(model, x, **options)
        assert stats.incremental_layers
        assert_close(maps, reference, model, x)


def test_auto_keeps_the_normal_sweep_where_keras_calls_are_cheap():
    """Eager Keras layer calls cost ~ms each: a small CNN's calls are cheaper whole
    (engine.regions.AUTO_MIN_CALL_MACS_KERAS); True still runs it incrementally."""
    model = random_keras_cnn(2, (16, 16, 3))
    x = np.random.default_rng(5).normal(size=(1, 16, 16, 3)).astype(np.float32)
    options = {"batch_size": 8, "patch_size": 4, "patch_stride": 2}
    auto = Occlusion(model, **options)
    auto.explain(x)
    assert auto.last_stats.incremental_layers == ()
    assert "too cheap to split" in auto.last_stats.incremental_note
    forced = Occlusion(model, incremental=True, **options)
    forced.explain(x)
    assert forced.last_stats.incremental_layers
