"""``Idempotency-Key`` on the POST routes, the HTTP side: what makes two requests "the same", and which
response is kept and replayed (the rules are ``services.idempotency``'s).

A replay is the first response (status, body, ``Location``, ``Content-Type``) with
``Idempotent-Replayed: true``. A first response that is a 5xx or a 429 (over the rate limit: "not now",
not an outcome) is not kept, so a retry runs again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from api.http import Request
from services.idempotency import IdempotencyService
from utils.errors import InvalidRequest, ServiceUnavailable
from utils.logging import get_logger

logger = get_logger("idempotency")

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
            parts = request.form()
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
    request: Request, service: IdempotencyService, handle: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run ``handle`` (which returns a full response, errors included) under the request's key, if any."""
    key = request.header("idempotency-key")
    if key is None:
        return handle()
    attempt = service.begin(request.client_id or "", key, lambda: fingerprint(request))
    if attempt.replay is not None:
        logger.info("idempotent replay", extra={"replayed_request_id": attempt.replay.get("request_id")})
        return _replay(attempt.replay)
    # What the request creates names its record, so an erasure of it finds the record (docs/erasure.md).
    request.idempotency_record = attempt.record_key
    response = handle()
    try:
        if response["statusCode"] >= 500 or response["statusCode"] == 429:
            service.forget(attempt)
        else:
            service.keep(attempt, _keep(response))
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
