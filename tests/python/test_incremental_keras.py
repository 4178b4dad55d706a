"""Exact incremental inference (design §8) for Keras models on TensorFlow, channels last:
random functional CNNs of every supported layer kind (convolutions with "same" and "valid"
padding, strides, dilations, depthwise and separable ones, batch norm with random
statistics, activations, max and average pooling, zero padding, sums, products and
concatenations, dropout) give the normal sweep's maps within float32 round-off; Sequential
models too; where it cannot run, incremental=True names the first unsupported layer or
option and "auto" keeps the normal sweep. Activations are local only when they are known
elementwise functions, PReLU and Rescaling only with the same weights at every position."""

from __future__ import annotations

import re

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
layers = keras.layers

from detection import keras_box_head, random_box_targets  # noqa: E402
from keras_models import (  # noqa: E402
    assert_close,
    centre,
    count_model_calls,
    random_keras_cnn,
    random_options,
)

from fastocclusion import Occlusion  # noqa: E402


def explain_both(model, x, **options):
    normal = Occlusion(model, incremental=False, **options)
    reference = normal.explain(x).numpy()
    options.setdefault("incremental_threshold", 1.0)
    incremental = Occlusion(model, incremental=True, **options)
    maps = incremental.explain(x).numpy()
    assert incremental.last_stats.model_calls == normal.last_stats.model_calls
    return maps, incremental.last_stats, reference


def test_random_keras_cnns_give_the_normal_sweeps_maps():
    ran = 0
    for seed in range(12):
        rng = np.random.default_rng(500 + seed)
        shape = (int(rng.integers(11, 24)), int(rng.integers(11, 24)), int(rng.integers(1, 4)))
        model = random_keras_cnn(seed, shape)
        x = rng.normal(size=(int(rng.integers(1, 3)),) + shape).astype(np.float32)
        options = random_options(rng)
        maps, stats, reference = explain_both(model, x, **options)
        assert_close(maps, reference, model, x)
        ran += bool(stats.incremental_layers)
    assert ran >= 9


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_a_float64_or_float16_input_runs_incrementally_as_its_layers_autocast(dtype):
    """A Keras model declaring a float64 or float16 input (float32 layers) gets batches in
    that dtype; the incremental graph casts them to float32 as the layers' autocast does
    (before, the first layer failed on them and "auto" kept the normal sweep)."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((14, 13, 2), dtype=dtype)
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    hidden = keras.layers.MaxPooling2D(2)(keras.layers.Conv2D(5, 3)(hidden))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(hidden)))
    x = np.random.default_rng(8).normal(size=(2, 14, 13, 2))
    maps, stats, reference = explain_both(model, x, patch_size=3, patch_stride=2, batch_size=9)
    assert len(stats.incremental_layers) == 3, stats.incremental_note
    assert np.abs(maps - reference).max() <= 1e-4 * np.abs(reference).max()


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


def test_an_incremental_sweep_traces_nothing_and_computes_only_real_rows():
    """The base pass calls the model itself on the real rows, eagerly (one image in a batch
    of 8: one row), and nothing is traced (the traced model would run all 8 rows); with
    targets given, no trace for the output shape either. A Lambda layer past the
    switch-back records every batch it sees, and whether it ran eagerly."""
    seen = []

    def record(t):
        seen.append((tf.executing_eagerly(), t.shape[0]))
        return t

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((16, 16, 2)), layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.Lambda(record), layers.GlobalAveragePooling2D(), layers.Dense(3),
    ])  # fmt: skip
    x = np.random.default_rng(4).normal(size=(1, 16, 16, 2)).astype(np.float32)
    targets = np.eye(3, dtype=np.float32)[[1]]
    reference = Occlusion(model, incremental=False, batch_size=8, patch_size=4).explain(
        x, targets
    )  # fmt: skip
    seen.clear()
    method = Occlusion(model, incremental=True, batch_size=8, patch_size=4)
    maps = method.explain(x, targets)
    assert method.last_stats.incremental_layers
    assert all(eager for eager, _ in seen), seen
    assert seen[0] == (True, 1)  # the model's own outputs of the one real row
    assert_close(maps.numpy(), reference.numpy(), model, x)


def test_keras_switches_back_at_its_own_default_share():
    """Keras's switch-back default is its own (engine.regions.DEFAULT_SWITCH_SHARE_KERAS,
    80 %): seven 3x3 convolutions grow a 4x4 patch's box by 2 each, to 77 % of the 16x16
    map at the sixth, which runs on boxes by default and in full under PyTorch's 70 %."""
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((16, 16, 1)),
        *(layers.Conv2D(2, 3, padding="same", activation="relu") for _ in range(7)),
        layers.GlobalAveragePooling2D(), layers.Dense(2),
    ])  # fmt: skip
    x = np.random.default_rng(6).normal(size=(1, 16, 16, 1)).astype(np.float32)
    notes = {}
    for threshold in (None, 0.7):
        method = Occlusion(model, incremental=True, patch_size=4, patch_stride=4,
                           incremental_threshold=threshold)  # fmt: skip
        method.explain(x)
        notes[threshold] = method.last_stats.incremental_note
    assert "6 layers run incrementally" in notes[None], notes
    assert "covers 88% of the map, past the switch-back share 80%" in notes[None], notes
    assert "5 layers run incrementally" in notes[0.7], notes
    assert "covers 77% of the map, past the switch-back share 70%" in notes[0.7], notes


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


def _model_with(*middle, first=()):
    """(14, 13, 3) -> ``first`` -> a convolution -> ``middle`` -> a convolution -> a head."""
    keras.utils.set_random_seed(8)
    return keras.Sequential([
        keras.Input((14, 13, 3)), *first, layers.Conv2D(4, 3, padding="same"), *middle,
        layers.Conv2D(3, 3), layers.Flatten(), layers.Dense(3),
    ])  # fmt: skip


def _alpha():
    return keras.initializers.RandomUniform(0.05, 0.5, seed=1)


def _not_local():
    """Layers whose output at a position reads other positions, or may: the activation
    centre (a spatial mean subtracted), PReLU and Rescaling with per-position weights; and
    what the reason says."""
    return [
        (lambda: layers.Conv2D(4, 3, padding="same", activation=centre), "activation 'centre'"),
        (lambda: layers.Activation(centre), "activation 'centre' is not a known elementwise"),
        (lambda: layers.PReLU(_alpha()), "PReLU with alpha of shape (14, 13,"),
        (lambda: layers.Rescaling(np.full((14, 13, 1), 0.5, np.float32)), "Rescaling with scale"),
    ]


@pytest.mark.parametrize(("make", "reason"), _not_local())
def test_layers_that_read_other_positions_run_in_full(make, reason, monkeypatch):
    """A Conv2D or Activation whose activation is not a known elementwise function, and
    PReLU or Rescaling weights that differ between positions, are not local: first in the
    model, incremental=True names them before any model call and "auto" says why it keeps
    the normal sweep; deeper, what comes before them runs incrementally, they run in full."""
    calls = count_model_calls(monkeypatch)
    x = np.random.default_rng(6).normal(size=(2, 14, 13, 3)).astype(np.float32)
    options = {"batch_size": 8, "patch_size": 4, "patch_stride": 3}
    first = _model_with(first=[make()])
    message = f"incremental: True is invalid here, model: {first.layers[0].name}: .*"
    with pytest.raises(ValueError, match=message + re.escape(reason)):
        Occlusion(first, incremental=True, **options).explain(x)
    assert calls == []
    auto = Occlusion(first, **options)
    maps = auto.explain(x).numpy()
    assert_close(maps, Occlusion(first, incremental=False, **options).explain(x).numpy(), first, x)
    assert auto.last_stats.incremental_note.startswith("normal sweep: model: ")
    assert reason in auto.last_stats.incremental_note
    deeper = _model_with(make())
    maps, stats, reference = explain_both(deeper, x, **options)
    assert stats.incremental_layers == (deeper.layers[0].name,)
    assert_close(maps, reference, deeper, x)


@pytest.mark.parametrize(
    "make",
    [
        lambda: layers.Conv2D(4, 3, padding="same", activation=tf.nn.relu6),
        lambda: layers.Activation(keras.activations.mish),
        lambda: layers.Activation("softmax"),  # over the channels
        lambda: layers.Activation(tf.math.tanh),
        lambda: layers.Softmax(),
        lambda: layers.PReLU(_alpha(), shared_axes=[1, 2]),
        lambda: layers.Rescaling(np.array([0.5, 2, 1, 3], np.float32), offset=0.1),
    ],
)
def test_elementwise_activations_and_shared_weights_run_incrementally(make):
    model = _model_with(make())
    x = np.random.default_rng(7).normal(size=(2, 14, 13, 3)).astype(np.float32)
    maps, stats, reference = explain_both(model, x, batch_size=8, patch_size=4, patch_stride=3)
    assert stats.incremental_layers == tuple(layer.name for layer in model.layers[:3])
    assert_close(maps, reference, model, x)


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
