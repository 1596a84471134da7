"""Business rules of jobs: validation, ids, hashing, creation, reads and the state machine.

Knows nothing of HTTP or event shapes; talks to storage only through ``JobsTable`` and
``BlueprintStore``. The HTTP routes and (later) the processing pipeline both drive jobs through here:

    create_job -> pending -> start_processing -> processing -> complete_job | fail_job
                  pending | processing -> cancel_job -> cancelled

Every transition is a conditional write on the status and version the service read; when it loses a
race the service re-reads and decides again (bounded), so callers see the winner's outcome.

Metrics (``utils.metrics``) count what happened, once: JobsCreated (by Format) and UploadBytes when a job
is recorded, JobsCancelled / JobsCompleted / JobsFailed when this call's conditional write won the
transition (not on a conflict, an illegal move, or a cancel of an already cancelled job).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from models.errors import (
    Conflict,
    FileTooLarge,
    IllegalTransition,
    InvalidFileFormat,
    InvalidJobId,
    JobAlreadyCompleted,
    JobNotFound,
)
from models.job import API_VERSION, JOB_TTL_SECONDS, Job, JobStatus, can_transition, is_valid_job_id, make_job_id
from services.blueprints import CONTENT_TYPES, SNIFF_BYTES, detect_format, normalise_format, sanitise_filename
from storage import Stores
from storage.blueprint_store import BlueprintKeyTaken, blueprint_key
from storage.cache_store import result_key
from storage.jobs_table import JobIdTaken, StaleJob
from utils import metrics
from utils.clock import WallClock, compact_utc, iso_utc, wall_time
from utils.config import RuntimeConfig
from utils.errors import InvalidRequest
from utils.logging import bind, get_logger
from utils.metrics import Unit

logger = get_logger("job_service")

#: How often a transition re-reads and retries after losing a race before answering CONFLICT.
TRANSITION_ATTEMPTS = 5
#: A completion holds the job's result for at most this long (a crashed worker's lock then lapses).
COMPLETION_LOCK_SECONDS = 60
#: How long a second completion of the same job waits for the first before answering CONFLICT.
COMPLETION_WAIT_SECONDS = 10.0
#: How long a completed job's rooms answer creations of the same blueprint (the preview cache's TTL).
PREVIEW_TTL_SECONDS = 3600
#: How many fresh job ids to draw if one is taken (64 random bits: a second draw never happens).
ID_ATTEMPTS = 3
#: The metric a won transition into each status counts (``processing`` is not counted).
TRANSITION_METRICS = {
    JobStatus.CANCELLED: "JobsCancelled",
    JobStatus.COMPLETED: "JobsCompleted",
    JobStatus.FAILED: "JobsFailed",
}


@dataclass(frozen=True)
class RequestInfo:
    """Who asked: recorded on the job for tracing."""

    request_id: str
    correlation_id: str
    #: The calling client (None for operators and the pipeline, who see every job).
    client_id: str | None = None


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


@dataclass(frozen=True)
class JobView:
    """A job as an HTTP client sees it, with what is computed per request rather than stored."""

    job: Job
    #: A live cached preview of the same blueprint (on creation only).
    preview: dict[str, Any] | None = None
    #: A presigned GET of the result (completed jobs only).
    result_url: str | None = None

    def to_public(self) -> dict[str, Any]:
        data = self.job.to_public()
        if self.job.status is JobStatus.COMPLETED:
            data["result_url"] = self.result_url
        if self.preview is not None:
            data["preview"] = self.preview
        return data


class JobService:
    def __init__(
        self,
        stores: Stores,
        config: RuntimeConfig,
        *,
        clock: WallClock = wall_time,
        random_hex: Callable[[], str] = lambda: secrets.token_hex(8),
    ) -> None:
        self.stores = stores
        self.jobs = stores.jobs_table
        self.blueprints = stores.blueprints
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

    def now(self) -> float:
        return self._clock()

    def check_size(self, size: int, field: str = "blueprint.file") -> None:
        if size <= 0:
            raise InvalidRequest("The file is empty", details={"field": field})
        if size > self.config.max_upload_bytes:
            raise FileTooLarge(self.config.max_upload_bytes)

    # ------------------------------------------------------------------------------------- creation
    def create_job(self, blueprint: BlueprintFile, request: RequestInfo) -> JobView:
        """Validate and store the file, then record the job. Never leaves one without the other."""
        self.check_size(len(blueprint.content))
        fmt = self.resolve_format(blueprint.declared_format, blueprint.content[:SNIFF_BYTES])
        digest = hashlib.sha256(blueprint.content).digest()
        filename = sanitise_filename(blueprint.filename, fmt)
        for _ in range(ID_ATTEMPTS):
            job = self.new_job(
                self.new_job_id(),
                fmt,
                sha256_hex=digest.hex(),
                size=len(blueprint.content),
                filename=filename,
                request=request,
            )
            try:
                self.blueprints.put_new(job.blueprint_s3_key, blueprint.content, CONTENT_TYPES[fmt], digest)
            except BlueprintKeyTaken:
                continue
            if self.record_or_roll_back(job):
                return self.created(job)
        raise Conflict("Could not allocate a job id; retry the request")

    def created(self, job: Job) -> JobView:
        """Log and count the new job and return it with any live preview of the same blueprint."""
        bind(job_id=job.job_id)
        logger.info("job created", extra={"format": job.blueprint_format, "size": job.blueprint_size})
        metrics.add("JobsCreated", 1, Format=job.blueprint_format)
        metrics.add("UploadBytes", job.blueprint_size, Unit.BYTES)
        return JobView(job, preview=self.cached_preview(job.blueprint_hash))

    def cached_preview(self, blueprint_hash: str) -> dict[str, Any] | None:
        """The live preview of this blueprint, if a job with the same bytes completed within the hour.

        Best effort: a preview is a bonus, so a failing cache read never fails the request.
        """
        try:
            entry = self.stores.previews.get(blueprint_hash, self._clock())
        except Exception:
            logger.warning("preview cache unavailable; creating the job without a preview", exc_info=True)
            return None
        if entry is None:
            return None
        return {"rooms": entry.get("rooms", []), "model_version": entry.get("model_version"), "cached": True}

    def new_job_id(self) -> str:
        return make_job_id(compact_utc(self._clock()), self._random_hex())

    def new_job(self, job_id: str, fmt: str, *, sha256_hex: str, size: int, filename: str, request: RequestInfo) -> Job:
        now = self._clock()
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
            owner_id=request.client_id,
            api_version=API_VERSION,
            expires_at=int(now) + JOB_TTL_SECONDS,
        )

    def record_or_roll_back(self, job: Job) -> bool:
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
    def get_job_view(self, job_id: str, owner_id: str | None = None) -> JobView:
        """The job, with a fresh short-lived ``result_url`` when it is completed."""
        return self.job_view(self.get_job(job_id, owner_id))

    def job_view(self, job: Job) -> JobView:
        url = None
        if job.status is JobStatus.COMPLETED and job.result_s3_key:
            url = self.stores.cache.presign_get(job.result_s3_key, self.config.presign_expiry_seconds)
        return JobView(job, result_url=url)

    def get_job(self, job_id: str, owner_id: str | None = None) -> Job:
        """The job, or ``JobNotFound``: also for a job past its expiry that DynamoDB has not yet deleted,
        and for another client's job (``owner_id`` given) — the same answer, after the same one read, so
        a client learns nothing about jobs that are not its own."""
        validate_job_id(job_id)
        job = self.jobs.get(job_id)
        if job is None or job.is_expired(self._clock()) or (owner_id is not None and job.owner_id != owner_id):
            raise JobNotFound(details={"job_id": job_id})
        return job

    # ---------------------------------------------------------------------------------- transitions
    def cancel_job(self, job_id: str, owner_id: str | None = None) -> Job:
        """Cancel a pending or processing job; idempotent for a cancelled one; 409 for a finished one."""
        try:
            return self.transition(job_id, JobStatus.CANCELLED, owner_id=owner_id)
        except IllegalTransition as exc:
            raise JobAlreadyCompleted(
                f"The job is {exc.current} and can no longer be cancelled",
                details={"job_id": job_id, "status": exc.current},
            ) from None

    def start_processing(self, job_id: str) -> Job:
        """pending -> processing. ``IllegalTransition`` tells the pipeline the job was cancelled (or is done)."""
        return self.transition(job_id, JobStatus.PROCESSING)

    def complete_job(self, job_id: str, result: dict[str, Any]) -> Job:
        """processing -> completed: store the result, record its key, cache the preview for an hour.

        One completion at a time: a conditional lock on the job (a minute at most, so a crashed worker
        never blocks it) makes this call the only writer of the result object; a second ``complete_job``
        waits for the first to finish and then learns the outcome (``IllegalTransition``). The result
        is written, then the job moves to completed by a conditional write; if that loses (the job was
        cancelled meanwhile) the result is deleted again: no result is left for a job that did not
        complete, and a completed job's result is always the one its own completion wrote.
        """
        rooms, model_version = validate_result(result)
        job, attempt = self._lock_completion(job_id)
        key = result_key(job_id)
        try:
            self.stores.cache.put_json(key, result)
            completed = self.jobs.transition(job, JobStatus.COMPLETED, iso_utc(self._clock()), {"result_s3_key": key})
        except BaseException as exc:
            current = self._unwind_completion(job_id, attempt, key)
            if isinstance(exc, StaleJob):
                status = current.status.value if current else "absent"
                raise IllegalTransition(job_id, status, JobStatus.COMPLETED.value) from None
            raise
        logger.info("job status changed", extra={"job_id": job_id, "from": "processing", "to": "completed"})
        _count_transition(JobStatus.COMPLETED)
        now = self._clock()
        try:
            self.stores.previews.put(
                {
                    "blueprint_hash": completed.blueprint_hash,
                    "rooms": rooms,
                    "model_version": model_version,
                    "timestamp": iso_utc(now),
                    "job_id": job_id,
                    "expires_at": int(now) + PREVIEW_TTL_SECONDS,
                }
            )
        except Exception:  # the preview is a cache: the job is completed whether or not it is written
            logger.warning("could not cache the preview", exc_info=True, extra={"job_id": job_id})
        return completed

    def fail_job(self, job_id: str, error: Mapping[str, Any]) -> Job:
        """processing -> failed, recording ``error`` as ``{code, message}`` for the client."""
        code, message = error.get("code"), error.get("message")
        if not isinstance(code, str) or not code or not isinstance(message, str):
            raise ValueError("error must be {'code': non-empty str, 'message': str}")
        return self.transition(job_id, JobStatus.FAILED, {"error": {"code": code[:64], "message": message[:1000]}})

    def _lock_completion(self, job_id: str) -> tuple[Job, str]:
        attempt = secrets.token_hex(8)
        waited = 0.0
        while True:
            job = self.get_job(job_id)
            if not can_transition(job.status, JobStatus.COMPLETED):
                raise IllegalTransition(job_id, job.status.value, JobStatus.COMPLETED.value)
            now = int(self._clock())
            try:
                return self.jobs.lock_completion(job, attempt, now, now + COMPLETION_LOCK_SECONDS), attempt
            except StaleJob as stale:
                held = stale.current is not None and int(stale.current.extra.get("completing_until", 0)) >= now
                if held:  # another completion is under way: wait for its outcome, briefly
                    if waited >= COMPLETION_WAIT_SECONDS:
                        raise Conflict(
                            "Another completion of this job is in progress", details={"job_id": job_id}
                        ) from None
                    time.sleep(0.05)
                    waited += 0.05

    def _unwind_completion(self, job_id: str, attempt: str, key: str) -> Job | None:
        """After a failed completion: delete its result unless the job completed with it (a write that
        landed before its connection dropped), and give the lock back. Returns the job as it now is."""
        try:
            current = self.jobs.get(job_id)
        except Exception:
            logger.warning("could not re-read a job after a failed completion", extra={"job_id": job_id})
            return None  # cannot tell: keep the result (the bucket's 30-day lifecycle rule is the backstop)
        if current is not None and current.status is JobStatus.COMPLETED and current.result_s3_key == key:
            return current
        self._delete_quietly(key)
        if current is not None and current.extra.get("completing_by") == attempt:
            try:
                self.jobs.unlock_completion(job_id, attempt)
            except Exception:  # it lapses by itself within COMPLETION_LOCK_SECONDS
                logger.warning("could not release a completion lock", extra={"job_id": job_id})
        return current

    def _delete_quietly(self, key: str) -> None:
        try:
            self.stores.cache.delete(key)
        except Exception:
            logger.exception("could not delete a result of a job that did not complete", extra={"s3_key": key})

    def transition(
        self, job_id: str, target: JobStatus, fields: dict[str, Any] | None = None, owner_id: str | None = None
    ) -> Job:
        """Move a job to ``target`` by a conditional write; re-read and decide again if a race is lost.

        Reaching a status the job already has is a no-op only for ``cancelled`` (cancel is idempotent);
        any other move the state machine forbids raises ``IllegalTransition``.
        """
        job = self.get_job(job_id, owner_id)
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
            _count_transition(target)
            return updated
        raise Conflict(details={"job_id": job_id})


def _count_transition(target: JobStatus) -> None:
    name = TRANSITION_METRICS.get(target)
    if name is not None:
        metrics.add(name, 1)


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


def _listed(formats: tuple[str, ...]) -> str:
    """``PNG, JPG, or PDF``"""
    names = [f.upper() for f in formats]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f", or {names[-1]}"
