"""Whole datasets explained across processes, GPUs and machines on Ray
(``pip install "fastocclusion[ray]"``).

    from fastocclusion.distributed import explain_dataset, load_results

    summary = explain_dataset("images/", make_model, "maps/", workers=4, gpus_per_worker=1,
                              patch_size=16, patch_stride=8, batch_size=64)
    print(summary)                        # samples, model calls, time, throughput per worker
    maps = load_results("maps/").maps     # (N, H, W, 1), in input order, = Occlusion.explain's

Design choices:

- **Ray actors, not Ray Data.** A shard is the unit of work, of retry, of atomic write and of
  resume, and it must be skipped *before* it is read when a rerun finds it complete: that is
  a plain queue of shards in the driver handed to a pool of actors (each builds the model
  once, in ``__init__``, and keeps it). Ray Data's ``map_batches`` with an actor pool would
  choose the batches itself, stream every block through its executor (a dataset of
  already-complete shards is still read), retry with its own granularity, need a write
  stage we would have to make atomic and resumable anyway, and pull in pandas/pyarrow
  (``ray[data]``). Actors give the same pipelining (two shards queued per actor) and
  dynamic load balance (shards go to whichever actor frees up) in ~100 lines.
- **One .npy per shard + JSON records + a manifest, not Zarr.** No dependency beyond NumPy;
  each shard is one file written atomically (temporary file, fsync, rename) with its SHA-256
  in a per-shard record written after it, which is exactly the "complete or recomputed"
  invariant resume needs; any NumPy can read the shards (memory-mapped). Zarr would add a
  dependency and write a shard as many chunk files, with no atomic commit of the group.
- **The driver writes, workers compute.** Workers return their maps through Ray's object
  store (maps are 1/C of the inputs: small); the driver is the only writer of the output
  directory, so outputs need no shared file system. File datasets are read by the workers
  from their paths (several hosts need a shared file system or the same paths); in-memory
  arrays and iterables are shipped by the driver.

Modules: ``datasets`` (the dataset kinds, shards, image reading), ``store`` (the output
directory: atomic writes, checksums, resume, ``load_results``), ``models`` (what identifies
the model, so that a rerun resumes only the same model's maps), ``worker`` (the actor),
``runner`` (``explain_dataset``: checks, scheduling, failures, progress), ``summary``.
Ray is imported only when ``explain_dataset`` runs.
"""

from __future__ import annotations

from fastocclusion.distributed.datasets import ImageFiles, NumpyFile, read_image
from fastocclusion.distributed.runner import explain_dataset
from fastocclusion.distributed.store import Results, load_results
from fastocclusion.distributed.summary import RunSummary, WorkerSummary

__all__ = [
    "ImageFiles",
    "NumpyFile",
    "Results",
    "RunSummary",
    "WorkerSummary",
    "explain_dataset",
    "load_results",
    "read_image",
]
