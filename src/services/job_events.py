"""Job events from the jobs table's stream: which write is which state change, and publishing them.

The table is the one source of truth: a request writes the job, and the stream's record of that write
becomes the event (never a second write beside the first, which one day fails alone). From a record's
old and new images (``event_of``):

- a new job record (INSERT) is ``job.created``;
- a status change (MODIFY) is ``job.{new status}``;
- progress or stage changing while processing is ``job.progress``;
- a job record deleted by someone (REMOVE) is ``job.erased``, with ids and the time only;
- anything else is no event: typed items sharing the table (keys that are not job ids: ``idem#...``,
  ``claim#...``, rate limits, webhooks), TTL deletions (DynamoDB's own), writes that change no version
  (the feedback count, an erasure's mark on a finished job, the sweep's end of a blueprint's retention),
  and writes that change no public field the events describe (the completion lock).

A job marked for erasure (``erase_requested_at``) is published with ids, status and times only
(``REDACTED_FIELDS``): after an erasure is asked for, events name no file (the contract). That is the
``job.cancelled`` of a pending or processing job the mark cancels, and anything republished of a
marked job.

Each event's id is ``{job_id}:{version}`` (the new image's version; for ``job.erased``, the deleted
record's version + 1: the next one, fixed by the record, so a redelivered deletion keeps its id).
Delivery is at least once: a batch redelivered after a failure publishes again what it had published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.events import CREATED, ERASED, PROGRESS, JobEvent, event_id, status_event_type
from models.ids import is_valid_job_id
from models.job import Job, JobStatus
from storage.event_bus import EventBus
from storage.job_stream import StreamChange, decode
from utils import metrics
from utils.clock import WallClock, iso_utc, wall_time
from utils.logging import get_logger

logger = get_logger("job_events")


def event_of(change: StreamChange) -> JobEvent | None:
    """The event a change is, or None. ``KeyError``/``ValueError`` for a job record that cannot be read
    (a poison record: the caller stops there and lets the stream's retries and failure queue hold it)."""
    if not is_valid_job_id(change.key) or change.by_service:
        return None
    if change.event_name == "REMOVE":
        return _erased(Job.from_record(_image(change.old)), change.at)
    new = Job.from_record(_image(change.new))
    if change.event_name == "INSERT":
        return _event(CREATED, new, None, change.at)
    if change.event_name != "MODIFY":
        raise ValueError(f"unknown stream event {change.event_name!r}")
    return _modified(Job.from_record(_image(change.old)), new, change.at)


def _modified(old: Job, new: Job, at: float) -> JobEvent | None:
    """The event a MODIFY of ``old`` into ``new`` is, or None."""
    if old.version == new.version:  # every state change bumps the version; this write changed nothing public
        return None
    if old.status is not new.status:
        return _event(status_event_type(new.status.value), new, old.status.value, at)
    moved = (old.progress, old.stage) != (new.progress, new.stage)
    if new.status is JobStatus.PROCESSING and moved:
        return _event(PROGRESS, new, old.status.value, at)
    return None


def state_event(job: Job, at: float) -> JobEvent:
    """An event of the job as it is now, for a change whose record is gone: ``job.{status}`` (a processing
    job with progress: ``job.progress``), its current version's id, no previous status (unknown)."""
    kind = CREATED if job.status is JobStatus.PENDING else status_event_type(job.status.value)
    if job.status is JobStatus.PROCESSING and job.progress is not None:
        kind = PROGRESS
    return _event(kind, job, None, at)


def _image(image: dict[str, Any] | None) -> dict[str, Any]:
    if image is None:
        raise ValueError("the stream record has no image (the stream must keep new and old images)")
    return image


#: What an event shows of a job marked for erasure: ids, status and times, never a file name or hash.
REDACTED_FIELDS = ("job_id", "status", "updated_at", "finished_at")


def _event(kind: str, job: Job, previous: str | None, at: float) -> JobEvent:
    public = job.to_public()
    if job.erasing:
        public = {name: public[name] for name in REDACTED_FIELDS}
    return JobEvent(event_id(job.job_id, job.version), kind, public, job.owner_id, previous, at)


def _erased(job: Job, at: float) -> JobEvent:
    public = {"job_id": job.job_id, "erased_at": iso_utc(at)}  # never file names (the contract)
    return JobEvent(event_id(job.job_id, job.version + 1), ERASED, public, job.owner_id, job.status.value, at)


@dataclass
class Replayed:
    """What a replay found and did."""

    events: int = 0
    published: int = 0
    #: Sequence numbers of records that cannot be read as job changes (skipped, and logged).
    poison: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.published == self.events


class JobEvents:
    """Turns stream records into events on the bus."""

    def __init__(self, bus: EventBus, clock: WallClock = wall_time) -> None:
        self.bus = bus
        self._clock = clock

    def replay(self, records: Iterable[Mapping[str, Any]], *, dry_run: bool = False) -> Replayed:
        """Publish the events of records read back from the stream (the operator's replay): unlike
        ``publish``, a record that cannot be read is skipped and reported, not a stop."""
        outcome, events = Replayed(), []
        for record in records:
            try:
                event = event_of(decode(record))
            except (KeyError, ValueError, TypeError) as exc:
                outcome.poison.append(_poison(record, exc))
                continue
            if event is not None:
                events.append(event)
        outcome.events = len(events)
        outcome.published = len(events) if dry_run else self.bus.publish(events)
        return outcome

    def republish(self, jobs: Iterable[Job], *, dry_run: bool = False) -> Replayed:
        """Publish each job's current state (``state_event``): what can be told of changes whose records
        are gone from the stream."""
        now = self._clock()
        events = [state_event(job, now) for job in jobs]
        return Replayed(len(events), len(events) if dry_run else self.bus.publish(events))

    def publish(self, records: Sequence[Mapping[str, Any]]) -> str | None:
        """Publish the events of ``records`` (stream records, oldest first). Returns None when every
        event is on the bus, else the sequence number of the first record whose event is not (a poison
        record, or the bus refused or was unavailable): everything from there must be delivered again."""
        events: list[tuple[str, JobEvent]] = []
        stopped_at: str | None = None
        for record in records:
            try:
                change = decode(record)
                event = event_of(change)
            except (KeyError, ValueError, TypeError) as exc:
                stopped_at = _poison(record, exc)
                break
            if event is not None:
                events.append((change.sequence_number, event))
        published = self.bus.publish([event for _, event in events])
        metrics.add("JobEventsPublished", published)
        if published < len(events):
            metrics.add("JobEventsUnpublished", len(events) - published)
            stopped_at = events[published][0]
        logger.info(
            "job events",
            extra={"records": len(records), "events": len(events), "published": published, "retry_from": stopped_at},
        )
        return stopped_at


def _poison(record: Mapping[str, Any], exc: Exception) -> str:
    """Log a record that cannot be read (its position and what is wrong, never its contents)."""
    sequence = str(record.get("dynamodb", {}).get("SequenceNumber", ""))
    logger.error(
        "a stream record cannot be read as a job change",
        extra={"sequence_number": sequence, "error_type": type(exc).__name__, "event_name": record.get("eventName")},
    )
    metrics.add("JobEventsPoisonRecords", 1)
    return sequence
