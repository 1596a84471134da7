"""The sweep's entry point (``Handler: workers.sweep.lambda_handler``), run hourly by an EventBridge schedule
(template.yaml, ``SweepFunction``): it finishes erasures nobody retried and deletes blueprints whose
retention ended (``services.sweep``). The scheduled event itself carries nothing the sweep needs.

Returns the run's counts (visible in the Lambda console's test runs and in the log line "sweep done");
every AWS call is bounded by the invocation's remaining time, keeping a reserve to log and return.
"""

from __future__ import annotations

from typing import Any

from services.sweep import Sweep
from utils import logging as log
from utils import metrics, retry
from workers import dependencies

#: Kept in hand at the end of the invocation, to write the log line and the metrics.
RESERVE_SECONDS = 2.0


def lambda_handler(event: Any, context: Any) -> dict[str, int]:
    log.clear()
    log.bind(aws_request_id=getattr(context, "aws_request_id", None), worker="sweep")
    try:
        with metrics.scope():
            service = dependencies.get("sweep", Sweep)
            with retry.deadline(_seconds_left(context)):
                return service.run()
    finally:
        log.clear()


def _seconds_left(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return max(0.0, float(remaining()) / 1000 - RESERVE_SECONDS)
