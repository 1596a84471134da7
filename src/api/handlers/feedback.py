"""``/api/v1/jobs/{job_id}/feedback``: a client's rating and corrections of a completed job."""

from __future__ import annotations

from typing import Any

from api.dependencies import Dependencies
from api.http import Request, ok
from api.requests import parse_feedback
from models.job import validate_job_id


def submit_feedback(request: Request, deps: Dependencies) -> dict[str, Any]:
    job_id = validate_job_id(request.path_params["job_id"])
    feedback = parse_feedback(request)
    return ok(request, deps.feedback_service().submit(job_id, feedback, request.info()), 201)
