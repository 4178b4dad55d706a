"""The output directory of a distributed run: one ``.npy`` of maps per shard, a JSON record
per shard, and a manifest. Only the driver writes here (workers return their maps to it), so
there is one writer and no shared file system is needed for the outputs.

Layout::

    OUT/manifest.json              the run's settings and model (its fingerprint); at the end,
                                   every shard's range, file and SHA-256, the failures, the
                                   summary
    OUT/shards/shard-000003.npy    the maps of shard 3, (n, *map shape) float32
    OUT/shards/shard-000003.json   its record: range, input key, the .npy's SHA-256, labels and
                                   outputs (top-class or class-index targets), worker stats
    OUT/.lock                      held (flock) while a run writes here

Every file is written atomically: to a temporary name in the same directory, flushed and
fsync'ed, then renamed over the final name (``os.replace``); the record is written after its
``.npy``. A shard is complete when its record exists, names the same run fingerprint and
input key, and the ``.npy``'s SHA-256 matches the record: a crash at any point leaves either
a complete shard or one that is recomputed. The manifest is rewritten at the start and at the
end only (per-shard records keep the cost per shard constant, whatever the run's size).

The fingerprint holds the model's identity (``distributed.models``): a directory that holds
another model's run, or a run that recorded no model (an earlier version's), is refused
before any model call, or with ``overwrite`` its shards and manifest are deleted and the run
starts over. The directory is created and checked writable before anything else.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Written into every manifest and record; another value is another layout.
FORMAT = "fastocclusion-distributed/1"
#: The key of the model's identity in a run's fingerprint (absent from the manifests of
#: versions before it: treated as another model).
MODEL = "model"
#: How errors tell the caller to start over (the command line names its flag instead).
OVERWRITE = "overwrite=True"
MANIFEST = "manifest.json"
SHARDS = "shards"


def _fsync_directory(directory: str) -> None:
    with contextlib.suppress(OSError):  # not every file system can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(path: str, data: bytes) -> None:
    """``data`` at ``path``, all or nothing (temporary file, fsync, rename, fsync of the
    directory)."""
    directory = os.path.dirname(path)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
    _fsync_directory(directory)


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of a .npy file."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def file_sha256(path: str) -> str | None:
    """SHA-256 of a file's bytes; None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as file:
            value = json.load(file)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _json_bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True).encode("utf-8")


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """'options.patch_size: [4, 4] there, [8, 8] here' for each setting that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new)):
            found += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return found
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} there, {new!r} here"]


def shard_stem(index: int) -> str:
    return f"shard-{index:06d}"


#: The files of shards (maps and records) in OUT/shards.
SHARD_FILE = re.compile(r"shard-\d{6,}\.(npy|json)")


def writable_directory(path: str | os.PathLike[str], name: str) -> str:
    """``path`` made absolute, created (with its parents) when missing, and checked
    writable by creating a temporary file in it; ValueError naming ``name`` when it is a
    file, lies under one, or cannot be created or written (checked by writing, so that it
    holds for root too)."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{name}: {path!r} exists and is not a directory, expected a directory")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(
            f"{name}: {path!r} could not be created or written ({type(error).__name__}: "
            f"{error.strerror or error}), expected a writable directory"
        ) from None
    return path


class OutputStore:
    """A run's output directory, locked for the run (see the module docstring).

    ``settings``: what decides the maps besides the model (options, targets' kind, dataset
    kind and preprocessing, shard size), JSON-serialisable; ``model``: the model's identity
    (see ``distributed.models``), given here or later to ``use_model``, which must come
    before any shard is read or written; ``overwrite``: the run that was in the directory
    is deleted (its shards and manifest) instead of resumed or refused. ValueError naming
    ``out_dir`` when it is a file, lies under one, cannot be created or written, is being
    written by another run, or holds a run of other settings or of another model."""

    def __init__(
        self,
        out_dir: str,
        settings: dict[str, Any],
        model: str | None = None,
        overwrite: bool = False,
    ) -> None:
        self.out_dir = writable_directory(out_dir, "out_dir")
        self.shard_dir = writable_directory(os.path.join(self.out_dir, SHARDS), "out_dir")
        self._lock = self._acquire_lock()
        try:
            self.settings = json.loads(json.dumps(settings))  # as read back later
            self.overwrite = overwrite
            #: the settings and the model's identity once use_model settled it
            self.fingerprint: dict[str, Any] | None = None
            # the fingerprint of the run found here ({} when unreadable), None: none found
            self._found: dict[str, Any] | None = None
            manifest = None if overwrite else _read_json(os.path.join(self.out_dir, MANIFEST))
            if manifest is not None:
                found = manifest.get("fingerprint")
                self._found = found if isinstance(found, dict) else {}
                there = {name: v for name, v in self._found.items() if name != MODEL}
                if there != self.settings:
                    changes = _differences(there, self.settings)
                    raise ValueError(
                        f"out_dir: {self.out_dir!r} holds the shards of a run with other "
                        f"settings ({'; '.join(changes)}): use another directory, the same "
                        f"settings to resume that run, or {OVERWRITE} to delete it and start "
                        "over"
                    )
            if model is not None:
                self.use_model(model)
        except BaseException:
            self.close()
            raise

    def use_model(self, model: str) -> None:
        """Settles the run's model: ValueError naming ``out_dir`` when the directory holds
        the run of another model, or of a version of fastocclusion that recorded none
        (treated as another model's: its maps cannot be vouched for); with ``overwrite``,
        that run's shards and manifest are deleted instead. Then writes this run's manifest
        (status "running"). Call it before any shard is read or written (before any model
        call, so that a refused run has spent none)."""
        if self._found is not None:
            recorded = self._found.get(MODEL)
            if recorded is None:
                raise ValueError(
                    f"out_dir: the maps in {self.out_dir!r} were made by a version of "
                    "fastocclusion that did not record the model, so they are treated as "
                    f"another model's: use another directory, or {OVERWRITE} to delete that "
                    "run and start over"
                )
            if recorded != model:
                raise ValueError(
                    f"out_dir: the maps in {self.out_dir!r} were made by another model "
                    f"({recorded!r} there, {model!r} here): use another directory, the same "
                    f"model to resume that run, or {OVERWRITE} to delete it and start over"
                )
        if self.overwrite:
            self._clear()
        self._remove_temporaries()
        self.fingerprint = {**self.settings, MODEL: model}
        self._write_manifest({"status": "running"})

    def _clear(self) -> None:
        """Deletes the manifest and the shards (maps and records) of the run that was here;
        other files (the command line's PNGs) are left."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.out_dir, MANIFEST))
        for name in os.listdir(self.shard_dir):
            if SHARD_FILE.fullmatch(name):
                os.remove(os.path.join(self.shard_dir, name))
        _fsync_directory(self.shard_dir)

    def _acquire_lock(self) -> int:
        import fcntl

        fd = os.open(os.path.join(self.out_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ValueError(
                f"out_dir: {self.out_dir!r} is being written by another run (its .lock is "
                "held), expected one run per directory at a time"
            ) from None
        return fd

    def _remove_temporaries(self) -> None:
        """Temporary files a killed run left (never renamed: not part of any result)."""
        for directory in (self.out_dir, self.shard_dir):
            for name in os.listdir(directory):
                if name.startswith(".") and name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(directory, name))

    def close(self) -> None:
        """Releases the directory's lock (idempotent)."""
        if self._lock >= 0:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = -1

    def _write_manifest(self, fields: dict[str, Any]) -> None:
        manifest = {"format": FORMAT, "fingerprint": self.fingerprint, **fields}
        write_atomically(os.path.join(self.out_dir, MANIFEST), _json_bytes(manifest))

    def completed(self, index: int, key: str) -> dict[str, Any] | None:
        """The record of shard ``index`` when it is complete for inputs of this ``key``
        (record readable, same fingerprint, the model's included, and key, the .npy's
        SHA-256 verified), else None."""
        assert self.fingerprint is not None, "use_model comes first"
        stem = os.path.join(self.shard_dir, shard_stem(index))
        record = _read_json(stem + ".json")
        if (
            record is None
            or record.get("fingerprint") != self.fingerprint
            or record.get("key") != key
            or file_sha256(stem + ".npy") != record.get("sha256")
        ):
            return None
        return record

    def write_shard(
        self, index: int, start: int, stop: int, key: str, maps: np.ndarray, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """Writes shard ``index``'s maps, then its record (with ``fields``); returns it."""
        assert self.fingerprint is not None, "use_model comes first"
        stem = shard_stem(index)
        data = npy_bytes(np.asarray(maps, dtype=np.float32))
        write_atomically(os.path.join(self.shard_dir, stem + ".npy"), data)
        record = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "index": index,
            "start": start,
            "stop": stop,
            "key": key,
            "file": f"{SHARDS}/{stem}.npy",
            "sha256": hashlib.sha256(data).hexdigest(),
            "map_shape": list(maps.shape[1:]),
            **fields,
        }
        write_atomically(os.path.join(self.shard_dir, stem + ".json"), _json_bytes(record))
        return record

    def finish(self, records: list[dict[str, Any]], fields: dict[str, Any]) -> None:
        """The final manifest: ``records`` (every complete shard, in order) indexed, with
        ``fields`` (status, failures, summary)."""
        shards = [{k: r[k] for k in ("index", "start", "stop", "file", "sha256")} for r in records]
        self._write_manifest({**fields, "shards": shards})


@dataclass(frozen=True)
class Results:
    """A complete run read back: ``maps`` (N, *map shape) float32 in input order (the maps
    ``Occlusion.explain`` gives); ``labels`` (N,) int64 and ``outputs`` (N,) float64, the
    class explained and the model's output for it on the unperturbed input, when the targets
    were the top class or class indices (else None)."""

    maps: np.ndarray
    labels: np.ndarray | None
    outputs: np.ndarray | None
    manifest: dict[str, Any]


def load_results(out_dir: str | os.PathLike[str], maps_path: str | None = None) -> Results:
    """The results of a complete run in ``out_dir``, every shard's SHA-256 verified. With
    ``maps_path``, the maps are written there as one .npy (atomically) and returned
    memory-mapped. ValueError naming ``out_dir`` for an incomplete run or a damaged shard."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    manifest = _read_json(os.path.join(out_dir, MANIFEST))
    if manifest is None or manifest.get("format") != FORMAT:
        raise ValueError(f"out_dir: {out_dir!r} holds no manifest of a distributed run")
    if manifest.get("status") != "complete":
        failed = manifest.get("failed") or {}
        raise ValueError(
            f"out_dir: the run in {out_dir!r} is not complete (status "
            f"{manifest.get('status')!r}, {len(failed)} failed shard(s)): rerun it to resume"
        )
    shards = manifest["shards"]
    records = []
    for shard in shards:
        record = _read_json(os.path.join(out_dir, SHARDS, shard_stem(shard["index"]) + ".json"))
        if file_sha256(os.path.join(out_dir, shard["file"])) != shard["sha256"] or record is None:
            raise ValueError(
                f"out_dir: {shard['file']} in {out_dir!r} is missing or damaged (SHA-256 "
                "mismatch): rerun the run to recompute it"
            )
        records.append(record)
    count = shards[-1]["stop"] if shards else 0
    shape = (count, *records[0]["map_shape"]) if records else (0,)
    if maps_path is not None:
        temporary = f"{maps_path}.{uuid.uuid4().hex}.tmp"
        maps = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32, shape=shape)
    else:
        maps = np.empty(shape, dtype=np.float32)
    for shard in shards:
        maps[shard["start"] : shard["stop"]] = np.load(os.path.join(out_dir, shard["file"]))
    if maps_path is not None:
        maps.flush()
        del maps
        os.replace(temporary, maps_path)
        maps = np.load(maps_path, mmap_mode="r")
    labelled = bool(records) and all(r.get("labels") is not None for r in records)
    labels = np.concatenate([r["labels"] for r in records]).astype(np.int64) if labelled else None
    outputs = (
        np.concatenate([r["outputs"] for r in records]).astype(np.float64) if labelled else None
    )
    return Results(maps, labels, outputs, manifest)
