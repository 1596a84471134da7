"""Operator command line for jobs: ``python -m ops [--local | --env dev|prod] jobs show|start|complete|fail``.

Drives a job through the same ``JobService`` transitions the processing pipeline uses (conditional
writes, the state machine, result and preview storage), against either the local API that ``make run``
is serving (``--local``: its embedded emulated AWS, found through ``.local-api.json``) or a deployed
environment (``--env dev|prod``: the real AWS credential chain, names from ``template.yaml``).

Development and operations only: this package lives outside ``src/`` so it never ships in the Lambda.
Like ``local_api``, it puts ``src/`` on ``sys.path`` so the Lambda's packages import as they do deployed.
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parent.parent / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
