"""PyTorch models: the scorer of ``Occlusion`` for ``torch.nn.Module`` models, and the GPU sweep.

Imports torch, NumPy and the compiled modules only: TensorFlow is never loaded on this path.

The model
    Any ``torch.nn.Module``, called as ``model(batch)`` under ``torch.inference_mode()`` on
    the model's device (its first parameter's, else its first buffer's, else the CPU).
    Its train/eval state is left as it is: put it in eval mode yourself (dropout, batch
    norm). Batches have the inputs' own shape (``batch_size`` samples, the last call padded)
    and are cast to the model's floating dtype when it is not float32 (half precision works).
    The model must not write into its input tensor in place: the batch buffer is reused,
    so that is detected (ValueError) rather than silently corrupting the next batches.
    A plain callable over torch tensors becomes a model with ``TorchCallable(fn, device)``
    (the rule: callables are NumPy callables unless wrapped, so one callable never changes
    meaning with the type of the inputs passed to ``explain``).

The operator
    Built-ins are computed by torch_operators.py on the model's device, with the numerics of
    operators.py; a custom operator is called as ``g(model, inputs, targets)`` with torch
    tensors on the model's device and must return one score per sample.

``device``
    "auto": the GPU sweep when the model lives on a CUDA device and fastocclusion's CUDA
    module is usable; otherwise the host sweep. "gpu": the GPU sweep, else ValueError (no
    CUDA device, no ``_cuda`` module, or a model on the CPU). "cpu": the host sweep (the C++
    kernels fill batches in host memory); a model on a CUDA device is then fed a copy of
    each batch (it is never moved).

The host sweep (occlusion._Sweep) hands batches over by ``torch.from_dlpack`` of the aligned
host buffer (no copy for a CPU model). The GPU sweep (``DeviceSweep``) uploads the inputs once,
fills every batch in a persistent device buffer with the CUDA incremental fill kernel, hands
it to the model by DLPack, computes the scores and their deltas on the device, and brings
back only the (N * K,) deltas at the end. Everything is enqueued on PyTorch's current CUDA
stream of the model's device; nothing synchronises until the deltas are read.

``explain`` returns a float32 ``torch.Tensor`` on the model's device.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fastocclusion import tasks
from fastocclusion.occlusion import progress_bar
from fastocclusion.torch_operators import builtin_scores, model_output, scores_tensor

__all__ = ["DeviceSweep", "TorchCallable", "TorchScorer", "load_cuda_module", "model_device"]


class TorchCallable(torch.nn.Module):
    """A callable over torch tensors as a PyTorch model: ``Occlusion(TorchCallable(fn,
    device="cuda"))`` calls ``fn(batch)`` with batches on ``device`` (default: the CPU).

    ``fn`` takes a float32 tensor of the inputs' shape and returns (B, ...) outputs; it is
    called under ``torch.inference_mode()``. ``.to(device)`` moves the wrapper as it moves
    any module.
    """

    def __init__(self, fn: Callable[[torch.Tensor], Any], device: Any = "cpu") -> None:
        super().__init__()
        if not callable(fn) or isinstance(fn, type):
            raise TypeError(f"fn: {fn!r} is invalid, expected a callable over torch tensors")
        self.fn = fn
        # An empty buffer records the device: model_device() reads it, .to() moves it.
        self.register_buffer("_device_anchor", torch.empty(0, device=device), persistent=False)

    def forward(self, batch: torch.Tensor) -> Any:
        return self.fn(batch)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's batches go to: its first parameter's, else its first buffer's,
    else the CPU."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The floating dtype of the model's first floating parameter (float32 when none)."""
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def load_cuda_module() -> Any:
    """fastocclusion._cuda, or None when fastocclusion was built without it."""
    try:
        return importlib.import_module("fastocclusion._cuda")
    except ModuleNotFoundError as error:  # only a missing module; a broken one raises
        if error.name != "fastocclusion._cuda":
            raise
        return None


def _resolve_device(device: str, where: torch.device) -> tuple[bool, Any]:
    """(on_gpu, the _cuda module or None) for the ``device`` option and the model's device."""
    if device == "cpu":
        return False, None
    if device == "auto":
        if where.type != "cuda":
            return False, None
        cuda = load_cuda_module()
        return (True, cuda) if cuda is not None and cuda.is_available() else (False, None)
    reason = None
    cuda = None
    if not torch.cuda.is_available():
        reason = "PyTorch sees no CUDA device (torch.cuda.is_available() is False)"
    else:
        cuda = load_cuda_module()
        if cuda is None:
            reason = "fastocclusion was built without its CUDA module (fastocclusion._cuda)"
        elif not cuda.is_available():
            reason = "fastocclusion._cuda finds no usable CUDA device"
        elif where.type != "cuda":
            reason = (f"the model is on {where}; move it to a CUDA device first "
                      "(model.to('cuda'))")
    if reason is not None:
        raise ValueError(f"device: 'gpu' is invalid here, expected 'auto' or 'cpu': {reason}")
    return True, cuda


class TorchScorer:
    """The scorer interface of ``Occlusion`` (see scoring.TFScorer) for a torch.nn.Module."""

    def __init__(self, model: torch.nn.Module, operator: Any, device: str = "auto") -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model: {type(model).__name__} is invalid, expected a torch.nn.Module")
        self.model = model
        self.task, self.custom = tasks.parse_operator(operator)
        self.name = tasks.operator_name(self.task, self.custom)
        self.builtin = self.task is not None
        self.kind = tasks.TARGET_KINDS[self.task] if self.task is not None else "any"
        self._score_fn = builtin_scores(self.task) if self.task is not None else None
        self.device = model_device(model)
        self.dtype = _model_dtype(model)
        self.on_gpu, self._cuda = _resolve_device(device, self.device)
        self._targets: torch.Tensor | None = None  # (N, ...) float32 on self.device
        self._gathered: torch.Tensor | None = None  # (batch, ...) targets of the batch's slots
        self._host: tuple[Any, torch.Tensor] | None = None  # (HostBuffer, its torch view)

    def sweep_type(self) -> type:
        return DeviceSweep

    def wrap_result(self, maps: np.ndarray) -> torch.Tensor:
        """The maps as a float32 torch.Tensor on the model's device."""
        self._host = None  # the explain call is over: release its buffer
        return torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)).to(self.device)

    # -- model calls (shared by both sweeps) ----------------------------------------------

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw model outputs of a full batch; checks one output row per sample."""
        size = batch.shape[0]
        model_batch = batch if batch.dtype == self.dtype else batch.to(self.dtype)
        with torch.inference_mode():
            outputs = model_output(self.model(model_batch), self.model)
        if outputs.dim() == 0 or outputs.shape[0] != size:
            raise ValueError(
                f"model: returned outputs of shape {tuple(outputs.shape)} for a batch of {size} "
                f"inputs, expected a first dimension of {size} (one output per sample)")
        return outputs

    def _batch_scores(self, batch: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B,) float32 scores on the model's device of a full batch and its slots' targets."""
        # In-place writes bump the version counter of a normal (non-inference) tensor; the
        # sweeps' views are made outside inference mode so that they have one.
        version = None if batch.is_inference() else batch._version
        if self._score_fn is not None:
            outputs = self._forward(batch)
            scores = self._score_fn(outputs.to(targets.device), targets)
        else:
            model_batch = batch if batch.dtype == self.dtype else batch.to(self.dtype)
            with torch.inference_mode():
                result = self.custom(self.model, model_batch, targets)  # type: ignore[misc]
            scores = scores_tensor(result, batch.shape[0], self.name, self.device)
        if version is not None and batch._version != version:
            raise ValueError(
                "model: wrote into its input tensor in place (e.g. an inplace=True first layer "
                "or an in-place normalisation); fastocclusion reuses the batch buffer, expected "
                "a model (and operator) that leaves its input unchanged: clone it first")
        return scores

    def _gather(self, slots: torch.Tensor) -> torch.Tensor:
        """The targets of the batch's slots (slots: int64 input index per slot, on the
        targets' device) in the persistent gathered-targets tensor."""
        assert self._targets is not None and self._gathered is not None
        return torch.index_select(self._targets, 0, slots, out=self._gathered)

    # -- targets -------------------------------------------------------------------------

    def check_targets(self, targets: np.ndarray | None, n: int) -> None:
        tasks.check_targets_before_call(targets, n, self.kind, self.name)

    def resolve_targets(self, targets: np.ndarray | None, buffer: Any,
                        run_outputs: Callable[[], np.ndarray]) -> np.ndarray:
        """The targets of the sweep: the model's top class when None (``run_outputs()``: the
        base pass's raw outputs), else the given ones checked against the model's output
        shape, read from one call on the (full) batch buffer."""
        return self._resolve_targets(
            targets, lambda: tuple(self._forward(self._host_batch(buffer)).shape), run_outputs)

    def _resolve_targets(self, targets: np.ndarray | None, output_shape: Callable[[], tuple[int, ...]],
                         run_outputs: Callable[[], np.ndarray]) -> np.ndarray:
        if targets is None:
            return tasks.default_targets(run_outputs(), self.kind, self.name)
        if self.builtin:
            return tasks.validate_targets(targets, len(targets), output_shape(), self.kind, self.name)
        return np.asarray(targets, dtype=np.float32)

    def set_targets(self, targets: np.ndarray, batch: int) -> None:
        array = np.ascontiguousarray(targets, dtype=np.float32)
        self._targets = torch.tensor(array, device=self.device)  # a copy: never the caller's
        self._gathered = torch.empty((batch,) + tuple(array.shape[1:]), dtype=torch.float32,
                                     device=self.device)

    # -- the host sweep (occlusion._Sweep) -----------------------------------------------

    def _host_batch(self, buffer: Any) -> torch.Tensor:
        """The host buffer as a tensor on the model's device: a zero-copy DLPack view for a
        CPU model (made once per buffer), a copy for a model elsewhere."""
        if self._host is None or self._host[0] is not buffer:
            with torch.inference_mode(False):  # a normal tensor: it has a version counter
                self._host = (buffer, torch.from_dlpack(buffer))
        view = self._host[1]
        return view if self.device.type == "cpu" else view.to(self.device)

    def outputs(self, buffer: Any) -> np.ndarray:
        outputs = self._forward(self._host_batch(buffer))
        # A copy: outputs may alias the buffer (an identity model), which is refilled next.
        return outputs.detach().to("cpu", torch.float32).numpy().copy()

    def scores(self, buffer: Any, slot_inputs: np.ndarray, gather: bool = True) -> np.ndarray:
        # Gathering the targets is cheap here: `gather` (the same slots as the previous call)
        # is not needed to skip it.
        slots = torch.from_numpy(slot_inputs).to(self.device)
        scores = self._batch_scores(self._host_batch(buffer), self._gather(slots))
        return scores.to("cpu", torch.float64).numpy().reshape(len(slot_inputs))


class DeviceSweep:
    """The GPU sweep of one explain call: same interface and results as occlusion._Sweep,
    with the batches filled on the device by fastocclusion._cuda (see the module docstring).

    Memory on the device: the inputs (N x input), one batch buffer (batch x input), the
    targets, and N * K float64 deltas.
    """

    def __init__(self, scorer: TorchScorer, nhwc: np.ndarray, sample_shape: tuple[int, ...],
                 grid: Any, baseline: np.ndarray, batch: int, progress: bool) -> None:
        cuda = scorer._cuda
        self.scorer = scorer
        self.grid = grid
        self.batch = batch
        self.progress = progress
        self.n = nhwc.shape[0]
        device = scorer.device
        self.device = device
        index = device.index if device.index is not None else _current_index(device)
        # The stream every piece of work is enqueued on: PyTorch's current one, which the
        # model's kernels use too, so fills, model calls and score ops are ordered by it.
        self.stream = torch.cuda.current_stream(device) if device.type == "cuda" else None
        self.inputs = cuda.DeviceBuffer.from_host(nhwc, index)  # synchronous upload
        self.baseline = (float(baseline) if baseline.ndim == 0 else
                         cuda.DeviceBuffer.from_host(np.ascontiguousarray(baseline, np.float32), index))
        self.buffer = cuda.DeviceBuffer((batch,) + nhwc.shape[1:], "float32", index)
        self.state = cuda.IncrementalFillState()
        self._fill = cuda.fill_occluded_batch
        # DLPack views, made once: the consumer stream is the current one (see above); normal
        # tensors even when explain runs under inference mode (they need a version counter).
        with torch.inference_mode(False):
            self.batch_view = torch.from_dlpack(self.buffer).view((batch,) + tuple(sample_shape))
            self.inputs_view = torch.from_dlpack(self.inputs).view((self.n,) + tuple(sample_shape))
        self.base_scores: torch.Tensor | None = None
        self.model_calls = 0
        self.model_seconds: float | None = None  # asynchronous calls: not measured

    def base_pass(self, targets: np.ndarray | None) -> np.ndarray:
        """The unperturbed inputs through the model, on the device: default or checked
        targets, and the base scores (kept on the device)."""
        scorer, n, batch = self.scorer, self.n, self.batch
        outputs: torch.Tensor | None = None

        def device_outputs() -> torch.Tensor:
            nonlocal outputs
            if outputs is None:
                chunks = []
                for start in range(0, n, batch):
                    count = self._load_unperturbed(start)
                    chunks.append(scorer._forward(self.batch_view)[:count].to(torch.float32, copy=True))
                    self.model_calls += 1
                outputs = torch.cat(chunks).to(self.device)
            return outputs

        targets = scorer._resolve_targets(targets, lambda: tuple(device_outputs().shape),
                                          lambda: device_outputs().cpu().numpy())
        assert targets is not None
        scorer.set_targets(targets, batch)
        if outputs is not None and scorer._score_fn is not None:
            # Built-ins score the outputs already computed: no second pass.
            base = scorer._score_fn(outputs, scorer._targets)
        else:
            base = torch.empty(n, dtype=torch.float32, device=self.device)
            all_slots = torch.arange(n, dtype=torch.int64, device=self.device)
            padded = torch.empty(batch, dtype=torch.int64, device=self.device)
            for start in range(0, n, batch):
                count = self._load_unperturbed(start)
                padded.fill_(n - 1)  # padding slots repeat the last input
                padded[:count] = all_slots[start:start + count]
                scores = scorer._batch_scores(self.batch_view, scorer._gather(padded))
                self.model_calls += 1
                base[start:start + count] = scores[:count]
        self.base_scores = base.to(torch.float64)
        # The batch buffer now holds what torch wrote: the fill state must not trust it.
        self.state.reset()
        return np.asarray(targets)

    def _load_unperturbed(self, start: int) -> int:
        """Copies inputs [start, start + count) into the first slots; returns count."""
        count = min(self.batch, self.n - start)
        self.batch_view[:count].copy_(self.inputs_view[start:start + count])
        return count

    def run(self) -> np.ndarray:
        """The occlusion sweep; returns the (N * K,) float64 score deltas (one sync, at the end)."""
        assert self.base_scores is not None
        scorer, n, k, batch = self.scorer, self.n, self.grid.num_patches, self.batch
        total = n * k
        deltas = torch.empty(total, dtype=torch.float64, device=self.device)
        offsets = torch.arange(batch, dtype=torch.int64, device=self.device)
        slots = torch.empty(batch, dtype=torch.int64, device=self.device)
        with progress_bar(total, self.progress) as bar:
            for start in range(0, total, batch):
                count = min(batch, total - start)
                self._fill(self.inputs, self.grid, self.baseline, start, count, self.buffer,
                           self.state, stream=self.stream)
                # slot j holds input (start + j) // K; padding slots repeat the last input
                torch.add(offsets, start, out=slots)
                slots.div_(k, rounding_mode="floor").clamp_(max=n - 1)
                scores = scorer._batch_scores(self.batch_view, scorer._gather(slots))
                self.model_calls += 1
                torch.sub(self.base_scores[slots[:count]], scores[:count],
                          out=deltas[start:start + count])
                if bar is not None:
                    bar.update(count)
        return deltas.cpu().numpy()


def _current_index(device: torch.device) -> int:
    return torch.cuda.current_device() if device.type == "cuda" else 0
