"""What one worker does: build the model once, then explain shard after shard.

``ShardWorker`` is a plain class; the runner makes it a Ray actor (``ray.remote``), so the
model lives in the actor's process for the actor's lifetime and is never pickled: only
``model_fn`` travels. When the process dies, Ray starts the actor again (``__init__`` runs
again, the model is rebuilt) and retries the shard it was explaining.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

import fastocclusion
from fastocclusion import _core
from fastocclusion.arrays import to_numpy
from fastocclusion.backends import make_backend
from fastocclusion.distributed.models import model_type, weights_digest
from fastocclusion.xplique import Occlusion

#: Environment variables that size TensorFlow's thread pools; set (unless the user set them)
#: to the worker's CPUs before the model is built, so workers sharing a host do not each use
#: every core. PyTorch follows OMP_NUM_THREADS, which Ray sets to the actor's CPUs.
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


class ShardWorker:
    """A Ray actor's body. ``model_fn()`` builds the model (once per process);
    ``options`` are ``Occlusion``'s keyword arguments; ``cpus`` caps the model's and the
    kernels' threads (0: no cap); ``model_id``: the model's identity the caller gave, or
    None for the digest of the weights this process built (``distributed.models``; None
    when the model has no weights it can read), reported with every answer so that the
    driver checks it before any shard and with every shard."""

    def __init__(
        self, model_fn: Any, options: dict[str, Any], cpus: int, model_id: str | None = None
    ) -> None:
        if cpus > 0:
            for name in THREAD_VARIABLES:
                os.environ.setdefault(name, str(cpus))
            fastocclusion.set_num_threads(cpus)
        self.model = model_fn()
        # No model call: the weights are read, not run.
        self.model_id = model_id if model_id is not None else weights_digest(self.model)
        self.model_type = model_type(self.model)
        self.options = options
        self.explainer = Occlusion(self.model, **options)
        self._backend: Any = None  # for the top-class pass, made on first use

    def info(self) -> dict[str, Any]:
        """Where this worker runs and what it runs: its process id, Ray node id, model
        identity and model class."""
        import ray

        return {
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
            "model": self.model_id,
            "model_type": self.model_type,
        }

    def _outputs(self, inputs: np.ndarray) -> tuple[np.ndarray, int]:
        """MODEL CALLS: the model's raw outputs on the unperturbed ``inputs`` and the number
        of calls, in batches of the explainer's batch size (the last one padded)."""
        if self._backend is None:
            self._backend = make_backend(
                self.model, self.options.get("operator"), self.options.get("device", "auto")
            )
        n = len(inputs)
        batch = min(n, self.explainer.batch_size or 64)
        # An aligned buffer, as the sweep's (TensorFlow's kernels require the alignment).
        buffer = _core.HostBuffer((batch,) + inputs.shape[1:])
        view = np.asarray(buffer)
        outputs = []
        with self._backend.calls():
            for start in range(0, n, batch):
                rows = min(batch, n - start)
                view[:rows] = inputs[start : start + rows]
                result = self._backend.outputs(buffer, rows)
                outputs.append(np.array(to_numpy(result, "outputs")[:rows]))
        return np.concatenate(outputs), len(outputs)

    def _class_targets(
        self, inputs: np.ndarray, classes: np.ndarray | None
    ) -> tuple[np.ndarray | None, list[int] | None, list[float] | None, int]:
        """(targets, labels, outputs of the labels, model calls) for top-class (``classes``
        None) or class-index targets of a classification/regression operator: one pass over
        the inputs gives the model's outputs."""
        outputs, calls = self._outputs(inputs)
        if classes is None:
            targets = self._backend.resolve_targets(None, outputs, None)
            if outputs.ndim != 2:  # (N,) outputs: the score is the output itself
                return targets, None, None, calls
            labels = targets.argmax(axis=1)
        else:
            if outputs.ndim != 2:
                raise ValueError(
                    f"targets: class indices need (N, K) model outputs, the model gave "
                    f"{outputs.shape}"
                )
            labels = classes
            if labels.min() < 0 or labels.max() >= outputs.shape[1]:
                raise ValueError(
                    f"targets: class {int(labels.max())} is invalid, expected a class index in "
                    f"0..{outputs.shape[1] - 1} (the model has {outputs.shape[1]} outputs)"
                )
            targets = np.eye(outputs.shape[1], dtype=np.float32)[labels]
        scores = outputs[np.arange(len(labels)), labels].astype(np.float64)
        return targets, labels.tolist(), scores.tolist(), calls

    def explain(self, source: Any, mode: str, targets: Any) -> dict[str, Any]:
        """The maps of one shard and what it cost. ``source``: the inputs, or an object whose
        ``load()`` reads them; ``mode``: "top" (the model's top class), "classes" (``targets``
        are class indices) or "given" (``targets`` as ``Occlusion.explain`` takes them).
        Raises what loading or explaining raises (the shard then fails on its own)."""
        started = time.perf_counter()
        inputs = source.load() if hasattr(source, "load") else source
        loaded = time.perf_counter()
        labels = outputs = None
        calls = 0
        if mode in ("top", "classes"):
            classes = None if mode == "top" else np.asarray(targets, dtype=np.int64)
            targets, labels, outputs, calls = self._class_targets(inputs, classes)
        maps = np.asarray(to_numpy(self.explainer.explain(inputs, targets), "maps"), np.float32)
        stats = self.explainer.last_stats
        assert stats is not None
        return {
            "maps": maps,
            "labels": labels,
            "outputs": outputs,
            "model_calls": stats.model_calls + calls,
            "load_seconds": loaded - started,
            "seconds": time.perf_counter() - started,
            **self.info(),
        }
