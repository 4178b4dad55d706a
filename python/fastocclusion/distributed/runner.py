"""``explain_dataset``: a dataset explained shard by shard on a pool of Ray actors.

The driver (the calling process) checks everything, creates and locks the output directory,
starts the actors (each builds the model once), settles the model's identity with the
directory's (``distributed.models``: another model's run is refused before any model call),
then keeps every actor busy with up to ``IN_FLIGHT_PER_WORKER`` shards (the next one queued
behind the running one), writes each shard's maps as it arrives, and updates one progress
bar over samples. Shards are handed out as actors free up, so a slow worker or host takes
fewer of them.

Failures:
- a worker process that dies (killed, out of memory, its node lost) is restarted by Ray,
  which rebuilds the model and retries the shards it held (``max_restarts`` and
  ``max_task_retries`` of the actor, both ``max_retries``); an actor out of restarts leaves
  the pool and its shards go back to the queue for the others;
- a shard that raises (an unreadable image, a bad item) is recorded under its name and the
  others go on; the run ends incomplete and a rerun retries just that shard; so is a shard
  whose worker reports another model than the run's (a ``model_fn`` that builds different
  models in different processes).
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Iterator
from typing import Any

from fastocclusion.distributed.checks import (
    canonical,
    check_options,
    check_targets,
    non_negative,
    positive_int,
    shard_key,
    shard_targets,
)
from fastocclusion.distributed.datasets import Shard, as_dataset
from fastocclusion.distributed.store import FORMAT, MODEL, OutputStore
from fastocclusion.distributed.summary import RunSummary, WorkerSummary
from fastocclusion.distributed.worker import ShardWorker

#: Shards queued on one actor at a time: the running one and the next (no idle gap between).
IN_FLIGHT_PER_WORKER = 2


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ModuleNotFoundError(
            'fastocclusion.distributed needs Ray: pip install "fastocclusion[ray]"'
        ) from None
    return ray


def _progress(enabled: bool, total: int | None, initial: int) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError('progress=True needs tqdm: pip install "fastocclusion[ray]"') from None
    return tqdm(total=total, initial=initial, unit="sample", desc="explain_dataset")


def explain_dataset(
    dataset: Any,
    model_fn: Any,
    out_dir: str | os.PathLike[str],
    *,
    targets: Any = None,
    workers: int = 1,
    gpus_per_worker: float = 0,
    cpus_per_worker: float = 1,
    shard_size: int = 64,
    ray_address: str | None = None,
    max_retries: int = 3,
    progress: bool = True,
    model_id: str | None = None,
    overwrite: bool = False,
    **occlusion_options: Any,
) -> RunSummary:
    """Occlusion maps of a whole dataset on ``workers`` Ray actors, written shard by shard
    to ``out_dir`` (read them back with ``load_results``); returns the run's summary.

    ``dataset``: a directory of images, a ``.npy`` file, ``ImageFiles``/``NumpyFile``, an
    array (N, ...) or an iterable of arrays (one input per item). ``model_fn()`` builds the
    model in each worker (once per process; it is pickled, the model never is).
    ``targets``: None (each input's top class), a class index for all, N class indices, or
    N targets as ``Occlusion.explain`` takes them. ``gpus_per_worker``/``cpus_per_worker``:
    each actor's Ray resources (its model and kernels use that many threads).
    ``shard_size``: inputs per shard (the unit of work, retry and resume). ``ray_address``:
    the cluster to join (None: the Ray instance this process already has, else a new local
    one, shut down at the end). ``occlusion_options``: ``Occlusion``'s keyword arguments.

    Rerunning with the same ``out_dir``, settings and model resumes: complete shards
    (checksums verified) are skipped. The model is identified by ``model_id`` when given (a
    string that changes whenever the model does, e.g. the SHA-256 of its file, as the
    command line passes; no worker is then started for a run that is complete already),
    else by the digest of the weights ``model_fn`` builds (a Keras model's
    ``get_weights()``, a PyTorch module's ``state_dict()``, with the model's class): each
    worker reports it once it has built the model, and the driver compares it with the
    directory's before any shard is handed out (so a rerun starts the workers even when
    every shard is complete). A model without weights there (a plain callable, a
    ``TorchCallable``) needs ``model_id`` (ValueError naming it); a digest does not see
    code that changes and keeps the weights (another activation function): name such
    models with ``model_id``. ``out_dir`` holding the run of other settings or of another
    model (or of an earlier version, which recorded no model) is a ValueError naming it,
    unless ``overwrite``: that run's shards and manifest are then deleted and this one
    starts over.

    Argument errors, ``out_dir`` not a writable directory (it is created when missing) and
    another model's run raise ValueError/TypeError naming the argument before any model
    call; a shard that fails is reported in ``RunSummary.failed``."""
    started = time.perf_counter()
    workers = positive_int(workers, "workers")
    shard_size = positive_int(shard_size, "shard_size")
    max_retries = positive_int(max_retries, "max_retries", minimum=0)
    gpus = non_negative(gpus_per_worker, "gpus_per_worker")
    cpus = non_negative(cpus_per_worker, "cpus_per_worker", positive=True)
    for name, value in (("progress", progress), ("overwrite", overwrite)):
        if not isinstance(value, bool):
            raise ValueError(f"{name}: {value!r} is invalid, expected True or False")
    if model_id is not None and not (isinstance(model_id, str) and model_id):
        raise ValueError(
            f"model_id: {model_id!r} is invalid, expected None or a non-empty string that "
            "names the model"
        )
    if not callable(model_fn):
        raise TypeError(
            f"model_fn: {type(model_fn).__name__} is invalid, expected a callable that "
            "returns the model (called once in each worker)"
        )
    if ray_address is not None and not isinstance(ray_address, str):
        raise TypeError(f"ray_address: {ray_address!r} is invalid, expected a string or None")
    data = as_dataset(dataset)
    options = check_options(occlusion_options, data.sample_shape)
    mode, target_values = check_targets(targets, data.count, options["operator"])
    ray = _import_ray()
    try:
        ray.cloudpickle.dumps((model_fn, options))
    except Exception as error:  # noqa: BLE001 - whatever pickling raises
        raise TypeError(
            f"model_fn: could not be pickled to send it to the workers ({error}); pass a "
            "module-level function or a functools.partial, and picklable options"
        ) from None
    settings = {
        "format": FORMAT,
        "dataset": data.describe(),
        "shard_size": shard_size,
        "targets": mode,
        "options": {name: canonical(value) for name, value in options.items()},
    }
    # A known model is settled now (before Ray starts); else once the workers report it.
    store = OutputStore(os.fspath(out_dir), settings, model_id, overwrite)
    started_ray = False
    try:
        if not ray.is_initialized():
            ray.init(address=ray_address)
            started_ray = True
        available = ray.cluster_resources()
        for name, need, argument in (("CPU", cpus, "workers"), ("GPU", gpus, "gpus_per_worker")):
            if need * workers > available.get(name, 0) + 1e-9:
                raise ValueError(
                    f"{argument}: {workers} workers x {need:g} {name}s is invalid, expected "
                    f"at most the cluster's {available.get(name, 0):g} {name}s"
                )
        run = _Run(ray, store, data, mode, target_values, shard_size, max_retries)
        actor_class = ray.remote(ShardWorker).options(
            num_cpus=cpus,
            num_gpus=gpus,
            max_restarts=max_retries,
            max_task_retries=max_retries,
            scheduling_strategy="SPREAD",
        )
        threads = max(1, int(cpus))

        def start_pool() -> list[Any]:
            return [
                actor_class.remote(model_fn, options, threads, model_id) for _ in range(workers)
            ]

        return run.execute(start_pool, progress, started)
    finally:
        store.close()
        if started_ray:
            ray.shutdown()


class _Run:
    """One run's scheduling state (see the module docstring)."""

    def __init__(
        self,
        ray: Any,
        store: OutputStore,
        data: Any,
        mode: str,
        targets: Any,
        shard_size: int,
        max_retries: int,
    ) -> None:
        self.ray, self.store, self.data = ray, store, data
        self.mode, self.targets, self.max_retries = mode, targets, max_retries
        self.shards: Iterator[Shard] = data.shards(shard_size)
        self.retry: collections.deque[Shard] = collections.deque()
        self.attempts: collections.Counter[int] = collections.Counter()
        self.records: dict[int, dict[str, Any]] = {}
        self.summary = RunSummary(out_dir=store.out_dir)
        self.exhausted = False  # the dataset was read to its end
        self.inputs_read = 0
        self.bar: Any = None

    def _next_shard(self) -> tuple[Shard, Any, str] | None:
        """The next shard to explain, with its targets and key; complete ones are skipped."""
        if self.retry:
            shard = self.retry.popleft()
            targets = shard_targets(self.targets, shard)
            return shard, targets, shard_key(shard, targets)
        while not self.exhausted:
            try:
                shard = next(self.shards)
                self.inputs_read = shard.stop
            except StopIteration:
                self.exhausted = True
                return None
            except ValueError as error:  # a bad item of an iterable: nothing after it is read
                # (its message names the dataset already; so does the key)
                self.summary.failed["dataset"] = str(error).removeprefix("dataset: ")
                return None
            try:
                targets = shard_targets(self.targets, shard)
            except ValueError as error:
                self.summary.failed[shard.describe()] = str(error)
                continue
            key = shard_key(shard, targets)
            record = self.store.completed(shard.index, key)
            if record is None:
                return shard, targets, key
            self.records[shard.index] = record
            self.summary.shards_skipped += 1
            self.summary.samples_skipped += shard.stop - shard.start
            if self.bar is not None:
                self.bar.update(shard.stop - shard.start)
        return None

    def _start(self, start_pool: Any, started: float) -> tuple[list[Any], list[dict[str, Any]]]:
        """The pool of actors, each with its model built, and what each reported (its
        ``info``); RuntimeError naming ``model_fn`` when one cannot be built. Fills the
        summary's workers and start-up time."""
        ray, summary = self.ray, self.summary
        pool = start_pool()
        try:
            infos = ray.get([actor.info.remote() for actor in pool])
        except ray.exceptions.RayError as error:
            for actor in pool:
                ray.kill(actor, no_restart=True)
            raise RuntimeError(
                f"model_fn: a worker could not be started (building the model or the "
                f"Occlusion failed): {error}"
            ) from None
        summary.workers = [
            WorkerSummary(i, info["node"], [info["pid"]]) for i, info in enumerate(infos)
        ]
        summary.startup_seconds = time.perf_counter() - started
        return pool, infos

    @staticmethod
    def _reported_model(infos: list[dict[str, Any]]) -> str:
        """The model identity the workers reported, one for all of them; ValueError naming
        ``model_id`` when their model has no weights to digest, or ``model_fn`` when they
        built different models."""
        models = {info["model"] for info in infos}
        if None in models:
            kind = next(info["model_type"] for info in infos if info["model"] is None)
            raise ValueError(
                f"model_id: None is invalid for the {kind} model_fn builds (it has no weights "
                "that get_weights() or state_dict() can read, so a rerun could not tell "
                "whether it is the same model), expected a string that names the model and "
                "changes whenever it does (e.g. the SHA-256 of its file)"
            )
        if len(models) > 1:
            raise ValueError(
                f"model_fn: the workers built {len(models)} different models (their weights "
                "differ), expected the same model in every process: seed the model's "
                "initialisation or load saved weights"
            )
        return models.pop()

    def execute(self, start_pool: Any, progress: bool, started: float) -> RunSummary:
        """Runs every shard not complete yet. With the model's identity settled already
        (``model_id``), workers are started only when there is a shard to explain; else they
        are started first and the model they report is settled with the store (which may
        refuse it) before any shard is read."""
        ray, summary = self.ray, self.summary
        pool: list[Any] = []
        alive: dict[int, Any] = {}
        in_flight: dict[Any, tuple[Shard, Any, str, int]] = {}
        try:
            if self.store.fingerprint is None:
                pool, infos = self._start(start_pool, started)
                self.store.use_model(self._reported_model(infos))
            pending = self._next_shard()
            if pending is None:
                return self._finish(started)
            if not pool:
                pool, _ = self._start(start_pool, started)
            # The bar starts with the workers ready (their start-up is not the samples' time).
            self.bar = _progress(progress, self.data.count, summary.samples_skipped)
            alive = dict(enumerate(pool))
            load = collections.Counter({i: 0 for i in alive})
            while True:
                while alive:
                    worker = min(alive, key=lambda i: load[i])
                    if load[worker] >= IN_FLIGHT_PER_WORKER:
                        break
                    item, pending = pending or self._next_shard(), None
                    if item is None:
                        break
                    shard, targets, key = item
                    ref = alive[worker].explain.remote(shard.source, self.mode, targets)
                    in_flight[ref] = (shard, targets, key, worker)
                    load[worker] += 1
                if not in_flight:
                    break
                [ref], _ = ray.wait(list(in_flight), num_returns=1)
                shard, targets, key, worker = in_flight.pop(ref)
                load[worker] -= 1
                self._collect(ref, shard, key, worker, alive)
        finally:
            if self.bar is not None:
                self.bar.close()
            for actor in pool:
                ray.kill(actor, no_restart=True)
        if not alive and (self.retry or not self.exhausted):
            summary.failed.setdefault("workers", "every worker died; rerun to resume")
        return self._finish(started)

    def _collect(self, ref: Any, shard: Shard, key: str, worker: int, alive: dict) -> None:
        """Writes a finished shard, or records why it failed (retrying it when its worker
        died)."""
        ray, summary = self.ray, self.summary
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as error:  # raised by the shard's own code
            cause = getattr(error, "cause", None) or error
            summary.failed[shard.describe()] = f"{type(cause).__name__}: {cause}"
            return
        except ray.exceptions.RayError as error:  # the worker died beyond its restarts
            if isinstance(error, ray.exceptions.ActorDiedError):
                alive.pop(worker, None)
            self.attempts[shard.index] += 1
            if self.attempts[shard.index] <= self.max_retries and alive:
                self.retry.append(shard)
            else:
                summary.failed[shard.describe()] = f"its worker died: {type(error).__name__}"
            return
        assert self.store.fingerprint is not None
        model = self.store.fingerprint[MODEL]
        if result["model"] != model:  # a worker restarted with another model
            summary.failed[shard.describe()] = (
                f"its worker's model is {result['model']!r}, expected the run's {model!r}: "
                "model_fn must build the same model in every process"
            )
            return
        n = shard.stop - shard.start
        fields = {k: result[k] for k in ("labels", "outputs", "model_calls", "seconds")}
        fields.update(worker=worker, pid=result["pid"], node=result["node"])
        self.records[shard.index] = self.store.write_shard(
            shard.index, shard.start, shard.stop, key, result["maps"], fields
        )
        summary.samples += n
        summary.shards += 1
        summary.model_calls += result["model_calls"]
        summary.workers[worker].add(result, n)
        if self.bar is not None:
            self.bar.update(n)

    def _finish(self, started: float) -> RunSummary:
        summary = self.summary
        records = [self.records[i] for i in sorted(self.records)]
        given = self.targets is not None and not isinstance(self.targets, int)
        if self.exhausted and given and self.inputs_read != len(self.targets):
            summary.failed["targets"] = (
                f"{len(self.targets)} targets for {self.inputs_read} inputs, expected one per input"
            )
        contiguous = all(r["index"] == i for i, r in enumerate(records))
        summary.complete = self.exhausted and not summary.failed and contiguous
        summary.seconds = time.perf_counter() - started
        status = "complete" if summary.complete else "incomplete"
        self.store.finish(
            records,
            {
                "status": status,
                "samples": records[-1]["stop"] if records and summary.complete else None,
                "failed": summary.failed,
                "summary": json.loads(json.dumps(summary.as_dict())),
            },
        )
        return summary
