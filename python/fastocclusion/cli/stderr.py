"""What native code writes to stderr: silenced around TensorFlow's import, whose start-up log
lines (oneDNN notes, CUDA probing errors on a machine without a GPU) would otherwise precede
every command's output."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from fastocclusion.cli.extras import require_tensorflow

__all__ = ["native_stderr_silenced", "quiet_tensorflow"]


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Sends what native code writes to file descriptor 2 to /dev/null meanwhile (Python's
    own exceptions are raised after it is restored, so they still show)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_tensorflow(what: str) -> None:
    """Imports TensorFlow and Keras without their start-up log lines, which
    TF_CPP_MIN_LOG_LEVEL does not stop: they are written before logging is set up, once at
    import and again when the devices are listed. TF_CPP_MIN_LOG_LEVEL=0 set by the user
    keeps them all. Without TensorFlow, a ``UsageError`` saying that ``what`` (the argument
    or command, and what it is) needs it, and how to install it."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        require_tensorflow(what)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_silenced():
        tf = require_tensorflow(what)
        import keras  # noqa: F401

        tf.config.list_physical_devices()
