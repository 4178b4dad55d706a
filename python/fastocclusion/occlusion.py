"""The user-facing explainer: Xplique's ``Occlusion`` API over fastocclusion's kernels.

How one ``explain`` runs (SPEC §4):
1. validate everything (no model call yet);
2. the base pass: the unperturbed inputs, packed ``batch_size`` at a time, through the model
   (outputs: default targets and target checks) and through the score function (base scores);
3. the sweep: the (input, patch) stream packed ``batch_size`` at a time; the C++ kernel fills
   each batch incrementally in a persistent buffer (only the previous and the new patch of a
   slot are rewritten: microseconds per batch), so it runs inline, without a fill thread —
   measured, a thread's hand-offs cost more than the fill; every call sees exactly
   ``batch_size`` samples (the last padded);
4. the C++ kernel turns the (N, rows, cols) grid of score deltas into maps.

Python loops once per batch, never per patch or pixel.
"""

from __future__ import annotations

import contextlib
import numbers
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastocclusion import _core
from fastocclusion.inputs import prepare_inputs, read_inputs
from fastocclusion.options import (
    DEVICES,
    EDGES,
    REDUCTIONS,
    check_batch_size,
    check_choice,
    check_occlusion_value,
    check_pair,
    plane_baseline,
    plane_patch,
)
from fastocclusion.scoring import make_scorer

#: batch_size=None: all perturbations of one input per call, capped so that the batch
#: buffer stays within half this many bytes (the other half for what the model allocates
#: per sample, roughly).
AUTO_BATCH_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ExplainStats:
    """What one ``explain`` call did and where its time went (``Occlusion.last_stats``).

    ``model_seconds`` is the wall time spent inside the model (and operator) calls, result
    fetch included; ``total_seconds - model_seconds`` is fastocclusion's own work (input
    checks, batch filling, accumulation). None on the GPU sweep, whose calls are
    asynchronous (only the total is meaningful there)."""

    inputs: int
    patches_per_input: int
    perturbed_samples: int
    batch_size: int
    model_calls: int
    total_seconds: float
    model_seconds: float | None

    @property
    def overhead_seconds(self) -> float | None:
        """``total_seconds - model_seconds`` (None when model_seconds is)."""
        if self.model_seconds is None:
            return None
        return self.total_seconds - self.model_seconds


class Occlusion:
    """Occlusion sensitivity (Zeiler & Fergus 2014) with Xplique's API.

    Parameters
    ----------
    model : a Keras model, tf.Module, TensorFlow or NumPy callable, an object with
        ``predict_proba``, or a ``tf.lite.Interpreter``.
    batch_size : perturbed samples per model call (default 32); None chooses automatically.
    operator : None, a ``Tasks`` member or its name, or a callable g(model, inputs, targets).
    patch_size, patch_stride : int or (rows, cols).
    occlusion_value : float, per-channel vector, or an array broadcastable to one input.
    edges : "valid" (reference) or "cover" (extra clipped patches at the far edges).
    reduction : "sum" (reference) or "mean" (divide by the number of covering patches).
    progress : show a tqdm progress bar over the perturbed samples.
    device : "auto" (the GPU when a PyTorch model lives on one), "cpu" or "gpu" (a CUDA
        device for a PyTorch model; an error when none is usable).

    ``explain`` returns a float32 ``tf.Tensor``; for PyTorch models a float32
    ``torch.Tensor`` on the model's device (TensorFlow is then never imported).
    """

    def __init__(
        self,
        model: Any,
        batch_size: int | None = 32,
        operator: Any = None,
        patch_size: int | tuple[int, int] = 3,
        patch_stride: int | tuple[int, int] = 3,
        occlusion_value: Any = 0.0,
        *,
        edges: str = "valid",
        reduction: str = "sum",
        progress: bool = False,
        device: str = "auto",
    ) -> None:
        self.batch_size = check_batch_size(batch_size)
        self.patch_size = patch_size
        self.patch_stride = patch_stride
        self.occlusion_value = occlusion_value
        self.edges = check_choice(edges, "edges", EDGES)
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)
        if not isinstance(progress, bool):
            raise ValueError(f"progress: {progress!r} is invalid, expected True or False")
        self.progress = progress
        self.device = check_choice(device, "device", DEVICES)
        self.model = model
        self._scorer = make_scorer(model, operator, self.device)
        # The last sweep's batch buffer, reused by the next explain of the same batch shape
        # (a fresh buffer costs a zeroing and page faults: a few ms at 224x224x3, batch 32).
        self._cached_buffer: Any = None
        # One explain at a time per instance: the scorer keeps the targets of the running
        # sweep and the buffer is reused, so calls from several threads are serialised.
        self._explain_lock = threading.Lock()
        self._explaining_thread: int | None = None  # the thread inside explain, if any
        #: ExplainStats of the last explain call on this instance (None before the first).
        self.last_stats: ExplainStats | None = None

    # -- Xplique's attributes: kept as given; an int patch becomes (p, p) after the first
    # explain of images or time series, as Xplique's does. Checked when set.

    @property
    def patch_size(self) -> Any:
        return self._patch_size_shown

    @patch_size.setter
    def patch_size(self, value: Any) -> None:
        self._patch_size = check_pair(value, "patch_size")
        self._patch_size_shown = value

    @property
    def patch_stride(self) -> Any:
        return self._patch_stride_shown

    @patch_stride.setter
    def patch_stride(self, value: Any) -> None:
        self._patch_stride = check_pair(value, "patch_stride")
        self._patch_stride_shown = value

    @property
    def occlusion_value(self) -> Any:
        return self._occlusion_value_given

    @occlusion_value.setter
    def occlusion_value(self, value: Any) -> None:
        self._baseline = check_occlusion_value(value)
        self._occlusion_value_given = value

    def _show_planar_patches(self) -> None:
        """After explaining images or time series, an int patch size/stride reads (p, p)."""
        if isinstance(self._patch_size_shown, numbers.Integral):
            self._patch_size_shown = (self._patch_size_shown,) * 2
        if isinstance(self._patch_stride_shown, numbers.Integral):
            self._patch_stride_shown = (self._patch_stride_shown,) * 2

    # -- Xplique's static helpers (masks; compatibility only, see xplique_helpers) --------

    @staticmethod
    def _get_masks(input_shape: Any, patch_size: Any, patch_stride: Any) -> Any:
        """Xplique's boolean occlusion masks of one sample's shape (tf.bool tensor)."""
        from fastocclusion.xplique_helpers import get_masks

        return get_masks(input_shape, patch_size, patch_stride)

    @staticmethod
    def _apply_masks(current_input: Any, masks: Any, occlusion_value: Any) -> Any:
        """Xplique's occluded copies of one input, one per mask (tf.Tensor)."""
        from fastocclusion.xplique_helpers import apply_masks

        return apply_masks(current_input, masks, occlusion_value)

    @staticmethod
    def _compute_sensitivity(baseline_scores: Any, occluded_scores: Any, masks: Any) -> Any:
        """Xplique's maps from the base and occluded scores and the masks (tf.Tensor)."""
        from fastocclusion.xplique_helpers import compute_sensitivity

        return compute_sensitivity(baseline_scores, occluded_scores, masks)

    def __call__(self, inputs: Any, labels: Any = None) -> Any:
        """``explain(inputs, labels)``: Xplique's call signature."""
        return self.explain(inputs, labels)

    def explain(self, inputs: Any, targets: Any = None) -> Any:
        """Occlusion maps of ``inputs``: (N, H, W, 1) for images, (N, T, W) for time series,
        (N, W) for tabular data, as a float32 ``tf.Tensor`` (``torch.Tensor`` for PyTorch
        models)."""
        me = threading.get_ident()
        if self._explaining_thread == me:
            # The model (or operator) of this explain called explain on the same instance:
            # waiting for the lock would wait for ourselves.
            raise RuntimeError(
                "explain: called again on the same Occlusion instance from inside its own "
                "model or operator call (re-entrant explain); use a second Occlusion "
                "instance for a nested explanation")
        with self._explain_lock:
            self._explaining_thread = me
            try:
                maps, prepared = self._explain_numpy(inputs, targets)
                return self._scorer.wrap_result(maps.reshape(prepared.output_shape))
            finally:
                self._explaining_thread = None

    # -- the pipeline -------------------------------------------------------------------

    def _explain_numpy(self, inputs: Any, targets: Any) -> tuple[np.ndarray, Any]:
        started = time.perf_counter()
        x, y = read_inputs(inputs, targets)
        prepared = prepare_inputs(x)
        nhwc = prepared.nhwc
        n, h, w, _ = nhwc.shape
        self._scorer.check_targets(y, n)
        patch, stride = plane_patch(self._patch_size, self._patch_stride, prepared.family,
                                    prepared.original_shape)
        if prepared.family != "tabular":
            self._show_planar_patches()
        grid = _core.PatchGrid(h, w, patch, stride, self.edges)
        baseline = plane_baseline(self._baseline, prepared.family, nhwc.shape,
                                  prepared.original_shape)
        batch = self._resolve_batch_size(grid.num_patches, nhwc)
        sample_shape = tuple(prepared.original_shape[1:])
        if self._scorer.on_gpu:
            sweep = self._scorer.sweep_type()(self._scorer, nhwc, sample_shape, grid, baseline,
                                              batch, self.progress)
            y = sweep.base_pass(y)
            deltas = sweep.run()
        else:
            buffer = self._cached_buffer
            if buffer is None or buffer.shape != (batch,) + sample_shape:
                self._cached_buffer = None  # let the old one go before allocating
                buffer = _core.HostBuffer((batch,) + sample_shape)
            sweep = _Sweep(self._scorer, nhwc, buffer, grid, baseline, batch, self.progress)
            y = sweep.base_pass(y)
            deltas = sweep.run()
            self._cached_buffer = buffer
        maps = _core.accumulate_patch_deltas(deltas.reshape(n, grid.rows, grid.cols), grid,
                                             self.reduction)
        self.last_stats = ExplainStats(
            inputs=n, patches_per_input=grid.num_patches, perturbed_samples=n * grid.num_patches,
            batch_size=batch, model_calls=sweep.model_calls,
            total_seconds=time.perf_counter() - started, model_seconds=sweep.model_seconds)
        return maps, prepared

    def _resolve_batch_size(self, num_patches: int, nhwc: np.ndarray) -> int:
        if self.batch_size is not None:
            return self.batch_size
        per_sample = nhwc[0].nbytes
        return max(1, min(num_patches, AUTO_BATCH_BYTES // (2 * per_sample)))


class _Sweep:
    """One explain call's buffers and batch loop (no per-batch allocation in the loop)."""

    def __init__(self, scorer: Any, nhwc: np.ndarray, buffer: Any, grid: Any,
                 baseline: np.ndarray, batch: int, progress: bool) -> None:
        self.scorer = scorer
        self.nhwc = nhwc
        self.grid = grid
        self.baseline = baseline
        self.batch = batch
        self.progress = progress
        # The model sees batches in the inputs' own shape (the buffer's, (batch,) + one
        # input's); the kernels fill an NHWC view of it.
        self.buffer = buffer
        self.view = np.asarray(self.buffer).reshape((batch,) + nhwc.shape[1:])
        self.state = _core.IncrementalFillState()
        self.offsets = np.arange(batch, dtype=np.int64)
        self.slot_inputs = np.empty(batch, dtype=np.int64)
        self.base_scores: np.ndarray | None = None
        self.model_calls = 0
        self.model_seconds = 0.0

    def _timed(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """``call(*args, **kwargs)``, a model call: counted and its wall time summed."""
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            self.model_seconds += time.perf_counter() - start
            self.model_calls += 1

    def _slot_inputs(self, start: int, per_input: int) -> np.ndarray:
        """Input index of every slot of the batch at ``start`` (padding slots repeat the
        last input)."""
        np.add(self.offsets, start, out=self.slot_inputs)
        if per_input > 1:
            np.floor_divide(self.slot_inputs, per_input, out=self.slot_inputs)
        np.minimum(self.slot_inputs, self.nhwc.shape[0] - 1, out=self.slot_inputs)
        return self.slot_inputs

    def base_pass(self, targets: np.ndarray | None) -> np.ndarray:
        """Runs the unperturbed inputs; returns the checked (or default) targets and keeps
        the base scores."""
        n = self.nhwc.shape[0]

        def run_outputs() -> np.ndarray:
            outputs = []
            for start in range(0, n, self.batch):
                count = min(self.batch, n - start)
                self.view[:count] = self.nhwc[start:start + count]
                outputs.append(self._timed(self.scorer.outputs, self.buffer)[:count])
            return np.concatenate(outputs)

        targets = self.scorer.resolve_targets(targets, self.buffer, run_outputs)
        self.scorer.set_targets(targets, self.batch)
        scores = np.empty(n, dtype=np.float64)
        for start in range(0, n, self.batch):
            count = min(self.batch, n - start)
            self.view[:count] = self.nhwc[start:start + count]
            slots = self._slot_inputs(start, 1)
            scores[start:start + count] = self._timed(self.scorer.scores, self.buffer,
                                                      slots)[:count]
        self.base_scores = scores
        # The buffer now holds unperturbed inputs the fill state knows nothing about.
        self.state.reset()
        return targets

    def run(self) -> np.ndarray:
        """The occlusion sweep; returns the (N * K,) float64 score deltas.

        The stream of N * K (input, patch) pairs is cut into ``batch`` contiguous chunks of
        C = ceil(N * K / batch) pairs, and slot j walks chunk j: batch b holds stream
        indices b + j * C. So a slot moves to the next patch of the same input from one
        batch to the next (the incremental fill rewrites two patch areas), and copies a
        whole image only when its chunk crosses into the next input: about N + batch
        copies in a sweep instead of N * batch with plain consecutive slices. Still
        ceil(N * K / batch) calls of exactly ``batch`` samples; the slots past the end of
        the stream (the padding) are the last slots of the last batches."""
        assert self.base_scores is not None
        n, k = self.nhwc.shape[0], self.grid.num_patches
        total = n * k
        chunk = -(-total // self.batch)
        # slot_table[b, j]: the input of slot j in batch b (stream index b + j * chunk;
        # padding slots past the stream repeat the last input). Computed once, like the
        # per-batch scores table: the loop below does no index arithmetic.
        slot_table = np.minimum(
            (np.arange(chunk, dtype=np.int64)[:, None] + self.offsets[None, :] * chunk) // k,
            n - 1)
        # A slot's input changes only where its chunk crosses into the next input: gather
        # targets only for the batches where some slot changed input.
        regather = np.ones(chunk, dtype=bool)
        regather[1:] = (slot_table[1:] != slot_table[:-1]).any(axis=1)
        scores = np.empty((chunk, self.batch), dtype=np.float64)
        with progress_bar(total, self.progress) as bar:
            for b in range(chunk):
                count = -(-(total - b) // chunk)  # slots j with b + j * chunk < total
                _core.fill_occluded_batch(self.nhwc, self.grid, self.baseline, b, count,
                                          self.view, self.state, stride=chunk)
                scores[b] = self._timed(self.scorer.scores, self.buffer, slot_table[b],
                                        gather=bool(regather[b]))
                if bar is not None:
                    bar.update(count)
        # Back to stream order: index b + j * chunk is row j, column b of the transpose.
        deltas = self.base_scores[slot_table] - scores
        return np.ascontiguousarray(deltas.T).reshape(-1)[:total]


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool) -> Iterator[Any]:
    """A tqdm bar over ``total`` perturbed samples when enabled (None otherwise), closed on
    exit, errors included."""
    if not enabled:
        yield None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("progress=True needs tqdm: pip install tqdm") from None
    bar = tqdm(total=total, unit="sample", desc="occlusion")
    try:
        yield bar
    finally:
        bar.close()
