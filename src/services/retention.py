"""How long a blueprint is kept: no longer than ``BlueprintRetentionDays`` after its job reaches a final
state, and never past the job's own expiry (docs/erasure.md, "Retention").

Two mechanisms, because each alone falls short:

- the sweep (``services.sweep``, hourly): every job has an entry under ``sweep#retention`` in the lookup
  index, due at the job's expiry when it is created and brought forward at its final transition to
  ``min(final + days - one sweep interval, expiry)``; the sweep deletes every version of a due job's
  blueprint (and of the upload it came from). It needs the job's record, which DynamoDB's TTL deletes
  some time after the expiry;
- S3's lifecycle rule ``expire-final-blueprints`` (template.yaml): a final transition tags the blueprint
  (``retention=final``); the rule expires tagged objects ``days`` after their creation, which is never
  later than ``days`` after the final state (creation comes first). Lifecycle rules count from the
  object's creation, not from the tagging, and run asynchronously: the rule is the backstop for a record
  TTL took first, the sweep the guarantee while the record exists.
"""

from __future__ import annotations

from typing import Any

from models.job import Job
from storage.blueprint_store import BlueprintStore
from storage.job_erasure import JobErasure
from storage.jobs_table import JobsTable
from storage.lookups import RETENTION, lookup_entry
from storage.upload_store import UploadStore
from utils import metrics
from utils.logging import get_logger

logger = get_logger("retention")

DAY_SECONDS = 24 * 3600
#: How often the stack's sweep runs (its schedule in template.yaml): a blueprint is due this much before
#: its deadline, so the run that first finds it due still deletes it in time.
SWEEP_INTERVAL_SECONDS = 3600


def at_creation(expires_at: int) -> dict[str, Any]:
    """A new job's retention entry: its blueprint goes when the job expires, finished or not."""
    return lookup_entry(RETENTION, expires_at)


class BlueprintRetention:
    def __init__(
        self, blueprints: BlueprintStore, uploads: UploadStore, jobs_table: JobsTable, marks: JobErasure, days: int
    ) -> None:
        if days < 1:
            raise ValueError("a blueprint is kept at least one day after its job's final state")
        self.blueprints = blueprints
        self.uploads = uploads
        self.jobs_table = jobs_table
        self.marks = marks
        self.days = days

    def due(self, job: Job, final_at: float) -> int:
        """When the blueprint of ``job``, final at ``final_at``, is due for deletion (epoch seconds)."""
        return min(int(final_at) + self.days * DAY_SECONDS - SWEEP_INTERVAL_SECONDS, job.expires_at)

    def final_fields(self, job: Job, final_at: float) -> dict[str, Any]:
        """Written by the final transition itself: the job's retention entry, brought forward."""
        return lookup_entry(RETENTION, self.due(job, final_at))

    def tag_final(self, job: Job) -> None:
        """Tag the blueprint for the lifecycle rule, after the final transition. Best effort: the sweep
        deletes it when due anyway, so a failure is logged, never raised."""
        try:
            self.blueprints.tag_final(job.blueprint_s3_key)
        except Exception:
            logger.warning("could not tag a finished job's blueprint", exc_info=True, extra={"job_id": job.job_id})

    def expire(self, job_id: str, now: float) -> int | None:
        """The sweep's step for a due job: delete every version of its blueprint (and upload) and end its
        retention entry. Returns how many objects went; None if the job is gone, marked for erasure (the
        erasure deletes everything), or no longer due."""
        job = self.jobs_table.get(job_id)
        if job is None or job.erasing or job.lookup_key != RETENTION or (job.lookup_at or 0) > now:
            return None
        deleted = self.blueprints.erase_job(job_id)
        if job.upload_id:
            deleted += self.uploads.erase_upload(job.upload_id)
        self.marks.end_retention(job_id, int(now))
        logger.info("blueprint retention ended", extra={"job_id": job_id, "objects_deleted": deleted})
        metrics.add("BlueprintsExpired", 1)
        metrics.add("ObjectsExpired", deleted)
        return deleted
