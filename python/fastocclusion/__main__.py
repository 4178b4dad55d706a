"""``python -m fastocclusion ...``: the same command line as the ``fastocclusion`` script."""

import sys

from fastocclusion.cli import main

if __name__ == "__main__":
    sys.exit(main())
