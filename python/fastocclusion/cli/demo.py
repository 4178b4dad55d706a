"""The ``demo`` command: its arguments checked, then ``fastocclusion.demo.run_demo`` (a small
Keras CNN trained on synthetic shapes, explained, scored and timed)."""

from __future__ import annotations

import argparse
import os

from fastocclusion.cli.errors import UsageError
from fastocclusion.cli.extras import require_plot_extra
from fastocclusion.cli.parser import options
from fastocclusion.cli.stderr import quiet_tensorflow

__all__ = ["run_demo_command"]


def run_demo_command(args: argparse.Namespace) -> int:
    """``fastocclusion demo``: the exit status (0; a ``UsageError`` before any training)."""
    if args.explain > 500:
        raise UsageError(f"--explain: {args.explain} is invalid, expected at most 500")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise UsageError(f"--out: directory {out_dir!r} does not exist")
    require_plot_extra()
    quiet_tensorflow("the demo's Keras CNN")
    from fastocclusion.demo import run_demo

    run_demo(**options(args, "out", "seed", "epochs", "samples", "explain", "batch_size"))
    return 0
