"""A stand-in for fastocclusion._cuda over host memory (the C++ core's kernels) and a
torch-on-the-CPU DeviceArrays: the GPU sweep's logic tested on a machine without a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastocclusion import Occlusion, _core
from fastocclusion.backends.torch import TorchBackend
from fastocclusion.backends.torch.incremental import device as incremental_device
from fastocclusion.engine import fillers


class FakeDeviceBuffer:
    """_cuda.DeviceBuffer's interface over host memory (DLPack through NumPy's)."""

    def __init__(self, shape, dtype="float32", device=0):
        assert device == 0
        self.array = np.zeros(tuple(shape), np.dtype(dtype))
        self.shape = tuple(shape)

    @classmethod
    def from_host(cls, array, device=0):
        buffer = cls(array.shape, array.dtype.name, device)
        buffer.array[...] = array
        return buffer

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


class FakeStreamPairs:
    """_cuda.StreamPairs over host memory: (P, 2) int64 (input, window) pairs."""

    def __init__(self, pairs, device=0):
        assert device == 0
        self.array = np.array(pairs, np.int64)  # a copy, as the upload is
        assert self.array.ndim == 2 and self.array.shape[1] == 2
        self.count = len(self.array)


class FakeCuda:
    """fastocclusion._cuda's kernels over host memory, by the C++ core; records the fills."""

    DeviceBuffer = FakeDeviceBuffer
    IncrementalFillState = _core.IncrementalFillState
    StreamPairs = FakeStreamPairs

    @staticmethod
    def is_available():
        return True

    def __init__(self):
        self.gathers = self.splices = 0  # feature-map window kernels (incremental inference)
        self.fills = []
        self.batch_dtypes = set()  # of the batches filled
        self.pair_fills = 0  # fills of a stream of explicit pairs (a drill-down's)

    def fill_occluded_batch(
        self,
        inputs,
        grid,
        baseline,
        start,
        count,
        out,
        state=None,
        *,
        stride=1,
        baseline_kind="auto",
        stream=None,
        pairs=None,
    ):
        assert state is not None  # always incremental
        self.fills.append((start, count, stride))
        self.pair_fills += pairs is not None
        dtype = inputs.array.dtype
        if isinstance(baseline, float):  # as _cuda: a number for float32/float64 inputs only
            assert dtype in (np.float32, np.float64), dtype
            values = np.array(baseline, dtype)
        elif isinstance(baseline, np.ndarray):  # else a 0-d array of the inputs' dtype
            assert baseline.ndim == 0 and baseline.dtype == dtype, (baseline, dtype)
            values = baseline
        else:
            values = baseline.array
        assert out.array.dtype == dtype and values.dtype == dtype
        self.batch_dtypes.add(dtype)
        _core.fill_occluded_batch(
            inputs.array,
            grid,
            values,
            start,
            count,
            out.array,
            state,
            stride=stride,
            baseline_kind=baseline_kind,
            pairs=None if pairs is None else pairs.array,
        )

    def gather_windows(
        self, maps, map_index, origins, size, out, patches=None, patch_origins=None, *,
        pad_value=0.0, stream=None,
    ):  # fmt: skip
        self.gathers += 1
        assert stream is None or hasattr(stream, "cuda_stream")  # as _cuda's stream_from
        for tensor in (maps, out) + (() if patches is None else (patches,)):
            assert isinstance(tensor, torch.Tensor) and tensor.is_contiguous()
        _core.gather_windows(
            maps.numpy(), map_index, origins, size, out.numpy(),
            None if patches is None else patches.numpy(), patch_origins, pad_value=pad_value,
        )  # fmt: skip

    def splice_windows(self, maps, map_index, patches, origins, out, *, stream=None):
        self.splices += 1
        assert stream is None or hasattr(stream, "cuda_stream")
        for tensor in (maps, patches, out):
            assert isinstance(tensor, torch.Tensor) and tensor.is_contiguous()
        # _cuda's splice has no state: every slot written in full, as a fresh state does
        _core.splice_windows(
            maps.numpy(), map_index, patches.numpy(), origins, out.numpy(), _core.SpliceState()
        )

    def window_means(self, inputs, grid, *, stream=None):
        return FakeDeviceBuffer.from_host(_core.window_means(inputs.array, grid))

    def blend_window_values(self, values, grid, importance, collapsed_axes, *, stream=None):
        maps = _core.blend_window_values(values.array, grid, importance, collapsed_axes)
        return FakeDeviceBuffer.from_host(maps)

    def accumulate_window_deltas(self, deltas, grid, reduction, collapsed_axes, *, stream=None):
        maps = _core.accumulate_window_deltas(deltas.array, grid, reduction, collapsed_axes)
        buffer = FakeDeviceBuffer(maps.shape)
        buffer.array[...] = maps
        return buffer


class FakeDeviceArrays:
    """engine.protocols.DeviceArrays with torch tensors on the CPU."""

    device_index = 0
    stream = None

    def asarray(self, values):
        return torch.as_tensor(values)

    def empty(self, shape, dtype):
        return torch.empty(
            shape,
            dtype={np.dtype(np.float64): torch.float64, np.dtype(np.int64): torch.int64}[
                np.dtype(dtype)
            ],
        )

    def concatenate(self, arrays):
        return torch.cat(arrays)

    def view(self, buffer):
        with torch.inference_mode(False):
            return torch.from_dlpack(buffer)


def explain_with_fake_device(model, inputs, targets, **options):
    """The GPU sweep (device filler, bookkeeping in torch, maps accumulated by "_cuda") with
    the CUDA module and the device replaced by host stand-ins."""
    fake = FakeCuda()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fillers, "load_cuda_module", lambda: fake)
        patch.setattr(incremental_device, "load_cuda_module", lambda: fake)
        patch.setattr(TorchBackend, "device_arrays", property(lambda self: FakeDeviceArrays()))
        explainer = Occlusion(model, **options)
        explainer._backend._on_gpu = True  # the CPU model as if it were on a CUDA device
        return explainer.explain(inputs, targets), fake


def fake_monai_device(monkeypatch):
    """The MONAI front-end's GPU sweep (OutputsBackend) with the CUDA module and the device
    replaced by host stand-ins, for the rest of the test; returns the fake module."""
    from fastocclusion.backends.torch import outputs as outputs_backend

    fake = FakeCuda()
    monkeypatch.setattr(fillers, "load_cuda_module", lambda: fake)
    monkeypatch.setattr(incremental_device, "load_cuda_module", lambda: fake)
    monkeypatch.setattr(outputs_backend, "uses_gpu_sweep", lambda device, where: True)
    monkeypatch.setattr(
        outputs_backend.OutputsBackend, "device_arrays", property(lambda self: FakeDeviceArrays())
    )
    return fake
