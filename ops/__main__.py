"""``python -m ops``: see ``ops/__init__.py`` and ``python -m ops --help``."""

import sys

from ops.cli import main

if __name__ == "__main__":
    sys.exit(main())
