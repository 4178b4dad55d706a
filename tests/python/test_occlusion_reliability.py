"""Regression tests of the reliability issue: no silent wrong maps, no hang, for models that
misbehave (write into their input, keep it, have an unknown output rank, call explain back).

Each test is the issue's reproducer, checked against the NumPy reference of the design.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tensorflow as tf
from reference import assert_maps_close, reference_coverage, reference_occlusion

import fastocclusion
from fastocclusion import Occlusion

RNG = np.random.default_rng(11)
SHAPE = (3, 8, 8, 3)
W = RNG.normal(size=(8 * 8 * 3, 4)).astype(np.float32)
INPUTS = RNG.uniform(size=SHAPE).astype(np.float32)
TARGETS = np.eye(4, dtype=np.float32)[[0, 1, 3]]


def clean_model(x: np.ndarray) -> np.ndarray:
    return (x - 0.5).reshape(len(x), -1) @ W


def expected(targets=TARGETS, **options) -> np.ndarray:
    options = {"patch_size": 2, "patch_stride": 2, **options}
    return reference_occlusion(clean_model, INPUTS, targets, **options)


def check(maps, reference) -> None:
    assert_maps_close(
        np.asarray(maps),
        reference,
        score_scale=float(np.abs(reference).max()),
        coverage=reference_coverage(SHAPE, 2, 2),
    )


# -- models that write into their input --------------------------------------------------


def inplace_model(x: np.ndarray) -> np.ndarray:
    x -= 0.5  # the reproducer: writes into the batch it was given
    return x.reshape(len(x), -1) @ W


class InplaceProba:
    """A scikit-learn style object whose predict_proba normalises its input in place."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x[...] = x - 0.5
        return x.reshape(len(x), -1) @ W


@pytest.mark.parametrize(
    "model", [inplace_model, InplaceProba()], ids=["callable", "predict_proba"]
)
@pytest.mark.parametrize("targets", [TARGETS, None], ids=["targets", "top-class"])
@pytest.mark.parametrize("batch_size", [8, 5, None])
def test_a_numpy_model_that_writes_into_its_input_gets_correct_maps(model, targets, batch_size):
    caller_inputs = INPUTS.copy()
    with pytest.warns(RuntimeWarning, match="model: writes into its input array in place"):
        maps = Occlusion(model, batch_size=batch_size, patch_size=2, patch_stride=2).explain(
            caller_inputs, targets
        )
    check(maps, expected(targets))
    np.testing.assert_array_equal(caller_inputs, INPUTS)  # the caller's data never changes


def test_a_writing_model_is_copied_for_every_later_call_of_the_instance():
    explainer = Occlusion(inplace_model, batch_size=8, patch_size=2, patch_stride=2)
    with pytest.warns(RuntimeWarning):
        explainer.explain(INPUTS, TARGETS)
    # The second explain needs no new warning: the instance already copies.
    check(explainer.explain(INPUTS, TARGETS), expected())


def test_a_model_that_keeps_its_batches_gets_read_only_views_it_cannot_unlock():
    kept: list[np.ndarray] = []

    def keeping(x: np.ndarray) -> np.ndarray:
        kept.append(x)
        return clean_model(x)

    check(
        Occlusion(keeping, batch_size=8, patch_size=2, patch_stride=2).explain(INPUTS, TARGETS),
        expected(),
    )
    assert kept and not kept[0].flags.writeable
    with pytest.raises(ValueError):
        kept[0].setflags(write=True)


def test_a_model_whose_read_only_error_is_not_about_its_input_is_not_retried():
    calls = []

    def failing(x: np.ndarray) -> np.ndarray:
        calls.append(1)
        raise ValueError("weights are read-only in this deployment")

    with pytest.raises(ValueError, match="weights are read-only"):
        Occlusion(failing, batch_size=8, patch_size=2, patch_stride=2).explain(INPUTS, TARGETS)
    assert len(calls) == 2  # the call on the read-only view, then once on a copy; no loop


def test_tensorflow_models_cannot_write_into_the_batch():
    """Keras / tf.function models get immutable tensors: nothing to copy, maps exact."""
    weights = tf.constant(W)
    model = tf.function(lambda x: tf.matmul(tf.reshape(x - 0.5, (tf.shape(x)[0], -1)), weights))
    check(
        Occlusion(model, batch_size=8, patch_size=2, patch_stride=2).explain(INPUTS, TARGETS),
        expected(),
    )


# -- unknown output rank ------------------------------------------------------------------


def numpy_function_model() -> tf.types.experimental.GenericFunction:
    """A tf.function over tf.numpy_function: tracing cannot tell its output's rank."""

    def run(x: np.ndarray) -> np.ndarray:
        return clean_model(x).astype(np.float32)

    return tf.function(lambda x: tf.numpy_function(run, [x], tf.float32))


@pytest.mark.parametrize("targets", [TARGETS, None], ids=["targets", "top-class"])
@pytest.mark.parametrize("operator", [None, "classification"])
def test_a_model_of_unknown_output_rank_works_like_the_reference(targets, operator):
    maps = Occlusion(
        numpy_function_model(), batch_size=8, operator=operator, patch_size=2, patch_stride=2
    ).explain(INPUTS, targets)
    check(maps, expected(targets))


def test_targets_of_the_wrong_shape_for_a_model_of_unknown_rank_fail_clearly():
    with pytest.raises(ValueError, match="targets"):
        Occlusion(numpy_function_model(), batch_size=8, patch_size=2, patch_stride=2).explain(
            INPUTS, np.eye(7, dtype=np.float32)[[0, 1, 2]]
        )


# -- re-entrant explain -------------------------------------------------------------------


def test_explain_called_from_inside_its_own_model_raises_instead_of_hanging():
    holder: dict[str, Occlusion] = {}

    def reentrant(x: np.ndarray) -> np.ndarray:
        holder["explainer"].explain(INPUTS[:1], TARGETS[:1])
        return clean_model(x)

    holder["explainer"] = Occlusion(reentrant, batch_size=8, patch_size=2, patch_stride=2)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            holder["explainer"].explain(INPUTS, TARGETS)
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "explain deadlocked"
    assert isinstance(outcome.get("error"), RuntimeError)
    assert "re-entrant" in str(outcome["error"])
    # The instance is not left locked: another thread's explain on it runs to the end
    # (and meets the same error from its re-entrant model, rather than waiting forever).
    worker = threading.Thread(target=run, daemon=True)
    outcome.clear()
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive() and isinstance(outcome.get("error"), RuntimeError)


def test_a_second_instance_may_be_used_from_inside_a_model():
    inner = Occlusion(clean_model, batch_size=8, patch_size=2, patch_stride=2)
    nested = []

    def outer_model(x: np.ndarray) -> np.ndarray:
        if not nested:
            nested.append(np.asarray(inner.explain(INPUTS, TARGETS)))
        return clean_model(x)

    check(
        Occlusion(outer_model, batch_size=8, patch_size=2, patch_stride=2).explain(INPUTS, TARGETS),
        expected(),
    )
    check(nested[0], expected())


# -- thread control -------------------------------------------------------------------------


def test_thread_control_is_public_and_checked():
    try:
        fastocclusion.set_num_threads(1)
        assert fastocclusion.get_num_threads() == 1
        check(
            Occlusion(clean_model, batch_size=8, patch_size=2, patch_stride=2).explain(
                INPUTS, TARGETS
            ),
            expected(),
        )
        fastocclusion.set_num_threads(0)
        assert fastocclusion.get_num_threads() >= 1
        for bad in (-1, 1.5, "2", True):
            with pytest.raises(ValueError, match=f"threads: {bad!r} is invalid"):
                fastocclusion.set_num_threads(bad)
    finally:
        fastocclusion.set_num_threads(0)
