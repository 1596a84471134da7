"""``python -m bench.load``: see ``bench.load``."""

import sys

from bench.load.run import main

sys.exit(main())
