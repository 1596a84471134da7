"""Delivering one queued event to one webhook, per the Standard Webhooks specification, and when to try
again (the business rules of delivery; the worker, ``workers.webhook_delivery``, runs a batch of them).

One attempt (``WebhookDelivery.deliver``):
1. the webhook is read again: deleted since (or no longer wanting the type), the delivery is dropped;
2. the delivery ledger is asked for a lease (``storage.delivery_ledger``): already delivered, or being
   delivered by another copy of the message, it is dropped (a healthy endpoint gets it once);
3. the URL is checked again, resolving its host now (``services.webhook_urls``): DNS may have changed
   since registration; a forbidden address fails the attempt, nothing is sent;
4. the body is POSTed to the checked address (``utils.outbound_http``: 10 s in all, no redirects, a
   bounded read) with ``webhook-id`` (the event's id, the same on every attempt), a fresh
   ``webhook-timestamp`` and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of
   ``{id}.{timestamp}.{body}`` with the secret's bytes; the secret decrypted once per container and
   kept five minutes);
5. any 2xx is delivered (the ledger marks it); anything else fails the attempt.

Retries (``RetrySchedule``): after a failed attempt the message is put off for the next delay, with
jitter: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (8 attempts over about 27.5 hours, as Svix, the
specification's authors, schedule theirs; each delay at most SQS's 12 h); after the last, the queue's
redrive policy moves it to the dead-letter queue. ``WEBHOOK_RETRY_DELAYS`` replaces the delays (no jitter).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets as token_source
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from models.errors import InvalidWebhookUrl
from models.webhooks import Delivery, Webhook
from services.webhook_urls import check_url
from storage.delivery_ledger import Claim, DeliveryLedger, delivery_key
from storage.delivery_queue import DeliveryQueue
from storage.secret_box import SecretBox, SecretUnreadable
from storage.webhook_store import WebhookStore
from utils import outbound_http
from utils.cache import TtlCache
from utils.clock import WallClock, wall_time
from utils.logging import get_logger

logger = get_logger("webhook_delivery")

#: The deployed schedule: seconds before attempts 2..8.
DEFAULT_RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
#: SQS's longest visibility timeout.
MAX_DELAY_SECONDS = 43_200
#: How long an attempt holds its lease: longer than the attempt can take (10 s), shorter than the time a
#: crashed attempt's message stays hidden (the queue's visibility timeout).
LEASE_SECONDS = 60
#: How long the ledger remembers a delivery: past the retries (28 h) and the dead-letter queue (14 days).
LEDGER_SECONDS = 15 * 24 * 3600
SECRET_CACHE_SECONDS = 300.0

Sender = Callable[..., outbound_http.Answer]


def sign(secret: bytes, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    digest = hmac.new(secret, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class RetrySchedule:
    """How long a failed delivery waits before its next attempt. ``attempts`` is one more than the delays:
    the queue's redrive policy (``maxReceiveCount``) must say the same (template tests keep it so)."""

    def __init__(self, delays: tuple[int, ...], *, jitter: float = 0.0, rand: Callable[[], float] = random.random):
        self.delays = delays
        self.jitter = jitter
        self._rand = rand

    @classmethod
    def of(cls, override: tuple[int, ...] | None) -> RetrySchedule:
        return cls(override) if override else cls(DEFAULT_RETRY_DELAYS, jitter=0.1)

    @property
    def attempts(self) -> int:
        return len(self.delays) + 1

    def delay_after(self, attempt: int) -> int:
        """Seconds before the next attempt, after attempt ``attempt`` (1-based) failed. After the last,
        0: the message comes straight back, and the redrive policy moves it to the dead-letter queue."""
        if attempt == self.attempts:
            return 0
        nominal = self.delays[min(max(attempt, 1), len(self.delays)) - 1]
        factor = 1 - self.jitter + 2 * self.jitter * self._rand()
        return max(0, min(MAX_DELAY_SECONDS, round(nominal * factor)))


class Outcome(StrEnum):
    DELIVERED = "delivered"
    #: Nothing to do: the webhook is gone, or the delivery was done (or is being done) by another copy.
    DROPPED = "dropped"
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reason: str
    status: int | None = None


class SecretCache:
    """Webhook secrets, decrypted once per container and kept for a short time (KMS is not asked on
    every attempt; a key disabled by an operator stops deliveries within the cache's lifetime)."""

    def __init__(self, box: SecretBox, ttl_seconds: float = SECRET_CACHE_SECONDS) -> None:
        self.box = box
        self._cache: TtlCache[bytes] = TtlCache(ttl_seconds, name="webhook-secrets")
        # A batch's deliveries run in parallel: one of them decrypts, the others wait for its answer.
        self._lock = threading.Lock()

    def secret_of(self, webhook: Webhook) -> bytes:
        key = f"{webhook.webhook_id}:{hashlib.sha256(webhook.sealed_secret).hexdigest()}"
        with self._lock:
            return self._cache.get(
                key, lambda: self.box.open(webhook.owner_id, webhook.webhook_id, webhook.sealed_secret)
            )


class WebhookDelivery:
    def __init__(
        self,
        store: WebhookStore,
        ledger: DeliveryLedger,
        secrets: SecretCache,
        queue: DeliveryQueue,
        schedule: RetrySchedule,
        *,
        allow_loopback: bool,
        send: Sender = outbound_http.post,
        timeout: float = outbound_http.DEFAULT_TIMEOUT_SECONDS,
        clock: WallClock = wall_time,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.secrets = secrets
        self.queue = queue
        self.schedule = schedule
        self.allow_loopback = allow_loopback
        self._send = send
        self.timeout = timeout
        self._clock = clock

    def attempt(self, delivery: Delivery, receipt_handle: str, attempt: int) -> Result:
        """One attempt of a queued delivery (``attempt``: its receive count); a failed one is put off
        until its next attempt is due (the caller then leaves the message in the queue)."""
        try:
            result = self.deliver(delivery)
        except Exception as exc:  # a store or KMS outage, a bug: this delivery fails, not the batch
            logger.exception("webhook delivery raised", extra={"webhook_id": delivery.webhook_id})
            result = Result(Outcome.FAILED, type(exc).__name__)
        return self._settle(delivery, receipt_handle, attempt, result)

    def postpone(self, delivery: Delivery, receipt_handle: str, attempt: int, reason: str) -> Result:
        """Not attempted now (an earlier event of its job to the same webhook failed in this batch, or
        the invocation has no time left for it): put off and counted as a failed attempt is, so that it
        comes back behind the earlier one rather than overtaking it."""
        return self._settle(delivery, receipt_handle, attempt, Result(Outcome.FAILED, reason))

    def _settle(self, delivery: Delivery, receipt_handle: str, attempt: int, result: Result) -> Result:
        delay = None
        if result.outcome is Outcome.FAILED:
            delay = self.schedule.delay_after(attempt)
            self.queue.put_off(receipt_handle, delay)
        logger.info(
            "webhook delivery",
            extra={
                "webhook_id": delivery.webhook_id,
                "event_id": delivery.event_id,
                "event_type": delivery.event_type,
                "attempt": attempt,
                "outcome": result.outcome.value,
                "reason": result.reason,
                "http_status": result.status,
                "retry_in_s": delay,
                "last_attempt": result.outcome is Outcome.FAILED and attempt >= self.schedule.attempts,
            },
        )
        return result

    def deliver(self, delivery: Delivery) -> Result:
        webhook = self.store.get(delivery.owner_id, delivery.webhook_id)
        if webhook is None or not webhook.wants(delivery.event_type):
            return Result(Outcome.DROPPED, "webhook deleted")
        key, token = delivery_key(delivery.webhook_id, delivery.event_id), token_source.token_hex(8)
        now = int(self._clock())
        claim = self.ledger.claim(key, token, now=now, lease_seconds=LEASE_SECONDS, keep_seconds=LEDGER_SECONDS)
        if claim is not Claim.CLAIMED:
            return Result(Outcome.DROPPED, f"already {claim.value}")
        try:
            result = self._attempt(webhook, delivery)
        except BaseException:
            self.ledger.release(key, token)
            raise
        if result.outcome is Outcome.DELIVERED:
            self.ledger.delivered(key, now=int(self._clock()))
        else:
            self.ledger.release(key, token)
        return result

    def _attempt(self, webhook: Webhook, delivery: Delivery) -> Result:
        try:
            target = check_url(webhook.url, allow_loopback=self.allow_loopback)
        except InvalidWebhookUrl as refused:
            return Result(Outcome.FAILED, str(refused.details.get("reason", "forbidden address")))
        try:
            secret = self.secrets.secret_of(webhook)
        except SecretUnreadable:
            return Result(Outcome.FAILED, "secret unreadable")
        timestamp = int(self._clock())
        headers = {
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, delivery.event_id, timestamp, delivery.body),
        }
        answer = self._send(target, delivery.body.encode("utf-8"), headers, timeout=self.timeout)
        if answer.succeeded:
            return Result(Outcome.DELIVERED, "2xx", answer.status)
        return Result(Outcome.FAILED, answer.error or f"status {answer.status}", answer.status)
