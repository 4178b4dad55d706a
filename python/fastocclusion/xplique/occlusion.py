"""The Xplique-compatible front-end: Xplique's ``Occlusion`` API over fastocclusion's engine.

How one ``explain`` runs (design §4):
1. validate everything (no model call yet): inputs, targets, the windows of the input's
   family (engine.WindowGeometry), the baseline;
2. the engine's sweep (engine.build_sweep) with the model's backend
   (backends.make_backend), exact incremental inference where it applies;
3. the maps, as the backend's framework returns them (a tf.Tensor, a torch.Tensor on the
   model's device, or a NumPy array for a NumPy model without TensorFlow: design §3).
"""

from __future__ import annotations

import numbers
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np

from fastocclusion import _core
from fastocclusion.backends import make_backend
from fastocclusion.engine import ExplainStats, IncrementalOptions, WindowGeometry, build_sweep
from fastocclusion.engine.approximate import explain_by_drill_down
from fastocclusion.engine.approximation import Approximation, for_geometry
from fastocclusion.engine.objective import BasePass, ClassIndices
from fastocclusion.inputs import as_batch_dtype, prepare_inputs, read_inputs
from fastocclusion.options import check_classes, check_occlusion_value, check_sizes
from fastocclusion.types import ArrayLike, FrameworkTensor, Model, Operator, Targets
from fastocclusion.xplique.checks import check_options
from fastocclusion.xplique.layouts import (
    check_region,
    classes_in_layout,
    input_layout,
    sample_baseline,
    window_geometry,
)

__all__ = ["AUTO_BATCH_BYTES", "ExplainStats", "Occlusion", "check_options"]

#: batch_size=None: all perturbations of one input per call, capped so that the batch
#: buffer stays within half this many bytes (the other half for what the model allocates
#: per sample, roughly).
AUTO_BATCH_BYTES = 256 * 1024 * 1024


class _KeptAsGiven:
    """An option kept as the user gave it (Xplique keeps its attributes so), checked when
    set: the value reads back as given (``_<name>_shown``), the checked form is
    ``_<name>``, which the explainer uses."""

    def __init__(self, check: Any) -> None:
        self.check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance.__dict__[f"_{self.name}_shown"]

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[f"_{self.name}"] = self.check(value, self.name)
        instance.__dict__[f"_{self.name}_shown"] = value


class Occlusion:
    """Occlusion sensitivity (Zeiler & Fergus 2014) with Xplique's API.

    Parameters
    ----------
    model : a Keras model, tf.Module, TensorFlow or NumPy callable, an object with
        ``predict_proba``, or a ``tf.lite.Interpreter``.
    batch_size : perturbed samples per model call (default 32); None chooses automatically.
    operator : None, a ``Tasks`` member or its name, or a callable g(model, inputs, targets).
    patch_size, patch_stride : int, or one int per patch axis: (rows, cols) for images and
        time series, (depth, rows, cols) for volumes.
    occlusion_value : float, per-channel vector, or an array broadcastable to one input.
    data_format : "channels_last" (default: (N, H, W, C) images, (N, D, H, W, C) volumes)
        or "channels_first" ((N, C, H, W), (N, C, D, H, W)); Keras' name.
    edges : "valid" (reference) or "cover" (extra clipped patches at the far edges).
    reduction : "sum" (reference) or "mean" (divide by the number of covering patches).
    progress : show a tqdm progress bar over the perturbed samples.
    device : "auto" (the GPU when a PyTorch model lives on one), "cpu" or "gpu" (a CUDA
        device for a PyTorch model; an error when none is usable).
    incremental : exact incremental inference (design §8) for CNNs: PyTorch modules (through
        torch.fx) on channels-first images and volumes (Conv2d, Conv3d), Keras functional
        and Sequential models on channels-last images: only the boxes of the feature maps
        that a patch can change are recomputed, from the unoccluded image's activations, up
        to the layer where they grow past ``incremental_threshold`` of the map. "auto"
        (default): where the model and the sweep allow it and it saves work, else the
        normal sweep; True: always (ValueError naming the first unsupported layer or option
        otherwise); False: the normal sweep.
        ``last_stats.incremental_layers`` / ``incremental_note`` say what ran.
    incremental_threshold : the switch-back share of a feature map, in (0, 1] (None: the
        framework's default measured on CPU, engine.regions: DEFAULT_SWITCH_SHARE for
        PyTorch, DEFAULT_SWITCH_SHARE_KERAS for Keras).
    approximate : None (default: exact maps), "auto" (an estimated SSIM of at least 0.9 to
        the exact maps, for the least model work) or a dict: ``{"drill_down": r,
        "coarse_stride": s, "projective_field": tau}`` or ``{"target_ssim": 0.95}``
        (engine.drill_down: a coarse sweep, then the exact windows only where its map stands
        out; engine.projective_field: incremental boxes cut to tau of a map); on the
        device of a model on a GPU, like exact sweeps; ``last_stats.approximate_share`` /
        ``approximate_ssim`` / ``approximate_note`` say what was computed exactly and the
        measured error.

    ``explain`` returns a float32 ``tf.Tensor``; for PyTorch models a float32
    ``torch.Tensor`` on the model's device (TensorFlow is then never imported); for a
    NumPy model when TensorFlow is not installed, a float32 NumPy array.

    >>> method = Occlusion(model, patch_size=8, patch_stride=4)  # doctest: +SKIP
    >>> maps = method.explain(images, targets)  # (N, H, W, 1)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Model,
        batch_size: int | None = 32,
        operator: Operator = None,
        patch_size: int | tuple[int, ...] = 3,
        patch_stride: int | tuple[int, ...] = 3,
        occlusion_value: float | ArrayLike = 0.0,
        *,
        data_format: str = "channels_last",
        edges: str = "valid",
        reduction: str = "sum",
        progress: bool = False,
        device: str = "auto",
        incremental: str | bool = "auto",
        incremental_threshold: float | None = None,
        approximate: str | dict[str, Any] | None = None,
    ) -> None:
        checked = check_options(
            batch_size=batch_size, patch_size=patch_size, patch_stride=patch_stride,
            occlusion_value=occlusion_value, data_format=data_format, edges=edges,
            reduction=reduction, progress=progress, device=device, incremental=incremental,
            incremental_threshold=incremental_threshold, approximate=approximate,
        )  # fmt: skip
        self.approximate = approximate  # as given; checked: self._approximation
        self._approximation = checked["approximate"]
        self.batch_size = checked["batch_size"]
        self.patch_size = patch_size  # kept as given (checked again when set)
        self.patch_stride = patch_stride
        self.occlusion_value = occlusion_value
        self.data_format, self.edges = checked["data_format"], checked["edges"]
        self.reduction, self.progress = checked["reduction"], checked["progress"]
        self.device, self.incremental = checked["device"], checked["incremental"]
        self.incremental_threshold = checked["incremental_threshold"]
        self.model = model
        self._backend = make_backend(model, operator, self.device)
        # The last host sweep's batch buffer, reused by the next explain of the same batch
        # shape (a fresh one costs a zeroing and page faults: a few ms at 224x224x3, batch 32).
        self._host_buffer: Any = None
        # One explain at a time per instance: the scorer keeps the targets of the running
        # sweep and the buffer is reused, so calls from several threads are serialised.
        self._explain_lock = threading.Lock()
        self._explaining_thread: int | None = None  # the thread inside explain, if any
        #: ExplainStats of the last explain call on this instance (None before the first).
        self.last_stats: ExplainStats | None = None
        #: What the last ``explain``'s base pass found (``engine.objective.BasePass``): the
        #: targets used (the model's top classes for ``targets=None``), the base scores and,
        #: when the base pass computed them, the model's outputs on the unoccluded inputs;
        #: so a caller needs no model call of its own for them. None before the first
        #: explain and after ``explain_classes``.
        self.last_base_pass: BasePass | None = None

    # -- Xplique's attributes: kept as given; an int patch becomes (p, p) after the first
    # explain of images or time series, as Xplique's does. Checked when set.

    patch_size = _KeptAsGiven(check_sizes)
    patch_stride = _KeptAsGiven(check_sizes)
    occlusion_value = _KeptAsGiven(lambda value, name: check_occlusion_value(value))

    def _show_patch_axes(self, axes: int) -> None:
        """After explaining images or time series, an int patch size/stride reads (p, p)
        (Xplique's behaviour; (p, p, p) after volumes)."""
        if isinstance(self._patch_size_shown, numbers.Integral):
            self._patch_size_shown = (self._patch_size_shown,) * axes
        if isinstance(self._patch_stride_shown, numbers.Integral):
            self._patch_stride_shown = (self._patch_stride_shown,) * axes

    # -- Xplique's static helpers (masks; compatibility only, see xplique.masks) --------

    @staticmethod
    def _get_masks(input_shape: Any, patch_size: Any, patch_stride: Any) -> Any:
        """Xplique's boolean occlusion masks of one sample's shape (tf.bool tensor)."""
        from fastocclusion.xplique.masks import get_masks

        return get_masks(input_shape, patch_size, patch_stride)

    @staticmethod
    def _apply_masks(current_input: Any, masks: Any, occlusion_value: Any) -> Any:
        """Xplique's occluded copies of one input, one per mask (tf.Tensor)."""
        from fastocclusion.xplique.masks import apply_masks

        return apply_masks(current_input, masks, occlusion_value)

    @staticmethod
    def _compute_sensitivity(baseline_scores: Any, occluded_scores: Any, masks: Any) -> Any:
        """Xplique's maps from the base and occluded scores and the masks (tf.Tensor)."""
        from fastocclusion.xplique.masks import compute_sensitivity

        return compute_sensitivity(baseline_scores, occluded_scores, masks)

    def __call__(self, inputs: ArrayLike, labels: Targets = None) -> FrameworkTensor:
        """``explain(inputs, labels)``: Xplique's call signature."""
        return self.explain(inputs, labels)

    def explain(
        self, inputs: ArrayLike, targets: Targets = None, *, region: Any = None
    ) -> FrameworkTensor:
        """Occlusion maps of ``inputs``: (N, H, W, 1) for images, (N, D, H, W, 1) for
        volumes ((N, 1, H, W) / (N, 1, D, H, W) channels first), (N, T, W) for time series,
        (N, W) for tabular data, as a float32 ``tf.Tensor`` (``torch.Tensor`` for PyTorch
        models, a NumPy array for NumPy models without TensorFlow). ``region``: a box of
        interest, one (begin, end) pair per patch axis (e.g. ((r0, r1), (c0, c1)) for
        images): only the patches inside it are evaluated (fewer model calls), anchored at
        its corner, and the maps are 0 outside it. ``targets``: as Xplique takes them (one
        per input: one-hot or weights, masks, boxes), None for the model's top class, or
        ``fastocclusion.ClassIndices(labels)`` (classification and regression): one class
        index per input, made one-hot from the model's outputs. ``last_base_pass`` then
        holds the targets used, the base scores and (when computed) the model's outputs.

        >>> maps = Occlusion(model, patch_size=4).explain(images, targets)  # doctest: +SKIP
        """
        return self._serialised(self._explain, inputs, targets, region)

    def explain_classes(
        self, inputs: ArrayLike, classes: Any = None, *, region: Any = None
    ) -> FrameworkTensor:
        """One map per class from the model calls of a single sweep: the model's raw (N, K)
        outputs are kept for every perturbed batch. ``classes``: class indices (default: all
        K). Maps (N, H, W, len(classes)) for channels-last images (the class axis takes the
        channel axis's place: (N, len(classes), H, W) channels first), (N, T, W, classes)
        for time series, (N, W, classes) for tabular data. Class c's map equals
        ``explain(inputs, one_hot(c))`` with the classification operator, for the calls of
        one explain. Needs a built-in classification or regression operator and (N, K)
        outputs (ValueError otherwise). ``region`` as for ``explain``."""
        return self._serialised(self._explain_classes, inputs, classes, region)

    def _serialised(self, run: Any, inputs: Any, argument: Any, region: Any) -> Any:
        """``run(inputs, argument, region)`` as the framework's tensor, one call at a time per
        instance."""
        me = threading.get_ident()
        if self._explaining_thread == me:
            # The model (or operator) of this explain called explain on the same instance:
            # waiting for the lock would wait for ourselves.
            raise RuntimeError(
                "explain: called again on the same Occlusion instance from inside its own "
                "model or operator call (re-entrant explain); use a second Occlusion "
                "instance for a nested explanation"
            )
        with self._explain_lock:
            self._explaining_thread = me
            try:
                return self._backend.wrap_result(run(inputs, argument, region))
            finally:
                self._explaining_thread = None

    # -- the pipeline -------------------------------------------------------------------

    def _prepare(self, inputs: Any, targets: Any, region: Any) -> tuple[Any, ...]:
        """Everything checked before any model call: (sweep_of, layout, geometry, targets),
        ``sweep_of(g, pairs)`` the sweep of every input over the windows of ``g`` (default:
        ``geometry``), or of the (input, window) ``pairs`` only, built when called."""
        if isinstance(targets, ClassIndices):
            (x, _), y = read_inputs(inputs, None), targets
        else:
            x, y = read_inputs(inputs, targets)
        dtype = self._backend.batch_dtype or np.float32  # the model's own, where it differs
        array = prepare_inputs(x, dtype)
        layout = input_layout(array.shape, self.data_format)
        n = array.shape[0]
        self._backend.objective.check_targets(y, n)
        box = check_region(region, layout)
        geometry = window_geometry(
            layout, self._patch_size, self._patch_stride, self.edges, region=box
        )
        if layout.family != "tabular":
            self._show_patch_axes(len(layout.spatial_axes))
        baseline = as_batch_dtype(sample_baseline(self._occlusion_value, layout), dtype)
        batch = self._resolve_batch_size(geometry.grid().num_windows, array)
        incremental = IncrementalOptions(
            self.incremental,
            self.incremental_threshold,
            layout.spatial_axes if layout.family in ("images", "volumes") else None,
            layout.channel_axis != 0,
            layout.family,
        )
        approximation = for_geometry(self._approximation, geometry, layout.spatial_axes)

        def sweep_of(
            g: WindowGeometry = geometry, pairs: np.ndarray | None = None, tau: float | None = None
        ) -> Any:  # fmt: skip
            buffer, self._host_buffer = self._host_buffer, None  # let a stale one go first
            sweep = build_sweep(
                self._backend, array, g, baseline, batch, progress=self.progress,
                incremental=replace(incremental, truncation=tau), buffer=buffer, pairs=pairs,
            )  # fmt: skip
            self._host_buffer = sweep.host_buffer
            return sweep

        return sweep_of, layout, geometry, y, approximation

    def _explain(self, inputs: Any, targets: Any, region: Any) -> Any:
        """The maps, as the filler gives them (NumPy, or a device array)."""
        started = time.perf_counter()
        self.last_base_pass = None
        sweep_of, layout, geometry, y, approximation = self._prepare(inputs, targets, region)
        if approximation is not None:
            return self._explain_by_drill_down(
                sweep_of, approximation, layout.shape[0], geometry, y, started
            )  # fmt: skip
        sweep = sweep_of()
        _, maps = sweep.run(y, self.reduction, geometry.collapsed_axes)
        self.last_stats = sweep.stats(started)
        self.last_base_pass = sweep.base
        return maps

    def _explain_by_drill_down(
        self, sweep_of: Any, approximation: Approximation, n: int, geometry: WindowGeometry,
        y: Any, started: float,
    ) -> Any:  # fmt: skip
        """``_explain`` with ``approximate`` (engine.drill_down): the first (coarse) sweep
        resolves the targets, every later sweep takes them."""
        resolved: list[Any] = []  # the targets the first sweep used
        grid, collapsed = geometry.grid(), geometry.collapsed_axes

        def run(g: WindowGeometry, pairs: np.ndarray | None, tau: float | None) -> Any:
            sweep = sweep_of(g, pairs, tau)
            sweep.run(resolved[0] if resolved else y, self.reduction, collapsed)
            if not resolved:
                resolved.append(sweep.base.targets)
            return sweep

        def assemble(values: np.ndarray) -> np.ndarray:
            return _core.accumulate_window_deltas(values, grid, self.reduction, collapsed)

        maps, self.last_stats, first = explain_by_drill_down(
            geometry, approximation, n, run, assemble, started
        )
        self.last_base_pass = first.base
        return maps

    def _explain_classes(self, inputs: Any, classes: Any, region: Any) -> Any:
        started = time.perf_counter()
        self.last_base_pass = None
        if self._backend.objective.target_kind != "vector":
            raise ValueError(
                "explain_classes: the operator is invalid, expected the classification "
                "(or regression) operator, whose score of class c is output c"
            )
        chosen = check_classes(classes)
        sweep_of, layout, geometry, _, _ = self._prepare(inputs, None, region)
        sweep = sweep_of()
        chosen, maps = sweep.run_classes(chosen, self.reduction, geometry.collapsed_axes)
        self.last_stats = sweep.stats(started)
        per_class = maps.reshape((sweep.n, len(chosen)) + geometry.map_shape)
        return classes_in_layout(per_class, layout, geometry.map_shape)

    def _resolve_batch_size(self, num_windows: int, inputs: np.ndarray) -> int:
        if self.batch_size is not None:
            return self.batch_size
        per_sample = inputs[0].nbytes
        return max(1, min(num_windows, AUTO_BATCH_BYTES // (2 * per_sample)))
