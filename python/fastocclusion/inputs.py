"""Turning what users pass to ``explain`` into float32 NumPy arrays (SPEC §2, §3, §6).

Nothing here modifies the caller's data: arrays are read, and copied when a conversion is
needed. TensorFlow is imported only when a TensorFlow object is actually passed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Input families by rank (SPEC §2).
FAMILIES = {4: "images", 3: "time series", 2: "tabular"}


@dataclass(frozen=True)
class PreparedInputs:
    """Inputs seen as NHWC float32 plus what is needed to shape the output back."""

    nhwc: np.ndarray  # (N, H, W, C) float32, C-contiguous, never the caller's buffer if written
    family: str  # "images" | "time series" | "tabular"
    original_shape: tuple[int, ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        n, h, w, _ = self.nhwc.shape
        if self.family == "images":
            return (n, h, w, 1)
        if self.family == "time series":
            return (n, h, w)
        return (n, w)


def _is_tf_object(value: Any, *type_names: str) -> bool:
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return False
    return any(isinstance(value, getattr(tf, name, ())) for name in type_names)


def _is_dataset(value: Any) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(value, tf.data.Dataset)


def to_numpy(value: Any, name: str) -> np.ndarray:
    """Any array-like (np.ndarray, tf.Tensor, torch tensor on CPU, nested lists) as a NumPy
    array, without copying when it already is one. Raises TypeError naming ``name`` for
    non-numeric data."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        if type(value).__module__.startswith("torch"):
            value = value.detach().cpu().numpy()
        else:
            value = value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name}: could not be read as a numeric array ({error})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{name}: dtype {array.dtype} is not numeric, expected an array of numbers "
            "(bool, integer or floating point)"
        )
    return array


def read_dataset(dataset: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads a tf.data.Dataset of inputs or (inputs, targets) pairs, batched or not."""
    import tensorflow as tf

    spec = dataset.element_spec
    paired = isinstance(spec, tuple)
    if paired and len(spec) != 2:
        raise ValueError(
            f"inputs: a dataset element has {len(spec)} components, expected an input or "
            "an (input, target) pair"
        )
    input_spec = spec[0] if paired else spec
    if not isinstance(input_spec, tf.TensorSpec):
        raise TypeError(f"inputs: dataset elements {input_spec} are not tensors")
    # A batched dataset has an unknown (None) leading dimension unless drop_remainder was
    # set; tf.data's BatchDataset keeps its batch size in `_batch_size` either way.
    batched = hasattr(dataset, "_batch_size") or (
        input_spec.shape.rank is not None
        and input_spec.shape.rank >= 1
        and input_spec.shape[0] is None
    )
    xs, ys = [], []
    for element in dataset:
        x, y = (element if paired else (element, None))
        xs.append(to_numpy(x, "inputs"))
        if y is not None:
            ys.append(to_numpy(y, "targets"))
    if not xs:
        raise ValueError("inputs: the dataset is empty, expected at least one input")
    join = np.concatenate if batched else np.stack
    return join(xs), (join(ys) if ys else None)


def read_inputs(inputs: Any, targets: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs and targets as NumPy arrays (not yet cast); datasets are read in full."""
    if _is_dataset(inputs):
        if targets is not None:
            raise ValueError(
                "targets: must be None when inputs is a tf.data.Dataset (the dataset "
                f"carries its targets), got {type(targets).__name__}"
            )
        return read_dataset(inputs)
    x = to_numpy(inputs, "inputs")
    y = None if targets is None else to_numpy(targets, "targets")
    return x, y


def prepare_inputs(x: np.ndarray) -> PreparedInputs:
    """Checks the rank and sizes and returns the NHWC float32 view (copying only to cast or
    make contiguous)."""
    family = FAMILIES.get(x.ndim)
    if family is None:
        raise ValueError(
            f"inputs: shape {x.shape} (rank {x.ndim}) is invalid, expected (N, W) tabular, "
            "(N, T, W) time series or (N, H, W, C) images"
        )
    if min(x.shape) < 1:
        raise ValueError(f"inputs: shape {x.shape} is invalid, expected every size >= 1")
    nhwc = np.ascontiguousarray(x, dtype=np.float32)
    if family == "time series":
        nhwc = nhwc.reshape(x.shape + (1,))
    elif family == "tabular":
        nhwc = nhwc.reshape(x.shape[0], 1, x.shape[1], 1)
    return PreparedInputs(nhwc=nhwc, family=family, original_shape=tuple(x.shape))
