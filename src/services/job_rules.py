"""The job service's pure rules: what a transition stamps on a job besides its status, and what the
pipeline's progress reports and results must look like. No I/O; shared by ``services.job_service`` and
``services.erasure`` (whose mark cancels a running job with the same stamps as any other cancel)."""

from __future__ import annotations

from typing import Any

from models.errors import InvalidProgress
from models.job import MAX_PROGRESS, MIN_PROGRESS, STAGE, JobStatus


def timing(target: JobStatus, now: str) -> dict[str, Any]:
    """What a move to ``target`` at ``now`` stamps on the job besides its status."""
    if target is JobStatus.PROCESSING:
        return {"started_at": now}
    fields: dict[str, Any] = {"finished_at": now}
    if target is JobStatus.COMPLETED:
        fields["progress"] = MAX_PROGRESS
    return fields


def check_progress(progress: Any, stage: Any) -> None:
    """``InvalidProgress`` unless ``progress`` is an integer 0..100 and ``stage`` None or a stage name."""
    whole = isinstance(progress, int) and not isinstance(progress, bool)
    if not whole or not MIN_PROGRESS <= progress <= MAX_PROGRESS:
        raise InvalidProgress(details={"field": "progress"})
    if stage is not None and (not isinstance(stage, str) or STAGE.fullmatch(stage) is None):
        raise InvalidProgress(details={"field": "stage", "pattern": STAGE.pattern})


def validate_result(result: Any) -> tuple[list[Any], str]:
    """A pipeline result: ``{"rooms": [...], "model_version": "...", ...}`` (other keys are kept)."""
    if not isinstance(result, dict):
        raise ValueError("result must be a JSON object")
    rooms, model_version = result.get("rooms"), result.get("model_version")
    if not isinstance(rooms, list):
        raise ValueError("result.rooms must be a list")
    if not isinstance(model_version, str) or not model_version:
        raise ValueError("result.model_version must be a non-empty string")
    return rooms, model_version
