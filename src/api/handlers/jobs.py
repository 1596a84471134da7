"""``/api/v1/jobs``: create (a file in the request, or a finished upload), list, get, cancel, erase."""

from __future__ import annotations

from typing import Any

from api.dependencies import Dependencies
from api.http import Request, ok


def create_job(request: Request, deps: Dependencies) -> dict[str, Any]:
    # The body parsers load on the first request that has a body to parse, not at a GET's cold start.
    from api.requests import UploadReference, parse_create_job  # noqa: PLC0415

    config = deps.config()
    parsed = parse_create_job(request, config.max_upload_bytes)
    if isinstance(parsed, UploadReference):
        view = deps.upload_service(config).finalise(parsed.upload_id, request.info())
    else:
        view = deps.job_creation(config).create_job(parsed, request.info())
    return ok(request, view.to_public(), 201, {"Location": f"/api/v1/jobs/{view.job.job_id}"})


def list_jobs(request: Request, deps: Dependencies) -> dict[str, Any]:
    from api.requests import parse_list_query  # noqa: PLC0415 - see create_job

    config = deps.config()
    query = parse_list_query(request, config.default_page_size)
    views, cursor = deps.job_listing(config).list_jobs(request.client_id or "", query)
    return ok(request, {"jobs": [view.to_public() for view in views], "next_cursor": cursor})


def get_job(request: Request, deps: Dependencies) -> dict[str, Any]:
    view = deps.job_service().get_job_view(request.path_params["job_id"], request.client_id)
    return ok(request, view.to_public())


def cancel_job(request: Request, deps: Dependencies) -> dict[str, Any]:
    view = deps.job_service().cancel_job(request.path_params["job_id"], request.client_id)
    return ok(request, view.to_public())


def erase_job(request: Request, deps: Dependencies) -> dict[str, Any]:
    """Not under Idempotency-Key: an erasure is idempotent in effect (a retry finishes it, then 404)."""
    actor = f"client:{request.client_id}"
    receipt = deps.erasure().erase_job(request.path_params["job_id"], request.client_id, actor=actor)
    return ok(request, receipt.to_public())
