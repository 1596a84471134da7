"""``/api/v1/uploads``: a presigned POST for a file too large for a request (finalised by a create)."""

from __future__ import annotations

from typing import Any

from api.dependencies import Dependencies
from api.http import Request, ok
from api.requests import parse_upload_request


def create_upload(request: Request, deps: Dependencies) -> dict[str, Any]:
    upload = parse_upload_request(request)
    created = deps.upload_service().create_upload(upload.filename, upload.format, upload.size, request.client_id)
    return ok(request, created, 201)
