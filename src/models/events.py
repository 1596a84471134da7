"""Job events: what a state change of a job looks like on the event bus (API_CONTRACT.md, Events and webhooks).

One event per state change, derived from the jobs table's stream (``services.job_events``), never from a
request. Its ``id`` is ``{job_id}:{version}``, the version of the job's record after the change, so the
same change redelivered carries the same id (consumers drop duplicates by it) and a job's events sort by
it. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: EventBridge's ``source`` and ``detail-type`` of every job event (rules match on them).
SOURCE = "location-detection.jobs"
DETAIL_TYPE = "Job Status Changed"

CREATED = "job.created"
PROGRESS = "job.progress"
ERASED = "job.erased"
#: Every event type, in the order a job can go through them (``job.{status}`` for each status change).
EVENT_TYPES = (
    CREATED,
    "job.processing",
    PROGRESS,
    "job.completed",
    "job.failed",
    "job.cancelled",
    ERASED,
)


def event_id(job_id: str, version: int) -> str:
    """The event's id: stable across redeliveries of the same change, ordered within a job."""
    return f"{job_id}:{version}"


def status_event_type(status: str) -> str:
    """The event type of a change into ``status`` (``job.completed``...)."""
    return f"job.{status}"


@dataclass(frozen=True)
class JobEvent:
    """One state change of one job."""

    id: str
    type: str
    #: The public job after the change; for ``job.erased`` only ``{"job_id", "erased_at"}``.
    job: dict[str, Any]
    owner_id: str | None
    #: The status before the change (None for ``job.created``).
    previous_status: str | None
    #: When the change happened, epoch seconds (the stream record's approximate creation time).
    time: float

    @property
    def job_id(self) -> str:
        return str(self.job["job_id"])

    def detail(self) -> dict[str, Any]:
        """The event's ``detail``, exactly as the contract gives it."""
        return {
            "id": self.id,
            "type": self.type,
            "job": self.job,
            "owner_id": self.owner_id,
            "previous_status": self.previous_status,
        }


def from_bus_event(event: Any) -> JobEvent:
    """The job event an EventBridge event carries, whole, as a rule's target receives it (``time`` is
    the change's, ISO 8601 UTC). ``ValueError`` for anything that is not a job event."""
    if not isinstance(event, dict) or event.get("source") != SOURCE or event.get("detail-type") != DETAIL_TYPE:
        raise ValueError("not a job event")
    detail = event.get("detail")
    if not isinstance(detail, dict) or detail.get("type") not in EVENT_TYPES or not isinstance(detail.get("job"), dict):
        raise ValueError("a job event without its type or job")
    if not isinstance(detail.get("id"), str):
        raise ValueError("a job event without its id")
    moment = datetime.fromisoformat(str(event.get("time", "")).replace("Z", "+00:00"))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    owner = detail.get("owner_id")
    previous = detail.get("previous_status")
    return JobEvent(
        id=detail["id"],
        type=detail["type"],
        job=detail["job"],
        owner_id=owner if isinstance(owner, str) else None,
        previous_status=previous if isinstance(previous, str) else None,
        time=moment.timestamp(),
    )
