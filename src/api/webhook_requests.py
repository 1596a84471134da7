"""``POST /api/v1/webhooks``'s body: ``{"url", "events"?: [...], "description"?}``, its types checked here
(the URL's rules and the event types' names are the service's: ``services.webhooks``)."""

from __future__ import annotations

from typing import Any

from api.http import Request
from api.requests import _object, _require_json, _string
from models.webhooks import MAX_DESCRIPTION_CHARS, MAX_URL_CHARS
from services.webhooks import WebhookRequest
from utils.errors import InvalidRequest

#: More entries than there are event types can only be repeats: refused before anything else.
MAX_EVENT_ENTRIES = 20


def parse_webhook_request(request: Request) -> WebhookRequest:
    _require_json(request, "POST /api/v1/webhooks")
    body = _object(request.json_body(), "body", {"url", "events", "description"}, required={"url"})
    url = body["url"]
    if not isinstance(url, str) or not url:
        raise InvalidRequest("url must be a non-empty string", details={"field": "url"})
    if len(url) > MAX_URL_CHARS:
        raise InvalidRequest(f"url must be at most {MAX_URL_CHARS} characters", details={"field": "url"})
    return WebhookRequest(
        url=url,
        events=_events(body.get("events", None), "events" in body),
        description=_string(body, "description", MAX_DESCRIPTION_CHARS),
    )


def _events(value: Any, given: bool) -> list[str] | None:
    if not given or value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_EVENT_ENTRIES:
        raise InvalidRequest(
            f"events must be a list of 1 to {MAX_EVENT_ENTRIES} event types (leave it out for all)",
            details={"field": "events"},
        )
    if not all(isinstance(kind, str) for kind in value):
        raise InvalidRequest("events must be a list of event type names", details={"field": "events"})
    return list(value)
