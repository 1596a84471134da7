"""``/api/v1/webhooks``: register, list and delete the caller's webhooks (another client's are never
seen: a delete of one is 404 ``WEBHOOK_NOT_FOUND``)."""

from __future__ import annotations

from typing import Any

from api.dependencies import Dependencies
from api.http import Request, ok


def create_webhook(request: Request, deps: Dependencies) -> dict[str, Any]:
    # The body's parser (and the URL rules it applies) load on the first registration, not at a GET's
    # cold start: together they were ~15 ms of every container's init (bench/first_request.py).
    from api.webhook_requests import parse_webhook_request  # noqa: PLC0415

    created = deps.webhooks.create(request.client_id or "", parse_webhook_request(request))
    return ok(request, created, 201, {"Location": f"/api/v1/webhooks/{created['webhook_id']}"})


def list_webhooks(request: Request, deps: Dependencies) -> dict[str, Any]:
    return ok(request, {"webhooks": deps.webhooks.list(request.client_id or "")})


def delete_webhook(request: Request, deps: Dependencies) -> dict[str, Any]:
    return ok(request, deps.webhooks.delete(request.client_id or "", request.path_params["webhook_id"]))
