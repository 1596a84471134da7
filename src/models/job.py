"""The one shape of a job: fields, status enum, allowed transitions, record (de)serialisation, and the
job as a client sees it (``JobView``). Its id format is ``models.ids``.

No I/O here. ``to_record``/``from_record`` convert to and from the plain attribute map stored in
DynamoDB (absent attributes for ``None``; numbers come back as ``Decimal`` and are turned into ``int``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Any

from models.records import FrozenRecord, Record

#: The version of the contract every response names (``meta.api_version``) and every job records.
API_VERSION = "v1"
JOB_TTL_SECONDS = 7 * 24 * 3600


#: Canonical format -> (its file extensions, its content types). The first extension is the one a
#: filename without one gets; the first content type is the one stored. Other spellings are aliases
#: (``jpeg``, and the non-standard JPEG content types clients send).
FORMATS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "png": (("png",), ("image/png",)),
    "jpg": (("jpg", "jpeg"), ("image/jpeg", "image/jpg", "image/pjpeg")),
    "pdf": (("pdf",), ("application/pdf",)),
}


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: The state machine. Final states map to nothing: nothing moves a job out of them.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.PROCESSING, JobStatus.CANCELLED}),
    JobStatus.PROCESSING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


#: A pipeline stage: a short lowercase name (``preprocessing``, ``room-detection``, ``ocr_2``).
STAGE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
#: The pipeline's progress: a whole percentage.
MIN_PROGRESS, MAX_PROGRESS = 0, 100


# Fields a client sees, in the contract's order.
PUBLIC_FIELDS = tuple(
    "job_id status created_at updated_at blueprint_s3_key blueprint_format blueprint_hash"  # noqa: SIM905 - a list is a name a line
    " blueprint_size blueprint_filename result_s3_key error started_at finished_at progress stage"
    " request_id correlation_id api_version feedback_count".split()
)


class Job(FrozenRecord):
    """A job as stored (not a dataclass: building this one cost ~3 ms of every cold start; ``models.records``)."""

    _uncompared = frozenset({"extra"})

    job_id: str
    status: JobStatus
    created_at: str
    updated_at: str
    blueprint_s3_key: str
    blueprint_format: str
    blueprint_hash: str
    blueprint_size: int
    blueprint_filename: str
    request_id: str
    correlation_id: str
    #: Epoch seconds; the table's TTL attribute. Reads treat a job past it as absent.
    expires_at: int
    api_version: str
    result_s3_key: str | None
    error: dict[str, str] | None
    #: When it entered ``processing`` / reached a final state (set by the job service, never by a client).
    started_at: str | None
    finished_at: str | None
    #: What the pipeline reported: a percentage that never goes down (100 once completed), a stage name.
    progress: int | None
    stage: str | None
    #: Incremented by every write of a public field except the feedback count, and by the completion
    #: lock; part of each transition's condition. Events are ``{job_id}:{version}`` (models.events).
    version: int
    feedback_count: int
    #: The client that created the job; only it sees the job. None for jobs made before ownership.
    owner_id: str | None
    #: Where the file came from and what names the job, kept so an erasure finds them without a Scan
    #: (docs/erasure.md): the upload it was made from, the Idempotency-Key record whose answer names it.
    upload_id: str | None
    idempotency_record: str | None
    #: When its erasure was asked for (epoch seconds): from then on every read treats the job as absent.
    erase_requested_at: int | None
    #: The lookup index's entry (``storage.lookups``): what the sweep must do with the job, and when.
    lookup_key: str | None
    lookup_at: int | None
    #: Attributes this code does not know, kept as read.
    extra: dict[str, Any]
    # The fields, in order, are the annotations above (listed once): its stored attributes, then extra.
    __slots__ = tuple(__annotations__)

    def __init__(
        self,
        *,
        job_id: str,
        status: JobStatus,
        created_at: str,
        updated_at: str,
        blueprint_s3_key: str,
        blueprint_format: str,
        blueprint_hash: str,
        blueprint_size: int,
        blueprint_filename: str,
        request_id: str,
        correlation_id: str,
        expires_at: int,
        api_version: str = API_VERSION,
        result_s3_key: str | None = None,
        error: dict[str, str] | None = None,
        started_at: str | None = None,
        finished_at: str | None = None,
        progress: int | None = None,
        stage: str | None = None,
        version: int = 1,
        feedback_count: int = 0,
        owner_id: str | None = None,
        upload_id: str | None = None,
        idempotency_record: str | None = None,
        erase_requested_at: int | None = None,
        lookup_key: str | None = None,
        lookup_at: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        given = locals()  # the parameters, by name: one loop instead of 28 assignments
        for name in _RECORD_FIELDS:
            object.__setattr__(self, name, given[name])
        object.__setattr__(self, "extra", {} if extra is None else extra)

    def is_expired(self, now_epoch: float) -> bool:
        return self.expires_at <= now_epoch

    @property
    def erasing(self) -> bool:
        """Marked for erasure: gone for every reader, its data about to be (or being) deleted."""
        return self.erase_requested_at is not None

    def to_public(self) -> dict[str, Any]:
        """The job as the contract shows it to clients."""
        data = {name: getattr(self, name) for name in PUBLIC_FIELDS}
        data["status"] = self.status.value
        return data

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for name in _RECORD_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            record[name] = value.value if isinstance(value, JobStatus) else value
        record.update(self.extra)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in record.items():
            (values if key in _KNOWN_FIELDS else extra)[key] = _plain(value)
        values["status"] = JobStatus(values["status"])
        return cls(**values, extra=extra)


#: A job's stored attributes, in order.
_RECORD_FIELDS = Job.__slots__[:-1]
_KNOWN_FIELDS = frozenset(_RECORD_FIELDS)


def _plain(value: Any) -> Any:
    """DynamoDB numbers arrive as Decimal; our numbers are all integers."""
    if type(value) is str:  # most attributes: nothing to convert
        return value
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class RequestInfo(Record):
    """Who asked: recorded on the job for tracing. (Plain classes here and below, not dataclasses: each
    dataclass costs about a millisecond of every cold start to build; ``bench/first_request.py``.)"""

    __slots__ = ("client_id", "correlation_id", "idempotency_record", "request_id")

    def __init__(
        self,
        request_id: str,
        correlation_id: str,
        client_id: str | None = None,
        idempotency_record: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.correlation_id = correlation_id
        #: The calling client (None for operators and the pipeline, who see every job).
        self.client_id = client_id
        #: The Idempotency-Key record the request runs under, if any: a job it creates names it.
        self.idempotency_record = idempotency_record


class JobView(Record):
    """A job as a client sees it, with what is computed per request rather than stored."""

    __slots__ = ("job", "preview", "result_url")
    __hash__ = None  # type: ignore[assignment]  # holds a dict: not hashable, as the dataclass was not

    def __init__(self, job: Job, preview: dict[str, Any] | None = None, result_url: str | None = None) -> None:
        self.job = job
        #: A live cached preview of the same blueprint (on creation only).
        self.preview = preview
        #: A presigned GET of the result (completed jobs only).
        self.result_url = result_url

    def to_public(self) -> dict[str, Any]:
        data = self.job.to_public()
        if self.job.status is JobStatus.COMPLETED:
            data["result_url"] = self.result_url
        if self.preview is not None:
            data["preview"] = self.preview
        return data
