"""A client's jobs, newest first, page by page with signed cursors (``GET /api/v1/jobs``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from services.cursors import decode_cursor, encode_cursor, query_fingerprint
from services.job_service import JobService, JobView


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


def list_jobs(
    service: JobService, owner_id: str, query: ListQuery, signing_key: bytes
) -> tuple[list[JobView], str | None]:
    fingerprint = query.fingerprint()
    start = decode_cursor(query.cursor, owner_id, fingerprint, signing_key) if query.cursor else None
    # created_at has whole seconds: exclusive bounds become inclusive ones a second inside.
    after = _stamp(query.created_after + timedelta(seconds=1)) if query.created_after else None
    before = _stamp(query.created_before - timedelta(seconds=1)) if query.created_before else None
    if after and before and after > before:
        return [], None
    jobs, last_key = service.jobs.query_owner(
        owner_id, query.limit, start, int(service.now()), status=query.status, after=after, before=before
    )
    cursor = encode_cursor(last_key, owner_id, fingerprint, signing_key) if last_key else None
    return [service.job_view(job) for job in jobs], cursor
