"""``python -m unetkit``: the ``unetkit`` command."""

import sys

from unetkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
