"""fastocclusion.Occlusion.explain against the NumPy reference (design §1-§5).

Every shape family, input kind, operator, baseline kind, edge mode and reduction, with tiny
seeded Keras models and NumPy callables.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import (
    LinearNumpyModel,
    assert_maps_close,
    box_iou,
    class_similarity,
    detection_score,
    reference_coverage,
    reference_occlusion,
    reference_scores,
)

from fastocclusion import Occlusion, Tasks


def check(
    model,
    model_fn,
    inputs,
    targets,
    *,
    operator=None,
    ref_operator="same",
    explain_inputs=None,
    explain_targets="same",
    **options,
):
    """Runs Occlusion(model, **options).explain and compares with the reference."""
    ref_operator = operator if ref_operator == "same" else ref_operator
    explainer = Occlusion(model, operator=operator, **options)
    explain_targets = targets if isinstance(explain_targets, str) else explain_targets
    result = explainer.explain(
        inputs if explain_inputs is None else explain_inputs, explain_targets
    )
    assert isinstance(result, tf.Tensor) and result.dtype == tf.float32
    geometry = {
        k: options[k]
        for k in ("patch_size", "patch_stride", "occlusion_value", "edges", "reduction")
        if k in options
    }
    expected = reference_occlusion(model_fn, inputs, targets, ref_operator, **geometry)
    scale = float(np.max(np.abs(reference_scores(model_fn, inputs, targets, ref_operator))))
    coverage = reference_coverage(
        np.shape(inputs),
        options.get("patch_size", 3),
        options.get("patch_stride", 3),
        options.get("edges", "valid"),
    )
    assert_maps_close(result.numpy(), expected, scale, coverage)
    return result


# ---- the oracle itself, on hand-computed cases -------------------------------------------------


def test_reference_by_hand():
    # IoU and class similarity with the design's epsilons.
    assert box_iou(np.array([0, 0, 2, 2.0]), np.array([1, 1, 3, 3.0])) == pytest.approx(
        1 / (7 + 1e-4), rel=1e-12
    )
    assert class_similarity(np.array([1.0, 0]), np.array([3.0, 4])) == pytest.approx(
        3 / (5 + 1e-4), rel=1e-12
    )
    predicted = np.array([[0, 0, 2, 2, 0.5, 1, 0], [0, 0, 1, 1, 1.0, 0, 1], [0] * 7], dtype=float)
    target = np.array([[0, 0, 2, 2, 0.1, 1, 0], [0] * 7], dtype=float)  # one box + padding
    iou = 4 / (4 + 1e-4)
    sim = 1 / (1 + 1e-4)
    assert detection_score(predicted, target, "object detection") == pytest.approx(iou * 0.5 * sim)
    assert detection_score(predicted, target, "object detection box position") == pytest.approx(iou)
    assert detection_score(predicted, target, "object detection box class") == pytest.approx(
        iou * sim
    )
    assert detection_score(predicted, np.zeros((2, 7)), "object detection") == 0.0
    # A linear model, unit patches, zero baseline: phi = sum over channels of x * w.
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 3, 2))
    inputs = rng.normal(size=(2, 4, 3, 2)).astype(np.float32)
    linear = lambda batch: np.einsum("nhwc,hwc->n", batch.astype(np.float64), weights)[:, None]  # noqa: E731
    maps = reference_occlusion(linear, inputs, np.ones((2, 1)), patch_size=1, patch_stride=1)
    np.testing.assert_allclose(
        maps[..., 0], np.sum(inputs * weights, axis=-1), rtol=1e-5, atol=1e-6
    )
    # Patch 2, stride 1 on a 1x3 row of ones, weights 1: deltas 2, 2 -> phi = 2, 4, 2; mean 2, 2, 2.
    ones = np.ones((1, 3), np.float32)
    row_sum = lambda batch: batch.sum(axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_array_equal(
        reference_occlusion(row_sum, ones, np.ones((1, 1)), None, 2, 1), [[2, 4, 2]]
    )
    np.testing.assert_array_equal(
        reference_occlusion(row_sum, ones, np.ones((1, 1)), None, 2, 1, reduction="mean"),
        [[2, 2, 2]],
    )


FAMILY_GEOMETRY = {  # patch_size, patch_stride per family fixture
    "image_case": ((3, 2), (2, 3)),
    "tabular_case": (3, 2),
    "timeseries_case": ((3, 2), (2, 1)),
}


def as_kind(kind: str, inputs: np.ndarray, targets: np.ndarray):
    """(explain inputs, explain targets) for an input kind."""
    if kind == "ndarray":
        return inputs, targets
    if kind == "tensor":
        return tf.constant(inputs), tf.constant(targets)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    return (dataset.batch(2) if kind == "dataset batched" else dataset), None


# ---- shape families x input kinds, Keras models -------------------------------------------


@pytest.mark.parametrize("kind", ["ndarray", "tensor", "dataset batched", "dataset unbatched"])
@pytest.mark.parametrize("family", sorted(FAMILY_GEOMETRY))
def test_keras_families_and_input_kinds(family, kind, request):
    case = request.getfixturevalue(family)
    patch, stride = FAMILY_GEOMETRY[family]
    explain_inputs, explain_targets = as_kind(kind, case.inputs, case.targets)
    result = check(
        case.model,
        case.model_fn,
        case.inputs,
        case.targets,
        explain_inputs=explain_inputs,
        explain_targets=explain_targets,
        patch_size=patch,
        patch_stride=stride,
        batch_size=7,
    )
    expected_shape = case.inputs.shape[:3] + (1,) if case.inputs.ndim == 4 else case.inputs.shape
    assert tuple(result.shape) == expected_shape


def test_call_equals_explain(image_case):
    explainer = Occlusion(image_case.model, patch_size=2, patch_stride=2)
    a = explainer(image_case.inputs, image_case.targets)
    b = explainer.explain(image_case.inputs, image_case.targets)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_defaults_are_the_reference(image_case):
    # batch_size 32, operator None, patch 3, stride 3, value 0, valid edges, sum.
    check(image_case.model, image_case.model_fn, image_case.inputs, image_case.targets)


# ---- operators --------------------------------------------------------------------------------


def custom_operator(model, inputs, targets):
    outputs = tf.cast(model(inputs), tf.float32)
    return tf.reduce_sum(outputs * targets, -1) - 0.5 * tf.reduce_sum(outputs * outputs, -1)


def custom_operator_extra_arg(model, inputs, targets, scale=3.0):
    return scale * tf.reduce_max(tf.cast(model(inputs), tf.float32) * targets, -1)


CUSTOM_SCORERS = {
    custom_operator: lambda out, y: np.sum(out * y, -1) - 0.5 * np.sum(out * out, -1),
    custom_operator_extra_arg: lambda out, y: 3.0 * np.max(out * y, -1),
}

CLASSIFICATION_OPERATORS = [
    None,
    Tasks.CLASSIFICATION,
    "classification",
    Tasks.REGRESSION,
    "regression",
]


@pytest.mark.parametrize("operator", CLASSIFICATION_OPERATORS, ids=str)
@pytest.mark.parametrize("family", ["image_case", "tabular_case"])
def test_prediction_operators(family, operator, request):
    case = request.getfixturevalue(family)
    patch, stride = FAMILY_GEOMETRY[family]
    check(
        case.model,
        case.model_fn,
        case.inputs,
        case.targets,
        operator=operator,
        ref_operator=None,
        patch_size=patch,
        patch_stride=stride,
    )


@pytest.mark.parametrize("operator", list(CUSTOM_SCORERS), ids=lambda f: f.__name__)
def test_custom_operator(image_case, operator):
    check(
        image_case.model,
        image_case.model_fn,
        image_case.inputs,
        image_case.targets,
        operator=operator,
        ref_operator=CUSTOM_SCORERS[operator],
        patch_size=2,
        patch_stride=(2, 3),
        batch_size=5,
    )


@pytest.mark.parametrize(
    "operator", [Tasks.SEMANTIC_SEGMENTATION, "semantic segmentation"], ids=str
)
@pytest.mark.parametrize("edges", ["valid", "cover"])
def test_semantic_segmentation(segmentation_case, operator, edges):
    case = segmentation_case
    check(
        case.model,
        case.model_fn,
        case.inputs,
        case.targets,
        operator=operator,
        ref_operator="semantic segmentation",
        patch_size=3,
        patch_stride=3,
        edges=edges,
        batch_size=6,
    )


DETECTION_TASKS = {
    "object detection": Tasks.OBJECT_DETECTION,
    "object detection box position": Tasks.OBJECT_DETECTION_BOX_POSITION,
    "object detection box proba": Tasks.OBJECT_DETECTION_BOX_PROBA,
    "object detection box class": Tasks.OBJECT_DETECTION_BOX_CLASS,
}


@pytest.mark.parametrize("by_name", [False, True])
@pytest.mark.parametrize("name", sorted(DETECTION_TASKS))
def test_object_detection_variants(detection_case, name, by_name):
    case = detection_case
    operator = name if by_name else DETECTION_TASKS[name]
    check(
        case.model,
        case.model_fn,
        case.inputs,
        case.targets,
        operator=operator,
        ref_operator=name,
        patch_size=(3, 2),
        patch_stride=2,
        batch_size=8,
    )


def test_object_detection_single_box_targets_and_padding(detection_case):
    case = detection_case
    single = case.targets[:, 0, :]  # (N, 4+1+K): one box per image
    check(
        case.model,
        case.model_fn,
        case.inputs,
        single,
        operator="object detection",
        patch_size=4,
        patch_stride=2,
        batch_size=4,
    )
    padded = case.targets.copy()
    padded[1] = 0.0  # an image with no target box scores 0 and gets a zero map
    result = check(
        case.model,
        case.model_fn,
        case.inputs,
        padded,
        operator=Tasks.OBJECT_DETECTION,
        ref_operator="object detection",
        patch_size=4,
        patch_stride=2,
        batch_size=4,
    )
    assert not np.any(result.numpy()[1])


# ---- baselines, edges, reductions -------------------------------------------------------------


IMAGE_BASELINES = {
    "scalar": 0.7,
    "per-channel": np.array([0.5, -1.0, 2.0], np.float32),
    "full": np.random.default_rng(8).uniform(-1, 1, (9, 8, 3)).astype(np.float32),
    "broadcast (H, W, 1)": np.random.default_rng(9).uniform(-1, 1, (9, 8, 1)).astype(np.float32),
}


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("edges", ["valid", "cover"])
@pytest.mark.parametrize("baseline", sorted(IMAGE_BASELINES))
def test_image_baselines_edges_reductions(image_case, baseline, edges, reduction):
    check(
        image_case.model,
        image_case.model_fn,
        image_case.inputs,
        image_case.targets,
        occlusion_value=IMAGE_BASELINES[baseline],
        edges=edges,
        reduction=reduction,
        patch_size=(4, 3),
        patch_stride=(3, 2),
        batch_size=32,
    )


@pytest.mark.parametrize("baseline", ["scalar", "per-feature", "full"])
def test_timeseries_and_tabular_baselines(timeseries_case, tabular_case, baseline):
    rng = np.random.default_rng(10)
    values = {
        "scalar": -0.3,
        "per-feature": rng.normal(size=4).astype(np.float32),
        "full": rng.normal(size=(12, 4)).astype(np.float32),
    }
    case = timeseries_case
    check(
        case.model,
        case.model_fn,
        case.inputs,
        case.targets,
        occlusion_value=values[baseline],
        patch_size=(2, 3),
        patch_stride=(3, 1),
        edges="cover",
        reduction="mean",
    )
    tab = {
        "scalar": 1.5,
        "per-feature": rng.normal(size=10).astype(np.float32),
        "full": rng.normal(size=10).astype(np.float32),
    }
    check(
        tabular_case.model,
        tabular_case.model_fn,
        tabular_case.inputs,
        tabular_case.targets,
        occlusion_value=tab[baseline],
        patch_size=4,
        patch_stride=3,
        edges="cover",
    )


# ---- targets=None, dtypes ---------------------------------------------------------------------


@pytest.mark.parametrize("family", ["image_case", "timeseries_case", "tabular_case"])
def test_targets_none_uses_top_class(family, request):
    case = request.getfixturevalue(family)
    patch, stride = FAMILY_GEOMETRY[family]
    check(
        case.model,
        case.model_fn,
        case.inputs,
        None,
        patch_size=patch,
        patch_stride=stride,
        batch_size=7,
    )


def test_integer_and_float64_inputs_are_cast(image_case):
    pixels = np.random.default_rng(11).integers(0, 3, image_case.inputs.shape).astype(np.uint8)
    check(
        image_case.model,
        image_case.model_fn,
        pixels,
        image_case.targets,
        patch_size=3,
        patch_stride=2,
    )
    wide = image_case.inputs.astype(np.float64)
    check(
        image_case.model,
        image_case.model_fn,
        wide,
        image_case.targets.astype(np.float64),
        patch_size=3,
        patch_stride=2,
    )


# ---- NumPy callables, random geometry ---------------------------------------------------------


@st.composite
def numpy_case(draw):
    family = draw(st.sampled_from(["image", "timeseries", "tabular"]))
    n = draw(st.integers(1, 3))
    if family == "tabular":
        shape = (n, draw(st.integers(1, 12)))
        patch, stride = draw(st.integers(1, shape[1])), draw(st.integers(1, shape[1] + 2))
    else:
        h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
        shape = (n, h, w, draw(st.sampled_from([1, 3]))) if family == "image" else (n, h, w)
        patch = draw(
            st.one_of(st.integers(1, min(h, w)), st.tuples(st.integers(1, h), st.integers(1, w)))
        )
        stride = draw(st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    baseline_kind = draw(st.sampled_from(["scalar", "last axis", "full"]))
    return dict(
        shape=shape,
        patch=patch,
        stride=stride,
        baseline_kind=baseline_kind,
        batch_size=draw(st.sampled_from([1, 7, 32, None])),
        edges=draw(st.sampled_from(["valid", "cover"])),
        reduction=draw(st.sampled_from(["sum", "mean"])),
        targets_none=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31)),
    )


@settings(max_examples=40)
@given(numpy_case())
def test_numpy_callables_random_geometry(case):
    rng = np.random.default_rng(case["seed"])
    shape = case["shape"]
    model = LinearNumpyModel(shape[1:], outputs=4, seed=case["seed"] % 1000)
    inputs = rng.normal(size=shape).astype(np.float32)
    targets = None if case["targets_none"] else rng.uniform(0, 1, (shape[0], 4)).astype(np.float32)
    baseline = {
        "scalar": float(rng.normal()),
        "last axis": rng.normal(size=shape[-1]).astype(np.float32),
        "full": rng.normal(size=shape[1:]).astype(np.float32),
    }[case["baseline_kind"]]
    check(
        model,
        model.reference_fn,
        inputs,
        targets,
        patch_size=case["patch"],
        patch_stride=case["stride"],
        occlusion_value=baseline,
        edges=case["edges"],
        reduction=case["reduction"],
        batch_size=case["batch_size"],
    )
    if case["batch_size"] is not None:
        assert {c[0] for c in model.calls} == {case["batch_size"]}, model.calls
    else:
        assert len({c for c in model.calls}) == 1, model.calls


# ---- the model's view: fixed batch shapes, untouched caller arrays ----------------------------


@pytest.mark.parametrize(
    ("targets_none", "batch_size"), [(False, 7), (True, 7), (False, None), (True, None)]
)
def test_traced_model_sees_one_shape(image_case, targets_none, batch_size):
    traces = []

    @tf.function
    def traced(batch):
        traces.append(tuple(batch.shape))  # Python side effect: runs once per trace
        return image_case.model(batch, training=False)

    targets = None if targets_none else image_case.targets
    # 3 inputs x 12 patches = 36 samples: not a multiple of 7, the last call is padded.
    check(
        traced,
        image_case.model_fn,
        image_case.inputs,
        targets,
        patch_size=3,
        patch_stride=(2, 3),
        batch_size=batch_size,
    )
    assert len(traces) == 1, traces
    assert traces[0][1:] == (9, 8, 3) and (batch_size is None or traces[0][0] == batch_size), traces


@pytest.mark.parametrize("batch_size", [1, 7, 32])
def test_every_call_has_batch_size_samples(batch_size):
    rng = np.random.default_rng(12)
    inputs = rng.normal(size=(3, 6, 5, 2)).astype(np.float32)
    targets = rng.uniform(size=(3, 4)).astype(np.float32)
    model = LinearNumpyModel(inputs.shape[1:], outputs=4, seed=3)
    check(
        model,
        model.reference_fn,
        inputs,
        targets,
        patch_size=2,
        patch_stride=(2, 1),
        batch_size=batch_size,
    )
    assert model.calls and all(shape == (batch_size, 6, 5, 2) for shape in model.calls), model.calls
    # The stream is packed across inputs: ceil(36 / batch_size) sweep calls (3 calls, not 3 x 2,
    # for batch_size 7... 32), plus at most two passes over the 3 unperturbed inputs.
    assert len(model.calls) <= -(-36 // batch_size) + 2 * -(-3 // batch_size), model.calls


def test_callers_arrays_are_unchanged(image_case, segmentation_case):
    inputs = image_case.inputs.copy()
    targets = image_case.targets.copy()
    baseline = np.random.default_rng(13).normal(size=(9, 8, 3)).astype(np.float32)
    originals = inputs.copy(), targets.copy(), baseline.copy()
    Occlusion(image_case.model, patch_size=2, patch_stride=2, occlusion_value=baseline).explain(
        inputs, targets
    )
    Occlusion(
        image_case.model,
        patch_size=2,
        patch_stride=2,
        occlusion_value=baseline,
        edges="cover",
        reduction="mean",
    )(inputs, None)
    for after, before in zip((inputs, targets, baseline), originals):
        np.testing.assert_array_equal(after, before)
    # Non-contiguous and float64 views of a larger array: the base stays unchanged too.
    base = np.random.default_rng(14).normal(size=(3, 9, 16, 3))
    base_before = base.copy()
    Occlusion(image_case.model, patch_size=3, patch_stride=3).explain(base[:, :, ::2], targets)
    np.testing.assert_array_equal(base, base_before)
    masks = segmentation_case.targets.copy()
    Occlusion(
        segmentation_case.model, operator="semantic segmentation", patch_size=4, patch_stride=4
    ).explain(segmentation_case.inputs, masks)
    np.testing.assert_array_equal(masks, segmentation_case.targets)
