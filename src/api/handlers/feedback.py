"""``/api/v1/jobs/{job_id}/feedback``: a client's rating and corrections of a completed job."""

from __future__ import annotations

from typing import Any

from api.dependencies import Dependencies
from api.http import Request, ok
from models.ids import validate_job_id


def submit_feedback(request: Request, deps: Dependencies) -> dict[str, Any]:
    # The body parsers load on the first request that has a body to parse, not at a GET's cold start.
    from api.requests import parse_feedback  # noqa: PLC0415

    job_id = validate_job_id(request.path_params["job_id"])
    feedback = parse_feedback(request)
    return ok(request, deps.feedback_service().submit(job_id, feedback, request.info()), 201)
