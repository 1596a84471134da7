"""The jobs table's stream consumer (``Handler: workers.stream_consumer.lambda_handler``): a batch of stream
records in (the event source mapping's DynamoDB event), their job events onto the bus, and the batch's
partial failure out.

The mapping (template.yaml ``JobEventsMapping``) reports partial failures (``ReportBatchItemFailures``):
answering the sequence number of the first record whose event is not on the bus makes Lambda deliver the
batch again from that record (bisected, a bounded number of times), then hand the rest to the failure
queue, whose messages name the records to replay (``python -m ops events replay``, docs/runbook.md).
An exception (a bug) fails the whole batch the same way. The local API runs this same handler from a
poller of the emulated stream (``local_api.event_poller``).
"""

from __future__ import annotations

from typing import Any

from services.job_events import JobEvents
from utils import logging as log
from utils import metrics, retry
from workers import dependencies

#: Kept in hand at the end of an invocation to answer and log.
RESERVE_SECONDS = 2.0


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log.clear()
    log.bind(aws_request_id=getattr(context, "aws_request_id", None))
    try:
        with metrics.scope():
            service = dependencies.get("job_events", JobEvents)
            with retry.deadline(_seconds_left(context)):
                retry_from = service.publish(event.get("Records") or [])
    finally:
        log.clear()
    return {"batchItemFailures": [] if retry_from is None else [{"itemIdentifier": retry_from}]}


def _seconds_left(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return max(0.0, float(remaining()) / 1000 - RESERVE_SECONDS)
