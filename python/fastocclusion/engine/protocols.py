"""The interfaces between the sweep and what it drives: a backend runs the model, a filler
builds the occluded batches. Declared here; implemented by ``fastocclusion.backends.*``
(backends) and ``fastocclusion.engine.fillers`` (fillers).

Arrays. The sweep's bookkeeping (slot tables, scores, deltas) lives where the batches live:
NumPy arrays for a host filler, the backend's device arrays (e.g. torch tensors on a CUDA
device) for a device filler. The sweep only indexes, subtracts, transposes, reshapes and
assigns them, which NumPy and torch spell the same way.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from fastocclusion.engine.regions import IncrementalRequest
from fastocclusion.types import (
    BatchBuffer,
    Bookkeeping,
    DeviceArray,
    FrameworkTensor,
    Scores,
)


class DeviceArrays(Protocol):
    """Array operations on one CUDA device, for the device filler's bookkeeping; given by
    a backend whose model runs there."""

    #: CUDA device ordinal the model runs on.
    device_index: int
    #: The CUDA stream the model's work is enqueued on (an int handle or an object with
    #: ``cuda_stream``); fills and maps are enqueued on it too, so everything is ordered.
    stream: Any

    def asarray(self, values: np.ndarray) -> DeviceArray:
        """A device array holding a copy of ``values``."""

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> DeviceArray:
        """An uninitialised device array."""

    def concatenate(self, arrays: list[DeviceArray]) -> DeviceArray:
        """Device arrays joined along their first axis."""

    def view(self, buffer: BatchBuffer) -> DeviceArray:
        """A device array aliasing a ``fastocclusion._cuda.DeviceBuffer`` (DLPack, no copy);
        writes through it show in the buffer."""


class Objective(Protocol):
    """What a sweep scores, framework-free (design §3; ``engine.objective``): the targets'
    checks, defaults and validation. The backend (the model runner) computes the scores it
    names with its framework's numerics."""

    #: True when scores are a function of the model's outputs and the targets (the base
    #: pass keeps the outputs; an incremental scorer can stand in for the model); False
    #: when the scores come from calls of their own (a custom g(model, inputs, targets)).
    from_outputs: bool
    #: What the targets are: "vector" (classification, regression: the score of a one-hot
    #: target of class c is output c), "segmentation", "boxes", or "any".
    target_kind: str

    def check_targets(self, targets: Any, n: int) -> None:
        """What can be checked of the targets before any model call (ValueError)."""

    def resolve_targets(
        self,
        targets: Any,
        outputs: Bookkeeping | None,
        output_shape: tuple[int | None, ...] | None,
    ) -> np.ndarray:
        """The sweep's float32 targets: the model's top class from ``outputs`` (the
        unperturbed inputs' outputs) when ``targets`` is None, else ``targets`` checked
        against the output shape (``outputs.shape`` when given, else ``output_shape``)."""


class Backend(Protocol):
    """The model side of an occlusion sweep, a *model runner*: one per explainer (model,
    objective, device). It runs the model in its framework and scores the outputs as its
    ``objective`` says.

    Batches are buffers of ``(batch,) + one input's shape`` float32 samples that a filler
    refills in place between calls: a backend makes its view of a buffer once and must not
    keep what it read from it. Every method that calls the model says so; nothing else may.
    """

    #: What is scored and the targets' rules.
    objective: Objective
    #: The NumPy dtype a front-end builds the batches in (host or device) when the model
    #: takes another than float32 (a float64, float16 or bfloat16 PyTorch model, bfloat16 as
    #: types.BFLOAT16_BITS: its inputs then keep their precision and no call casts); None:
    #: float32.
    batch_dtype: np.dtype | None
    #: Not None when batches must be filled on a CUDA device (the device filler); None when
    #: they are filled in host memory.
    device_arrays: DeviceArrays | None

    def calls(self) -> AbstractContextManager[Any]:
        """A context entered once around all the model calls of a sweep (e.g. PyTorch's
        inference mode), so that no call pays for entering it."""

    def static_output_shape(self, buffer: BatchBuffer) -> tuple[int | None, ...] | None:
        """The model's output shape for a full batch when it is known without a model call
        (tracing), else None."""

    def outputs(self, buffer: BatchBuffer, rows: int) -> Bookkeeping:
        """MODEL CALL: the raw outputs of the batch in ``buffer``, as a bookkeeping array (a
        copy: the buffer is refilled next). ``rows``: the first slots that hold samples, the
        others are padding: a backend may call the model on those rows only (nothing is
        traced: PyTorch) and return as many outputs, or on the full batch (one traced shape:
        TensorFlow) and return them all; the sweep reads the first ``rows``."""

    def wrap_result(self, maps: Bookkeeping) -> FrameworkTensor | np.ndarray:
        """The maps (a float32 NumPy array, or a device array) as what explain returns."""

    def incremental_scorer(self, request: IncrementalRequest) -> tuple[WindowScorer | None, str]:
        """Exact incremental inference for the coming sweep (design §8): a scorer that
        recomputes only what the windows change, and a note saying what it does; or (None,
        why not) where the model, the operator or the sweep does not allow it (a ValueError
        naming the first unsupported layer or option when ``request.required``). No model
        call."""


class ScoringBackend(Backend, Protocol):
    """A backend that also scores the outputs as its objective says (every backend but
    MONAI's output maps, which ``Sweep.run_values`` keeps whole): what ``Sweep.run`` needs."""

    def set_targets(self, targets: np.ndarray, batch: int) -> None:
        """Keeps the sweep's targets (N, ...), resolved by the objective, for ``scores``;
        ``batch`` is the batch size."""

    def scores(self, buffer: BatchBuffer, slots: Bookkeeping, gather: bool, rows: int) -> Scores:
        """MODEL CALL: float scores of the batch in ``buffer`` (at least ``rows`` of them, as
        for ``outputs``); slot j is scored against the target of input ``slots[j]`` (an int64
        bookkeeping array). ``gather`` False: the slots hold the same inputs as in the
        previous call."""

    def scores_from_outputs(self, outputs: Bookkeeping) -> Scores:
        """Objectives ``from_outputs`` only: the (N,) scores of the unperturbed inputs from their
        outputs and the targets set, without a model call."""


class WindowScorer(Protocol):
    """A model evaluated from the windows that occlude a batch's samples (design §8): the
    unoccluded inputs' activations are kept, and per layer only the boxes the windows can
    change are recomputed and spliced into them, up to the layer where the boxes grow past
    the switch-back share; the rest runs in full. Scores equal the full batch's within
    float round-off. Made by ``Backend.incremental_scorer`` for one sweep."""

    #: The layers computed over their changed boxes only, in graph order; known after the
    #: base pass (``outputs``). Empty: nothing to gain, the sweep calls Backend.scores.
    incremental_layers: tuple[str, ...]
    #: One sentence on what runs incrementally and where the full computation takes over.
    note: str
    #: The share of the model's multiply-adds per occluded sample that the incremental
    #: layers save (from the layer shapes; 0.0 when nothing runs incrementally).
    saved_share: float
    #: The incremental layers whose boxes projective-field truncation cut (approximate
    #: scores; empty for an exact sweep).
    truncated_layers: tuple[str, ...]
    #: True when "auto" could not tell from the multiply-adds whether incremental calls
    #: pay: the sweep times one of each kind and reports to ``measured`` (known after the
    #: base pass).
    probing: bool

    def measured(self, incremental_seconds: float, full_seconds: float) -> bool:
        """The sweep's measurement of one incremental and one full call of the same batch:
        True to go on incrementally, False when the scorer stepped aside (the normal sweep
        from then on; ``note`` says why)."""

    def unmeasured(self) -> bool:
        """The sweep cannot measure (too few batches): True to go on incrementally (a
        framework floor measured on this hardware puts the call near it), False when the
        scorer stepped aside (no floor is known on its device)."""

    def synchronize(self) -> None:
        """Waits for the work enqueued on the model's device (nothing for the host): the
        sweep times its calls between such waits."""

    def failed(self, error: Exception) -> bool:
        """An incremental call raised ``error``: True when the scorer stepped aside (the
        normal sweep recomputes that batch and the rest; ``note`` says why), False when
        incremental inference was required (the sweep re-raises)."""

    def outputs(self, buffer: BatchBuffer, start: int, count: int) -> Bookkeeping:
        """MODEL CALL: as Backend.outputs for the unperturbed inputs [start, start + count)
        loaded in the first ``count`` slots; keeps their activations for the window calls."""

    def scores(
        self, buffer: BatchBuffer, slots: np.ndarray, windows: np.ndarray, gather: bool, rows: int
    ) -> Scores:
        """MODEL CALL: as Backend.scores, for a batch whose slot j holds input ``slots[j]``
        occluded by window ``windows[j]`` (int64 bookkeeping arrays): the buffer is read
        only around the windows."""

    def window_outputs(
        self, buffer: BatchBuffer, slots: np.ndarray, windows: np.ndarray, rows: int
    ) -> Bookkeeping:
        """MODEL CALL: as Backend.outputs, for such a batch."""


class Filler(Protocol):
    """Where the batches of a sweep live and how they are filled and turned into maps: the
    host filler (C++ kernels, host memory) or the device filler (CUDA kernels)."""

    #: The batch buffer, (batch,) + one input's shape, float32; its content changes with
    #: every fill.
    buffer: BatchBuffer

    def load_unperturbed(self, start: int, count: int) -> None:
        """Inputs [start, start + count) into the first ``count`` slots."""

    def fill(self, start: int, count: int, stride: int) -> None:
        """Occluded samples: slot j < count gets stream index start + j * stride
        (incremental: only what changed since the last fill is rewritten)."""

    def asarray(self, values: np.ndarray) -> Bookkeeping:
        """A bookkeeping array holding ``values``."""

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Bookkeeping:
        """An uninitialised bookkeeping array."""

    def concatenate(self, arrays: list[Bookkeeping]) -> Bookkeeping:
        """Bookkeeping arrays joined along their first axis."""

    def deltas(self, planes: int = 1) -> Bookkeeping:
        """The (N * planes * K,) float64 bookkeeping array the sweep writes the deltas into:
        ``planes`` grids of K window deltas per input (one per class of an all-class sweep),
        input-major."""

    def maps(self, reduction: str, collapsed_axes: tuple[int, ...]) -> Bookkeeping:
        """The (N * planes, *map shape) float32 maps of the deltas written (NumPy, or a
        device array for the device filler: only maps leave the device)."""

    def blend(self, importance: np.ndarray, collapsed_axes: tuple[int, ...]) -> Bookkeeping:
        """As ``maps``, the values written blended with a window-shaped float32 ``importance``
        (the window's shape, 1 on the collapsed axes; finite, > 0): at every map element the
        importance-weighted mean of the covering windows' values."""
