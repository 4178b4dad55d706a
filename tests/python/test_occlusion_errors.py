"""design §6: every invalid call fails before any model call, naming the argument, the value
and what was expected."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf
from reference import LinearNumpyModel

from fastocclusion import Occlusion

SHAPE = (3, 6, 5, 2)  # N, H, W, C


def good_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=SHAPE).astype(np.float32), np.eye(4, dtype=np.float32)[[0, 2, 3]]


def assert_message(error: BaseException, *words: str) -> None:
    """The message names each word (case-insensitive; alternatives joined by '|')."""
    message = str(error)
    for word in words:
        assert re.search(word, message, re.IGNORECASE), f"{word!r} not in {message!r}"


def run_expecting_error(
    options: dict, inputs=None, targets="good", model=None, errors=(TypeError, ValueError)
):
    """Constructs and explains inside pytest.raises; returns (exception, model)."""
    x, y = good_data()
    model = model if model is not None else LinearNumpyModel(SHAPE[1:], outputs=4)
    inputs = x if inputs is None else inputs
    targets = y if isinstance(targets, str) else targets
    with pytest.raises(errors) as info:
        Occlusion(model, **options).explain(inputs, targets)
    return info.value, model


# ---- constructor options ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 2.5, "32", [8]])
def test_bad_batch_size(value):
    error, model = run_expecting_error(dict(batch_size=value))
    assert_message(error, "batch_size", re.escape(repr(value)) + "|" + re.escape(str(value)))
    assert model.calls == []


@pytest.mark.parametrize("name", ["patch_size", "patch_stride"])
@pytest.mark.parametrize("value", [0, -2, (0, 2), (2, -1), 1.5, "3", (1, 2, 3)])
def test_bad_patch_size_or_stride(name, value):
    error, model = run_expecting_error({name: value})
    assert_message(error, name, re.escape(str(value)) + "|" + re.escape(repr(value)))
    assert model.calls == []


@pytest.mark.parametrize(
    ("shape", "patch"),
    [
        ((3, 6, 5, 2), 7),
        ((3, 6, 5, 2), (2, 6)),
        ((3, 6, 5, 2), (7, 1)),
        ((2, 8, 3), (2, 4)),
        ((2, 4), 5),
    ],
)
def test_patch_larger_than_input(shape, patch):
    model = LinearNumpyModel(shape[1:], outputs=4)
    inputs = np.zeros(shape, np.float32)
    targets = np.eye(4, dtype=np.float32)[: shape[0]]
    error, _ = run_expecting_error(dict(patch_size=patch, patch_stride=1), inputs, targets, model)
    assert_message(error, "patch_size", "larger|exceed|<=")
    assert model.calls == []


@pytest.mark.parametrize(
    "operator", [42, 3.5, "nonsense", "segmentation semantic", object(), (lambda model, x: x)]
)
def test_bad_operator(operator):
    error, model = run_expecting_error(dict(operator=operator))
    assert_message(error, "operator")
    if isinstance(operator, (int, float, str)):
        assert_message(error, re.escape(str(operator)))
    assert model.calls == []


@pytest.mark.parametrize(
    ("name", "value"), [("edges", "same"), ("edges", None), ("reduction", "max"), ("reduction", 1)]
)
def test_bad_edges_or_reduction(name, value):
    error, model = run_expecting_error({name: value})
    assert_message(error, name, re.escape(str(value)))
    assert model.calls == []


@pytest.mark.parametrize(
    "value",
    [np.nan, np.inf, -np.inf, np.array([0.0, np.nan], np.float32), np.full((6, 5, 2), np.inf)],
    ids=["nan", "inf", "-inf", "nan in vector", "inf array"],
)
def test_non_finite_baseline(value):
    error, model = run_expecting_error(dict(occlusion_value=value))
    assert_message(error, "occlusion_value", "nan|inf|finite")
    assert model.calls == []


@pytest.mark.parametrize(
    "value", ["zero", np.array(["a", "b"]), np.array([None, 1.0], dtype=object)], ids=str
)
def test_non_numeric_baseline(value):
    error, model = run_expecting_error(dict(occlusion_value=value))
    assert_message(error, "occlusion_value")
    assert model.calls == []


@pytest.mark.parametrize("shape", [(3,), (4, 5, 2), (6, 5, 3), (2, 6, 5, 2)])
def test_baseline_not_broadcastable_to_one_input(shape):
    error, model = run_expecting_error(dict(occlusion_value=np.zeros(shape, np.float32)))
    assert_message(error, "occlusion_value", re.escape(str(shape)))
    assert model.calls == []


# ---- explain arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (1, 2, 3, 4, 2, 1), ()])  # rank 5: volumes
def test_wrong_input_rank(shape):
    error, model = run_expecting_error({}, np.zeros(shape, np.float32), None)
    assert_message(error, "inputs", re.escape(str(shape)) + "|rank")
    assert model.calls == []


def test_empty_inputs():
    error, model = run_expecting_error(
        {}, np.zeros((0, 6, 5, 2), np.float32), np.zeros((0, 4), np.float32)
    )
    assert_message(error, "inputs")
    assert model.calls == []


@pytest.mark.parametrize(
    "inputs",
    [
        np.full(SHAPE, "a"),
        np.full(SHAPE, None, dtype=object),
        np.zeros(SHAPE, np.complex64),
        [["a", "b"]],
    ],
    ids=["str", "object", "complex", "list of str"],
)
def test_non_numeric_inputs(inputs):
    error, model = run_expecting_error({}, inputs)
    assert_message(error, "inputs")
    assert model.calls == []


def test_non_numeric_targets():
    error, model = run_expecting_error({}, targets=np.full((3, 4), "x"))
    assert_message(error, "targets")
    assert model.calls == []


@pytest.mark.parametrize("rows", [2, 4, 1])
def test_targets_first_dimension_differs(rows):
    error, model = run_expecting_error({}, targets=np.zeros((rows, 4), np.float32))
    assert_message(error, "targets", str(rows), "3")
    assert model.calls == []


def test_dataset_with_targets():
    x, y = good_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    error, model = run_expecting_error({}, dataset, y)
    assert_message(error, "targets", "dataset")
    assert model.calls == []


# ---- models whose output is not one score per sample ------------------------------------------


class ShapedModel(LinearNumpyModel):
    """Returns outputs of a chosen per-sample shape (or a scalar per batch)."""

    def __init__(self, out_shape):
        super().__init__(SHAPE[1:], outputs=4)
        self.out_shape = out_shape

    def __call__(self, batch):
        outputs = super().__call__(batch)
        if self.out_shape is None:
            return np.float32(outputs.sum())
        return np.resize(outputs, (len(outputs),) + self.out_shape).astype(np.float32)


@pytest.mark.parametrize(
    "out_shape", [None, (3, 4), (6,)], ids=["scalar", "(3, 4) per sample", "(6,) vs 4 targets"]
)
def test_model_output_not_reducible_to_one_score(out_shape):
    # sum(f(x) * y, -1) with y (N, 4): a scalar, an (N, 3) result or an (N, 6) * (N, 4) product
    # is not one score per sample. Reading the output shape costs at most the base pass.
    error, model = run_expecting_error({}, model=ShapedModel(out_shape))
    assert_message(error, "model|operator|output|score|targets")
    assert len(model.calls) <= 2, model.calls


def test_custom_operator_returning_wrong_shape():
    def per_class(model, inputs, targets):
        return tf.convert_to_tensor(model(inputs)) * targets  # (B, 4), not (B,)

    error, model = run_expecting_error(dict(operator=per_class))
    assert_message(error, "operator|score")
    assert len(model.calls) <= 2, model.calls


def test_failed_explain_leaves_arrays_unchanged():
    x, y = good_data()
    x_before, y_before = x.copy(), y.copy()
    with pytest.raises(ValueError):
        Occlusion(LinearNumpyModel(SHAPE[1:]), patch_size=9).explain(x, y)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(y, y_before)
