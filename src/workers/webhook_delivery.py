"""The webhook delivery worker (``Handler: workers.webhook_delivery.lambda_handler``): a batch of queued
deliveries in (one event for one webhook each), each attempted (``services.webhook_delivery``), and the
batch's partial failure out.

The messages of a batch are attempted in parallel threads, so one endpoint that is slow (10 s at most)
never holds back the others; only one job's events to one webhook go one after another, oldest version
first, stopping at the first that fails (``_attempt_chain``). A failed attempt has already put its
message off until its next attempt is due (``ChangeMessageVisibility``), and is reported in
``batchItemFailures`` so that Lambda leaves it in the queue, whose redrive policy moves it to the
dead-letter queue after the last attempt. Delivered and dropped ones are deleted by Lambda. A crash of
the whole invocation leaves every message of the batch to come back: the delivery ledger keeps those
already delivered from being sent again.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

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
    """Every record's outcome, in the records' order. One job's events to one webhook are attempted one
    after another in version order (a standard queue hands them over in any order, and an erasure makes
    two at once); different jobs or webhooks each get a thread of their own (with this invocation's
    deadline and log context)."""
    results: list[Result | None] = [None] * len(records)
    chains: dict[tuple[str, str], list[tuple[int, _Queued]]] = {}
    for index, record in enumerate(records):
        queued = _read(record)
        if queued is not None:
            chains.setdefault(queued.delivery.chain, []).append((index, queued))
    if not chains:
        return results
    with ThreadPoolExecutor(max_workers=len(chains), thread_name_prefix="webhook-delivery") as pool:
        futures = [pool.submit(contextvars.copy_context().run, _attempt_chain, service, c) for c in chains.values()]
        for future in futures:
            for index, result in future.result():
                results[index] = result
    return results


class _Queued(NamedTuple):
    delivery: Delivery
    receipt_handle: str
    attempt: int


def _read(record: dict[str, Any]) -> _Queued | None:
    """A record's delivery; None for a message that is not one (it stays, up to the dead-letter queue,
    for an operator to look at)."""
    try:
        delivery = Delivery.from_message(record["body"])
        attempt = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        return _Queued(delivery, str(record["receiptHandle"]), attempt)
    except (KeyError, TypeError, ValueError):
        logger.error("a webhook deliveries message is not a delivery", extra={"message_id": record.get("messageId")})
        return None


def _attempt_chain(service: WebhookDelivery, chain: list[tuple[int, _Queued]]) -> list[tuple[int, Result]]:
    """One job's deliveries to one webhook, oldest version first. After one fails, the later ones are put
    off with it (the endpoint just failed; sent now, they would overtake it); one that would not finish
    before the invocation's deadline is put off too. The first is always attempted, as a lone one is."""
    done: list[tuple[int, Result]] = []
    blocked_by = ""
    for index, queued in sorted(chain, key=lambda item: item[1].delivery.version):
        left = retry.seconds_left()
        if blocked_by or (done and left is not None and left < service.timeout):
            reason = f"behind {blocked_by}" if blocked_by else "no time left in this invocation"
            done.append((index, service.postpone(queued.delivery, queued.receipt_handle, queued.attempt, reason)))
            continue
        result = service.attempt(queued.delivery, queued.receipt_handle, queued.attempt)
        if result.outcome is Outcome.FAILED:
            blocked_by = queued.delivery.event_id
        done.append((index, result))
    return done


def _seconds_left(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return max(0.0, float(remaining()) / 1000 - RESERVE_SECONDS)
