"""The NumPy backend and models that misbehave (design §6): the TensorFlow backend's rules for
models over NumPy arrays hold on it too (read-only views of the batch, a writable copy for a
model that writes into its input, copies for a model that keeps its batch, outputs that
share the batch's memory copied, shapes checked with errors naming the model or operator).

These run here, with TensorFlow installed, by making ``make_backend`` see no TensorFlow;
test_without_tensorflow.py runs the NumPy backend where TensorFlow cannot be imported. The
models and checks of the TensorFlow backend's tests are reused.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastocclusion.backends
from fastocclusion import Occlusion
from fastocclusion.backends import make_backend
from fastocclusion.backends.numpy import NumpyBackend


@pytest.fixture
def numpy_backend(monkeypatch):
    """``make_backend`` sees no TensorFlow: NumPy models get the NumPy backend here."""
    monkeypatch.setattr(fastocclusion.backends, "tensorflow_installed", lambda: False)


def test_make_backend_picks_tensorflow_when_installed_else_numpy(numpy_backend):
    assert isinstance(make_backend(lambda x: x, None), NumpyBackend)
    result = Occlusion(lambda x: x.reshape(len(x), -1)[:, :2], patch_size=1).explain(
        np.ones((1, 3))
    )
    assert type(result) is np.ndarray and result.dtype == np.float32
    with pytest.raises(TypeError, match=r"model 42 \(type int\) is not a model"):
        make_backend(42, None)
    with pytest.raises(ValueError, match="exact incremental inference runs PyTorch and Keras"):
        Occlusion(lambda x: x.reshape(len(x), -1), incremental=True).explain(np.ones((1, 4, 4, 1)))


def test_with_tensorflow_installed_numpy_models_keep_the_tensorflow_backend():
    tf = pytest.importorskip("tensorflow")
    from fastocclusion.backends.tensorflow import TFBackend

    assert isinstance(make_backend(lambda x: x, None), TFBackend)
    result = Occlusion(lambda x: x.reshape(len(x), -1)[:, :2], patch_size=1).explain(
        np.ones((1, 3))
    )
    assert isinstance(result, tf.Tensor)


@pytest.fixture(scope="module")
def reliability():
    """The reliability tests' models and checks (written for the TensorFlow backend)."""
    pytest.importorskip("tensorflow")
    import test_occlusion_reliability

    return test_occlusion_reliability


@pytest.mark.parametrize("model", ["callable", "predict_proba"])
@pytest.mark.parametrize("targets", ["targets", "top-class"])
@pytest.mark.parametrize("batch_size", [8, 5, None])
def test_a_model_that_writes_into_its_input_gets_a_copy_and_correct_maps(
    numpy_backend, reliability, model, targets, batch_size
):
    models = {"callable": reliability.inplace_model, "predict_proba": reliability.InplaceProba()}
    given = reliability.TARGETS if targets == "targets" else None
    reliability.test_a_numpy_model_that_writes_into_its_input_gets_correct_maps(
        models[model], given, batch_size
    )


def test_a_writing_model_is_copied_for_every_later_call(numpy_backend, reliability):
    reliability.test_a_writing_model_is_copied_for_every_later_call_of_the_instance()


def test_a_model_gets_read_only_views_it_cannot_unlock(numpy_backend, reliability):
    reliability.test_a_model_that_keeps_its_batches_gets_read_only_views_it_cannot_unlock()
    reliability.test_a_model_whose_read_only_error_is_not_about_its_input_is_not_retried()


@pytest.fixture(scope="module")
def keeping_models():
    """The model tests' NumPy models that keep their batch or return a view of it."""
    pytest.importorskip("tensorflow")
    import test_models

    return test_models


def _two_explanations(model, method: str, batch_size: int | None, images) -> list[np.ndarray]:
    explainer = Occlusion(model, batch_size=batch_size, patch_size=2, patch_stride=2)
    results = [getattr(explainer, method)(images) for _ in range(2)]
    assert all(type(result) is np.ndarray for result in results)
    return results


@pytest.mark.parametrize("kind", ["memoizing", "returns-a-view"])
@pytest.mark.parametrize("method", ["explain", "explain_classes"])
@pytest.mark.parametrize("batch_size", [4, None])
def test_a_model_that_keeps_its_batch_gets_copies_and_the_maps_of_one_that_does_not(
    numpy_backend, keeping_models, kind, method, batch_size
):
    m = keeping_models
    make, reference = {
        "memoizing": (m.Memoizing, m.clean_model),
        "returns-a-view": (lambda: m.viewing_model, lambda x: m.viewing_model(x).copy()),
    }[kind]
    expected = _two_explanations(reference, method, batch_size, m.IMAGES)
    for maps, wanted in zip(_two_explanations(make(), method, batch_size, m.IMAGES), expected):
        np.testing.assert_allclose(maps, wanted, rtol=1e-6, atol=1e-6)


def test_a_model_that_keeps_nothing_reads_the_batch_buffer_itself(numpy_backend, keeping_models):
    owners: list[str] = []

    def model(x: np.ndarray) -> np.ndarray:
        owners.append(type(x.base.obj).__name__)  # x.base: a read-only memoryview
        return keeping_models.clean_model(x)

    _two_explanations(model, "explain", 8, keeping_models.IMAGES)
    assert owners[0] == "ndarray" and set(owners[1:]) == {"HostBuffer"}, owners


def test_a_model_that_keeps_its_batch_only_later_is_warned_about(numpy_backend, keeping_models):
    with pytest.warns(RuntimeWarning, match="keeps a reference to its input array"):
        _two_explanations(keeping_models.Memoizing(since=3), "explain", 8, keeping_models.IMAGES)


IMAGES = np.random.default_rng(2).uniform(size=(3, 4, 4, 1)).astype(np.float32)


class ShapeShifter:
    """Outputs (B, 3) on its first call, then (B, 3, 1)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        outputs = x.reshape(len(x), -1)[:, :3]
        return outputs if self.calls == 1 else outputs[..., None]


@pytest.mark.parametrize(
    ("model", "operator", "error", "message"),
    [
        (lambda x: x[:1, 0, 0], None, ValueError, r"model: returned outputs of shape \(1, 1\)"),
        (ShapeShifter(), None, ValueError, r"model: returned outputs of shape \(32, 3, 1\)"),
        (lambda x: np.array(["a"] * len(x)), None, TypeError, "returned <U1 outputs"),
        (lambda x: (x, x), None, TypeError, "returned 2 outputs"),
        (lambda x: x, lambda f, x, y: np.ones((len(x), 2)), ValueError, "operator '<lambda>'"),
        (lambda x: x, lambda f, x, y: "high", ValueError, "operator '<lambda>' returned str"),
    ],
    ids=["rows", "changing shape", "strings", "two outputs", "scores shape", "not numbers"],
)
def test_bad_outputs_and_scores_name_the_model_or_operator(
    numpy_backend, model, operator, error, message
):
    targets = np.ones((3, 2), np.float32) if operator is not None else None
    with pytest.raises(error, match=message):
        Occlusion(model, operator=operator, patch_size=2, patch_stride=2).explain(IMAGES, targets)


def test_a_custom_operator_gets_the_model_and_read_only_numpy_arrays(numpy_backend):
    seen = []

    class Proba:
        def predict_proba(self, x):
            return x.reshape(len(x), -1)[:, :2]

    def operator(model, inputs, targets):
        seen.append((model, type(inputs), inputs.flags.writeable, targets.flags.writeable))
        return (model.predict_proba(inputs) * targets).sum(axis=1)

    proba = Proba()
    maps = Occlusion(proba, operator=operator, patch_size=2, batch_size=4).explain(
        IMAGES, np.eye(2, dtype=np.float32)[[0, 1, 1]]
    )
    assert type(maps) is np.ndarray and maps.shape == (3, 4, 4, 1)
    assert set(seen) == {(proba, np.ndarray, False, False)}
