"""The optional extras the commands need, checked before any work: Matplotlib and Pillow to
write PNGs (``fastocclusion[plot]``), TensorFlow for Keras models and the demo
(``fastocclusion[tensorflow]``). A missing one is a ``UsageError`` naming what to install.
"""

from __future__ import annotations

from types import ModuleType

from fastocclusion.cli.errors import UsageError
from fastocclusion.frameworks import import_tensorflow, installed

__all__ = ["PLOT_EXTRA", "require_plot_extra", "require_tensorflow"]

#: What the commands that write PNGs need, by import name: (distribution, what for).
PLOT_EXTRA = {"matplotlib": "matplotlib", "PIL": "Pillow"}


def require_plot_extra() -> None:
    """Fails at once, in one line, when the modules that write the PNGs are missing (before
    minutes of training or explaining are spent)."""
    missing = [distribution for module, distribution in PLOT_EXTRA.items() if not installed(module)]
    if missing:
        raise UsageError(
            f"writing PNG files needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: "
            'pip install "fastocclusion[plot]"'
        )


def require_tensorflow(what: str) -> ModuleType:
    """The ``tensorflow`` module, imported; a ``UsageError`` naming the extra to install
    (``"<what> needs TensorFlow: pip install 'fastocclusion[tensorflow]'"``) when it is not
    installed."""
    try:
        return import_tensorflow(what)
    except ImportError as error:
        if error.name != "tensorflow":  # TensorFlow is installed but broken: its own error
            raise
        raise UsageError(str(error)) from None
