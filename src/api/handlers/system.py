"""The public routes: ``/health`` and the OpenAPI document."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from api import http
from api.dependencies import Dependencies
from api.http import Request, ok

OPENAPI_DOCUMENT = Path(__file__).resolve().parent.parent / "openapi.json"


def health_check(request: Request, deps: Dependencies) -> dict[str, Any]:
    """200 ``healthy`` or ``degraded`` (cached values still serve), 503 ``unhealthy`` (requests would fail)."""
    report = deps.health.check()
    return ok(request, report, 503 if report["status"] == "unhealthy" else 200)


def openapi_document(request: Request, deps: Dependencies) -> dict[str, Any]:
    """The OpenAPI 3.1 document itself (not in the envelope: it is the document clients feed to tools)."""
    headers = http.envelope_headers(request.request_id, request.correlation_id)
    return {"statusCode": 200, "headers": headers, "body": _openapi_text(), "isBase64Encoded": False}


@functools.cache
def _openapi_text() -> str:
    return OPENAPI_DOCUMENT.read_text(encoding="utf-8")
