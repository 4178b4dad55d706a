"""What a distributed run did: counts, times and throughput, per worker and in all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class WorkerSummary:
    """One worker (Ray actor) of a run. ``pids``: the processes that ran it (more than one
    when it was killed and Ray restarted it); ``busy_seconds``: time inside its shard calls
    (loading the inputs included)."""

    worker: int
    node: str
    pids: list[int] = field(default_factory=list)
    shards: int = 0
    samples: int = 0
    model_calls: int = 0
    busy_seconds: float = 0.0

    @property
    def samples_per_second(self) -> float:
        """Samples explained per busy second."""
        return self.samples / self.busy_seconds if self.busy_seconds > 0 else 0.0

    def add(self, result: dict[str, Any], samples: int) -> None:
        """Counts one shard's result (as ShardWorker.explain returns it)."""
        if result["pid"] not in self.pids:
            self.pids.append(result["pid"])
        self.node = result["node"]
        self.shards += 1
        self.samples += samples
        self.model_calls += result["model_calls"]
        self.busy_seconds += result["seconds"]

    def __str__(self) -> str:
        restarts = len(self.pids) - 1
        pids = ", ".join(str(p) for p in self.pids) or "-"
        restarted = f", restarted {restarts}x" if restarts > 0 else ""
        return (
            f"worker {self.worker} (node {self.node[:8]}, pid {pids}{restarted}): "
            f"{self.samples} samples in {self.shards} shards, {self.model_calls} model calls, "
            f"{self.busy_seconds:.2f} s busy, {self.samples_per_second:.2f} samples/s"
        )


@dataclass
class RunSummary:
    """A run of ``explain_dataset``. ``samples``/``shards``: explained by this run;
    ``samples_skipped``/``shards_skipped``: complete before it (checksums verified);
    ``failed``: shard (named by its inputs) -> error, for shards that failed on their own;
    ``model_calls``: this run's, over all workers; ``seconds``: the run's wall time, of which
    ``startup_seconds`` until every worker was ready (Ray started, models built);
    ``complete``: every input of the dataset has its maps in ``out_dir``."""

    out_dir: str
    samples: int = 0
    samples_skipped: int = 0
    shards: int = 0
    shards_skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    model_calls: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0
    workers: list[WorkerSummary] = field(default_factory=list)
    complete: bool = False

    @property
    def samples_per_second(self) -> float:
        """Samples explained by this run per second of its wall time."""
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the manifest keeps it)."""
        return {
            "samples": self.samples,
            "samples_skipped": self.samples_skipped,
            "shards": self.shards,
            "shards_skipped": self.shards_skipped,
            "failed": dict(self.failed),
            "model_calls": self.model_calls,
            "seconds": self.seconds,
            "startup_seconds": self.startup_seconds,
            "workers": [
                {**vars(w), "samples_per_second": w.samples_per_second} for w in self.workers
            ],
            "complete": self.complete,
        }

    def __str__(self) -> str:
        lines = [
            f"explained {self.samples} samples in {self.shards} shards; skipped "
            f"{self.samples_skipped} samples in {self.shards_skipped} complete shards; "
            f"{len(self.failed)} shards failed",
            f"{self.model_calls} model calls, {self.seconds:.2f} s (workers ready after "
            f"{self.startup_seconds:.2f} s), {self.samples_per_second:.2f} samples/s",
        ]
        lines += [str(worker) for worker in self.workers]
        lines += [f"failed: {name}: {error}" for name, error in self.failed.items()]
        lines.append(
            f"{'complete' if self.complete else 'INCOMPLETE (rerun to resume)'}: {self.out_dir}"
        )
        return "\n".join(lines)
