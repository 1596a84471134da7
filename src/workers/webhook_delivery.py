"""The webhook delivery worker (``Handler: workers.webhook_delivery.lambda_handler``): a batch of queued
deliveries in (one event for one webhook each), each attempted (``services.webhook_delivery``), and the
batch's partial failure out.

The messages of a batch are attempted in parallel threads, so one endpoint that is slow (10 s at most)
never holds back the others; a failed attempt has already put its message off until its next attempt is
due (``ChangeMessageVisibility``), and is reported in ``batchItemFailures`` so that Lambda leaves it in
the queue, whose redrive policy moves it to the dead-letter queue after the last attempt. Delivered and
dropped ones are deleted by Lambda. A crash of the whole invocation leaves every message of the batch to
come back: the delivery ledger keeps those already delivered from being sent again.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from models.webhooks import Delivery
from services.webhook_delivery import Outcome, Result, WebhookDelivery
from utils import logging as log
from utils import metrics, retry
from utils.logging import get_logger
from workers import dependencies

logger = get_logger("webhook_delivery")
#: Kept in hand at the end of an invocation to answer and log.
RESERVE_SECONDS = 2.0


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    log.clear()
    log.bind(aws_request_id=getattr(context, "aws_request_id", None))
    records = event.get("Records") or []
    try:
        with metrics.scope():
            service = dependencies.get("webhook_delivery", WebhookDelivery)
            with retry.deadline(_seconds_left(context)):
                results = _attempt_all(service, records)
            for result in results:
                metrics.add("WebhookDeliveries", 1, Outcome=result.outcome.value if result else "unreadable")
    finally:
        log.clear()
    failed = [
        str(record.get("messageId", ""))
        for record, result in zip(records, results, strict=True)
        if result is None or result.outcome is Outcome.FAILED
    ]
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _attempt_all(service: WebhookDelivery, records: list[dict[str, Any]]) -> list[Result | None]:
    """Every record's attempt, each in a thread of its own (with this invocation's deadline and log
    context), in the records' order."""
    if not records:
        return []
    with ThreadPoolExecutor(max_workers=len(records), thread_name_prefix="webhook-delivery") as pool:
        futures = [pool.submit(contextvars.copy_context().run, _attempt, service, r) for r in records]
        return [future.result() for future in futures]


def _attempt(service: WebhookDelivery, record: dict[str, Any]) -> Result | None:
    """One record's attempt; None for a message that is not a delivery (it stays, up to the dead-letter
    queue, for an operator to look at)."""
    try:
        delivery = Delivery.from_message(record["body"])
        attempt = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        receipt_handle = str(record["receiptHandle"])
    except (KeyError, TypeError, ValueError):
        logger.error("a webhook deliveries message is not a delivery", extra={"message_id": record.get("messageId")})
        return None
    return service.attempt(delivery, receipt_handle, attempt)


def _seconds_left(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return max(0.0, float(remaining()) / 1000 - RESERVE_SECONDS)
