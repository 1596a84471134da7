"""A client with the whole mix: the creates (``creates``) plus reads, list pages, cancels and feedback,
each checked against the ledger."""

from __future__ import annotations

from urllib.parse import quote

from bench.load.connection import Reply
from bench.load.creates import Creates
from bench.load.ledger import Tracked


class Worker(Creates):
    """A client thread with the whole mix (``plan.MIX``): each operation is a method of this name."""

    def get(self) -> None:
        job_id = self.ledger.pick(self.api_key, self.rng)
        if job_id is None:
            self.create_json()
            return
        known = self.ledger.snapshot(job_id)  # read before the request: the reply must reflect at least this
        reply = self.conn.call("get", "GET", f"/api/v1/jobs/{job_id}")
        if reply is None or reply.status != 200 or not isinstance(reply.data, dict):
            return
        data = reply.data
        if data.get("blueprint_hash") != known.sha256:
            self.stats.problem(f"get {job_id}: blueprint_hash {data.get('blueprint_hash')} != sent {known.sha256}")
        expected = known.expected_status()
        if expected in ("cancelled", "completed", "failed") and data.get("status") != expected:
            self.stats.problem(f"get {job_id}: status {data.get('status')} after it was seen {expected}")

    def get_foreign(self) -> None:
        job_id = self.ledger.pick_foreign(self.api_key, self.rng)
        if job_id is None:
            self.get()
            return
        self.conn.call("get_foreign", "GET", f"/api/v1/jobs/{job_id}")

    def list_pages(self) -> None:
        """Walk up to three pages (cursor paging), optionally filtered by status; check each page."""
        limit = self.rng.choice((1, 5, 20, 50, 100))
        status = self.rng.choice((None, None, None, "pending", "cancelled", "completed"))
        query = f"limit={limit}" + (f"&status={status}" if status else "")
        seen: set[str] = set()
        previous_created = "9999"
        cursor: str | None = None
        for _ in range(3):
            path = f"/api/v1/jobs?{query}" + (f"&cursor={quote(cursor)}" if cursor else "")
            reply = self.conn.call("list", "GET", path)
            if reply is None or reply.status != 200 or not isinstance(reply.data, dict):
                return
            jobs = reply.data.get("jobs") or []
            if len(jobs) > limit:
                self.stats.problem(f"list: {len(jobs)} jobs on a page of limit {limit}")
            for job in jobs:
                job_id, created = str(job.get("job_id")), str(job.get("created_at"))
                owner = self.ledger.owner_of(job_id)
                if owner is not None and owner != self.api_key:
                    self.stats.problem(f"list: another client's job {job_id} in this client's list")
                if job_id in seen:
                    self.stats.problem(f"list: job {job_id} on two pages of one walk")
                if status and job.get("status") != status:
                    self.stats.problem(f"list?status={status}: job {job_id} is {job.get('status')}")
                if created > previous_created:
                    self.stats.problem(f"list: not newest first at {job_id}")
                seen.add(job_id)
                previous_created = created
            cursor = reply.data.get("next_cursor")
            if not cursor:
                return

    # ------------------------------------------------------------------------------ transitions
    def cancel(self) -> None:
        job_id = self.ledger.pick(self.api_key, self.rng)
        if job_id is None:
            self.create_raw()
            return
        path = f"/api/v1/jobs/{job_id}"
        if self.rng.random() < 0.25:  # the same cancel twice at once: both 200 (idempotent), one write
            replies = self._race(lambda c: c.call("cancel", "DELETE", path), lambda c: c.call("cancel", "DELETE", path))
        else:
            replies = [r for r in (self.conn.call("cancel", "DELETE", path),) if r is not None]
        for reply in replies:
            self._cancelled(job_id, reply)

    def _cancelled(self, job_id: str, reply: Reply) -> None:
        if reply.status == 200:
            status = reply.data.get("status") if isinstance(reply.data, dict) else None
            if status != "cancelled":
                self.stats.problem(f"cancel {job_id}: 200 with status {status}")
            self.ledger.update(job_id, lambda job: setattr(job, "cancelled", True))
        elif reply.code == "JOB_ALREADY_COMPLETED":

            def refused(job: Tracked) -> None:
                job.cancel_refused += 1

            self.ledger.update(job_id, refused)

    def feedback(self) -> None:
        job_id = self.ledger.pick(self.api_key, self.rng, completed=self.rng.random() < 0.7)
        job_id = job_id or self.ledger.pick(self.api_key, self.rng)
        if job_id is None:
            self.create_multipart()
            return
        known = self.ledger.snapshot(job_id)
        payload = {"rating": self.rng.randint(1, 5), "comment": f"load test {self.index}"}
        reply = self.conn.json("feedback", "POST", f"/api/v1/jobs/{job_id}/feedback", payload)
        if reply is None:
            return
        if reply.status == 201:

            def counted(job: Tracked) -> None:
                job.feedback += 1

            self.ledger.update(job_id, counted)
        elif known.pipeline == "completed":
            self.stats.problem(f"feedback on completed job {job_id}: {reply.outcome}")
