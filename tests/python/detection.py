"""Detection cases the tests share, framework-free: random box targets, and a Keras box
head (given the keras module, so that importing this file imports no framework)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def random_box_targets(
    rng: np.random.Generator, boxes: Sequence[int], slots: int, classes: int
) -> np.ndarray:
    """(N, slots, 4 + 1 + classes) float32 targets: input i holds ``boxes[i]`` valid boxes
    (x1 < x2, y1 < y2 in [0, 1], an objectness, a one-hot class), the rest zero padding."""
    targets = np.zeros((len(boxes), slots, 5 + classes), dtype=np.float32)
    for i, count in enumerate(boxes):
        for b in range(count):
            x1, y1 = rng.uniform(0, 0.5, 2)
            w, h = rng.uniform(0.1, 0.5, 2)
            targets[i, b, :5] = (x1, y1, x1 + w, y1 + h, rng.uniform(0.2, 1))
            targets[i, b, 5 + rng.integers(classes)] = 1.0
    return targets


def keras_box_head(keras: Any, boxes: int, classes: int) -> Any:
    """A Keras layer: (N, boxes * (5 + classes)) features -> (N, boxes, 4 + 1 + classes)
    valid boxes (x1 < x2, y1 < y2) in [0, 1], an objectness and class probabilities."""

    class BoxHead(keras.layers.Layer):
        def call(self, features):
            ops = keras.ops
            raw = ops.reshape(features, (-1, boxes, 5 + classes))
            corner = 0.5 * ops.sigmoid(raw[..., 0:2])
            size = 0.05 + 0.45 * ops.sigmoid(raw[..., 2:4])
            objectness = ops.sigmoid(raw[..., 4:5])
            probabilities = ops.softmax(raw[..., 5:], axis=-1)
            return ops.concatenate([corner, corner + size, objectness, probabilities], axis=-1)

    return BoxHead()
