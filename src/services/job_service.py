"""Jobs after creation: reads, cancel, and the state machine the processing pipeline drives.

Knows nothing of HTTP or event shapes. Creation is ``services.job_creation``; the HTTP routes and the
processing pipeline (and the ``ops`` CLI) drive existing jobs through here:

    pending -> start_processing -> processing -> complete_job | fail_job
    pending | processing -> cancel_job -> cancelled
    processing -> report_progress -> processing (progress, stage)

Every transition is a conditional write on the status and version the service read; when it loses a
race the service re-reads and decides again (bounded), so callers see the winner's outcome. The same
write stamps the timing: ``started_at`` on entering processing, ``finished_at`` on reaching a final
state, and ``progress`` 100 on completion.

A job marked for erasure (``services.erasure``) is absent to every read here, so the pipeline's later
``start_processing``/``complete_job``/``fail_job`` fail cleanly with ``JobNotFound``. A final transition
brings the blueprint's deletion forward and tags it for the lifecycle rule (``services.retention``).

Metrics (``utils.metrics``) count what happened, once: JobsCancelled / JobsCompleted / JobsFailed when
this call's conditional write won the transition (not on a conflict, an illegal move, or a cancel of an
already cancelled job).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from models.errors import (
    Conflict,
    IllegalTransition,
    JobAlreadyCompleted,
    JobNotFound,
    JobNotProcessing,
    ProgressDecreased,
)
from models.ids import validate_job_id
from models.job import ALLOWED_TRANSITIONS, Job, JobStatus, JobView, can_transition
from services.job_rules import check_progress, timing, validate_result
from services.previews import PreviewService
from services.retention import BlueprintRetention
from services.runtime_config import RuntimeConfig
from storage.cache_store import CacheStore, result_key
from storage.jobs_table import JobsTable, StaleJob
from utils import metrics
from utils.clock import WallClock, iso_utc, wall_time
from utils.logging import get_logger

logger = get_logger("job_service")

#: How often a transition re-reads and retries after losing a race before answering CONFLICT.
TRANSITION_ATTEMPTS = 5
#: A completion holds the job's result for at most this long (a crashed worker's lock then lapses).
COMPLETION_LOCK_SECONDS = 60
#: How long a second completion of the same job waits for the first before answering CONFLICT.
COMPLETION_WAIT_SECONDS = 10.0
#: The metric a won transition into each status counts (``processing`` is not counted).
TRANSITION_METRICS = {
    JobStatus.CANCELLED: "JobsCancelled",
    JobStatus.COMPLETED: "JobsCompleted",
    JobStatus.FAILED: "JobsFailed",
}


class JobService:
    def __init__(
        self,
        jobs_table: JobsTable,
        cache: CacheStore,
        previews: PreviewService,
        config: RuntimeConfig,
        *,
        retention: BlueprintRetention,
        clock: WallClock = wall_time,
    ) -> None:
        self.jobs_table = jobs_table
        self.cache = cache
        self.previews = previews
        self.config = config
        self.retention = retention
        self._clock = clock

    # ---------------------------------------------------------------------------------------- reads
    def get_job(self, job_id: str, owner_id: str | None = None) -> Job:
        """The job, or ``JobNotFound``: also for a job past its expiry that DynamoDB has not yet deleted,
        one marked for erasure, and another client's job (``owner_id`` given) — the same answer, after the
        same one read, so a client learns nothing about jobs that are not its own."""
        validate_job_id(job_id)
        return self._live(job_id, self.jobs_table.get(job_id), owner_id)

    def _live(self, job_id: str, job: Job | None, owner_id: str | None = None) -> Job:
        if job is None or job.erasing or job.is_expired(self._clock()):
            raise JobNotFound(details={"job_id": job_id})
        if owner_id is not None and job.owner_id != owner_id:
            raise JobNotFound(details={"job_id": job_id})
        return job

    def get_job_view(self, job_id: str, owner_id: str | None = None) -> JobView:
        """The job, with a fresh short-lived ``result_url`` when it is completed."""
        return self.job_view(self.get_job(job_id, owner_id))

    def job_view(self, job: Job) -> JobView:
        url = None
        if job.status is JobStatus.COMPLETED and job.result_s3_key:
            url = self.cache.presign_get(job.result_s3_key, self.config.presign_expiry_seconds)
        return JobView(job, result_url=url)

    # ---------------------------------------------------------------------------------- transitions
    def cancel_job(self, job_id: str, owner_id: str | None = None) -> JobView:
        """Cancel a pending or processing job; idempotent for a cancelled one; 409 for a finished one."""
        try:
            return self.job_view(self.transition(job_id, JobStatus.CANCELLED, owner_id=owner_id))
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
        version: list[str | None] = []
        try:
            version.append(self.cache.put_json(key, result))
            now = self._clock()
            fields = {
                "result_s3_key": key,
                **timing(JobStatus.COMPLETED, iso_utc(now)),
                **self.retention.final_fields(job, now),
            }
            completed = self.jobs_table.transition(job, JobStatus.COMPLETED, iso_utc(now), fields)
        except BaseException as exc:
            current = self._unwind_completion(job_id, attempt, key, version[0] if version else None)
            if isinstance(exc, StaleJob):
                self._live(job_id, current)  # erased meanwhile: as absent as for any reader
                status = current.status.value if current else "absent"
                raise IllegalTransition(job_id, status, JobStatus.COMPLETED.value) from None
            raise
        logger.info("job status changed", extra={"job_id": job_id, "from": "processing", "to": "completed"})
        _count_transition(JobStatus.COMPLETED)
        self.retention.tag_final(completed)
        self.previews.remember(completed, rooms, model_version, self._clock())
        return completed

    def fail_job(self, job_id: str, error: Mapping[str, Any]) -> Job:
        """processing -> failed, recording ``error`` as ``{code, message}`` for the client."""
        code, message = error.get("code"), error.get("message")
        if not isinstance(code, str) or not code or not isinstance(message, str):
            raise ValueError("error must be {'code': non-empty str, 'message': str}")
        return self.transition(job_id, JobStatus.FAILED, {"error": {"code": code[:64], "message": message[:1000]}})

    def report_progress(self, job_id: str, progress: int, stage: str | None = None) -> Job:
        """The pipeline's progress on a processing job: ``progress`` (0..100, never lower than the job's)
        and, optionally, the ``stage`` it is in (``None`` keeps the current one).

        ``JobNotProcessing`` once the job is not processing (pending, cancelled, finished: the pipeline
        should stop), ``ProgressDecreased`` for a lower figure, ``InvalidProgress`` for a bad one. A report
        that changes nothing writes nothing (no new version, no event). One conditional write on the
        status and version read; a lost race is decided again against the winner's write.
        """
        check_progress(progress, stage)
        job = self.get_job(job_id)
        for _ in range(TRANSITION_ATTEMPTS):
            if job.status is not JobStatus.PROCESSING:
                raise JobNotProcessing(job_id, job.status.value)
            if job.progress is not None and progress < job.progress:
                raise ProgressDecreased(job_id, job.progress, progress)
            if progress == job.progress and stage in (None, job.stage):
                return job
            try:
                return self.jobs_table.report_progress(job, progress, stage or job.stage, iso_utc(self._clock()))
            except StaleJob as stale:
                job = stale.current if stale.current is not None else self.get_job(job_id)
        raise Conflict(details={"job_id": job_id})

    def _lock_completion(self, job_id: str) -> tuple[Job, str]:
        attempt = secrets.token_hex(8)
        waited = 0.0
        while True:
            job = self.get_job(job_id)
            if not can_transition(job.status, JobStatus.COMPLETED):
                raise IllegalTransition(job_id, job.status.value, JobStatus.COMPLETED.value)
            now = int(self._clock())
            try:
                return self.jobs_table.lock_completion(job, attempt, now, now + COMPLETION_LOCK_SECONDS), attempt
            except StaleJob as stale:
                held = stale.current is not None and int(stale.current.extra.get("completing_until", 0)) >= now
                if held:  # another completion is under way: wait for its outcome, briefly
                    if waited >= COMPLETION_WAIT_SECONDS:
                        raise Conflict(
                            "Another completion of this job is in progress", details={"job_id": job_id}
                        ) from None
                    time.sleep(0.05)
                    waited += 0.05

    def _unwind_completion(self, job_id: str, attempt: str, key: str, version: str | None) -> Job | None:
        """After a failed completion: delete its result (exactly the version it wrote: a plain delete would
        leave it behind a delete marker, out of an erasure's reach once the job is gone) unless the job
        completed with it (a write that landed before its connection dropped), and give the lock back.
        Returns the job as it now is."""
        try:
            current = self.jobs_table.get(job_id)
        except Exception:
            logger.warning("could not re-read a job after a failed completion", extra={"job_id": job_id})
            return None  # cannot tell: keep the result (the bucket's 30-day lifecycle rule is the backstop)
        if current is not None and current.status is JobStatus.COMPLETED and current.result_s3_key == key:
            return current
        self._delete_quietly(key, version)
        if current is not None and current.extra.get("completing_by") == attempt:
            try:
                self.jobs_table.unlock_completion(job_id, attempt)
            except Exception:  # it lapses by itself within COMPLETION_LOCK_SECONDS
                logger.warning("could not release a completion lock", extra={"job_id": job_id})
        return current

    def _delete_quietly(self, key: str, version: str | None) -> None:
        try:
            self.cache.delete_version(key, version)
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
        final = not ALLOWED_TRANSITIONS[target]
        for _ in range(TRANSITION_ATTEMPTS):
            if job.status is target and target is JobStatus.CANCELLED:
                return job
            if not can_transition(job.status, target):
                raise IllegalTransition(job_id, job.status.value, target.value)
            now = self._clock()
            stamp = iso_utc(now)
            sets = {**(fields or {}), **timing(target, stamp)}
            if final:
                sets.update(self.retention.final_fields(job, now))
            try:
                updated = self.jobs_table.transition(job, target, stamp, sets)
            except StaleJob as stale:
                job = self._live(job_id, stale.current if stale.current is not None else self.jobs_table.get(job_id))
                continue
            logger.info("job status changed", extra={"job_id": job_id, "from": job.status.value, "to": target.value})
            _count_transition(target)
            if final:
                self.retention.tag_final(updated)
            return updated
        raise Conflict(details={"job_id": job_id})


def _count_transition(target: JobStatus) -> None:
    name = TRANSITION_METRICS.get(target)
    if name is not None:
        metrics.add(name, 1)
