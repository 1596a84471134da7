"""A client's webhooks: register, list, delete (the routes), and delete them all (a client's erasure).

A new webhook gets an id, a secret (``whsec_`` + base64 of 32 random bytes) and the event types it asked
for (default: all). Its URL is checked as every delivery will check it again (``services.webhook_urls``).
The secret is encrypted with the stack's key before it is stored (``storage.secret_box``) and returned
once, in the create answer: it is never listed, logged or stored in clear. Deleting a webhook stops its
pending deliveries (the delivery worker reads the webhook before each attempt and drops the delivery of
one that is gone).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from models.webhooks import SECRET_BYTES, SECRET_PREFIX, WEBHOOK_ID, Webhook, normalise_events, validate_webhook_id
from services.ids import new_id
from services.webhook_urls import check_url
from storage.secret_box import SecretBox
from storage.webhook_store import WebhookLimitReached, WebhookStore
from utils import metrics
from utils.clock import WallClock, iso_utc, wall_time
from utils.errors import ConfigurationError, InvalidRequest
from utils.logging import get_logger

logger = get_logger("webhooks")


@dataclass(frozen=True)
class WebhookRequest:
    """``POST /api/v1/webhooks``'s body, parsed (types checked; the rules are checked here)."""

    url: str
    events: list[str] | None = None
    description: str | None = None


def secret_text(raw: bytes) -> str:
    """The secret as clients get it and the Standard Webhooks libraries take it."""
    return SECRET_PREFIX + base64.b64encode(raw).decode("ascii")


class WebhookService:
    def __init__(
        self,
        store: WebhookStore,
        secret_box: SecretBox | None,
        *,
        allow_loopback: bool,
        clock: WallClock = wall_time,
    ) -> None:
        self.store = store
        self.secret_box = secret_box
        self.allow_loopback = allow_loopback
        self._clock = clock

    def create(self, owner_id: str, request: WebhookRequest) -> dict[str, Any]:
        """The new webhook as the create answer shows it: with its secret, this once."""
        try:
            events = normalise_events(request.events)
        except ValueError as unknown:
            raise InvalidRequest(
                f"events: {str(unknown)[:64]!r} is not an event type", details={"field": "events"}
            ) from None
        check_url(request.url, allow_loopback=self.allow_loopback)
        if self.secret_box is None:
            raise ConfigurationError("WEBHOOK_SECRETS_KEY is not set: webhooks cannot be created")
        now = self._clock()
        webhook_id = new_id(WEBHOOK_ID, now)
        raw = secrets.token_bytes(SECRET_BYTES)
        webhook = Webhook(
            webhook_id=webhook_id,
            owner_id=owner_id,
            url=request.url,
            events=events,
            description=request.description,
            created_at=iso_utc(now),
            sealed_secret=self.secret_box.seal(owner_id, webhook_id, raw),
        )
        try:
            self.store.add(webhook)
        except WebhookLimitReached as full:
            raise InvalidRequest(
                f"A client may have at most {full.limit} webhooks; delete one first",
                details={"max_webhooks": full.limit},
            ) from None
        logger.info("webhook created", extra={"webhook_id": webhook_id, "events": len(events)})
        metrics.add("WebhooksCreated", 1)
        return {**webhook.to_public(), "secret": secret_text(raw)}

    def list(self, owner_id: str) -> list[dict[str, Any]]:
        return [webhook.to_public() for webhook in self.store.list(owner_id)]

    def delete(self, owner_id: str, webhook_id: str) -> dict[str, Any]:
        """Delete one of the client's webhooks (another client's is ``WebhookNotFound``, as is a
        malformed id); returns it as it was."""
        removed = self.store.remove(owner_id, validate_webhook_id(webhook_id))
        logger.info("webhook deleted", extra={"webhook_id": webhook_id})
        return removed.to_public()

    def delete_all(self, owner_id: str) -> int:
        """Delete every webhook of the client (``python -m ops clients erase``, issue 18); their pending
        deliveries are dropped. Returns how many there were; idempotent."""
        removed = self.store.remove_all(owner_id)
        logger.info("webhooks of a client deleted", extra={"webhooks": removed})
        return removed
