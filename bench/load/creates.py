"""The create operations of a client: JSON (base64 or a data URL), multipart, raw, under an
Idempotency-Key (replayed, reused, raced) and through a presigned upload (finalised once or twice at once)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import quote, urlsplit

from bench.load.blueprints import make_blueprint, multipart
from bench.load.client import Client
from bench.load.connection import Connection, Reply
from bench.load.ledger import Tracked
from bench.load.plan import CONTENT_TYPES, FILENAMES
from models.ids import JOB_ID


class Creates(Client):
    """A client that creates jobs every way the API takes a file."""

    def _file(self) -> tuple[str, bytes, str]:
        fmt = self.rng.choice(("png", "png", "jpg", "pdf"))
        base = self.rng.choice(FILENAMES)
        self.creates += 1
        return fmt, make_blueprint(fmt, self.rng, self.samples), f"{base}-{self.index}-{self.creates}.{fmt}"

    def _json_create_body(self, fmt: str, content: bytes, filename: str) -> dict[str, Any]:
        encoded = base64.b64encode(content).decode()
        blueprint: dict[str, Any] = {"filename": filename}
        style = self.rng.randrange(3)
        if style == 0:
            blueprint.update(file=encoded, format=fmt)
        elif style == 1:
            blueprint.update(file=encoded, format="jpeg" if fmt == "jpg" else fmt.upper())
        else:  # a data URL names the format itself
            blueprint["file"] = f"data:{CONTENT_TYPES[fmt]};base64,{encoded}"
        return {"blueprint": blueprint}

    def _accept_create(
        self, op: str, reply: Reply | None, fmt: str, content: bytes, upload_id: str | None = None
    ) -> str | None:
        """Check a create's 201 against what was sent and put the job in the ledger; its id."""
        if reply is None or reply.status != 201:
            return None
        data = reply.data if isinstance(reply.data, dict) else {}
        job_id = str(data.get("job_id", ""))
        sha = hashlib.sha256(content).hexdigest()
        wrong = [
            name
            for name, ok in (
                ("job_id", JOB_ID.matches(job_id)),
                ("status", data.get("status") == "pending"),
                ("blueprint_hash", data.get("blueprint_hash") == sha),
                ("blueprint_size", data.get("blueprint_size") == len(content)),
                ("blueprint_format", data.get("blueprint_format") == fmt),
                ("Location", reply.headers.get("location") == f"/api/v1/jobs/{job_id}"),
            )
            if not ok
        ]
        if wrong:
            self.stats.problem(f"{op}: 201 with wrong {', '.join(wrong)} (job {job_id or '?'})")
        if not job_id:
            return None
        kind = op.removeprefix("create_")
        if not self.ledger.add(Tracked(job_id, self.api_key, sha, len(content), kind, upload_id=upload_id)):
            self.stats.problem(f"{op}: job id {job_id} returned for two different creates")
        return job_id

    def create_json(self) -> None:
        fmt, content, filename = self._file()
        reply = self.conn.json("create_json", "POST", "/api/v1/jobs", self._json_create_body(fmt, content, filename))
        self._accept_create("create_json", reply, fmt, content)

    def create_multipart(self) -> None:
        fmt, content, filename = self._file()
        fields = [("format", self.rng.choice((fmt, fmt.upper())))] if self.rng.random() < 0.5 else []
        body, content_type = multipart(fields, "file", filename, CONTENT_TYPES[fmt], content)
        reply = self.conn.call("create_multipart", "POST", "/api/v1/jobs", body, {"Content-Type": content_type})
        self._accept_create("create_multipart", reply, fmt, content)

    def create_raw(self) -> None:
        fmt, content, filename = self._file()
        path = "/api/v1/jobs" + (f"?filename={quote(filename[:200])}" if self.rng.random() < 0.7 else "")
        reply = self.conn.call("create_raw", "POST", path, content, {"Content-Type": CONTENT_TYPES[fmt]})
        self._accept_create("create_raw", reply, fmt, content)

    def create_idempotent(self) -> None:
        """A JSON create under an Idempotency-Key; its replay must give the same job; a changed body 422."""
        fmt, content, filename = self._file()
        key = {"Idempotency-Key": f"load-{self.index}-{self.creates}-{self.rng.randbytes(8).hex()}"}
        body = self._json_create_body(fmt, content, filename)
        if self.rng.random() < 0.4:
            job_id = self._idempotent_race(body, key, fmt, content)
        else:
            first = self.conn.json("create_idempotent", "POST", "/api/v1/jobs", body, key)
            job_id = self._accept_create("create_idempotent", first, fmt, content)
        if job_id is None:
            return
        replay = self.conn.json("create_idempotent_replay", "POST", "/api/v1/jobs", body, key)
        if replay is not None and replay.status == 201:
            replayed_id = replay.data.get("job_id") if isinstance(replay.data, dict) else None
            if replayed_id != job_id or replay.headers.get("idempotent-replayed") != "true":
                self.stats.problem(f"idempotent replay of {job_id} answered job {replayed_id} (not a replay)")
        if self.rng.random() < 0.3:
            other = self._json_create_body(fmt, make_blueprint(fmt, self.rng, self.samples), filename)
            self.conn.json("create_idempotent_reuse", "POST", "/api/v1/jobs", other, key)

    def _idempotent_race(self, body: dict[str, Any], key: dict[str, str], fmt: str, content: bytes) -> str | None:
        """The same first request twice at once: every 201 must be the one job (a replay), never two jobs."""

        def send(conn: Connection) -> Reply | None:
            return conn.json("create_idempotent_race", "POST", "/api/v1/jobs", body, key)

        created = [reply for reply in self._race(send, send) if reply.status == 201]
        if not created:
            self.stats.problem(f"idempotent race on {key['Idempotency-Key']}: no 201 at all")
            return None
        job_id = self._accept_create("create_idempotent_race", created[0], fmt, content)
        for other in created[1:]:
            other_id = other.data.get("job_id") if isinstance(other.data, dict) else None
            if other_id != job_id:
                self._accept_create("create_idempotent_race", other, fmt, content)
                self.stats.problem(f"idempotent race on {key['Idempotency-Key']}: two jobs {job_id} and {other_id}")
        return job_id

    def create_upload(self) -> None:
        """The large-file flow with a small file: ticket, presigned POST to emulated S3, finalise (once)."""
        fmt, content, filename = self._file()
        ticket = self.conn.json(
            "upload_ticket", "POST", "/api/v1/uploads", {"filename": filename, "format": fmt, "size": len(content)}
        )
        if ticket is None or ticket.status != 201 or not isinstance(ticket.data, dict):
            return
        upload = ticket.data
        target = urlsplit(str(upload["url"]))
        if self.s3 is None:
            self.s3 = Connection(target.hostname or "", target.port or 80, self.stats)
        fields = [(str(k), str(v)) for k, v in upload["fields"].items()]
        body, content_type = multipart(fields, "file", filename, CONTENT_TYPES[fmt], content)
        posted = self.s3.call("upload_s3_post", "POST", target.path or "/", body, {"Content-Type": content_type})
        if posted is None or posted.status >= 300:
            return
        upload_id = str(upload["upload_id"])
        finalise = {"blueprint": {"upload_id": upload_id}}
        if self.rng.random() < 0.3:  # two finalisations at once: exactly one job
            replies = self._race(
                lambda conn: conn.json("create_upload_race", "POST", "/api/v1/jobs", finalise),
                lambda conn: conn.json("create_upload_race", "POST", "/api/v1/jobs", finalise),
            )
            created = [reply for reply in replies if reply.status == 201]
            if len(created) != 1:
                self.stats.problem(f"upload {upload_id} finalised twice at once: {len(created)} jobs (one expected)")
            for winner in created:
                self._accept_create("create_upload_race", winner, fmt, content, upload_id=upload_id)
            return
        single = self.conn.json("create_upload", "POST", "/api/v1/jobs", finalise)
        job_id = self._accept_create("create_upload", single, fmt, content, upload_id=upload_id)
        if job_id is not None and self.rng.random() < 0.25:
            self.conn.json("create_upload_reuse", "POST", "/api/v1/jobs", finalise)
