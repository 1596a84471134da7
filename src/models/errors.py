"""The domain's errors: rules about jobs, uploads and blueprint files that a caller broke.

Each carries the contract's ``code``, a ``message`` safe to show to a client and optional ``details``,
and nothing about HTTP: the api layer owns the one code -> HTTP status table (``api.errors``). Storage and
services raise these; generic errors (a bad request, an outage, a missing setting) are in ``utils.errors``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every domain error."""

    code: ClassVar[str] = "DOMAIN_ERROR"
    default_message: ClassVar[str] = "A rule of the domain was broken"

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class InvalidJobId(DomainError):
    code = "INVALID_JOB_ID"
    default_message = "The job id is not a valid job id"


class InvalidFileFormat(DomainError):
    code = "INVALID_FILE_FORMAT"
    default_message = "File format must be PNG, JPG, or PDF"


class FileTooLarge(DomainError):
    code = "FILE_TOO_LARGE"
    default_message = "The file is larger than the maximum allowed size"

    def __init__(self, max_bytes: int, message: str | None = None) -> None:
        super().__init__(message, details={"max_bytes": max_bytes})


class JobNotFound(DomainError):
    code = "JOB_NOT_FOUND"
    default_message = "Job not found"


class UploadNotFound(DomainError):
    code = "UPLOAD_NOT_FOUND"
    default_message = "Upload not found, expired or already used"


class JobAlreadyCompleted(DomainError):
    code = "JOB_ALREADY_COMPLETED"
    default_message = "The job has already finished and cannot be cancelled"


class JobNotCompleted(DomainError):
    code = "JOB_NOT_COMPLETED"
    default_message = "The job is not completed"


class Conflict(DomainError):
    code = "CONFLICT"
    default_message = "A concurrent update won; retry the request"


class PipelineError(DomainError):
    """An error only the pipeline (the task handler, ``workers.pipeline_task``) and operators can cause:
    not part of the HTTP contract (no route raises one; one reaching the router is a bug, a 500). The
    pipeline sees its ``code`` as the error name a Step Functions ``Catch`` matches (docs/pipeline.md)."""


class IllegalTransition(PipelineError):
    """A move the state machine forbids, asked for by the pipeline or an operator (``start_processing``
    and friends). The routes translate the ones a client can cause (a cancel of a finished job is
    ``JobAlreadyCompleted``)."""

    code = "ILLEGAL_TRANSITION"

    def __init__(self, job_id: str, current: str, target: str) -> None:
        self.job_id = job_id
        self.current = current
        self.target = target
        super().__init__(
            f"job {job_id} cannot move from {current} to {target}",
            details={"job_id": job_id, "status": current, "target": target},
        )


class JobNotProcessing(PipelineError):
    """Progress reported for a job that is not ``processing`` (still pending, cancelled, or finished)."""

    code = "JOB_NOT_PROCESSING"

    def __init__(self, job_id: str, current: str) -> None:
        self.job_id = job_id
        self.current = current
        super().__init__(f"job {job_id} is {current}, not processing", details={"job_id": job_id, "status": current})


class ProgressDecreased(PipelineError):
    """Progress lower than the job already shows: it never goes down."""

    code = "PROGRESS_DECREASED"

    def __init__(self, job_id: str, current: int, reported: int) -> None:
        self.current = current
        super().__init__(
            f"job {job_id} is at {current}%; progress cannot go down to {reported}%",
            details={"job_id": job_id, "progress": current, "reported": reported},
        )


class InvalidProgress(PipelineError):
    """A progress that is not a whole number 0..100, or a stage that is not a short lowercase name."""

    code = "INVALID_PROGRESS"
    default_message = "progress must be an integer 0..100 and stage a name matching [a-z][a-z0-9_-]{0,31}"


class WebhookNotFound(DomainError):
    """No webhook with that id for this client (another client's, deleted, or not an id at all)."""

    code = "WEBHOOK_NOT_FOUND"
    default_message = "Webhook not found"


class InvalidWebhookUrl(DomainError):
    """Not an https URL (loopback http only where allowed), or a host that resolves to an address the API
    never sends to (private, loopback, link-local, metadata, multicast, reserved)."""

    code = "INVALID_WEBHOOK_URL"
    default_message = "The webhook URL must be https and reach a public address"
