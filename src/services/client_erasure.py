"""A whole client's data: what is stored for it (``inventory``, the dry run), its erasure (``erase``) and its
export for a data-access request (``export``). Driven by the operator CLI (``python -m ops clients ...``),
with the operator's credentials: it lists what the function itself never lists (a client's uploads).

What a client has, and how each is found without a Scan:

- its jobs: the owner index (every one still stored, expired or marked too), each erased as one job is
  (``services.erasure``: every version of its objects, its preview, its idempotency record, its record);
- its uploads that never became a job: the ``uploads/`` prefix (one day of uploads at most: its lifecycle
  rule), each object's ``owner`` metadata; every version goes;
- its idempotency records: the lookup index (``client#{client_id}``): kept answers name its uploads' files;
- whatever else a feature keeps per client (webhooks, issue 17): ``ClientData`` parts given to the
  constructor, listed and erased with the rest.

Its API keys live in the api-keys secret, which the operator CLI edits itself (``ops.keys``): it revokes
them first, so the client stops adding data (within the Lambda's five-minute secret cache) while this runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from models.errors import JobNotFound
from services.erasure import ErasureService
from storage.cache_store import CacheStore
from storage.idempotency_store import IdempotencyStore
from storage.jobs_table import JobsTable
from storage.lookups import Lookups, client_lookup
from storage.upload_store import UploadStore
from utils import metrics
from utils.clock import WallClock, iso_utc, wall_time
from utils.logging import get_logger

audit = get_logger("audit")


class ClientData(Protocol):
    """A kind of per-client data kept by a feature of its own (issue 17's webhooks): what the client has of
    it, and its erasure. Given to ``ClientErasure`` so that a client's erasure takes it too."""

    name: str

    def ids_of(self, client_id: str) -> list[str]: ...

    def erase(self, client_id: str) -> int: ...


class ClientErasure:
    def __init__(
        self,
        erasure: ErasureService,
        lookups: Lookups,
        *,
        jobs_table: JobsTable,
        uploads: UploadStore,
        idempotency: IdempotencyStore,
        cache: CacheStore,
        parts: Sequence[ClientData] = (),
        clock: WallClock = wall_time,
    ) -> None:
        self.erasure = erasure
        self.lookups = lookups
        self.jobs_table = jobs_table
        self.uploads = uploads
        self.idempotency = idempotency
        self.cache = cache
        self.parts = tuple(parts)
        self._clock = clock

    def inventory(self, client_id: str) -> dict[str, Any]:
        """What an erasure of the client would remove (ids only: no file names)."""
        return {
            "jobs": self.lookups.jobs_of(client_id),
            "uploads": self.uploads.owned_by(client_id),
            "idempotency_records": len(self.lookups.every(client_lookup(client_id))),
            **{part.name: part.ids_of(client_id) for part in self.parts},
        }

    def erase(self, client_id: str, *, actor: str) -> dict[str, int]:
        """Erase everything ``inventory`` lists; returns the counts. Idempotent: run it again after a
        failure (or after the keys' cache expired) and it finishes what is left."""
        counts = {"jobs": 0, "objects_deleted": 0, "uploads": 0, "idempotency_records": 0}
        for job_id in self.lookups.jobs_of(client_id):
            try:
                receipt = self.erasure.erase_job(job_id, client_id, actor=actor, expired_too=True)
            except JobNotFound:  # erased meanwhile (its own erasure, the sweep, TTL)
                continue
            counts["jobs"] += 1
            counts["objects_deleted"] += receipt.objects_deleted
        for upload_id in self.uploads.owned_by(client_id):
            counts["objects_deleted"] += self.uploads.erase_upload(upload_id)
            counts["uploads"] += 1
        for record in self.lookups.every(client_lookup(client_id)):
            self.idempotency.abandon(record)
            counts["idempotency_records"] += 1
        for part in self.parts:
            counts[part.name] = part.erase(client_id)
        audit.info("client erased", extra={"audit": "client_erasure", "actor": actor, "client_id": client_id, **counts})
        metrics.add("ClientsErased", 1)
        return counts

    def export(self, client_id: str) -> dict[str, Any]:
        """The client's jobs as it sees them, each with its feedback, for a data-access request."""
        jobs = []
        for job_id in self.lookups.jobs_of(client_id):
            job = self.jobs_table.get(job_id)
            if job is None or job.erasing:
                continue
            jobs.append({**job.to_public(), "expires_at": job.expires_at, "feedback": self.cache.feedback_of(job_id)})
        return {
            "client_id": client_id,
            "exported_at": iso_utc(self._clock()),
            "jobs": jobs,
            "uploads": self.uploads.owned_by(client_id),
        }
