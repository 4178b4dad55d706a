"""fastocclusion.arrays.to_numpy: every kind of array users pass, read or refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from reference import LinearNumpyModel

from fastocclusion import Occlusion
from fastocclusion.arrays import to_numpy


def test_numpy_arrays_are_not_copied_and_lists_are_read():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert to_numpy(array, "x") is array
    np.testing.assert_array_equal(to_numpy([[1, 2], [3, 4]], "x"), [[1, 2], [3, 4]])
    assert to_numpy(True, "x").dtype == bool


@pytest.mark.parametrize(
    "bad", [np.array(["a", "b"]), [["a"]], {"a": 1}, object(), np.array([1 + 2j])]
)
def test_non_numeric_values_raise_naming_the_argument(bad):
    with pytest.raises(TypeError, match=r"^occlusion_value: "):
        to_numpy(bad, "occlusion_value")
    with pytest.raises(ValueError, match=r"^image: "):
        to_numpy(bad, "image", error=ValueError)


def test_tensorflow_tensors():
    tf = pytest.importorskip("tensorflow")
    np.testing.assert_array_equal(to_numpy(tf.constant([[1.5, 2.0]]), "x"), [[1.5, 2.0]])
    with pytest.raises(TypeError, match="^x: dtype"):
        to_numpy(tf.constant(["a"]), "x")


@pytest.mark.torch
def test_torch_tensors_with_grad_inference_and_views():
    import torch

    with_grad = torch.ones(2, 3, requires_grad=True) * 2
    np.testing.assert_array_equal(to_numpy(with_grad, "x"), np.full((2, 3), 2.0))
    with torch.inference_mode():
        inference = torch.arange(4.0)
    np.testing.assert_array_equal(to_numpy(inference, "x"), [0, 1, 2, 3])
    np.testing.assert_array_equal(
        to_numpy(torch.arange(6.0).reshape(2, 3).T, "x"), np.arange(6.0).reshape(2, 3).T
    )
    with pytest.raises(TypeError, match="^x: dtype complex64"):
        to_numpy(torch.ones(2, dtype=torch.complex64), "x")


@pytest.mark.torch
def test_a_torch_baseline_with_grad_is_a_valid_occlusion_value():
    """Used to raise torch's RuntimeError ("Can't call numpy() on Tensor that requires
    grad"), naming no argument."""
    import torch

    model = LinearNumpyModel((4, 4, 2), outputs=3)
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 2]]
    value = torch.full((2,), 0.25, requires_grad=True)
    got = Occlusion(model, patch_size=2, patch_stride=2, occlusion_value=value).explain(x, y)
    expected = Occlusion(
        model, patch_size=2, patch_stride=2, occlusion_value=np.full(2, 0.25, np.float32)
    ).explain(x, y)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
