"""Client feedback on completed jobs: stored as JSON in the cache bucket and counted on the job."""

from __future__ import annotations

from typing import Any

from models.errors import JobNotCompleted, JobNotFound
from models.ids import FEEDBACK_ID
from models.job import JobStatus, RequestInfo
from services.ids import new_id
from services.job_service import JobService
from storage.cache_store import CacheStore, feedback_key
from storage.jobs_table import JobsTable, StaleJob
from utils.clock import WallClock, iso_utc, wall_time
from utils.logging import get_logger

logger = get_logger("feedback_service")


class Feedback:
    """A client's feedback on a job, as parsed from its request."""

    __slots__ = ("comment", "corrections", "rating")

    def __init__(self, rating: int, comment: str = "", corrections: Any = None) -> None:
        self.rating = rating
        self.comment = comment
        self.corrections = corrections


class FeedbackService:
    def __init__(
        self, job_service: JobService, jobs_table: JobsTable, cache: CacheStore, *, clock: WallClock = wall_time
    ) -> None:
        self.job_service = job_service
        self.jobs_table = jobs_table
        self.cache = cache
        self._clock = clock

    def submit(self, job_id: str, feedback: Feedback, request: RequestInfo) -> dict[str, Any]:
        """Store feedback on a completed job (409 ``JOB_NOT_COMPLETED`` otherwise) and count it."""
        job = self.job_service.get_job(job_id, request.client_id)
        if job.status is not JobStatus.COMPLETED:
            raise _not_completed(job_id, job.status.value)
        now = self._clock()
        feedback_id = new_id(FEEDBACK_ID, now)
        document = {
            "feedback_id": feedback_id,
            "job_id": job_id,
            "rating": feedback.rating,
            "comment": feedback.comment,
            "corrections": feedback.corrections,
            "created_at": iso_utc(now),
            "request_id": request.request_id,
            "correlation_id": request.correlation_id,
        }
        key = feedback_key(job_id, feedback_id)
        version = self.cache.put_json(key, document)
        try:
            counted = self.jobs_table.count_feedback(job_id, feedback_id, JobStatus.COMPLETED)
        except BaseException as exc:
            try:  # exactly this version: a plain delete would leave it behind a delete marker
                self.cache.delete_version(key, version)
            except Exception:
                logger.exception("could not delete uncounted feedback", extra={"s3_key": key})
            if isinstance(exc, StaleJob):
                if exc.current is None or exc.current.erasing:  # deleted, or being erased, since the read
                    raise JobNotFound(details={"job_id": job_id}) from None
                raise _not_completed(job_id, exc.current.status.value) from None
            raise
        logger.info("feedback stored", extra={"job_id": job_id, "feedback_id": feedback_id})
        return {**document, "feedback_count": counted.feedback_count}


def _not_completed(job_id: str, status: str | None) -> JobNotCompleted:
    return JobNotCompleted(
        "Feedback can only be given on a completed job", details={"job_id": job_id, "status": status}
    )
