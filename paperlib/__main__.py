"""``python -m paperlib <command> ...``: see :mod:`paperlib.cli`."""

import sys

from paperlib.cli import main

if __name__ == "__main__":
    sys.exit(main())
