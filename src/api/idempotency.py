"""``Idempotency-Key`` on the POST routes, with the semantics of the IETF draft and Stripe.

Scoped to the client. The first request with a key runs and its response is kept for 24 hours; the same
key with the same request (fingerprint: method, path, query, content type and body) replays it with
``Idempotent-Replayed: true``; with a different request it is 422 ``IDEMPOTENCY_KEY_REUSED``; while the
first is still running, 409 ``IDEMPOTENCY_IN_PROGRESS``. A first request that ends in a 5xx does not pin
the key, and the in-progress lock lapses when that request's Lambda would have timed out, so a crashed
attempt never blocks the key for a day.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from typing import Any

from api.http import Request
from api.multipart import parse_form_data
from storage.idempotency_store import IdempotencyStore, record_key
from utils.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidRequest, ServiceUnavailable
from utils.logging import get_logger

logger = get_logger("idempotency")

_KEY = re.compile(r"[\x21-\x7e]{1,255}")
#: How long a response is kept for replays.
RECORD_TTL_SECONDS = 24 * 3600
#: Headers of the first response that a replay repeats (the envelope headers are set again around it).
_REPLAYED_HEADERS = ("Location", "Content-Type")


def fingerprint(request: Request) -> str:
    """What makes two requests "the same": method, path, query, media type and the body's content.

    A form's content is its parts, not its bytes: curl and browsers draw a new boundary on every send,
    so a retried upload would otherwise never match its first attempt.
    """
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.raw_query, request.media_type):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    if request.media_type == "multipart/form-data":
        try:
            parts = parse_form_data(request.body, request.header("content-type") or "")
        except InvalidRequest:
            parts = []  # unparseable: the raw bytes below decide (the request itself will be a 400)
        for form_part in parts:
            for value in (form_part.name, form_part.filename or "", form_part.content_type or ""):
                digest.update(value.encode("utf-8", "surrogatepass") + b"\0")
            digest.update(hashlib.sha256(form_part.data).digest())
        if parts:
            return digest.hexdigest()
    digest.update(request.body)
    return digest.hexdigest()


def run_idempotently(
    request: Request,
    *,
    client_id: str,
    store: IdempotencyStore,
    now: float,
    seconds_left: float | None,
    handle: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run ``handle`` (which returns a full response, errors included) under the request's key, if any."""
    key_header = request.header("idempotency-key")
    if key_header is None:
        return handle()
    if not _KEY.fullmatch(key_header):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters", details={"field": "Idempotency-Key"}
        )
    key = record_key(client_id, key_header)
    lock_until = math.ceil(now + (seconds_left if seconds_left is not None else 30.0))
    request_fingerprint = fingerprint(request)
    existing = store.begin(
        key, request_fingerprint, now=int(now), lock_until=lock_until, expires_at=int(now) + RECORD_TTL_SECONDS
    )
    if existing is not None:
        if existing.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused(details={"field": "Idempotency-Key"})
        if existing.state != "done" or existing.response is None:
            raise IdempotencyInProgress(retry_after=1)
        logger.info("idempotent replay", extra={"replayed_request_id": existing.response.get("request_id")})
        return _replay(existing.response)
    response = handle()
    try:
        if response["statusCode"] >= 500:
            store.abandon(key)
        else:
            store.finish(key, _keep(response), expires_at=int(now) + RECORD_TTL_SECONDS)
    except ServiceUnavailable:
        # The work is done (a job may exist now): answering 503 would make the client retry and, once the
        # lock lapses, create a second job. The client gets its answer; the key simply won't replay it.
        logger.error("idempotency record not kept", extra={"status": response["statusCode"]})
    return response


def _keep(response: dict[str, Any]) -> dict[str, Any]:
    headers = {k: v for k, v in response["headers"].items() if k in _REPLAYED_HEADERS}
    return {
        "statusCode": response["statusCode"],
        "headers": headers,
        "body": response["body"],
        "request_id": response["headers"].get("X-Request-ID"),
    }


def _replay(kept: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": kept["statusCode"],
        # The body is the first response's, so its meta.request_id is too: X-Request-ID says the same.
        "headers": {**kept["headers"], "Idempotent-Replayed": "true", "X-Request-ID": kept["request_id"]},
        "body": kept["body"],
        "isBase64Encoded": False,
    }
