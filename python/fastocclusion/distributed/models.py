"""What identifies the model of a distributed run, so that a rerun resumes only the maps of
the same model (the run's fingerprint holds it next to the settings and the dataset).

Two kinds of identity, both strings written into the manifest and every shard's record:

- ``model_id`` given by the caller (``explain_dataset(model_id=...)``): used as it is. The
  command line passes ``file_digest`` of the ``--model`` file, computed in the driver
  without loading the model.
- otherwise ``weights_digest`` of the model ``model_fn`` builds, computed by each worker
  once it has built it (no model call: the weights are read, not run) and reported to the
  driver, which compares it with the directory's before it hands out any shard. A model
  without weights to read (a plain callable) has no digest: ``model_id`` is then required
  rather than a guess (a digest of ``model_fn``'s code would not see the files it loads).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from fastocclusion.distributed.store import file_sha256


def _sha256_of(path: str, name: str) -> str:
    sha = file_sha256(path)
    if sha is None:
        raise ValueError(f"{name}: {path!r} could not be read, expected a readable model file")
    return sha


def file_digest(path: str, name: str) -> str:
    """The identity of the model saved at ``path``: 'file-sha256:<hex>', the SHA-256 of the
    file (what ``sha256sum`` prints; its name and place do not count), or for a directory
    (a SavedModel) 'dir-sha256:<hex>' over every file in it, in the order of their relative
    paths (each path and its file's SHA-256). ValueError naming ``name`` for a file that
    cannot be read."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        return f"file-sha256:{_sha256_of(path, name)}"
    found = (os.path.join(root, f) for root, _, names in os.walk(path) for f in names)
    digest = hashlib.sha256()
    for relative, full in sorted((os.path.relpath(f, path).replace(os.sep, "/"), f) for f in found):
        digest.update(f"{relative}\0{_sha256_of(full, name)}\n".encode())
    return f"dir-sha256:{digest.hexdigest()}"


def _torch_bytes(value: Any) -> bytes:
    """A tensor's dtype, shape and bytes as stored (any dtype, bfloat16 included), copied to
    the host; the repr of anything else a ``state_dict`` holds (a module's extra state)."""
    import torch

    if not isinstance(value, torch.Tensor):
        return repr(value).encode()
    flat = value.detach().cpu().contiguous().reshape(-1)
    header = f"{value.dtype}{tuple(value.shape)}\n".encode()
    return header + flat.view(torch.uint8).numpy().tobytes()


def model_type(model: Any) -> str:
    """'module.Class' of the model (what errors name, part of the weights' digest)."""
    return f"{type(model).__module__}.{type(model).__qualname__}"


def weights_digest(model: Any) -> str | None:
    """'weights-sha256:<hex>' over the model's class and its weights, in order, each with
    its dtype and shape: a Keras model's ``get_weights()`` arrays, a PyTorch module's
    ``state_dict()`` entries (parameters and persistent buffers, with their names). None for
    a model with neither, or with no weights there (a ``TorchCallable``, a Keras model of
    ``Lambda`` layers: what they compute is code, not weights); the caller must then name
    the model with ``model_id``.

    Two models with the same class and weights but different computations (another
    activation function in the code that builds them, weights kept outside ``state_dict``)
    have the same digest: name them with ``model_id`` to tell them apart. Reads every
    weight once (copied to the host)."""
    digest = hashlib.sha256(model_type(model).encode())
    weights = 0
    if callable(getattr(model, "get_weights", None)):
        for values in model.get_weights():
            array = np.ascontiguousarray(values)
            digest.update(f"\n{array.dtype.str}{array.shape}\n".encode())
            digest.update(array.reshape(-1).view(np.uint8))
            weights += 1
    elif callable(getattr(model, "state_dict", None)):
        for key, value in model.state_dict().items():
            digest.update(f"\n{key}:".encode())
            digest.update(_torch_bytes(value))
            weights += 1
    return f"weights-sha256:{digest.hexdigest()}" if weights else None
