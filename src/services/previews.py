"""The preview cache's policy: a completed job's rooms answer creations of the same blueprint for an hour.

Best effort both ways: a preview is a bonus, so neither a failing read nor a failing write ever fails the
request or the completion that asked for it. Not so its removal by an erasure (``forget``): that fails the
erasure, which is then retried. An entry is written only while its job is live and not being erased.
"""

from __future__ import annotations

from typing import Any

from models.job import Job
from storage.preview_cache import PreviewCache
from utils.clock import iso_utc
from utils.logging import get_logger

#: The job lines keep the logger name they have always had (log queries select on it).
logger = get_logger("job_service")

#: How long a completed job's rooms are offered as the preview of the same bytes (the entry's TTL).
PREVIEW_TTL_SECONDS = 3600


class PreviewService:
    def __init__(self, previews: PreviewCache) -> None:
        self.previews = previews

    def lookup(self, blueprint_hash: str, now: float) -> dict[str, Any] | None:
        """The live preview of this blueprint, if a job with the same bytes completed within the hour."""
        try:
            entry = self.previews.get(blueprint_hash, now)
        except Exception:
            logger.warning("preview cache unavailable; creating the job without a preview", exc_info=True)
            return None
        if entry is None:
            return None
        return {"rooms": entry.get("rooms", []), "model_version": entry.get("model_version"), "cached": True}

    def remember(self, job: Job, rooms: list[Any], model_version: str, now: float) -> None:
        """Offer ``job``'s rooms as the preview of its blueprint from ``now`` on."""
        entry = {
            "blueprint_hash": job.blueprint_hash,
            "rooms": rooms,
            "model_version": model_version,
            "timestamp": iso_utc(now),
            "job_id": job.job_id,
            "expires_at": int(now) + PREVIEW_TTL_SECONDS,
        }
        try:
            written = self.previews.put_for_live_job(entry)
        except Exception:  # the preview is a cache: the job is completed whether or not it is written
            logger.warning("could not cache the preview", exc_info=True, extra={"job_id": job.job_id})
            return
        if not written:
            logger.info("no preview cached: the job is gone or being erased", extra={"job_id": job.job_id})

    def forget(self, job: Job) -> None:
        """Delete the preview made from ``job`` (an erasure's step): the entry of its blueprint, if it still
        names the job. Raises on failure, unlike the other two: an erasure must not end with it left."""
        self.previews.delete_if_from(job.blueprint_hash, job.job_id)
