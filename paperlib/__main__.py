"""``python -m paperlib <command> ...``: see :mod:`paperlib.commands`."""

import sys

from paperlib.commands import main

if __name__ == "__main__":
    sys.exit(main())
