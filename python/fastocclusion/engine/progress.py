"""The optional progress bar of a sweep (tqdm)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool | str) -> Iterator[Any]:
    """A tqdm bar over ``total`` perturbed samples when enabled (None otherwise), closed on
    exit, errors included; labelled ``enabled`` when it is a string (a front-end's label),
    else "occlusion"."""
    if not enabled:
        yield None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("progress=True needs tqdm: pip install tqdm") from None
    bar = tqdm(
        total=total, unit="sample", desc=enabled if isinstance(enabled, str) else "occlusion"
    )
    try:
        yield bar
    finally:
        bar.close()
