"""In-memory stores with the contracts of the real ones (``src/storage``), for fast unit tests of services.

Each fake keeps what the real store would write and answers as it would: a versioned write is
conditional on the status and version read (``StaleJob`` with the record in the way when it loses), a new
record or object is refused when its key is taken. ``before_write`` hooks let a test put a racing writer
between a service's read and its write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.job import Job, JobStatus
from storage.blueprint_store import BlueprintKeyTaken
from storage.jobs_table import JobIdTaken, StaleJob


class FakeJobsTable:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.writes: list[tuple[str, str]] = []
        #: Called with the job id before each versioned write (a racing writer goes here).
        self.before_write: Callable[[str], None] | None = None
        self.fail_put: BaseException | None = None

    def put_new(self, job: Job) -> None:
        if self.fail_put is not None:
            raise self.fail_put
        if job.job_id in self.jobs:
            raise JobIdTaken(job.job_id)
        self.jobs[job.job_id] = job
        self.writes.append(("put", job.job_id))

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def _versioned(self, job: Job, sets: dict[str, Any], condition: Callable[[Job], bool]) -> Job:
        if self.before_write is not None:
            self.before_write(job.job_id)
        current = self.jobs.get(job.job_id)
        if current is None or current.version != job.version or not condition(current):
            raise StaleJob(current)
        known = {k: v for k, v in sets.items() if k in Job.__slots__}
        extra = {**current.extra, **{k: v for k, v in sets.items() if k not in known}}
        updated = current.replace(**known, version=current.version + 1, extra=extra)
        self.jobs[job.job_id] = updated
        return updated

    def transition(self, job: Job, target: JobStatus, updated_at: str, fields: dict[str, Any] | None = None) -> Job:
        sets = {"status": target, "updated_at": updated_at, **(fields or {})}
        updated = self._versioned(job, sets, lambda current: current.status is job.status)
        self.writes.append((target.value, job.job_id))
        return updated

    def report_progress(self, job: Job, progress: int, stage: str | None, updated_at: str) -> Job:
        sets: dict[str, Any] = {"progress": progress, "updated_at": updated_at}
        if stage is not None:
            sets["stage"] = stage
        updated = self._versioned(job, sets, lambda current: current.status is job.status)
        self.writes.append(("progress", job.job_id))
        return updated

    def lock_completion(self, job: Job, attempt_id: str, now: int, until: int) -> Job:
        def free(current: Job) -> bool:
            held = int(current.extra.get("completing_until", 0))
            return current.status is JobStatus.PROCESSING and held < now

        updated = self._versioned(job, {"completing_by": attempt_id, "completing_until": until}, free)
        self.writes.append(("lock", job.job_id))
        return updated

    def unlock_completion(self, job_id: str, attempt_id: str) -> None:
        current = self.jobs[job_id]
        if current.extra.get("completing_by") == attempt_id:
            extra = {k: v for k, v in current.extra.items() if k not in ("completing_by", "completing_until")}
            self.jobs[job_id] = current.replace(extra=extra)
            self.writes.append(("unlock", job_id))


class FakeBucket:
    """The blueprints bucket (``put_new``) and the cache bucket (``put_json``, ``presign_get``) in one."""

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.deleted: list[str] = []
        self.taken_once: set[str] = set()
        self.tagged: list[str] = []
        self.fail_put_json: BaseException | None = None
        #: Called with the key before each JSON write (a racing writer goes here).
        self.before_put_json: Callable[[str], None] | None = None

    def put_new(self, key: str, body: bytes, content_type: str, sha256_digest: bytes) -> None:
        if key in self.objects or key in self.taken_once:
            self.taken_once.discard(key)
            raise BlueprintKeyTaken(key)
        self.objects[key] = body

    def put_json(self, key: str, document: Any) -> str | None:
        if self.before_put_json is not None:
            self.before_put_json(key)
        if self.fail_put_json is not None:
            raise self.fail_put_json
        self.objects[key] = document
        return f"v-{len(self.objects)}"

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
        self.deleted.append(key)

    def delete_version(self, key: str, version_id: str | None) -> None:
        self.delete(key)

    def tag_final(self, key: str) -> bool:
        self.tagged.append(key)
        return key in self.objects

    def presign_get(self, key: str, expires_in: int) -> str:
        return f"https://cache.example.test/{key}?expires={expires_in}"


class FakePreviewCache:
    """Entries by ``(owner_id, blueprint_hash)``, as the table keys them."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, owner_id: str, blueprint_hash: str, now_epoch: float) -> dict[str, Any] | None:
        entry = self.entries.get((owner_id, blueprint_hash))
        return entry if entry is not None and entry["expires_at"] > now_epoch else None

    def put_for_live_job(self, owner_id: str, blueprint_hash: str, entry: dict[str, Any]) -> bool:
        self.entries[(owner_id, blueprint_hash)] = {**entry, "owner_id": owner_id}
        return True

    def delete_if_from(self, owner_id: str, blueprint_hash: str, job_id: str) -> None:
        if self.entries.get((owner_id, blueprint_hash), {}).get("job_id") == job_id:
            del self.entries[(owner_id, blueprint_hash)]


class FakeRateLimitStore:
    """``storage.rate_limits.RateLimitStore``'s contract on a dict: the same two conditional updates (the
    refused one leaves the item as it was), and ``peek``. ``calls`` counts the updates each spend made;
    ``fail`` makes every call raise it (``LimiterUnavailable``, as the real store does after its retry)."""

    def __init__(self) -> None:
        self.tats: dict[str, int] = {}
        self.calls: list[int] = []
        self.fail: BaseException | None = None

    def spend(self, key: str, *, now: int, interval: int, tolerance: int) -> Any:
        from storage.rate_limits import Spend

        if self.fail is not None:
            raise self.fail
        tat = self.tats.get(key)
        if tat is None or tat < now:  # the first update's condition
            self.tats[key] = now + interval
            self.calls.append(1)
            return Spend(True, now + interval)
        if tat > now + tolerance:  # refused, and its old values say "over budget": no second update
            self.calls.append(1)
            return Spend(False, tat)
        self.tats[key] = tat + interval  # the second update: tat BETWEEN now AND now + tolerance
        self.calls.append(2)
        return Spend(True, tat + interval)

    def peek(self, key: str) -> int | None:
        if self.fail is not None:
            raise self.fail
        return self.tats.get(key)
