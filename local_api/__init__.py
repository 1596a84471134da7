"""Development-only local API: the Lambda behind an HTTP server on emulated AWS (see server.py)."""

import sys
from pathlib import Path

# The Lambda's code lives in src/ and imports itself as top-level packages (api, services, ...), as it
# does in the deployed package; make that true here too.
_SRC = str(Path(__file__).resolve().parent.parent / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
