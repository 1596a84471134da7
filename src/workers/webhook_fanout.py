"""The webhook fan-out (``Handler: workers.webhook_fanout.lambda_handler``): a batch of job events from the
webhook events queue (a rule on the bus targets it; each message is one EventBridge event, whole), one
queued delivery per webhook that wants each (``services.webhook_fanout``), and the batch's partial
failure out.

The queue's event source mapping reports partial failures (``ReportBatchItemFailures``): an event whose
deliveries could not all be queued (the table or the deliveries queue unavailable) stays in the queue
and comes back after its visibility timeout, up to the redrive policy's count, then waits in the
dead-letter queue for an operator (``python -m ops webhooks replay``). One event failing never fails the
others of its batch. The local API runs this same handler from a poller of the emulated queue.
"""

from __future__ import annotations

import json
from typing import Any

from models.events import from_bus_event
from services.webhook_fanout import WebhookFanout
from utils import logging as log
from utils import metrics, retry
from utils.logging import get_logger
from workers import dependencies

logger = get_logger("webhook_fanout")
#: Kept in hand at the end of an invocation to answer and log.
RESERVE_SECONDS = 2.0


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log.clear()
    log.bind(aws_request_id=getattr(context, "aws_request_id", None))
    failed: list[str] = []
    try:
        with metrics.scope():
            service = dependencies.get("webhook_fanout", WebhookFanout)
            with retry.deadline(_seconds_left(context)):
                for record in event.get("Records") or []:
                    if not _fan_out(service, record):
                        failed.append(str(record.get("messageId", "")))
    finally:
        log.clear()
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _fan_out(service: WebhookFanout, record: dict[str, Any]) -> bool:
    """Queue one event's deliveries; False when it must come back."""
    try:
        job_event = from_bus_event(json.loads(record["body"]))
    except (KeyError, TypeError, ValueError):
        logger.error("a webhook events message is not a job event", extra={"message_id": record.get("messageId")})
        metrics.add("WebhookEventsUnreadable", 1)
        return False
    try:
        queued = service.fan_out(job_event)
    except Exception as exc:  # the table or the queue unavailable (after retries), a bug: this event only
        logger.warning(
            "webhook fan-out failed; the event comes back",
            extra={"event_id": job_event.id, "error_type": type(exc).__name__},
        )
        return False
    logger.info("webhook fan-out", extra={"event_id": job_event.id, "event_type": job_event.type, "queued": queued})
    return True


def _seconds_left(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return max(0.0, float(remaining()) / 1000 - RESERVE_SECONDS)
