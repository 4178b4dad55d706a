"""Model adapters: every kind gives what calling the model directly gives, as float32 tf.Tensor."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from fastocclusion.backends import is_torch_model, make_backend
from fastocclusion.backends.tensorflow.models import ModelAdapter, adapt_model

FEATURES, CLASSES = 6, 3


@pytest.fixture(scope="session")
def batch() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(5, FEATURES)).astype(np.float32)


@pytest.fixture(scope="session")
def keras_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dropout(0.9),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )


@pytest.fixture(scope="session")
def tflite_bytes(keras_model: keras.Model) -> bytes:
    try:
        return tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
    except Exception:  # noqa: BLE001 - fall back to the concrete-function path
        function = tf.function(lambda x: keras_model(x, training=False))
        concrete = function.get_concrete_function(tf.TensorSpec([None, FEATURES], tf.float32))
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete], keras_model).convert()


def make_interpreter(content: bytes) -> object:
    with warnings.catch_warnings():  # tf.lite.Interpreter warns that LiteRT replaces it
        warnings.simplefilter("ignore", UserWarning)
        return tf.lite.Interpreter(model_content=content)


class Affine(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        init = np.random.default_rng(1).normal(size=(FEATURES, CLASSES)).astype(np.float32)
        self.w = tf.Variable(init)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, self.w)


def check_adapter(
    adapter: ModelAdapter, batch: np.ndarray, expected: np.ndarray, atol: float = 1e-6
) -> None:
    for given in (batch, tf.constant(batch)):
        out = adapter(given)
        assert isinstance(out, tf.Tensor) and out.dtype == tf.float32
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=atol)
    static_shapes: list[tuple[int | None, ...]] = []

    @tf.function
    def traced(x: tf.Tensor) -> tf.Tensor:  # traced, or through numpy_function
        out = adapter(x)
        static_shapes.append(tuple(out.shape))
        return out

    np.testing.assert_allclose(traced(tf.constant(batch)).numpy(), expected, rtol=1e-5, atol=atol)
    assert static_shapes == [expected.shape]  # static shape known after one eager call


def test_keras(keras_model: keras.Model, batch: np.ndarray) -> None:
    adapter = adapt_model(keras_model)
    assert (adapter.kind, adapter.traceable, adapter.model) == ("keras", True, keras_model)
    # training=False: Dropout(0.9) would otherwise change the outputs
    check_adapter(adapter, batch, keras_model(batch, training=False).numpy())


def test_keras_subclass_without_training_argument(batch: np.ndarray) -> None:
    class Doubler(keras.Model):
        def call(self, x):
            return x * 2.0

    adapter = adapt_model(Doubler())
    assert adapter.kind == "keras"
    check_adapter(adapter, batch, batch * 2.0)


def test_tf_module(batch: np.ndarray) -> None:
    module = Affine()
    adapter = adapt_model(module)
    assert (adapter.kind, adapter.traceable) == ("tf_module", True)
    check_adapter(adapter, batch, batch @ module.w.numpy())
    with pytest.raises(TypeError, match="model"):
        adapt_model(tf.Module())  # not callable


def test_tf_function(batch: np.ndarray) -> None:
    function = tf.function(lambda x: tf.nn.relu(x[:, :CLASSES]) + 1.0)
    adapter = adapt_model(function)
    assert (adapter.kind, adapter.traceable) == ("tf_callable", True)
    check_adapter(adapter, batch, np.maximum(batch[:, :CLASSES], 0) + 1.0)
    concrete = function.get_concrete_function(tf.TensorSpec([None, FEATURES], tf.float32))
    assert adapt_model(concrete).kind == "tf_callable"
    check_adapter(adapt_model(concrete), batch, np.maximum(batch[:, :CLASSES], 0) + 1.0)


def test_numpy_callable(batch: np.ndarray) -> None:
    seen: list[type] = []

    def model(x):
        seen.append(type(x))
        return np.tanh(x.astype(np.float64)).sum(axis=1, keepdims=True)  # float64 out

    adapter = adapt_model(model)
    assert (adapter.kind, adapter.traceable) == ("numpy_callable", False)
    check_adapter(adapter, batch, np.tanh(batch).sum(axis=1, keepdims=True))
    assert set(seen) == {np.ndarray}  # never a tf.Tensor, even under tf.function
    original = batch.copy()
    adapter(batch)
    np.testing.assert_array_equal(batch, original)


def test_sklearn(batch: np.ndarray) -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, FEATURES))
    labels = np.arange(30) % CLASSES
    classifier = LogisticRegression(max_iter=200).fit(x, labels)
    adapter = adapt_model(classifier)
    assert (adapter.kind, adapter.traceable) == ("sklearn", False)
    check_adapter(adapter, batch, classifier.predict_proba(batch))
    regressor = LinearRegression().fit(x, x[:, 0] * 2.0)
    check_adapter(adapt_model(regressor), batch, regressor.predict(batch), atol=1e-5)


def test_tflite(tflite_bytes: bytes, keras_model: keras.Model, batch: np.ndarray) -> None:
    interpreter = make_interpreter(tflite_bytes)
    adapter = adapt_model(interpreter)
    assert (adapter.kind, adapter.traceable, adapter.model) == ("tflite", False, interpreter)
    expected = keras_model(batch, training=False).numpy()
    check_adapter(adapter, batch, expected)
    # batch shape changes: the input is resized once per new shape, results stay right
    spy = ResizeCounter(make_interpreter(tflite_bytes))
    adapter = adapt_model(spy)
    assert adapter.kind == "tflite"
    for rows in (2, 2, 5, 5, 1, 2):
        np.testing.assert_allclose(
            adapter(batch[:rows]).numpy(), expected[:rows], rtol=1e-5, atol=1e-6
        )
    assert spy.resizes == [[2, FEATURES], [5, FEATURES], [1, FEATURES], [2, FEATURES]]


class ResizeCounter:
    """Duck-typed interpreter proxy that records resize_tensor_input calls."""

    def __init__(self, interpreter: object) -> None:
        self.inner = interpreter
        self.resizes: list[list[int]] = []

    def resize_tensor_input(self, index: int, shape: list[int], **kwargs: object) -> None:
        self.resizes.append(list(shape))
        self.inner.resize_tensor_input(index, shape, **kwargs)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.mark.torch
def test_torch_modules_get_the_torch_backend() -> None:
    import torch

    from fastocclusion.backends.tensorflow import TFBackend
    from fastocclusion.backends.torch import TorchBackend

    module = torch.nn.Sequential(torch.nn.Linear(FEATURES, CLASSES), torch.nn.Softmax(dim=-1))
    assert is_torch_model(module) and not is_torch_model(lambda x: x)
    assert isinstance(make_backend(module, None), TorchBackend)
    assert isinstance(make_backend(lambda x: x, None), TFBackend)
    with pytest.raises(TypeError, match=r"model .* is not a model"):
        adapt_model(42)


@pytest.mark.parametrize("bad", [42, "model", None, np.ones(3), int])
def test_invalid_models(bad: object) -> None:
    with pytest.raises(TypeError, match=r"model .* is not a model"):
        adapt_model(bad)


def test_multiple_outputs_rejected(batch: np.ndarray) -> None:
    with pytest.raises(TypeError, match="2 outputs"):
        adapt_model(lambda x: (x, x))(batch)
    single = adapt_model(lambda x: [x * 3.0])(batch)
    np.testing.assert_allclose(single.numpy(), batch * 3.0, rtol=1e-6)
    with pytest.raises(TypeError, match="string outputs"):
        adapt_model(lambda x: np.array(["a"] * len(x)))(batch)


def test_adapter_is_idempotent() -> None:
    adapter = adapt_model(lambda x: x)
    assert adapt_model(adapter) is adapter


@pytest.mark.slow
def test_imports_load_no_tensorflow_at_package_level_and_no_torch() -> None:
    code = (
        "import sys, fastocclusion; assert 'tensorflow' not in sys.modules; "
        "import fastocclusion.backends.tensorflow.models as models; "
        "import fastocclusion.backends.tensorflow.operators; "
        "models.adapt_model(lambda x: x); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


def test_the_flat_call_of_a_concrete_function_and_its_fallback() -> None:
    """TFBackend calls traced functions through their flat entry point (cheaper) and falls
    back to the public call when a TensorFlow release lacks it or refuses the arguments."""
    from fastocclusion.backends.tensorflow.backend import TFBackend

    x = tf.constant(np.arange(6, dtype=np.float32).reshape(2, 3))
    concrete = tf.function(lambda t: t * 2.0).get_concrete_function(tf.TensorSpec((2, 3)))
    np.testing.assert_array_equal(TFBackend._flat_call(concrete)(x).numpy(), x.numpy() * 2)

    class Public:
        captured_inputs: list = []

        def __init__(self) -> None:
            self.public = 0

        def _call_flat(self, args: list, captured: list) -> None:
            raise TypeError("_call_flat() takes 4 positional arguments")

        def __call__(self, t: object) -> str:
            self.public += 1
            return "public"

    refusing = Public()
    call = TFBackend._flat_call(refusing)
    assert call(x) == "public" and call(x) == "public" and refusing.public == 2
    assert TFBackend._flat_call(object) is object  # no flat entry: the object itself


# -- Keras input shapes, checked before any model call -------------------------------------


@pytest.mark.parametrize(
    ("sample", "declared", "refused_by"),
    [
        ((12, 12, 3), (12, 12, 3), ()),
        ((12, 12, 3), (None, None, 3), ()),
        ((12, 12), (12, 12, 1), ()),  # Keras adds the trailing axis of length 1
        ((12, 12, 1), (12, 12), ()),  # and drops it
        ((12, 12), (12, 12, 3), ("functional", "sequential")),
        ((12, 12, 3, 1, 1), (12, 12, 3), ("functional", "sequential")),
        ((10, 12, 3), (12, 12, 3), ("functional",)),  # a Sequential model takes other sizes
        ((12, 12, 1), (12, 12, 3), ("functional",)),
    ],
)
@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_the_keras_input_shape_check(sample, declared, refused_by, kind) -> None:
    """check_keras_input accepts what Keras accepts (a trailing axis of length 1 added or
    dropped; other lengths for a Sequential model) and refuses the rest, before any call."""
    from fastocclusion.backends.tensorflow.models import check_keras_input

    inputs = keras.Input(declared)
    if kind == "functional":
        model = keras.Model(inputs, keras.layers.Flatten()(inputs))
    else:
        model = keras.Sequential([inputs, keras.layers.Flatten()])
    if kind not in refused_by:
        check_keras_input(model, sample)
        model(np.zeros((2, *sample), np.float32))  # as Keras itself has it
        return
    with pytest.raises(ValueError, match=r"^inputs: samples of shape .* do not fit the Keras"):
        check_keras_input(model, sample)


def test_keras_models_that_declare_no_input_shape_are_not_checked() -> None:
    from fastocclusion.backends.tensorflow.models import check_keras_input, keras_input_shape

    class Doubler(keras.Model):
        def call(self, x):
            return x * 2.0

    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    inputs = [keras.Input((4,)), keras.Input((3,))]
    two = keras.Model(inputs, keras.layers.Concatenate()(inputs))
    for model in (Doubler(), unbuilt, two):
        assert keras_input_shape(model) is None
        check_keras_input(model, (7, 7))


@pytest.mark.parametrize("incremental", [False, "auto", True])
@pytest.mark.parametrize("targets", [None, np.eye(2, dtype=np.float32)], ids=["top", "given"])
@pytest.mark.parametrize("channels", [None, 1, 3], ids=["no-channel", "1-channel", "3-channel"])
def test_keras_inputs_that_do_not_fit_fail_before_any_model_call(
    incremental, targets, channels
) -> None:
    """A (N, 12, 12) batch for a model over (12, 12, 3) images (the channel axis forgotten),
    or (N, 10, 12, c) images: a ValueError naming ``inputs``, the shape given and the
    model's, before the model is traced or called (incremental=True refuses the
    channel-less batch sooner: it is not images)."""
    from fastocclusion import Occlusion

    keras.utils.set_random_seed(0)
    seen: list[tuple[int, ...]] = []
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(2, 3, activation="relu")(inputs)
    x = keras.layers.Lambda(lambda t: seen.append(tuple(t.shape)) or t)(x)  # traced or run
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    seen.clear()
    sample = (12, 12) if channels is None else (10, 12, channels)
    if channels is None and incremental is True:
        message = "incremental: True is invalid here, inputs: .* not time series"
    else:
        message = (
            rf"^inputs: samples of shape {re.escape(str(sample))} .* input shape is "
            r"\(None, 12, 12, 3\): expected inputs of shape \(N, 12, 12, 3\)"
        )
    method = Occlusion(model, patch_size=4, batch_size=8, incremental=incremental)
    with pytest.raises(ValueError, match=message):
        method.explain(np.zeros((2, *sample), np.float32), targets)
    assert seen == []


def test_a_one_channel_keras_model_takes_images_without_their_channel_axis() -> None:
    """As Keras adds the trailing axis of length 1, (N, H, W) batches work for a model over
    (H, W, 1) images: their maps are those of the (N, H, W, 1) batch."""
    from fastocclusion import Occlusion

    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((12, 12, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
        keras.layers.Dense(2),
    ])  # fmt: skip
    x = np.random.default_rng(2).normal(size=(2, 12, 12)).astype(np.float32)
    method = Occlusion(model, patch_size=4, batch_size=8)
    np.testing.assert_allclose(
        method.explain(x).numpy(), method.explain(x[..., None]).numpy()[..., 0], atol=1e-6
    )


# -- NumPy models that keep their batch ----------------------------------------------------

IMAGES = np.random.default_rng(3).uniform(size=(3, 8, 8, 3)).astype(np.float32)
WEIGHTS = np.random.default_rng(4).normal(size=(8 * 8 * 3, 4)).astype(np.float32)


def clean_model(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1) @ WEIGHTS


class Memoizing:
    """Keeps its last batch and returns its last outputs for an equal batch: a model that
    keeps a reference to its input (a cache, a lazy or asynchronous framework)."""

    def __init__(self, since: int = 0) -> None:
        self.last: np.ndarray | None = None
        self.outputs: np.ndarray | None = None
        self.calls, self.since = 0, since

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.last is not None and np.array_equal(self.last, x):
            return self.outputs
        outputs = clean_model(x)
        if self.calls > self.since:
            self.last, self.outputs = x, outputs
        return outputs


def _explanations(model, method: str, batch_size: int | None) -> list[np.ndarray]:
    """Two explains of one instance (the second reuses the batch buffer of the first)."""
    from fastocclusion import Occlusion

    explainer = Occlusion(model, batch_size=batch_size, patch_size=2, patch_stride=2)
    return [getattr(explainer, method)(IMAGES).numpy() for _ in range(2)]


def viewing_model(x: np.ndarray) -> np.ndarray:
    """Outputs that are a view of the batch."""
    return x.reshape(len(x), -1)[:, 5:9]


@pytest.mark.parametrize(
    ("make", "reference"),
    [(Memoizing, clean_model), (lambda: viewing_model, lambda x: viewing_model(x).copy())],
    ids=["memoizing", "returns-a-view"],
)
@pytest.mark.parametrize("method", ["explain", "explain_classes"])
@pytest.mark.parametrize("batch_size", [4, 8, None])
def test_a_numpy_model_that_keeps_its_batch_gets_the_maps_of_one_that_does_not(
    make, reference, method, batch_size
) -> None:
    """Its first batch is a copy: it keeps it, so it gets a copy of every batch, which later
    batches never rewrite; a model returning a view of its batch has its outputs copied."""
    expected = _explanations(reference, method, batch_size)
    for maps, wanted in zip(_explanations(make(), method, batch_size), expected):
        np.testing.assert_allclose(maps, wanted, rtol=1e-6, atol=1e-6)


def test_a_numpy_model_that_keeps_nothing_gets_views_of_the_batch_buffer() -> None:
    """No copy per call: after the first call (a copy, to see whether the model keeps it),
    the model reads the batch buffer itself."""
    owners: list[str] = []

    def model(x: np.ndarray) -> np.ndarray:
        owners.append(type(x.base.obj).__name__)  # x.base: a read-only memoryview
        return clean_model(x)

    _explanations(model, "explain", 8)
    assert owners[0] == "ndarray" and set(owners[1:]) == {"HostBuffer"}, owners


def test_a_numpy_model_that_keeps_its_batch_only_later_is_warned_about() -> None:
    """A model that keeps nothing at first, then keeps a view of the buffer: copies from
    then on, and a RuntimeWarning that the batch it kept is rewritten."""
    model = Memoizing(since=3)
    with pytest.warns(RuntimeWarning, match="keeps a reference to its input array"):
        _explanations(model, "explain", 8)


@pytest.mark.parametrize("incremental", [False, "auto"])
def test_a_float64_keras_model_gets_float64_batches_and_exact_maps(incremental) -> None:
    """A Keras model declaring a float64 input gets float64 batches (issue "Drop-in"):
    inputs that differ from 1 by ~1e-9, below float32's resolution, keep their differences.
    The model scores 1e9 * w . (x - 1); with float32 batches every score would be 0 and the
    map blank; here a window's map is that sum over it (the baseline is 1)."""
    from fastocclusion import Occlusion

    keras.utils.set_random_seed(0)
    seen = []

    class Probe(keras.layers.Layer):
        def call(self, x):
            seen.append(x.dtype)
            return x

    model = keras.Sequential(
        [
            keras.Input((6, 6, 2), dtype="float64"),
            Probe(dtype="float64"),
            keras.layers.Rescaling(1e9, -1e9, dtype="float64"),
            keras.layers.Flatten(dtype="float64"),
            keras.layers.Dense(3, dtype="float64"),
        ]
    )
    x = 1.0 + np.random.default_rng(1).uniform(size=(2, 6, 6, 2)) * 1e-9
    method = Occlusion(model, patch_size=3, patch_stride=3, occlusion_value=1.0,
                       incremental=incremental)  # fmt: skip
    assert method._backend.batch_dtype == np.float64
    maps = np.asarray(method.explain(x, np.eye(3, dtype=np.float32)[[0, 2]]))
    assert set(map(str, seen)) <= {"float64", "<dtype: 'float64'>"} and seen
    weights = model.layers[-1].kernel.numpy()[:, [0, 2]].T.reshape(2, 6, 6, 2)
    contribution = (weights * (x - 1.0) * 1e9).sum(axis=-1)  # (2, 6, 6), per position
    expected = contribution.reshape(2, 2, 3, 2, 3).sum(axis=(2, 4))  # per 3x3 window
    expected = expected.repeat(3, 1).repeat(3, 2)[..., None]
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)


def test_keras_float32_models_and_other_kinds_keep_float32_batches() -> None:
    keras.utils.set_random_seed(0)
    float32 = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert adapt_model(float32).batch_dtype is None
    half = keras.Sequential([keras.Input((4,), dtype="float16"), keras.layers.Dense(2)])
    assert adapt_model(half).batch_dtype == np.float16
    assert adapt_model(tf.function(lambda x: x)).batch_dtype is None
