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
from fastocclusion.arrays import to_numpy
from fastocclusion.distributed.models import model_type, weights_digest
from fastocclusion.engine.objective import ClassIndices
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

    def _labels(self, mode: str) -> tuple[list[int] | None, list[float] | None]:
        """(labels, their base outputs) of the explain just made, from its base pass (no
        model call of its own): for "top", the model's top classes and its outputs there
        (None for (N,) outputs: the score is the output itself); for "classes", the given
        classes and the base scores (the one-hot score of class c is output c)."""
        base = self.explainer.last_base_pass
        assert base is not None
        if mode == "top":
            outputs = base.outputs
            assert outputs is not None  # targets None: the base pass computed them
            if outputs.ndim != 2:
                return None, None
            labels = base.labels()
            picked = outputs[np.arange(len(labels)), labels]
            return labels.tolist(), picked.astype(np.float64).tolist()
        return base.labels().tolist(), base.scores.astype(np.float64).tolist()

    def explain(self, source: Any, mode: str, targets: Any) -> dict[str, Any]:
        """The maps of one shard and what it cost. ``source``: the inputs, or an object whose
        ``load()`` reads them; ``mode``: "top" (the model's top class), "classes" (``targets``
        are class indices) or "given" (``targets`` as ``Occlusion.explain`` takes them).
        Raises what loading or explaining raises (the shard then fails on its own)."""
        started = time.perf_counter()
        inputs = source.load() if hasattr(source, "load") else source
        loaded = time.perf_counter()
        if mode == "top":
            targets = None
        elif mode == "classes":
            targets = ClassIndices(np.asarray(targets, dtype=np.int64))
        maps = np.asarray(to_numpy(self.explainer.explain(inputs, targets), "maps"), np.float32)
        labels, outputs = self._labels(mode) if mode in ("top", "classes") else (None, None)
        stats = self.explainer.last_stats
        assert stats is not None
        return {
            "maps": maps,
            "labels": labels,
            "outputs": outputs,
            "model_calls": stats.model_calls,
            "load_seconds": loaded - started,
            "seconds": time.perf_counter() - started,
            **self.info(),
        }
