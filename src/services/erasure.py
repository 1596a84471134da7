"""Erasing a job: everything stored for it, for good (``POST /api/v1/jobs/{job_id}/erase``, the sweep, the
operator CLI). The design, and why each step is where it is: docs/erasure.md.

1. Mark: one conditional write (``storage.job_erasure``). From it on the job is absent to every read
   (404, like any unknown job) and every writer of its objects is refused. A pending or processing job
   is cancelled by the same write; while a completion holds the job's completion lock (it may be writing
   the result object right now) the erasure waits for its outcome instead, briefly.
2. Delete, in an order a retry can resume: every S3 version and delete marker of the blueprint, of the
   upload it came from, of its result and its feedback; the preview entry made from it; the idempotency
   record whose kept answer names it; the upload's claim.
3. Delete the job's record, last, while it still carries the mark.

Anything failing half-way leaves the job marked: the client's retry finishes the work (and answers 200),
and so does the sweep for a client that never retries. Once the record is gone the job is 404 for good.
One audit line per finished erasure (ids and counts, never a file name); metrics JobsErased and
ObjectsErased (and JobsCancelled for a job the mark cancelled).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from models.errors import Conflict, JobNotFound
from models.ids import validate_job_id
from models.job import Job, JobStatus
from services.job_rules import timing
from services.job_service import COMPLETION_WAIT_SECONDS, TRANSITION_ATTEMPTS
from services.previews import PreviewService
from storage.blueprint_store import BlueprintStore
from storage.cache_store import CacheStore
from storage.idempotency_store import IdempotencyStore
from storage.job_erasure import JobErasure, MarkRefused, mark_fields
from storage.jobs_table import JobsTable, StaleJob
from storage.upload_claims import UploadClaims
from storage.upload_store import UploadStore
from utils import metrics
from utils.clock import WallClock, iso_utc, wall_time
from utils.logging import get_logger

logger = get_logger("job_service")
audit = get_logger("audit")

#: How an erasure looks again at a job whose completion is under way: soon (a completion takes
#: milliseconds), then half as often each time, up to every ``LOCK_POLL_MAX_SECONDS``.
LOCK_POLL_SECONDS = 0.01
LOCK_POLL_MAX_SECONDS = 0.2


class ErasureReceipt:
    """What an erasure answers: the job, when it was erased, how many stored objects went with it."""

    __slots__ = ("erased_at", "job_id", "objects_deleted")

    def __init__(self, job_id: str, erased_at: str, objects_deleted: int) -> None:
        self.job_id = job_id
        self.erased_at = erased_at
        self.objects_deleted = objects_deleted

    def to_public(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "erased_at": self.erased_at, "objects_deleted": self.objects_deleted}


class ErasureService:
    def __init__(
        self,
        jobs_table: JobsTable,
        marks: JobErasure,
        *,
        blueprints: BlueprintStore,
        uploads: UploadStore,
        cache: CacheStore,
        previews: PreviewService,
        idempotency: IdempotencyStore,
        claims: UploadClaims,
        clock: WallClock = wall_time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.jobs_table = jobs_table
        self.marks = marks
        self.blueprints = blueprints
        self.uploads = uploads
        self.cache = cache
        self.previews = previews
        self.idempotency = idempotency
        self.claims = claims
        self._clock = clock
        self._sleep = sleep

    def erase_job(
        self, job_id: str, owner_id: str | None = None, *, actor: str, expired_too: bool = False
    ) -> ErasureReceipt:
        """Erase the job (``owner_id``'s, or any job for ``owner_id=None``: operators); ``JobNotFound`` for
        an unknown, fully erased or another client's job, and for an expired one unless ``expired_too`` (an
        operator's erasure of a whole client: what DynamoDB has not deleted yet goes too). A job marked
        already is finished."""
        validate_job_id(job_id)
        job, cancelled = self._mark(job_id, owner_id, expired_too)
        return self._finish(job, actor, cancelled)

    def finish_marked(self, job_id: str, *, actor: str) -> ErasureReceipt | None:
        """Finish an erasure that was marked and cut short (the sweep); None if the job is not marked."""
        job = self.jobs_table.get(job_id)
        return self._finish(job, actor, cancelled=False) if job is not None and job.erasing else None

    # ------------------------------------------------------------------------------------------- mark
    def _target(self, job_id: str, owner_id: str | None, expired_too: bool) -> Job:
        """The job to erase, as stored: a marked one whatever its expiry (its erasure must finish)."""
        job = self.jobs_table.get(job_id)
        if (
            job is None
            or (owner_id is not None and job.owner_id != owner_id)
            or (not job.erasing and not expired_too and job.is_expired(self._clock()))
        ):
            raise JobNotFound(details={"job_id": job_id})
        return job

    def _mark(self, job_id: str, owner_id: str | None, expired_too: bool) -> tuple[Job, bool]:
        """The job, marked (by this call, or before it), and whether this call's mark cancelled it."""
        job = self._target(job_id, owner_id, expired_too)
        waited, pause, refusals = 0.0, LOCK_POLL_SECONDS, 0
        while not job.erasing:
            now = self._clock()
            if _completion_under_way(job, now):
                if waited >= COMPLETION_WAIT_SECONDS:
                    raise Conflict("A completion of this job is in progress; retry", details={"job_id": job_id})
                self._sleep(pause)
                waited, pause = waited + pause, min(pause * 2, LOCK_POLL_MAX_SECONDS)
                job = self._target(job_id, owner_id, expired_too)
                continue
            try:
                return self._write_mark(job, int(now))
            except (StaleJob, MarkRefused) as lost:
                refusals += 1
                if lost.current is None or refusals >= TRANSITION_ATTEMPTS:
                    raise (JobNotFound(details={"job_id": job_id}) if lost.current is None else Conflict()) from None
                job = lost.current
        return job, False

    def _write_mark(self, job: Job, now: int) -> tuple[Job, bool]:
        if job.status in (JobStatus.PENDING, JobStatus.PROCESSING):
            # Cancelled and marked in one conditional write: the pipeline sees the cancellation, and a
            # completion that took its lock since the read loses (the lock changed the version).
            # The cancel's own stamps (finished_at), as any other cancel writes them.
            stamp = iso_utc(now)
            fields = {**timing(JobStatus.CANCELLED, stamp), **mark_fields(now)}
            marked = self.jobs_table.transition(job, JobStatus.CANCELLED, stamp, fields)
            logger.info("job status changed", extra={"job_id": job.job_id, "from": job.status.value, "to": "cancelled"})
            metrics.add("JobsCancelled", 1)
            return marked, True
        return self.marks.mark(job, now), False

    # ----------------------------------------------------------------------------------------- delete
    def _finish(self, job: Job, actor: str, cancelled: bool) -> ErasureReceipt:
        """Steps 2 and 3: each idempotent, so a retry or the sweep resumes wherever this one stopped."""
        objects = self.blueprints.erase_job(job.job_id)
        if job.upload_id:
            objects += self.uploads.erase_upload(job.upload_id)
        objects += self.cache.erase_job(job.job_id)
        if job.status is JobStatus.COMPLETED:  # only a completion makes a preview
            self.previews.forget(job)
        if job.idempotency_record:
            self.idempotency.delete_naming(job.idempotency_record, job.job_id)
        if job.upload_id:
            self.claims.release(job.upload_id, job.job_id)
        self.marks.delete_record(job.job_id)
        receipt = ErasureReceipt(job.job_id, iso_utc(self._clock()), objects)
        audit.info(
            "job erased",
            extra={
                "audit": "erasure",
                "actor": actor,
                "job_id": job.job_id,
                "owner_id": job.owner_id,
                "status": job.status.value,
                "cancelled": cancelled,
                "marked_at": job.erase_requested_at,
                "objects_deleted": objects,
            },
        )
        metrics.add("JobsErased", 1)
        metrics.add("ObjectsErased", objects)
        return receipt


def _completion_under_way(job: Job, now: float) -> bool:
    """A completion holds the job's lock: it may be writing the result object right now."""
    return job.status is JobStatus.PROCESSING and int(job.extra.get("completing_until", 0)) >= now
