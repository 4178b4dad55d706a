"""Objectives and the base pass the engine hands back (design §3, §4): targets as class
indices equal their one-hot targets on every backend, ``last_base_pass`` holds the targets
used, the base scores and the outputs the base pass computed (checked against the model
itself), and bad class indices fail before any model call or, where the output shape is
needed, naming ``targets``."""

from __future__ import annotations

import numpy as np
import pytest

from fastocclusion import ClassIndices, Occlusion
from fastocclusion.engine.objective import BasePass, OperatorObjective

CLASSES = 5


def _numpy_model(weights: np.ndarray):
    """A linear model over flattened NumPy inputs, counting its calls."""
    calls = []

    def model(batch):
        calls.append(len(batch))
        return np.asarray(batch, np.float32).reshape(len(batch), -1) @ weights

    model.calls = calls
    return model


def _host(maps) -> np.ndarray:
    return maps.numpy() if hasattr(maps, "numpy") else np.asarray(maps)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_indices_equal_their_one_hot_targets(backend_kind, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5))
    x = rng.normal(size=(n, 6, 6, 2)).astype(np.float32)
    weights = rng.normal(size=(72, CLASSES)).astype(np.float32)
    model = _numpy_model(weights)
    labels = rng.integers(0, CLASSES, size=n)
    method = Occlusion(model, patch_size=2, patch_stride=2, batch_size=int(rng.integers(1, 9)))
    expected = _host(method.explain(x, np.eye(CLASSES, dtype=np.float32)[labels]))
    calls = len(model.calls)
    got = _host(method.explain(x, ClassIndices(labels)))
    np.testing.assert_array_equal(got, expected)
    assert len(model.calls) - calls == calls  # the same calls: the base pass gave the shape
    base = method.last_base_pass
    assert isinstance(base, BasePass)
    np.testing.assert_array_equal(base.labels(), labels)
    reference = x.reshape(n, -1) @ weights
    np.testing.assert_allclose(base.scores, reference[np.arange(n), labels], rtol=1e-5)
    assert base.scores.dtype == np.float64 and base.scores.shape == (n,)
    np.testing.assert_allclose(base.outputs, reference, rtol=1e-5)


def test_top_class_base_pass_holds_the_models_outputs(backend_kind):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
    weights = rng.normal(size=(16, CLASSES)).astype(np.float32)
    method = Occlusion(_numpy_model(weights), patch_size=2, patch_stride=2)
    method.explain(x)
    base = method.last_base_pass
    reference = x.reshape(3, -1) @ weights
    np.testing.assert_array_equal(base.labels(), reference.argmax(axis=1))
    np.testing.assert_allclose(base.outputs, reference, rtol=1e-5)
    np.testing.assert_allclose(base.scores, reference.max(axis=1), rtol=1e-5)
    method.explain_classes(x)
    assert method.last_base_pass is None  # explain_classes keeps every class, no base pass


def test_keras_class_indices_with_a_traced_output_shape():
    """A traceable model: the shape comes from tracing, the base pass computes no outputs."""
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(3)
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(CLASSES)]
    )
    x = rng.normal(size=(2, 6, 6, 1)).astype(np.float32)
    labels = np.array([4, 1])
    method = Occlusion(model, patch_size=3, patch_stride=3, incremental=False)
    got = method.explain(x, ClassIndices(labels)).numpy()
    expected = method.explain(x, np.eye(CLASSES, dtype=np.float32)[labels]).numpy()
    np.testing.assert_array_equal(got, expected)
    base = method.last_base_pass
    assert base.outputs is None
    outputs = np.asarray(model(x))
    np.testing.assert_allclose(base.scores, outputs[np.arange(2), labels], rtol=1e-5)
    with pytest.raises(ValueError, match=r"targets: class 5 is invalid, expected a class index"):
        method.explain(x, ClassIndices([0, 5]))


def test_torch_class_indices_and_base_pass():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 5 * 5, CLASSES)).eval()
    x = torch.randn(3, 2, 5, 5)
    labels = np.array([1, 0, 4])
    method = Occlusion(model, patch_size=2, patch_stride=2, data_format="channels_first")
    got = method.explain(x, ClassIndices(labels))
    one_hot = np.eye(CLASSES, dtype=np.float32)[labels]
    assert torch.equal(got, method.explain(x, one_hot))
    with torch.no_grad():
        outputs = model(x).numpy()
    np.testing.assert_allclose(method.last_base_pass.outputs, outputs, rtol=1e-5)
    np.testing.assert_allclose(
        method.last_base_pass.scores, outputs[np.arange(3), labels], rtol=1e-5
    )


def test_bad_class_indices_fail_naming_targets(backend_kind):
    model = _numpy_model(np.ones((4, CLASSES), np.float32))
    x = np.ones((2, 2, 2, 1), np.float32)
    method = Occlusion(model, patch_size=1)
    # before any model call: the form, the count, the operator
    for bad, message in (
        (np.array([0.5, 1.0]), r"targets: class indices of dtype float64"),
        (np.array([[0, 1]]), r"class indices of dtype int64 and shape \(1, 2\)"),
    ):
        with pytest.raises(ValueError, match=message):
            method.explain(x, ClassIndices(bad))
    with pytest.raises(ValueError, match=r"targets: 3 class indices are invalid, expected one"):
        method.explain(x, ClassIndices([0, 1, 2]))
    segmentation = Occlusion(model, operator="semantic segmentation", patch_size=1)
    with pytest.raises(ValueError, match="class indices are invalid for the 'semantic"):
        segmentation.explain(x, ClassIndices([0, 1]))
    assert model.calls == []
    # known after the base pass: the range, outputs that are not (N, K)
    with pytest.raises(ValueError, match=r"targets: class -1 is invalid, .* 0\.\.4 \(the model"):
        method.explain(x, ClassIndices([0, -1]))
    flat = _numpy_model(np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"class indices need \(N, K\) model outputs"):
        Occlusion(flat, patch_size=1).explain(x, ClassIndices([0, 0]))


def test_operator_objective_is_framework_free():
    objective = OperatorObjective(lambda model, inputs, targets: inputs)
    assert not objective.from_outputs and objective.target_kind == "any"
    targets = np.ones((2, 3))
    resolved = objective.resolve_targets(targets, None, None)
    assert resolved.dtype == np.float32 and resolved.shape == (2, 3)
    assert targets.dtype == np.float64  # the caller's array is unchanged
    with pytest.raises(ValueError, match="has no class labels"):
        BasePass(np.ones((2, 3, 1), np.float32), np.zeros(2), None).labels()
