"""What the clients were told: every acknowledged job, what was sent for it and what should have happened."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass
class Tracked:
    """What the clients know about one job they created (a 201)."""

    job_id: str
    api_key: str
    sha256: str
    size: int
    kind: str
    upload_id: str | None = None
    #: A DELETE answered 200.
    cancelled: bool = False
    #: DELETEs answered 409 JOB_ALREADY_COMPLETED.
    cancel_refused: int = 0
    #: What the pipeline did: None, "claimed", "processing", "completed", "failed", "cancelled first".
    pipeline: str | None = None
    #: Feedback answered 201.
    feedback: int = 0

    def expected_status(self) -> str:
        if self.pipeline in ("completed", "failed"):
            return str(self.pipeline)
        if self.cancelled or self.pipeline == "cancelled first":
            return "cancelled"
        if self.pipeline == "processing":
            return "processing"
        return "pending"


class Ledger:
    """Every job any client created, shared by the client threads and the pipeline."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[str, Tracked] = {}
        self._by_key: dict[str, list[str]] = {}
        self._completed_by_key: dict[str, list[str]] = {}
        self._unprocessed: list[str] = []

    def add(self, job: Tracked) -> bool:
        with self.lock:
            if job.job_id in self.jobs:
                return False
            self.jobs[job.job_id] = job
            self._by_key.setdefault(job.api_key, []).append(job.job_id)
            self._unprocessed.append(job.job_id)
            return True

    def snapshot(self, job_id: str) -> Tracked:
        with self.lock:
            job = self.jobs[job_id]
            return replace(job)

    def update(self, job_id: str, change: Callable[[Tracked], None]) -> None:
        with self.lock:
            job = self.jobs[job_id]
            change(job)
            if job.pipeline == "completed" and job_id not in self._completed_by_key.get(job.api_key, []):
                self._completed_by_key.setdefault(job.api_key, []).append(job_id)

    def pick(self, api_key: str, rng: random.Random, completed: bool = False) -> str | None:
        with self.lock:
            ids = (self._completed_by_key if completed else self._by_key).get(api_key)
            return rng.choice(ids) if ids else None

    def pick_foreign(self, api_key: str, rng: random.Random) -> str | None:
        with self.lock:
            others = [k for k, ids in self._by_key.items() if k != api_key and ids]
            return rng.choice(self._by_key[rng.choice(others)]) if others else None

    def claim_for_pipeline(self, rng: random.Random) -> str | None:
        with self.lock:
            while self._unprocessed:
                index = rng.randrange(len(self._unprocessed))
                self._unprocessed[index], self._unprocessed[-1] = self._unprocessed[-1], self._unprocessed[index]
                job_id = self._unprocessed.pop()
                job = self.jobs[job_id]
                if job.pipeline is None and not job.cancelled:
                    job.pipeline = "claimed"
                    return job_id
            return None

    def of_key(self, api_key: str) -> set[str]:
        with self.lock:
            return set(self._by_key.get(api_key, []))

    def owner_of(self, job_id: str) -> str | None:
        with self.lock:
            job = self.jobs.get(job_id)
            return job.api_key if job else None
