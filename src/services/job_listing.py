"""A client's jobs, newest first, page by page with signed cursors (``GET /api/v1/jobs``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from models.job import JobView
from services.cursors import decode_cursor, encode_cursor, query_fingerprint
from services.job_service import JobService
from storage.jobs_table import JobsTable
from utils.clock import WallClock, wall_time


@dataclass(frozen=True)
class ListQuery:
    limit: int
    cursor: str | None = None
    status: str | None = None
    #: Exclusive bounds on ``created_at`` (timezone-aware).
    created_after: datetime | None = None
    created_before: datetime | None = None

    def fingerprint(self) -> str:
        """What a cursor is bound to: the filters (the page size may change from page to page)."""
        filters = asdict(self)
        del filters["limit"], filters["cursor"]
        return query_fingerprint({k: v.isoformat() if isinstance(v, datetime) else v for k, v in filters.items()})


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobListing:
    def __init__(
        self,
        jobs_table: JobsTable,
        job_service: JobService,
        signing_key: Callable[[], bytes],
        *,
        clock: WallClock = wall_time,
    ) -> None:
        self.jobs_table = jobs_table
        self.job_service = job_service
        self._signing_key = signing_key
        self._clock = clock

    def list_jobs(self, owner_id: str, query: ListQuery) -> tuple[list[JobView], str | None]:
        """One page of the owner's jobs and the cursor of the next (None on the last page)."""
        key = self._signing_key()
        fingerprint = query.fingerprint()
        start = decode_cursor(query.cursor, owner_id, fingerprint, key) if query.cursor else None
        # created_at has whole seconds: exclusive bounds become inclusive ones a second inside.
        after = _stamp(query.created_after + timedelta(seconds=1)) if query.created_after else None
        before = _stamp(query.created_before - timedelta(seconds=1)) if query.created_before else None
        if after and before and after > before:
            return [], None
        jobs, last_key = self.jobs_table.query_owner(
            owner_id, query.limit, start, int(self._clock()), status=query.status, after=after, before=before
        )
        cursor = encode_cursor(last_key, owner_id, fingerprint, key) if last_key else None
        return [self.job_service.job_view(job) for job in jobs], cursor
