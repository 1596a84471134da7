"""``/api/v1/uploads``: a presigned POST for a file too large for a request (finalised by a create)."""

from __future__ import annotations

from typing import Any

from api.dependencies import Dependencies
from api.http import Request, ok


def create_upload(request: Request, deps: Dependencies) -> dict[str, Any]:
    # The body parsers load on the first request that has a body to parse, not at a GET's cold start.
    from api.requests import parse_upload_request  # noqa: PLC0415

    upload = parse_upload_request(request)
    created = deps.upload_service().create_upload(upload.filename, upload.format, upload.size, request.client_id)
    return ok(request, created, 201)
