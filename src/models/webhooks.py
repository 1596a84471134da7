"""Webhooks: a client's endpoints for job events (API_CONTRACT.md, Events and webhooks), and what one
delivery of one event to one endpoint carries. No I/O here.

A webhook is owned by one client (``owner_id``), names the event types it wants (default: all seven) and
holds a secret (``whsec_`` + base64 of 32 random bytes) that signs each delivery. The secret is shown to
the client once, in the create answer; it is stored encrypted (``Webhook.sealed_secret``, bytes the key
service made) and never leaves the service that delivers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from models.errors import WebhookNotFound
from models.events import EVENT_TYPES
from models.ids import IdFormat

#: ``wh_{YYYYMMDDTHHMMSS}_{16 lowercase hex}``: minted like job ids (``services.ids``).
WEBHOOK_ID = IdFormat("webhook", "wh", 16)
#: The contract: at most this many webhooks per client.
MAX_WEBHOOKS = 10
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 500
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


def validate_webhook_id(value: str) -> str:
    """``value`` if it can be a webhook id; anything else names no webhook: ``WebhookNotFound`` (404)."""
    if not WEBHOOK_ID.matches(value):
        raise WebhookNotFound(details={"webhook_id": value[:64]})
    return value


def normalise_events(events: list[str] | None) -> tuple[str, ...]:
    """The event types a webhook wants, in the contract's order, without repeats (None or empty: all).
    ``ValueError`` names the first one that is not an event type."""
    if not events:
        return EVENT_TYPES
    unknown = [kind for kind in events if kind not in EVENT_TYPES]
    if unknown:
        raise ValueError(unknown[0])
    return tuple(kind for kind in EVENT_TYPES if kind in events)


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    owner_id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    created_at: str
    #: The secret as the key service encrypted it (bound to the owner and the webhook id).
    sealed_secret: bytes

    def wants(self, event_type: str) -> bool:
        return event_type in self.events

    def to_public(self) -> dict[str, Any]:
        """The webhook as ``GET /api/v1/webhooks`` lists it: never the secret."""
        return {
            "webhook_id": self.webhook_id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Delivery:
    """One event for one webhook: what the fan-out queues and the delivery worker sends, unchanged on
    every attempt (only ``webhook-timestamp`` and ``webhook-signature`` are made afresh)."""

    webhook_id: str
    owner_id: str
    #: The event's stable id (``{job_id}:{version}``): the ``webhook-id`` header.
    event_id: str
    event_type: str
    #: The request body, exactly as signed and sent: ``{"type", "timestamp", "data": {"job"}}``.
    body: str

    @property
    def chain(self) -> tuple[str, str]:
        """The deliveries that keep an order among themselves: one job's events to one webhook."""
        return self.webhook_id, self.event_id.rpartition(":")[0]

    @property
    def version(self) -> int:
        """Its place in its chain: the job version in ``event_id`` (0 for an id not ending in a number)."""
        version = self.event_id.rpartition(":")[2]
        return int(version) if version.isdigit() else 0

    def to_message(self) -> str:
        return json.dumps(
            {
                "kind": "webhook-delivery",
                "webhook_id": self.webhook_id,
                "owner_id": self.owner_id,
                "event_id": self.event_id,
                "event_type": self.event_type,
                "body": self.body,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_message(cls, text: str) -> Delivery:
        """A queued delivery; ``ValueError`` (or ``KeyError``) for a message that is not one."""
        value = json.loads(text)
        if not isinstance(value, dict) or value.get("kind") != "webhook-delivery":
            raise ValueError("not a webhook delivery")
        fields = ("webhook_id", "owner_id", "event_id", "event_type", "body")
        if not all(isinstance(value.get(name), str) for name in fields):
            raise ValueError("a webhook delivery lacks a field")
        return cls(*(str(value[name]) for name in fields))


def delivery_body(event_type: str, timestamp: str, job: dict[str, Any]) -> str:
    """The contract's delivery body, compact JSON (the bytes that are signed)."""
    payload = {"type": event_type, "timestamp": timestamp, "data": {"job": job}}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
