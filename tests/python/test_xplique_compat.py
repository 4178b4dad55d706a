"""Drop-in fidelity with Xplique's ``Occlusion``: the attributes as Xplique keeps them, its
call signature, and its static mask helpers (checked against the NumPy reference)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tensorflow as tf
from reference import LinearNumpyModel, occlude, patch_boxes, reference_occlusion

from fastocclusion import Occlusion

RNG = np.random.default_rng(3)


def model_for(shape: tuple[int, ...]) -> LinearNumpyModel:
    return LinearNumpyModel(shape[1:], outputs=3)


# -- attributes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "shown_after"),
    [((2, 6, 6, 3), (3, 3)), ((2, 7, 5), (3, 3)), ((2, 9), 3)],
    ids=["images", "time series", "tabular"],
)
def test_an_int_patch_is_kept_and_reads_as_a_pair_after_explaining_planar_inputs(
    shape, shown_after
):
    explainer = Occlusion(model_for(shape), patch_size=3, patch_stride=3, occlusion_value=0.5)
    assert explainer.patch_size == 3 and explainer.patch_stride == 3
    assert explainer.occlusion_value == 0.5 and isinstance(explainer.occlusion_value, float)
    explainer.explain(RNG.normal(size=shape).astype(np.float32), np.eye(3)[[0, 1]])
    assert explainer.patch_size == shown_after and explainer.patch_stride == shown_after
    assert explainer.occlusion_value == 0.5 and isinstance(explainer.occlusion_value, float)


def test_given_values_are_kept_as_given():
    value = np.array([0.1, 0.2, 0.3], dtype=np.float64)
    explainer = Occlusion(
        model_for((1, 6, 6, 3)),
        batch_size=7,
        patch_size=(2, 3),
        patch_stride=np.int64(2),
        occlusion_value=value,
    )
    assert explainer.patch_size == (2, 3) and explainer.batch_size == 7
    assert type(explainer.patch_stride) is np.int64
    assert explainer.occlusion_value is value
    assert Occlusion(model_for((1, 4)), occlusion_value=1).occlusion_value == 1


def test_an_instance_that_explained_images_still_explains_tabular_data():
    """Xplique's instance fails there (its int patch became a pair); ours keeps the int."""
    explainer = Occlusion(LinearNumpyModel((9,), outputs=3), patch_size=3, patch_stride=2)
    images = Occlusion(model_for((1, 6, 6, 1)), patch_size=3, patch_stride=2)
    images.explain(RNG.normal(size=(1, 6, 6, 1)).astype(np.float32), np.eye(3)[[0]])
    assert images.patch_size == (3, 3)
    explainer._patch_size_shown = (3, 3)  # as after an image explain
    rows = RNG.normal(size=(2, 9)).astype(np.float32)
    maps = explainer.explain(rows, np.eye(3)[[0, 2]])
    np.testing.assert_allclose(
        maps,
        reference_occlusion(
            explainer.model.reference_fn, rows, np.eye(3)[[0, 2]], patch_size=3, patch_stride=2
        ),
        rtol=1e-5,
        atol=1e-6,
    )


def test_setting_an_attribute_is_checked_and_used():
    shape = (2, 6, 6, 1)
    x = RNG.normal(size=shape).astype(np.float32)
    y = np.eye(3)[[0, 1]]
    explainer = Occlusion(model_for(shape), patch_size=3, patch_stride=3)
    explainer.patch_size = 2
    explainer.patch_stride = (1, 2)
    explainer.occlusion_value = -1.0
    expected = reference_occlusion(
        explainer.model.reference_fn, x, y, patch_size=2, patch_stride=(1, 2), occlusion_value=-1.0
    )
    np.testing.assert_allclose(explainer.explain(x, y), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="patch_size: 0 is invalid"):
        explainer.patch_size = 0
    with pytest.raises(ValueError, match="occlusion_value"):
        explainer.occlusion_value = float("nan")


def test_call_has_xpliques_signature():
    parameters = list(inspect.signature(Occlusion.__call__).parameters)
    assert parameters == ["self", "inputs", "labels"]
    shape = (2, 6, 6, 1)
    x = RNG.normal(size=shape).astype(np.float32)
    y = np.eye(3)[[2, 1]]
    explainer = Occlusion(model_for(shape), patch_size=2, patch_stride=2)
    np.testing.assert_array_equal(explainer(inputs=x, labels=y), explainer.explain(x, y))
    np.testing.assert_array_equal(explainer(x, y), explainer.explain(inputs=x, targets=y))


# -- static helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_shape", "patch", "stride"),
    [
        ((2, 2, 1), (1, 1), (1, 1)),
        ((5, 5, 3), (2, 2), (2, 2)),
        ((4, 3), (2, 2), (1, 1)),
        ((7, 6, 2), (3, 2), (2, 3)),
        ((5,), 2, 2),
        ((9,), 3, 1),
    ],
)
def test_get_masks_are_the_patches_of_the_reference(input_shape, patch, stride):
    masks = Occlusion._get_masks(input_shape, patch, stride)
    assert masks.dtype == tf.bool
    if len(input_shape) == 1:
        boxes = patch_boxes(1, input_shape[0], (1, patch), (1, stride), "valid")
        expected = np.zeros((len(boxes), input_shape[0]), dtype=bool)
        for m, (_, _, c0, c1) in enumerate(boxes):
            expected[m, c0:c1] = True
    else:
        h, w = input_shape[:2]
        boxes = patch_boxes(h, w, patch, stride, "valid")
        expected = np.zeros((len(boxes), h, w), dtype=bool)
        for m, (r0, r1, c0, c1) in enumerate(boxes):
            expected[m, r0:r1, c0:c1] = True
    np.testing.assert_array_equal(masks.numpy(), expected)


def test_get_masks_when_no_patch_fits_is_empty():
    assert Occlusion._get_masks((3, 3, 1), (4, 4), (1, 1)).shape == (0,)


@pytest.mark.parametrize("shape", [(6, 5, 3), (6, 5), (8,)])
def test_apply_masks_equals_occluding_each_patch(shape):
    x = RNG.normal(size=shape).astype(np.float32)
    patch, stride = ((2, 2), (2, 1)) if len(shape) > 1 else (3, 2)
    masks = Occlusion._get_masks(shape, patch, stride)
    occluded = Occlusion._apply_masks(x, masks, 0.25)
    assert occluded.dtype == tf.float32 and occluded.shape == (masks.shape[0],) + shape
    h, w = (shape[0], shape[1]) if len(shape) > 1 else (1, shape[0])
    p2 = patch if len(shape) > 1 else (1, patch)
    s2 = stride if len(shape) > 1 else (1, stride)
    sample = x if len(shape) == 3 else x.reshape(h, w, 1)
    for m, box in enumerate(patch_boxes(h, w, p2, s2, "valid")):
        expected = occlude(sample, box, np.full(sample.shape, 0.25, np.float32)).reshape(shape)
        np.testing.assert_array_equal(occluded[m].numpy(), expected)


def test_compute_sensitivity_of_xpliques_docstring_example():
    masks = Occlusion._get_masks((2, 2, 1), (1, 1), (1, 1))
    sensitivity = Occlusion._compute_sensitivity(
        tf.constant([1.0]), tf.constant([1.0, 0.0, 10.0, -1.0]), masks
    )
    np.testing.assert_array_equal(sensitivity.numpy(), [[[0.0, 1.0], [-9.0, 2.0]]])


def test_the_helpers_compose_into_explain():
    shape = (2, 7, 6, 2)
    x = RNG.normal(size=shape).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[1, 2]]
    model = model_for(shape)
    explainer = Occlusion(model, patch_size=(3, 2), patch_stride=(2, 2), occlusion_value=0.5)
    masks = Occlusion._get_masks(shape[1:], (3, 2), (2, 2))
    base = np.sum(model.reference_fn(x) * y, axis=-1)
    occluded = np.concatenate([Occlusion._apply_masks(sample, masks, 0.5).numpy() for sample in x])
    scores = np.sum(model.reference_fn(occluded) * np.repeat(y, masks.shape[0], axis=0), axis=-1)
    maps = Occlusion._compute_sensitivity(base, scores, masks).numpy()
    np.testing.assert_allclose(explainer.explain(x, y).numpy()[..., 0], maps, rtol=1e-5, atol=1e-6)
