"""The ``fastocclusion`` command line: ``demo`` and ``explain``.

Importing this package is light (argparse only): TensorFlow, Keras, Pillow and matplotlib
load inside the commands, so ``fastocclusion --help`` answers at once.

``main(argv)`` returns the exit status instead of exiting (0 success, 2 a usage error: a bad
argument, a missing or unreadable file, a model that cannot be loaded, a missing optional
extra), so it can be called in-process; the console script and ``python -m fastocclusion``
exit with it.

The modules, one concern each: ``parser`` (the flags), ``errors`` (``UsageError``),
``extras`` (the optional extras a command needs), ``stderr`` (TensorFlow's native log lines
silenced), ``demo`` (the demo command), ``explain`` (the explain command's flow), ``checks``
(its checks before any model call), ``loading`` (model, images, image paths), ``local`` (the
run in this process), ``workers`` (the run on Ray workers, --workers), ``outputs`` (maps.npy
and the overlays).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fastocclusion.cli.demo import run_demo_command
from fastocclusion.cli.errors import UsageError
from fastocclusion.cli.explain import run_explain
from fastocclusion.cli.parser import build_parser

__all__ = ["UsageError", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastocclusion`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            return run_demo_command(args)
        return run_explain(args)
    except UsageError as error:
        print(f"fastocclusion {args.command}: error: {error}", file=sys.stderr)
        return 2
