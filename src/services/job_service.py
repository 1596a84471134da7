"""Business rules of jobs: validation, ids, hashing, creation, reads and the state machine.

Knows nothing of HTTP or event shapes; talks to storage only through ``JobsTable`` and
``BlueprintStore``. The HTTP routes and (later) the processing pipeline both drive jobs through here:

    create_job -> pending -> start_processing -> processing -> complete_job | fail_job
                  pending | processing -> cancel_job -> cancelled

Every transition is a conditional write on the status and version the service read; when it loses a
race the service re-reads and decides again (bounded), so callers see the winner's outcome.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.job import API_VERSION, JOB_TTL_SECONDS, Job, JobStatus, can_transition, is_valid_job_id, make_job_id
from services.blueprints import CONTENT_TYPES, SNIFF_BYTES, detect_format, normalise_format, sanitise_filename
from storage.blueprint_store import BlueprintKeyTaken, BlueprintStore, blueprint_key
from storage.jobs_table import JobIdTaken, JobsTable, StaleJob
from utils.clock import WallClock, compact_utc, iso_utc, wall_time
from utils.config import RuntimeConfig
from utils.errors import (
    Conflict,
    FileTooLarge,
    IllegalTransition,
    InvalidFileFormat,
    InvalidJobId,
    InvalidRequest,
    JobAlreadyCompleted,
    JobNotFound,
)
from utils.logging import bind, get_logger

logger = get_logger("job_service")

#: How often a transition re-reads and retries after losing a race before answering CONFLICT.
TRANSITION_ATTEMPTS = 5
#: How many fresh job ids to draw if one is taken (64 random bits: a second draw never happens).
ID_ATTEMPTS = 3


@dataclass(frozen=True)
class RequestInfo:
    """Who asked: recorded on the job for tracing."""

    request_id: str
    correlation_id: str


@dataclass(frozen=True)
class BlueprintFile:
    """A file as a client sent it: bytes plus what the client claims about them."""

    content: bytes
    declared_format: str | None = None
    filename: str | None = None


def validate_job_id(job_id: str) -> str:
    if not is_valid_job_id(job_id):
        raise InvalidJobId(details={"expected_format": "job_{YYYYMMDDTHHMMSS}_{16 lowercase hex}"})
    return job_id


class JobService:
    def __init__(
        self,
        jobs: JobsTable,
        blueprints: BlueprintStore,
        config: RuntimeConfig,
        *,
        clock: WallClock = wall_time,
        random_hex: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self.jobs = jobs
        self.blueprints = blueprints
        self.config = config
        self._clock = clock
        self._random_hex = random_hex

    # ----------------------------------------------------------------------------------- validation
    def resolve_format(self, declared: str | None, head: bytes) -> str:
        """The file's format: detected from its bytes, allowed by config and agreeing with ``declared``."""
        allowed = self.config.allowed_formats
        received = None
        if declared is not None:
            received = normalise_format(declared)
            if received is None or received not in allowed:
                raise InvalidFileFormat(
                    f"File format must be {_listed(allowed)}",
                    details={"received_format": declared, "allowed_formats": list(allowed)},
                )
        detected = detect_format(head[:SNIFF_BYTES])
        if detected is None or detected not in allowed:
            raise InvalidFileFormat(
                f"The file's content is not {_listed(allowed)}",
                details={"received_format": declared, "detected_format": detected or "unknown"},
            )
        if received is not None and received != detected:
            raise InvalidFileFormat(
                f"The file's content is {detected.upper()}, not {received.upper()}",
                details={"received_format": declared, "detected_format": detected},
            )
        return detected

    def check_size(self, size: int) -> None:
        if size <= 0:
            raise InvalidRequest("The file is empty", details={"field": "blueprint.file"})
        if size > self.config.max_upload_bytes:
            raise FileTooLarge(self.config.max_upload_bytes)

    # ------------------------------------------------------------------------------------- creation
    def create_job(self, blueprint: BlueprintFile, request: RequestInfo) -> Job:
        """Validate and store the file, then record the job. Never leaves one without the other."""
        self.check_size(len(blueprint.content))
        fmt = self.resolve_format(blueprint.declared_format, blueprint.content[:SNIFF_BYTES])
        digest = hashlib.sha256(blueprint.content).digest()
        filename = sanitise_filename(blueprint.filename, fmt)
        for _ in range(ID_ATTEMPTS):
            job = self._new_job(fmt, digest.hex(), len(blueprint.content), filename, request)
            try:
                self.blueprints.put_new(job.blueprint_s3_key, blueprint.content, CONTENT_TYPES[fmt], digest)
            except BlueprintKeyTaken:
                continue
            if self._record_or_roll_back(job):
                bind(job_id=job.job_id)
                logger.info("job created", extra={"format": fmt, "size": job.blueprint_size})
                return job
        raise Conflict("Could not allocate a job id; retry the request")

    def _new_job(self, fmt: str, sha256_hex: str, size: int, filename: str, request: RequestInfo) -> Job:
        now = self._clock()
        job_id = make_job_id(compact_utc(now), self._random_hex())
        stamp = iso_utc(now)
        return Job(
            job_id=job_id,
            status=JobStatus.PENDING,
            created_at=stamp,
            updated_at=stamp,
            blueprint_s3_key=blueprint_key(job_id, filename),
            blueprint_format=fmt,
            blueprint_hash=sha256_hex,
            blueprint_size=size,
            blueprint_filename=filename,
            request_id=request.request_id,
            correlation_id=request.correlation_id,
            api_version=API_VERSION,
            expires_at=int(now) + JOB_TTL_SECONDS,
        )

    def _record_or_roll_back(self, job: Job) -> bool:
        """Write the record; on any failure delete the stored file first, then re-raise.

        Returns False only when the id was taken (the caller draws a new one).
        """
        try:
            self.jobs.put_new(job)
            return True
        except BaseException as exc:
            self._delete_orphan(job.blueprint_s3_key, exc)
            if isinstance(exc, JobIdTaken):
                return False
            raise

    def _delete_orphan(self, key: str, cause: BaseException) -> None:
        try:
            self.blueprints.delete(key)
        except Exception:
            # The bucket's 30-day lifecycle rule is the backstop; say loudly which object is left.
            logger.exception("could not delete the blueprint of an unrecorded job", extra={"s3_key": key})
        else:
            logger.warning(
                "job record not written; blueprint deleted", extra={"s3_key": key, "cause": type(cause).__name__}
            )

    # ---------------------------------------------------------------------------------------- reads
    def get_job(self, job_id: str) -> Job:
        """The job, or ``JobNotFound`` (also for a job past its expiry that DynamoDB has not yet deleted)."""
        validate_job_id(job_id)
        job = self.jobs.get(job_id)
        if job is None or job.is_expired(self._clock()):
            raise JobNotFound(details={"job_id": job_id})
        return job

    # ---------------------------------------------------------------------------------- transitions
    def cancel_job(self, job_id: str) -> Job:
        """Cancel a pending or processing job; idempotent for a cancelled one; 409 for a finished one."""
        try:
            return self.transition(job_id, JobStatus.CANCELLED)
        except IllegalTransition as exc:
            raise JobAlreadyCompleted(
                f"The job is {exc.current} and can no longer be cancelled",
                details={"job_id": job_id, "status": exc.current},
            ) from None

    def start_processing(self, job_id: str) -> Job:
        return self.transition(job_id, JobStatus.PROCESSING)

    def fail_job(self, job_id: str, code: str, message: str) -> Job:
        return self.transition(job_id, JobStatus.FAILED, {"error": {"code": code, "message": message}})

    def transition(self, job_id: str, target: JobStatus, fields: dict[str, Any] | None = None) -> Job:
        """Move a job to ``target`` by a conditional write; re-read and decide again if a race is lost.

        Reaching a status the job already has is a no-op only for ``cancelled`` (cancel is idempotent);
        any other move the state machine forbids raises ``IllegalTransition``.
        """
        job = self.get_job(job_id)
        for _ in range(TRANSITION_ATTEMPTS):
            if job.status is target and target is JobStatus.CANCELLED:
                return job
            if not can_transition(job.status, target):
                raise IllegalTransition(job_id, job.status.value, target.value)
            try:
                updated = self.jobs.transition(job, target, iso_utc(self._clock()), fields)
            except StaleJob as stale:
                job = stale.current if stale.current is not None else self.get_job(job_id)
                continue
            logger.info("job status changed", extra={"job_id": job_id, "from": job.status.value, "to": target.value})
            return updated
        raise Conflict(details={"job_id": job_id})


def _listed(formats: tuple[str, ...]) -> str:
    """``PNG, JPG, or PDF``"""
    names = [f.upper() for f in formats]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f", or {names[-1]}"
