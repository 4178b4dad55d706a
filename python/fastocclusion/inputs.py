"""Turning what users pass to ``explain`` into float32 NumPy arrays (design §2, §3, §6).

Nothing here modifies the caller's data: arrays are read, and copied when a conversion is
needed. TensorFlow is imported only when a TensorFlow object is actually passed; without
TensorFlow, an object that only TensorFlow can read (a ``tf.data`` dataset) is an
ImportError naming the extra to install (``fastocclusion.frameworks``).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from fastocclusion.arrays import to_numpy
from fastocclusion.frameworks import missing_tensorflow, tensorflow_installed, tensorflow_need
from fastocclusion.types import BFLOAT16_BITS


def _is_dataset(value: Any) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(value, tf.data.Dataset)


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
        x, y = element if paired else (element, None)
        xs.append(to_numpy(x, "inputs"))
        if y is not None:
            ys.append(to_numpy(y, "targets"))
    if not xs:
        raise ValueError("inputs: the dataset is empty, expected at least one input")
    join = np.concatenate if batched else np.stack
    return join(xs), (join(ys) if ys else None)


def _check_readable(value: Any, name: str) -> None:
    """ImportError naming ``name`` and the TensorFlow extra when ``value`` is an object only
    TensorFlow can read and TensorFlow is not installed."""
    need = tensorflow_need(value)
    if need is not None and not tensorflow_installed():
        raise missing_tensorflow(f"{name}: {need}")


def read_inputs(inputs: Any, targets: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs and targets as NumPy arrays (not yet cast); datasets are read in full.

    >>> x, y = read_inputs([[1.0, 2.0]], None)
    >>> x.shape, y
    ((1, 2), None)
    """
    _check_readable(inputs, "inputs")
    _check_readable(targets, "targets")
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


def bfloat16_bits(values: Any) -> np.ndarray:
    """The bits of ``values`` rounded to bfloat16 as PyTorch rounds numbers (to the
    nearest, ties to even, from float32; a NaN becomes the quiet NaN 0x7FC0, where PyTorch
    may keep another NaN's bits: NaN either way), as a C-contiguous array of
    ``types.BFLOAT16_BITS`` (int16) of the same shape.

    >>> bfloat16_bits(np.array([1.0, 2.5, -3.14159])).view(np.uint16).tolist()
    [16256, 16416, 49225]
    """
    with np.errstate(over="ignore"):  # past float32's range: inf, as torch rounds
        floats = np.asarray(values, dtype=np.float32, order="C")  # 0-d stays 0-d
    bits = floats.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    result = np.where(np.isnan(floats), 0x7FC0, rounded)
    return np.asarray(result.astype(np.uint16).view(BFLOAT16_BITS), order="C")


def as_batch_dtype(values: Any, dtype: np.dtype | type) -> np.ndarray:
    """``values`` as a C-contiguous array of a batch dtype: a NumPy cast (float16 through
    float32, as PyTorch rounds a float32 batch), or for BFLOAT16_BITS the bfloat16 bits
    (bfloat16_bits). Copies only to cast or make contiguous.

    >>> as_batch_dtype(np.ones(2), BFLOAT16_BITS).tolist()
    [16256, 16256]
    """
    dtype = np.dtype(dtype)
    if dtype == BFLOAT16_BITS:
        return bfloat16_bits(values)
    with np.errstate(over="ignore"):  # past the dtype's range: inf, as torch rounds
        if dtype == np.float16:
            values = np.asarray(values, dtype=np.float32)  # rounded from float32, as torch
        return np.asarray(values, dtype=dtype, order="C")  # 0-d stays 0-d


def prepare_inputs(x: np.ndarray, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """C-contiguous in ``dtype`` (float32 unless the model's batches take another: copying
    only to cast or make contiguous; BFLOAT16_BITS: bfloat16's bits); ValueError for an
    empty axis.

    >>> prepare_inputs(np.ones((1, 2), np.float64)).dtype
    dtype('float32')
    """
    if x.ndim >= 1 and min(x.shape) < 1:
        raise ValueError(f"inputs: shape {x.shape} is invalid, expected every size >= 1")
    return as_batch_dtype(x, dtype)
