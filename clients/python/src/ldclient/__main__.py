"""``python -m ldclient`` (the same as the ``ldclient`` command)."""

import sys

from ldclient.cli import main

sys.exit(main())
