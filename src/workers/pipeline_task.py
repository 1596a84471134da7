"""The processing pipeline's task handler (``Handler: workers.pipeline_task.lambda_handler``): what a Step
Functions task state sends in, the job (or a typed error) out. The pipeline drives jobs with it without
our Python, as the operator CLI does with it (docs/pipeline.md has a state machine that uses it):

    {"action": "start", "job_id": "job_..."}                                      pending -> processing
    {"action": "progress", "job_id": "job_...", "progress": 40, "stage": "ocr"}   while processing
    {"action": "complete", "job_id": "job_...", "result": {"rooms": [...], "model_version": "..."}}
    {"action": "fail", "job_id": "job_...", "error": {"code": "MODEL_ERROR", "message": "..."}}

It answers the job as clients see it (without ``result_url``: a presigned URL does not belong in an
execution's history). An error is raised as an exception *named by its code*, which Lambda reports as the
``errorType`` and Step Functions matches in ``Retry``/``Catch`` (``ErrorEquals: ["JOB_NOT_PROCESSING"]``):
``INVALID_REQUEST``, ``INVALID_JOB_ID``, ``JOB_NOT_FOUND``, ``ILLEGAL_TRANSITION``, ``JOB_NOT_PROCESSING``,
``PROGRESS_DECREASED``, ``INVALID_PROGRESS``, ``CONFLICT``, ``SERVICE_UNAVAILABLE`` (worth retrying), and
``INTERNAL_ERROR`` for anything else (logged; never its internals in the answer). The error message is
JSON: ``{"code", "message", "details"}`` (Step Functions puts it in the ``Cause``).
"""

from __future__ import annotations

import json
from typing import Any

from models.errors import DomainError
from services.job_service import JobService
from utils import logging as log
from utils import metrics, retry
from utils.errors import AppError
from utils.logging import get_logger
from workers import dependencies

logger = get_logger("pipeline_task")

ACTIONS = ("start", "progress", "complete", "fail")
#: Every error name the handler raises (docs/pipeline.md lists what each means).
ERROR_CODES = (
    "INVALID_REQUEST",
    "INVALID_JOB_ID",
    "JOB_NOT_FOUND",
    "ILLEGAL_TRANSITION",
    "JOB_NOT_PROCESSING",
    "PROGRESS_DECREASED",
    "INVALID_PROGRESS",
    "CONFLICT",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_ERROR",
)
#: Kept in hand at the end of an invocation to answer and log.
RESERVE_SECONDS = 1.0


class TaskError(Exception):
    """Base of the errors the pipeline sees; each subclass is named by its code (``TASK_ERRORS``)."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(json.dumps({"code": self.code, "message": message, "details": details or {}}))


#: One exception class per code, whose ``__name__`` is the code: what Step Functions matches on.
TASK_ERRORS: dict[str, type[TaskError]] = {code: type(code, (TaskError,), {"code": code}) for code in ERROR_CODES}


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    log.clear()
    log.bind(aws_request_id=getattr(context, "aws_request_id", None))
    try:
        with metrics.scope():
            action, job_id = _read(event)
            log.bind(job_id=job_id, action=action)
            with retry.deadline(_seconds_left(context)):
                job = _run(action, job_id, event)
            logger.info("pipeline task", extra={"outcome": "ok", "status": job["status"]})
            return job
    except TaskError:
        raise
    except (DomainError, AppError) as exc:
        logger.info("pipeline task", extra={"outcome": exc.code})
        raise _as_task_error(exc.code, exc.message, exc.details) from None
    except ValueError as exc:  # the service's checks of a result or an error
        logger.info("pipeline task", extra={"outcome": "INVALID_REQUEST"})
        raise TASK_ERRORS["INVALID_REQUEST"](str(exc)) from None
    except Exception:
        logger.exception("pipeline task failed")
        raise TASK_ERRORS["INTERNAL_ERROR"]("An unexpected error occurred") from None
    finally:
        log.clear()


def _read(event: Any) -> tuple[str, str]:
    if not isinstance(event, dict):
        raise TASK_ERRORS["INVALID_REQUEST"]("the input must be a JSON object")
    action, job_id = event.get("action"), event.get("job_id")
    if action not in ACTIONS:
        raise TASK_ERRORS["INVALID_REQUEST"](f"action must be one of {', '.join(ACTIONS)}", {"field": "action"})
    if not isinstance(job_id, str):
        raise TASK_ERRORS["INVALID_REQUEST"]("job_id must be a string", {"field": "job_id"})
    return str(action), job_id


def _run(action: str, job_id: str, event: dict[str, Any]) -> dict[str, Any]:
    service = dependencies.get("job_service", JobService)
    if action == "start":
        return service.start_processing(job_id).to_public()
    if action == "progress":
        return service.report_progress(job_id, event.get("progress"), event.get("stage")).to_public()  # type: ignore[arg-type]
    if action == "complete":
        return service.complete_job(job_id, event.get("result")).to_public()  # type: ignore[arg-type]
    error = event.get("error")
    if not isinstance(error, dict):
        raise ValueError("error must be {'code': non-empty str, 'message': str}")
    return service.fail_job(job_id, error).to_public()


def _as_task_error(code: str, message: str, details: dict[str, Any]) -> TaskError:
    """The task error of a domain or generic error; a code the pipeline is not told of is an internal one."""
    if code not in TASK_ERRORS:
        logger.error("an error the pipeline has no name for", extra={"code": code})
        return TASK_ERRORS["INTERNAL_ERROR"]("An unexpected error occurred")
    return TASK_ERRORS[code](message, details)


def _seconds_left(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return max(0.0, float(remaining()) / 1000 - RESERVE_SECONDS)
