"""fastocclusion._core.HostBuffer: alignment, zero-copy views, DLPack export (design §4)."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastocclusion import _core

shapes = st.lists(st.integers(1, 13), min_size=1, max_size=4)


def filled(shape) -> tuple[_core.HostBuffer, np.ndarray]:
    """A buffer holding distinct values, and a copy of them."""
    buf = _core.HostBuffer(list(shape))
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) * 0.5 - 3
    np.asarray(buf)[...] = values
    return buf, values


def test_alignment_constant():
    assert _core.BUFFER_ALIGNMENT == 64


@given(shapes)
def test_aligned_zeroed_and_sized(shape):
    buf = _core.HostBuffer(shape)
    assert buf.data_ptr % 64 == 0
    assert tuple(buf.shape) == tuple(shape)
    assert buf.nbytes == 4 * int(np.prod(shape))
    view = np.asarray(buf)
    assert view.shape == tuple(shape) and view.dtype == np.float32
    assert view.flags.c_contiguous and view.flags.writeable
    assert (view == 0).all()


def test_many_live_buffers_are_all_aligned():
    buffers = [_core.HostBuffer([1 + i % 7, 1 + i % 5, 3]) for i in range(200)]
    assert all(b.data_ptr % 64 == 0 for b in buffers)
    assert len({b.data_ptr for b in buffers}) == len(buffers)


@given(shapes)
def test_numpy_view_is_no_copy(shape):
    buf, values = filled(shape)
    first, second = np.asarray(buf), np.asarray(buf)
    assert first.ctypes.data == buf.data_ptr
    assert np.shares_memory(first, second)
    second.reshape(-1)[-1] = 1234.5
    assert first.reshape(-1)[-1] == 1234.5
    np.testing.assert_array_equal(first.reshape(-1)[:-1], values.reshape(-1)[:-1])


def test_numpy_view_keeps_buffer_alive():
    buf, values = filled((4, 5))
    view = np.asarray(buf)
    del buf
    gc.collect()
    _ = [_core.HostBuffer([4, 5]) for _ in range(20)]  # would likely reuse freed memory
    np.testing.assert_array_equal(view, values)


def test_numpy_from_dlpack_is_no_copy():
    buf, values = filled((3, 7, 2))
    array = np.from_dlpack(buf)
    assert array.ctypes.data == buf.data_ptr
    np.testing.assert_array_equal(array, values)
    np.asarray(buf)[1, 2, 1] = -9
    assert array[1, 2, 1] == -9


def test_dlpack_device_is_cpu():
    assert tuple(_core.HostBuffer([2]).__dlpack_device__()) == (1, 0)


@pytest.mark.torch
def test_torch_from_dlpack_is_no_copy_and_outlives_buffer():
    import torch

    buf, values = filled((5, 3))
    tensor = torch.from_dlpack(buf)
    assert tensor.data_ptr() == buf.data_ptr
    assert tensor.dtype == torch.float32 and tuple(tensor.shape) == (5, 3)
    np.asarray(buf)[0, 0] = 42
    assert tensor[0, 0].item() == 42
    values[0, 0] = 42
    del buf
    gc.collect()
    _ = [_core.HostBuffer([5, 3]) for _ in range(20)]
    np.testing.assert_array_equal(tensor.numpy(), values)


def test_tensorflow_from_dlpack_is_no_copy_and_outlives_buffer():
    import tensorflow as tf

    buf, values = filled((4, 6, 3))
    tensor = tf.experimental.dlpack.from_dlpack(buf.__dlpack__())
    assert tensor.dtype == tf.float32 and tuple(tensor.shape) == (4, 6, 3)
    np.testing.assert_array_equal(tensor.numpy(), values)
    np.asarray(buf)[3, 5, 2] = 77  # zero copy: TensorFlow sees the write
    assert float(tensor[3, 5, 2]) == 77
    values[3, 5, 2] = 77
    del buf
    gc.collect()
    _ = [_core.HostBuffer([4, 6, 3]) for _ in range(20)]
    np.testing.assert_array_equal(tensor.numpy(), values)
    np.testing.assert_array_equal((tensor * 2).numpy(), values * 2)


def test_unconsumed_capsule_is_freed_without_error():
    buf, values = filled((3,))
    for _ in range(100):
        capsule = buf.__dlpack__()
        del capsule
    gc.collect()
    np.testing.assert_array_equal(np.asarray(buf), values)


@pytest.mark.parametrize("device", [(2, 0), (1, 1), (13, 0)])
def test_dlpack_bad_device_raises(device):
    buf = _core.HostBuffer([2, 2])
    with pytest.raises(ValueError, match=r"dl_device.*\(1, 0\)") as info:
        buf.__dlpack__(dl_device=device)
    assert str(device) in str(info.value)


def test_dlpack_device_of_wrong_type_raises_clearly():
    buf = _core.HostBuffer([2, 2])
    with pytest.raises((TypeError, ValueError), match="dl_device"):
        buf.__dlpack__(dl_device="cpu")


def test_dlpack_copy_true_raises():
    buf = _core.HostBuffer([2, 2])
    with pytest.raises(BufferError, match="copy"):
        buf.__dlpack__(copy=True)
    # copy=False / None / the CPU device are the zero-copy export itself.
    for kwargs in (dict(copy=False), dict(copy=None), dict(dl_device=(1, 0))):
        assert np.from_dlpack(_DLPackOnly(buf, kwargs)).ctypes.data == buf.data_ptr


def test_dlpack_stream_raises():
    with pytest.raises(ValueError, match="stream"):
        _core.HostBuffer([2]).__dlpack__(stream=1)


class _DLPackOnly:
    """Exports `buf` with fixed extra __dlpack__ keywords."""

    def __init__(self, buf, kwargs):
        self.buf, self.kwargs = buf, kwargs

    def __dlpack__(self, **_ignored):
        return self.buf.__dlpack__(**self.kwargs)

    def __dlpack_device__(self):
        return self.buf.__dlpack_device__()


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ([], ["shape", "at least one"]),
        ([0], ["shape", "0", ">= 1"]),
        ([3, -1], ["shape", "-1"]),
        ([2**62, 2**62], ["shape", "too large"]),
    ],
)
def test_bad_shape_raises(shape, words):
    with pytest.raises(ValueError) as info:
        _core.HostBuffer(shape)
    for word in words:
        assert word in str(info.value)
