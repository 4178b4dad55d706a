"""Xplique's static helpers of ``Occlusion``, for code and tests written against Xplique.

``Occlusion._get_masks``, ``_apply_masks`` and ``_compute_sensitivity`` keep Xplique's
signatures and results. They build one boolean mask per patch, as Xplique does: memory
O(patches x input). They are compatibility helpers; ``explain`` never uses them (its kernels
build occluded batches without masks). TensorFlow is imported when one is called (they
return tf.Tensors, as Xplique's do); without it, a call is an ImportError naming the extra
to install.

Shapes (one sample, no batch axis):
- ``input_shape`` (H, W, C) or (T, W): 2-D patches over the first two axes, masks (M, H, W)
  (no channel axis); (W,) tabular: int patch and stride, masks (M, W). Anchors as design §2
  ("valid"), M patches in row-major order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastocclusion.frameworks import import_tensorflow


def _anchors(length: int, patch: int, stride: int) -> np.ndarray:
    """Anchors i * stride, i = 0 .. ceil((length - patch + 1) / stride) - 1."""
    count = max(0, -(-(length - patch + 1) // stride))
    return np.arange(count, dtype=np.int64) * stride


def _covered(length: int, patch: int, stride: int) -> np.ndarray:
    """(anchors, length) bool: position x lies in the patch at each anchor."""
    positions = np.arange(length)
    starts = _anchors(length, patch, stride)[:, None]
    return (positions >= starts) & (positions < starts + patch)


def get_masks(input_shape: Any, patch_size: Any, patch_stride: Any) -> Any:
    """Boolean masks (M, W) or (M, H, W) of every patch, True where occluded, as a tf.bool
    tensor (shape (0,) when no patch fits).

    >>> get_masks((4, 4, 1), (2, 2), (2, 2)).shape  # doctest: +SKIP
    TensorShape([4, 4, 4])
    """
    tf = import_tensorflow("Occlusion._get_masks: Xplique's mask helper")

    if len(input_shape) == 1:
        masks = _covered(int(input_shape[0]), int(patch_size), int(patch_stride))
    else:
        rows = _covered(int(input_shape[0]), int(patch_size[0]), int(patch_stride[0]))
        cols = _covered(int(input_shape[1]), int(patch_size[1]), int(patch_stride[1]))
        masks = (rows[:, None, :, None] & cols[None, :, None, :]).reshape(
            -1, int(input_shape[0]), int(input_shape[1])
        )
    if masks.shape[0] == 0:
        return tf.zeros((0,), dtype=tf.bool)
    return tf.convert_to_tensor(masks)


def apply_masks(current_input: Any, masks: Any, occlusion_value: Any) -> Any:
    """(M,) + current_input.shape float32: ``current_input`` with each mask's positions set
    to ``occlusion_value`` (masks over (H, W) apply to every channel of an (H, W, C) input).

    >>> masks = get_masks((4, 4, 1), (2, 2), (2, 2))  # doctest: +SKIP
    >>> apply_masks(np.ones((4, 4, 1)), masks, 0.0).shape  # doctest: +SKIP
    TensorShape([4, 4, 4, 1])
    """
    tf = import_tensorflow("Occlusion._apply_masks: Xplique's mask helper")

    current = tf.convert_to_tensor(current_input, dtype=tf.float32)
    mask = tf.convert_to_tensor(masks, dtype=tf.bool)
    if current.shape.rank > 2:  # (H, W, C): the same mask on every channel
        mask = mask[..., tf.newaxis]
    occluded = tf.cast(mask, tf.float32)
    value = tf.cast(occlusion_value, tf.float32)
    return current[tf.newaxis] * (1.0 - occluded) + occluded * value


def compute_sensitivity(baseline_scores: Any, occluded_scores: Any, masks: Any) -> Any:
    """(B,) + masks.shape[1:] float32: for each input, the sum over its M patches of
    (baseline score - occluded score) x mask. ``occluded_scores`` holds B * M scores,
    input-major; ``baseline_scores`` is (B,) or a scalar (then B = 1).

    >>> masks = get_masks((4, 4, 1), (2, 2), (2, 2))  # doctest: +SKIP
    >>> compute_sensitivity([1.0], [0.5] * 4, masks).shape  # doctest: +SKIP
    TensorShape([1, 4, 4])
    """
    tf = import_tensorflow("Occlusion._compute_sensitivity: Xplique's mask helper")

    mask = tf.cast(tf.convert_to_tensor(masks, dtype=tf.bool), tf.float32)
    count = int(mask.shape[0])
    base = tf.reshape(tf.cast(baseline_scores, tf.float32), (-1, 1))
    deltas = base - tf.reshape(tf.cast(occluded_scores, tf.float32), (-1, count))
    return tf.tensordot(deltas, mask, axes=[[1], [0]])
