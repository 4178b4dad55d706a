"""The one occlusion sweep, for every backend and both fillers (design §1, §4).

How one sweep runs:
1. the base pass: the unperturbed inputs, ``batch`` at a time, through the model once:
   their raw outputs when the targets must be derived (targets None) or checked against an
   output shape that tracing cannot tell, and the base scores from those outputs (built-in
   operators); otherwise (targets given to a traceable model, or a custom operator) the base
   scores directly. A custom operator with targets None takes two passes (outputs for the
   default targets, then its scores).
2. the sweep: the stream of N * K (input, window) pairs is cut into ``batch`` contiguous
   chunks of C = ceil(N * K / batch) pairs, and slot j walks chunk j: batch b holds stream
   indices b + j * C. A slot thus moves to the next window of the same input from one batch
   to the next (the incremental fill rewrites two windows) and copies a whole input only
   when its chunk crosses into the next one: about N + batch copies in a sweep instead of
   N * batch. Every batch buffer holds ``batch`` slots; the slots past the end of the
   stream (the padding) are the last slots of the last batches, and the backend is told
   how many hold samples: a traced model is called on the full batch (one shape), an
   eager one (PyTorch) on those rows only, so its calls hold at most ``batch`` samples and
   their sizes differ by at most one.
3. the deltas base - score, back in stream order, then the maps (the filler accumulates).

Exact incremental inference (design §8): given a ``WindowScorer``, the base pass goes through
it (it keeps the unperturbed inputs' activations) and every batch is scored from its
slots' windows (the scorer recomputes only the boxes they change); the batches are still
filled, incrementally, and the scorer reads them around the windows only.

Two siblings keep the model's outputs rather than one score per sample: ``run_classes``
(all-class maps of the drops, base - output, per class) and ``run_values`` (MONAI's maps:
the outputs themselves, blended over the covering windows; no base pass unless a scorer
needs the unoccluded activations). Both take a scorer's ``window_outputs`` when the sweep
is incremental.

Python loops once per batch, never per window or pixel; the loop does no index arithmetic
(the slot and score tables are made once).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fastocclusion.arrays import to_numpy
from fastocclusion.engine.objective import BasePass
from fastocclusion.engine.probe import probed_calls
from fastocclusion.engine.progress import progress_bar
from fastocclusion.engine.protocols import Backend, Filler, ScoringBackend, WindowScorer
from fastocclusion.engine.stats import ExplainStats
from fastocclusion.types import Bookkeeping, Scores


class Sweep:
    """One explain call's sweep: ``run`` returns the maps. Counts the model calls and, on the
    host, sums their wall time (``model_calls``, ``model_seconds``). ``scorer``: exact
    incremental inference (see the module docstring), or None, and ``note`` why not.
    ``run`` needs a ``ScoringBackend``; ``run_classes`` and ``run_values`` read outputs only
    (any ``Backend``). Built by ``engine.build.build_sweep``."""

    def __init__(
        self,
        backend: Backend | ScoringBackend,
        filler: Filler,
        n: int,
        num_windows: int,
        batch: int,
        progress: bool | str = False,
        scorer: WindowScorer | None = None,
        note: str = "",
        pairs: np.ndarray | None = None,
    ) -> None:
        self.backend = backend
        #: The (input, window) pairs swept ((P, 2) int64, engine.drill_down), or None: every
        #: window of every input (N * K pairs, input-major).
        self.pairs = pairs
        self.total = n * num_windows if pairs is None else len(pairs)
        self.scorer = scorer
        self._note = note
        self.filler = filler
        self.n = n
        self.num_windows = num_windows
        self.batch = batch
        self.progress = progress
        self.model_calls = 0
        self._timed_calls = backend.device_arrays is None  # device calls are asynchronous
        #: The host batch buffer, for the next sweep of the same shape to reuse (None on a
        #: device).
        self.host_buffer = filler.buffer if self._timed_calls else None
        self.model_seconds: float | None = 0.0 if self._timed_calls else None
        self._base: tuple[np.ndarray, Any, Any] | None = None  # targets, scores, outputs
        self._values: Any = None  # the window values of the last run (the filler's deltas)

    def _call(self, method: Any, *args: Any) -> Any:
        """A model call of the backend, counted (and timed on the host)."""
        self.model_calls += 1
        if not self._timed_calls:
            return method(*args)
        start = time.perf_counter()
        try:
            return method(*args)
        finally:
            self.model_seconds += time.perf_counter() - start  # type: ignore[operator]

    # -- 1. the base pass -------------------------------------------------------------------

    def _unperturbed_outputs(self) -> Bookkeeping:
        chunks = []
        for start in range(0, self.n, self.batch):
            count = min(self.batch, self.n - start)
            self.filler.load_unperturbed(start, count)
            if self.scorer is not None:  # keeps the activations too
                outputs = self._call(self.scorer.outputs, self.filler.buffer, start, count)
            else:
                outputs = self._call(self.backend.outputs, self.filler.buffer, count)
            chunks.append(outputs[:count])
        return chunks[0] if len(chunks) == 1 else self.filler.concatenate(chunks)

    @property
    def incremental(self) -> bool:
        """True when batches are scored from their windows (known after the base pass)."""
        return self.scorer is not None and bool(self.scorer.incremental_layers)

    @property
    def truncated(self) -> bool:
        """True when projective-field truncation cut some layer's boxes (approximate
        scores; known after the base pass)."""
        return self.incremental and bool(self.scorer.truncated_layers)  # type: ignore[union-attr]

    def stats(self, started: float) -> ExplainStats:
        """What this sweep did, for an explain that started at ``started``
        (``time.perf_counter()``), ended now."""
        scorer = self.scorer
        return ExplainStats(
            inputs=self.n,
            patches_per_input=self.num_windows,
            perturbed_samples=self.total,
            batch_size=self.batch,
            model_calls=self.model_calls,
            total_seconds=time.perf_counter() - started,
            model_seconds=self.model_seconds,
            incremental_layers=scorer.incremental_layers if self.incremental else (),
            incremental_note=scorer.note if scorer is not None else self._note,
            incremental_saved=scorer.saved_share if self.incremental else 0.0,
        )

    def _unperturbed_scores(self) -> Scores:
        scores = self.filler.empty((self.n,), np.float64)
        slots = np.full(self.batch, self.n - 1, dtype=np.int64)  # padding repeats the last input
        for start in range(0, self.n, self.batch):
            count = min(self.batch, self.n - start)
            self.filler.load_unperturbed(start, count)
            slots[:count] = np.arange(start, start + count)
            batch_scores = self._call(
                self.backend.scores, self.filler.buffer, self.filler.asarray(slots), True, count
            )
            scores[start : start + count] = batch_scores[:count]
        return scores

    def base_pass(self, targets: Any) -> tuple[np.ndarray, Scores]:
        """(the checked or default targets, the (N,) float64 base scores); what it found is
        kept as ``base`` (``BasePass``). ``targets``: an array, ``ClassIndices`` or None."""
        backend, objective = self.backend, self.backend.objective
        shape = None
        # An incremental sweep's base pass computes the outputs anyway (no trace for the
        # shape: the traced model may never be called).
        if targets is not None and objective.from_outputs and self.scorer is None:
            shape = backend.static_output_shape(self.filler.buffer)
        outputs = None
        if targets is None or (objective.from_outputs and shape is None) or self.scorer is not None:
            outputs = self._unperturbed_outputs()
        targets = objective.resolve_targets(targets, outputs, shape)
        backend.set_targets(targets, self.batch)
        if outputs is not None and objective.from_outputs:
            base = backend.scores_from_outputs(outputs)
        else:
            base = self._unperturbed_scores()
        self._base = (targets, base, outputs)
        return targets, base

    @property
    def base(self) -> BasePass | None:
        """What the base pass of ``run`` found (targets, base scores, outputs), as NumPy
        arrays (copied from a device when asked, so the GPU sweep never waits for it);
        None before ``run``."""
        if self._base is None:
            return None
        targets, scores, outputs = self._base
        return BasePass(targets, _host(scores, np.float64), _host(outputs))

    # -- 2. and 3. the sweep and the maps ---------------------------------------------------

    def _slot_table(self) -> tuple[int, np.ndarray]:
        """(C, the (C, batch) table of the input each slot of each batch holds): stream index
        b + j * C in slot j of batch b; padding slots past the stream repeat the last input."""
        chunk = -(-self.total // self.batch)
        stream = np.minimum(self._stream(chunk), self.total - 1)  # padding: the last pair
        if self.pairs is not None:
            return chunk, self.pairs[stream, 0]
        return chunk, stream // self.num_windows

    def _stream(self, chunk: int) -> np.ndarray:
        """The (C, batch) stream index of each slot of each batch: b + j * C."""
        return np.arange(chunk, dtype=np.int64)[:, None] + np.arange(self.batch)[None, :] * chunk

    def _window_table(self, chunk: int) -> np.ndarray:
        """The (C, batch) table of the window each slot of each batch holds (padding slots:
        any valid window)."""
        if self.pairs is not None:
            return self.pairs[np.minimum(self._stream(chunk), self.total - 1), 1]
        return self._stream(chunk) % self.num_windows

    def _sweep(self, chunk: int, measure: Any, store: Any) -> None:
        """Fills every batch of the stream, calls ``measure(b, rows)`` (a model call; ``rows``
        slots hold samples, the rest is padding) and gives its result to ``store(b, value)``.
        The loop does no index arithmetic: tables are made before it."""
        total = self.total
        with progress_bar(total, self.progress) as bar:
            for b in range(chunk):
                count = -(-(total - b) // chunk)  # slots j with b + j * chunk < total
                self.filler.fill(b, count, chunk)
                store(b, self._call(measure, b, count))
                if bar is not None:
                    bar.update(count)

    @staticmethod
    def _rows_into(table: Any) -> Any:
        """store(b, value): ``value`` into the first len(value) entries of ``table[b]`` (the
        padding slots past them may be absent from it)."""

        def store(b: int, value: Any) -> None:
            table[b, : len(value)] = value

        return store

    def run(
        self, targets: np.ndarray | None, reduction: str, collapsed_axes: tuple[int, ...]
    ) -> tuple[np.ndarray, Bookkeeping]:
        """(the targets used, the maps (N, *map shape) float32 from the filler)."""
        with self.backend.calls():
            return self._run(targets, reduction, collapsed_axes)

    def _run(
        self, targets: np.ndarray | None, reduction: str, collapsed_axes: tuple[int, ...]
    ) -> tuple[np.ndarray, Any]:
        targets, base = self.base_pass(targets)
        chunk, table = self._slot_table()
        # A slot's input changes only where its chunk crosses into the next input: targets
        # are gathered again only for the batches where some slot changed input.
        regather = np.ones(chunk, dtype=bool)
        regather[1:] = (table[1:] != table[:-1]).any(axis=1)
        gather = [bool(g) for g in regather]
        slot_table = self.filler.asarray(table)
        scores = self.filler.empty((chunk, self.batch), np.float64)
        backend, buffer = self.backend, self.filler.buffer

        def full(b: int, rows: int) -> Any:
            return backend.scores(buffer, slot_table[b], gather[b], rows)

        measure = full
        if self.incremental:
            scorer, windows = self.scorer, self._window_table(chunk)
            assert scorer is not None
            measure = probed_calls(
                scorer,
                chunk,
                lambda b, rows: scorer.scores(buffer, table[b], windows[b], gather[b], rows),
                full,
                self._count_call,
            )
        self._sweep(chunk, measure, self._rows_into(scores))
        # Back to stream order: index b + j * chunk is row j, column b of the transpose.
        deltas = self._values = self.filler.deltas()
        deltas[...] = (base[slot_table] - scores).swapaxes(0, 1).reshape(-1)[: self.total]
        return targets, self._maps(reduction, collapsed_axes)

    def run_classes(
        self, classes: np.ndarray | None, reduction: str, collapsed_axes: tuple[int, ...]
    ) -> tuple[np.ndarray, Bookkeeping]:
        """All-class maps from one sweep: the model's raw (N, K) outputs are kept for every
        perturbed batch instead of one score. ``classes``: the class indices to map (None:
        all). Returns (the classes, the maps (N * len(classes), *map shape), input-major).
        The map of class c equals the explain of the one-hot targets of class c.
        ValueError naming ``classes`` for an index outside the outputs, or naming the model
        for outputs other than (N, K); both known after the base pass only."""
        with self.backend.calls():
            return self._run_classes(classes, reduction, collapsed_axes)

    def _run_classes(
        self, classes: Any, reduction: str, collapsed_axes: tuple[int, ...]
    ) -> tuple[np.ndarray, Any]:
        outputs = self._unperturbed_outputs()
        if len(outputs.shape) != 2:
            raise ValueError(
                f"model: outputs of shape {tuple(outputs.shape)} are invalid for all-class "
                "maps, expected (N, classes)"
            )
        count = int(outputs.shape[1])
        chosen = np.arange(count) if classes is None else np.asarray(classes, dtype=np.int64)
        bad = chosen[(chosen < 0) | (chosen >= count)]
        if bad.size:
            raise ValueError(
                f"classes: {int(bad[0])} is invalid, expected class indices 0 to {count - 1} "
                f"(the model has {count} outputs)"
            )
        picked = self.filler.asarray(chosen)
        base = outputs[:, picked]
        chunk, table = self._slot_table()
        slot_table = self.filler.asarray(table)
        kept = self.filler.empty((chunk, self.batch, len(chosen)), np.float64)
        outputs_of = self._batch_outputs(chunk, table)
        self._sweep(chunk, lambda b, rows: outputs_of(b, rows)[:, picked], self._rows_into(kept))
        c = len(chosen)
        self._write_planes((base[slot_table] - kept).swapaxes(0, 1).reshape(-1, c)[: self.total], c)
        return chosen, self._maps(reduction, collapsed_axes)

    def _batch_outputs(self, chunk: int, table: np.ndarray) -> Any:
        """outputs(b, rows): the outputs of batch b (at least ``rows`` rows, see
        Backend.outputs): the scorer's, from its slots' windows (``table``: the slot table),
        when the sweep is incremental, else the model's. A model call."""
        backend, buffer = self.backend, self.filler.buffer

        def full(b: int, rows: int) -> Any:
            return backend.outputs(buffer, rows)

        if not self.incremental:
            return full
        scorer, windows = self.scorer, self._window_table(chunk)
        assert scorer is not None
        return probed_calls(
            scorer,
            chunk,
            lambda b, rows: scorer.window_outputs(buffer, table[b], windows[b], rows),
            full,
            self._count_call,
        )

    def _count_call(self) -> None:
        """One more model call than the batches (a probe's second call of a batch)."""
        self.model_calls += 1

    def _maps(self, reduction: str, collapsed_axes: tuple[int, ...]) -> Any:
        """The filler's maps of the deltas written; None for a sweep of some pairs only
        (engine.drill_down assembles its maps)."""
        return None if self.pairs is not None else self.filler.maps(reduction, collapsed_axes)

    def window_values(self, counts: tuple[int, ...]) -> np.ndarray:
        """The last run's value of every window (its score drop, or its outputs for
        ``run_values``/``run_classes``) as float64 NumPy: (N * planes, *counts), input-major,
        ``counts`` the grid's window counts; for a sweep of ``pairs``, (P, planes) in their
        order (engine.drill_down assembles maps from them)."""
        assert self._values is not None, "run first"
        values = _host(self._values, np.float64)
        if self.pairs is not None:
            return values.reshape(self.total, -1)
        return values.reshape((-1,) + tuple(counts))

    def _write_planes(self, stream: Bookkeeping, planes: int) -> None:
        """(N * K, planes) values in stream order into the filler's deltas: ``planes`` grids
        of K window values per input, input-major."""
        deltas = self._values = self.filler.deltas(planes=planes)
        if self.pairs is not None:  # (P, planes), in the pairs' order
            deltas[...] = stream.reshape(-1)
            return
        deltas[...] = stream.reshape(self.n, self.num_windows, planes).swapaxes(1, 2).reshape(-1)

    def run_values(
        self, importance: np.ndarray | None, collapsed_axes: tuple[int, ...]
    ) -> tuple[int, Bookkeeping]:
        """Maps of the backend's outputs themselves (MONAI's occlusion sensitivity): the
        (B, C) outputs of every occluded batch are kept, and each map element of class c is
        the mean of output c over the windows covering it, weighted by ``importance``
        (window-shaped, see Filler.blend; None: constant weights, the summed-area "mean"
        path). No base pass, but for an incremental scorer (it keeps the unoccluded inputs'
        activations; the batches' outputs are then the scorer's, as in ``run_classes``).
        Returns (C, the maps (N * C, *map shape), input-major). ValueError naming the model
        for outputs other than (B, C), known after the first call only."""
        with self.backend.calls():
            if self.scorer is not None:
                self._unperturbed_outputs()
            chunk, table = self._slot_table()
            kept: list[Any] = [None] * chunk
            self._sweep(chunk, self._batch_outputs(chunk, table), kept.__setitem__)
            shapes = sorted({tuple(o.shape) for o in kept})
            if any(len(s) != 2 for s in shapes) or len({s[1] for s in shapes}) != 1:
                raise ValueError(
                    f"model: outputs of shapes {shapes} are invalid for output maps, expected "
                    "(batch, classes) from every call"
                )
            c = int(shapes[0][1])
            outputs = self.filler.empty((chunk, self.batch, c), np.float64)
            store = self._rows_into(outputs)  # a scorer's calls may skip the padding rows
            for b, value in enumerate(kept):
                store(b, value)
            self._write_planes(outputs.swapaxes(0, 1).reshape(-1, c)[: self.total], c)
            if self.pairs is not None:
                return c, None
            if importance is None:
                return c, self.filler.maps("mean", collapsed_axes)
            return c, self.filler.blend(importance, collapsed_axes)


def _host(values: Any, dtype: Any = None) -> Any:
    """Bookkeeping values (NumPy or a device array) as a NumPy array; None stays None."""
    if values is None:
        return None
    array = to_numpy(values, "outputs")  # no copy for a NumPy array
    return array if dtype is None else array.astype(dtype, copy=False)
