"""``python -m bench.load`` (``make load``): concurrent clients against the local API, then proof nothing was lost.

What it does, bounded in time and on loopback only:

1. starts ``python -m local_api`` as a subprocess on a free loopback port, with one API key per client
   group (``DEV_API_KEYS``) and its own state file (``LOCAL_API_STATE``), which names the embedded moto
   endpoint;
2. runs ``--clients`` threads for ``--seconds``, each with one keep-alive ``http.client`` connection, mixing:
   creates (base64 JSON or a data URL, multipart/form-data, a raw body, a JSON create under an
   ``Idempotency-Key`` with its replay and sometimes racing itself on a second connection, a presigned S3
   upload finalised once or twice at once), GET of its own jobs and of another client's (404), list pages
   (cursor paging, status filters), cancel (sometimes twice at once) and feedback. Every file is a real
   PNG, JPG or PDF made distinct per create (so every job has its own SHA-256);
3. meanwhile a "pipeline" thread drives some jobs ``pending -> processing -> completed | failed`` through
   the Lambda's own ``JobService`` against the same emulated AWS, so that feedback can succeed and
   cancels race completions;
4. records every response (status and error code per operation, latency percentiles, throughput); any
   5xx, transport error or response outside the operation's expected set fails the run;
5. then verifies: every job that got a 201 is retrievable (200) with the SHA-256 and size of the bytes its
   client sent and the status its client expects (pending, cancelled, completed or failed); the jobs
   table, scanned through the moto endpoint, holds exactly those job records (idempotency and upload-claim
   items are counted apart); the blueprints bucket holds exactly one object per job, at the record's key,
   with the very bytes sent (no orphan, no record without its object, no upload left behind by a
   finalised upload); the cache bucket holds a result for exactly the completed jobs and one feedback
   document per 201 feedback; and each client's full paged list is exactly its own jobs.

Prints the counts, the percentiles and the verification; exits 0 only if all of it holds. The server is
always stopped (also on Ctrl-C, SIGTERM, an error or the hard ``--timeout``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import hashlib
import http.client
import json
import logging
import math
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import boto3
from botocore.exceptions import ClientError

# local_api (imported first, as isort orders it) puts src/ on sys.path for the Lambda's own packages.
from local_api.cfn_template import Stack, load_template
from local_api.server import free_port
from models.errors import IllegalTransition
from models.job import JOB_ID
from services.job_service import JobService
from services.previews import PreviewService
from services.runtime_config import RuntimeConfig
from storage import Stores
from utils import aws
from utils.logging import JsonFormatter, get_logger

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
REGION = "us-east-1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: At most this many API keys (clients as the API sees them); the threads share them round-robin.
MAX_API_KEYS = 4
STARTUP_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 30.0
#: The local API closes a keep-alive connection idle for 30 s (its socket timeout; real gateways and load
#: balancers do the same), and a request sent on it then fails with RemoteDisconnected. A connection idle
#: for longer than this is replaced before it is used, so every transport error left is a real one.
IDLE_RECONNECT_SECONDS = 15.0
#: Problems printed in full (the count is always exact).
MAX_PROBLEMS_SHOWN = 40

#: operation -> weight in each client's mix.
MIX: dict[str, int] = {
    "create_json": 12,
    "create_multipart": 10,
    "create_raw": 10,
    "create_idempotent": 3,
    "create_upload": 2,
    "get": 20,
    "get_foreign": 2,
    "list_pages": 8,
    "cancel": 8,
    "feedback": 8,
}

#: The outcomes (``status`` or ``status CODE``) each recorded operation may legitimately get. A 409 from a
#: lost race or a wrong state is expected (and tallied); anything else fails the run.
EXPECTED: dict[str, frozenset[str]] = {
    "create_json": frozenset({"201"}),
    "create_multipart": frozenset({"201"}),
    "create_raw": frozenset({"201"}),
    "create_idempotent": frozenset({"201"}),
    "create_idempotent_replay": frozenset({"201"}),
    "create_idempotent_reuse": frozenset({"422 IDEMPOTENCY_KEY_REUSED"}),
    # the same first request on two connections at once: one runs, the other waits its turn or replays
    "create_idempotent_race": frozenset({"201", "409 IDEMPOTENCY_IN_PROGRESS"}),
    "upload_ticket": frozenset({"201"}),
    "upload_s3_post": frozenset({"200", "201", "204"}),
    "create_upload": frozenset({"201"}),
    "create_upload_reuse": frozenset({"404 UPLOAD_NOT_FOUND"}),
    # one upload finalised on two connections at once: exactly one job
    "create_upload_race": frozenset({"201", "404 UPLOAD_NOT_FOUND"}),
    "get": frozenset({"200"}),
    "get_foreign": frozenset({"404 JOB_NOT_FOUND"}),
    "list": frozenset({"200"}),
    "cancel": frozenset({"200", "409 JOB_ALREADY_COMPLETED", "409 CONFLICT"}),
    "feedback": frozenset({"201", "409 JOB_NOT_COMPLETED", "409 CONFLICT"}),
    "verify_get": frozenset({"200"}),
    "verify_list": frozenset({"200"}),
}

CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "pdf": "application/pdf"}
FILENAMES = ("plan", "ground floor", "Grundriß 2", "site (v3)", "élévation", "../etc/passwd", "a" * 300)


# ----------------------------------------------------------------------------------------- blueprints
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_blueprint(fmt: str, rng: random.Random, samples: dict[str, bytes]) -> bytes:
    """A valid file of ``fmt`` built from the example, made unique by random bytes where the format allows."""
    noise = rng.randbytes(rng.randint(16, 2048)).hex().encode()
    sample = samples[fmt]
    if fmt == "png":  # a tEXt chunk before IEND (the last 12 bytes)
        return sample[:-12] + _png_chunk(b"tEXt", b"load\x00" + noise) + sample[-12:]
    if fmt == "jpg":  # a COM segment right after SOI
        comment = noise[:65000]
        return sample[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + sample[2:]
    return sample + b"% " + noise + b"\n"  # a PDF comment after %%EOF


def load_samples() -> dict[str, bytes]:
    return {
        "png": (EXAMPLES / "plan.png").read_bytes(),
        "jpg": (EXAMPLES / "site.jpg").read_bytes(),
        "pdf": (EXAMPLES / "plan.pdf").read_bytes(),
    }


def multipart(
    fields: list[tuple[str, str]], file_field: str, filename: str, content_type: str, data: bytes
) -> tuple[bytes, str]:
    """A multipart/form-data body (text fields first, the file last) and its Content-Type."""
    boundary = "----load" + os.urandom(12).hex()
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    disposition = f'form-data; name="{file_field}"; filename="{filename}"'
    out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n".encode()
    out += data + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


# -------------------------------------------------------------------------------------------- metrics
def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


class Stats:
    """Every response of the run, per operation; and every problem found, during the run or after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ops: dict[str, OpStats] = {}
        self.problems: list[str] = []
        self.problem_count = 0
        self.server_errors = 0
        self.transport_errors = 0

    def record(self, op: str, outcome: str, seconds: float, request_id: str = "") -> None:
        with self._lock:
            stats = self.ops.setdefault(op, OpStats())
            stats.latencies.append(seconds)
            stats.outcomes[outcome] += 1
            if outcome[:1] == "5":
                self.server_errors += 1
        if outcome not in EXPECTED.get(op, frozenset()):
            self.problem(f"{op}: unexpected {outcome} (request {request_id or '-'})")

    def transport_error(self, op: str, exc: BaseException) -> None:
        with self._lock:
            self.transport_errors += 1
            self.ops.setdefault(op, OpStats()).outcomes["transport error"] += 1
        self.problem(f"{op}: transport error {type(exc).__name__}: {exc}")

    def problem(self, message: str) -> None:
        with self._lock:
            self.problem_count += 1
            if len(self.problems) < MAX_PROBLEMS_SHOWN:
                self.problems.append(message)

    def total_requests(self, ops: Callable[[str], bool] = lambda _: True) -> int:
        with self._lock:
            return sum(len(s.latencies) for name, s in self.ops.items() if ops(name))


# ---------------------------------------------------------------------------------------------- HTTP
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    document: Any

    @property
    def data(self) -> Any:
        return self.document.get("data") if isinstance(self.document, dict) else None

    @property
    def code(self) -> str:
        if isinstance(self.document, dict) and isinstance(self.document.get("error"), dict):
            return str(self.document["error"].get("code", ""))
        return ""

    @property
    def outcome(self) -> str:
        return f"{self.status} {self.code}" if self.status >= 300 and self.code else str(self.status)


class Connection:
    """One keep-alive HTTP/1.1 connection to a loopback host; every call recorded in ``stats``."""

    def __init__(self, host: str, port: int, stats: Stats, api_key: str | None = None) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"refusing a non-loopback host: {host}")
        self.host, self.port, self.stats, self.api_key = host, port, stats, api_key
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def call(
        self, op: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply | None:
        sent = dict(headers or {})
        if self.api_key:
            sent["X-API-Key"] = self.api_key
        if self._conn is not None and time.monotonic() - self._last_used > IDLE_RECONNECT_SECONDS:
            self.close()
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        started = time.perf_counter()
        try:
            self._conn.request(method, path, body=body, headers=sent)
            response = self._conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            self.stats.transport_error(op, exc)
            return None
        elapsed = time.perf_counter() - started
        self._last_used = time.monotonic()
        reply_headers = {k.lower(): v for k, v in response.getheaders()}
        if reply_headers.get("connection", "").lower() == "close":
            self.close()
        document: Any = None
        with contextlib.suppress(ValueError):
            document = json.loads(raw) if raw else None
        reply = Reply(response.status, reply_headers, raw, document)
        self.stats.record(op, reply.outcome, elapsed, reply_headers.get("x-request-id", ""))
        return reply

    def json(
        self, op: str, method: str, path: str, payload: Any, headers: dict[str, str] | None = None
    ) -> Reply | None:
        return self.call(
            op, method, path, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )


# -------------------------------------------------------------------------------------------- ledger
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


# ------------------------------------------------------------------------------------------- clients
class Worker(threading.Thread):
    """One client: a keep-alive connection to the API (and one to emulated S3 for presigned uploads)."""

    def __init__(
        self,
        *,
        index: int,
        api: tuple[str, int],
        api_key: str,
        ledger: Ledger,
        stats: Stats,
        until: float,
        stop: threading.Event,
        seed: int,
        samples: dict[str, bytes],
    ) -> None:
        super().__init__(name=f"load-client-{index}", daemon=True)
        self.index = index
        self.api_key = api_key
        self.conn = Connection(api[0], api[1], stats, api_key)
        #: A second connection, for requests that race the first one's (same client, same moment).
        self.racer = Connection(api[0], api[1], stats, api_key)
        self.s3: Connection | None = None
        self.ledger, self.stats, self.until, self.stop = ledger, stats, until, stop
        self.rng = random.Random(seed * 1000 + index)  # noqa: S311 - a load mix, not cryptography
        self.samples = samples
        self.creates = 0
        ops = list(MIX)
        self._ops, self._weights = ops, [MIX[o] for o in ops]

    def run(self) -> None:
        try:
            while not self.stop.is_set() and time.monotonic() < self.until:
                op = self.rng.choices(self._ops, self._weights)[0]
                getattr(self, op)()
        except Exception as exc:  # a bug in the load tool itself must fail the run, not vanish
            self.stats.problem(f"{self.name} crashed: {type(exc).__name__}: {exc}")
        finally:
            self.conn.close()
            self.racer.close()
            if self.s3 is not None:
                self.s3.close()

    def _race(
        self, first: Callable[[Connection], Reply | None], second: Callable[[Connection], Reply | None]
    ) -> list[Reply]:
        """``first`` on the main connection and ``second`` on the racer, at the same moment; the replies."""
        replies: list[Reply | None] = [None, None]

        def run_second() -> None:
            replies[1] = second(self.racer)

        helper = threading.Thread(target=run_second, name=f"{self.name}-racer", daemon=True)
        helper.start()
        replies[0] = first(self.conn)
        helper.join(REQUEST_TIMEOUT_SECONDS + 5)
        return [reply for reply in replies if reply is not None]

    # ----------------------------------------------------------------------------------- creates
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

    # ------------------------------------------------------------------------------------ reads
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


# ------------------------------------------------------------------------------------------ pipeline
@dataclass
class Resources:
    """The emulated AWS and the dev stack's names in it."""

    endpoint: str
    jobs_table: str
    preview_table: str
    blueprints_bucket: str
    cache_bucket: str

    def client(self, service: str) -> Any:
        host = urlsplit(self.endpoint).hostname
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"refusing a non-loopback AWS endpoint: {self.endpoint}")
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the emulator's dummy credentials
            config=aws.client_config(max_pool_connections=16),
        )


def dev_resources(endpoint: str) -> Resources:
    env = Stack(load_template(), {"Environment": "dev"}, region=REGION).function_environment("ApiFunction")
    return Resources(
        endpoint, env["JOBS_TABLE"], env["PREVIEW_CACHE_TABLE"], env["BLUEPRINTS_BUCKET"], env["CACHE_BUCKET"]
    )


class Pipeline(threading.Thread):
    """The processing pipeline's part: start and complete (or fail) jobs, through ``JobService``."""

    RESULT: ClassVar[dict[str, Any]] = {
        "rooms": [{"id": "room_1", "bounding_box": [0, 0, 10, 10]}],
        "model_version": "load-1",
    }

    def __init__(
        self, *, resources: Resources, ledger: Ledger, stats: Stats, until: float, stop: threading.Event, seed: int
    ) -> None:
        super().__init__(name="load-pipeline", daemon=True)
        stores = Stores.from_names(
            resources.jobs_table,
            resources.preview_table,
            resources.blueprints_bucket,
            resources.cache_bucket,
            dynamodb=resources.client("dynamodb"),
            s3=resources.client("s3"),
        )
        self.service = JobService(stores.jobs_table, stores.cache, PreviewService(stores.previews), RuntimeConfig())
        self.ledger, self.stats, self.until, self.stop = ledger, stats, until, stop
        self.rng = random.Random(seed)  # noqa: S311 - a load mix, not cryptography
        self.outcomes: Counter[str] = Counter()

    def run(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.until:
            job_id = self.ledger.claim_for_pipeline(self.rng)
            if job_id is None:
                time.sleep(0.05)
                continue
            try:
                self._process(job_id)
            except Exception as exc:
                self.outcomes["error"] += 1
                self.stats.problem(f"pipeline on {job_id}: {type(exc).__name__}: {exc}")
            self.stop.wait(self.rng.uniform(0.0, 0.05))

    def _set(self, job_id: str, state: str, final: bool = True) -> None:
        self.ledger.update(job_id, lambda job: setattr(job, "pipeline", state))
        if final:
            self.outcomes[state] += 1

    def _process(self, job_id: str) -> None:
        try:
            self.service.start_processing(job_id)
        except IllegalTransition as exc:
            self._set(job_id, "cancelled first" if exc.current == "cancelled" else f"unexpected {exc.current}")
            return
        self._set(job_id, "processing", final=False)
        self.stop.wait(self.rng.uniform(0.0, 0.02))  # a window for a racing cancel
        try:
            if self.rng.random() < 0.8:
                self.service.complete_job(job_id, self.RESULT)
                self._set(job_id, "completed")
            else:
                self.service.fail_job(job_id, {"code": "MODEL_ERROR", "message": "load test failure"})
                self._set(job_id, "failed")
        except IllegalTransition as exc:
            self._set(job_id, "cancelled first" if exc.current == "cancelled" else f"unexpected {exc.current}")


# -------------------------------------------------------------------------------------- local server
def _libc() -> Any:
    with contextlib.suppress(OSError):
        return ctypes.CDLL(None)
    return None


#: Loaded before any fork: the child only makes one system call between fork and exec.
_LIBC = _libc() if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if this process dies without stopping it (even by SIGKILL)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ServerStartError(Exception):
    """The local API did not become healthy (three ports tried)."""


class LocalApi:
    """``python -m local_api`` as a subprocess: its own port, keys, state file and log file.

    ``stop`` may come from another thread (the hard timeout) at any moment, also during ``start``: once
    stopped, nothing is started again.
    """

    def __init__(self, keys: list[str], workdir: Path) -> None:
        self.keys = keys
        self.state_path = workdir / "local-api.json"
        self.log_path = workdir / "local-api.log"
        self.port = 0
        self.aws_endpoint = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._lock = threading.Lock()

    def start(self) -> None:
        for _ in range(3):  # a free port can be taken between the probe and the bind
            with self._lock:
                if self._stopped:
                    break
                self.port = free_port()
                self._process = process = self._spawn()
            if self._wait_ready(process):
                return
            self.stop(final=False)
        raise ServerStartError(f"the local API did not start; its output is in {self.log_path}")

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env.update(
            PORT=str(self.port),
            DEV_API_KEYS=",".join(self.keys),
            LOCAL_API_STATE=str(self.state_path),
            PYTHONUNBUFFERED="1",
            # INFO, as deployed: one JSON line per request is part of what is measured.
            LOG_LEVEL=os.environ.get("LOAD_LOG_LEVEL", "INFO"),
        )
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "local_api", "--quiet", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if _LIBC is not None else None,  # noqa: PLW1509
            )

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError, ValueError, KeyError):
                state = json.loads(self.state_path.read_text())
                if state["api_url"] == f"http://127.0.0.1:{self.port}":
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    try:
                        conn.request("GET", "/health")
                        if conn.getresponse().status == 200:
                            self.aws_endpoint = str(state["aws_endpoint_url"])
                            return True
                    finally:
                        conn.close()
            time.sleep(0.2)
        return False

    def stop(self, final: bool = True) -> None:
        """SIGTERM (the server's clean stop), then SIGKILL if it lingers. Safe to call twice, from any thread."""
        with self._lock:
            self._stopped = self._stopped or final
            process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def error_lines(self, limit: int = 10) -> list[str]:
        """The last few ERROR lines (and tracebacks) the server wrote."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        wanted = ('"level": "ERROR"', '"level": "CRITICAL"', "Traceback", "Exception in thread")
        return [line[:400] for line in lines if any(w in line for w in wanted)][-limit:]


# -------------------------------------------------------------------------------------- verification
@dataclass
class Verification:
    lines: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)


def _scan_table(ddb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page.get("Items", []))
    return items


def _list_bucket(s3: Any, bucket: str) -> dict[str, int]:
    objects: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objects.update({o["Key"]: int(o["Size"]) for o in page.get("Contents", [])})
    return objects


def _attr(item: dict[str, Any], name: str) -> str:
    value = item.get(name, {})
    return str(value.get("S") or value.get("N") or "") if isinstance(value, dict) else ""


class _Pool:
    """Per-thread keep-alive connections (one per API key) for the verification's parallel reads."""

    def __init__(self, api: tuple[str, int], stats: Stats) -> None:
        self.api, self.stats = api, stats
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    def get(self, api_key: str) -> Connection:
        conns: dict[str, Connection] = self._local.__dict__.setdefault("conns", {})
        if api_key not in conns:
            conns[api_key] = Connection(self.api[0], self.api[1], self.stats, api_key)
            with self._lock:
                self._all.append(conns[api_key])
        return conns[api_key]

    def close(self) -> None:
        for conn in self._all:
            conn.close()


class Verifier:
    """Every check after the run; problems go to ``stats``, figures and one line per check to ``out``."""

    def __init__(
        self, api: tuple[str, int], keys: list[str], resources: Resources, ledger: Ledger, stats: Stats
    ) -> None:
        self.keys, self.resources, self.ledger, self.stats = keys, resources, ledger, stats
        self.jobs = dict(ledger.jobs)
        self.pool = _Pool(api, stats)
        self.out = Verification()
        self.s3 = resources.client("s3")
        self.records: dict[str, dict[str, Any]] = {}

    def run(self) -> Verification:
        try:
            self.through_the_api()
            self.jobs_table()
            self.blueprints_bucket()
            self.cache_bucket()
            self.full_lists()
        finally:
            self.pool.close()
        return self.out

    def problem(self, message: str) -> None:
        self.stats.problem(message)

    # 1. every 201 job through the API: 200, the hash and size sent, the expected status and feedback count
    def _check_job(self, job: Tracked) -> bool:
        reply = self.pool.get(job.api_key).call("verify_get", "GET", f"/api/v1/jobs/{job.job_id}")
        if reply is None or reply.status != 200 or not isinstance(reply.data, dict):
            self.problem(f"lost: job {job.job_id} ({job.kind}) answered {reply.outcome if reply else 'nothing'}")
            return False
        data, expected = reply.data, job.expected_status()
        checks = (
            (
                data.get("blueprint_hash") == job.sha256,
                f"blueprint_hash {data.get('blueprint_hash')} != sent {job.sha256}",
            ),
            (data.get("blueprint_size") == job.size, f"blueprint_size {data.get('blueprint_size')} != sent {job.size}"),
            (data.get("status") == expected, f"status {data.get('status')} != expected {expected}"),
            (
                int(data.get("feedback_count") or 0) == job.feedback,
                f"feedback_count {data.get('feedback_count')} != {job.feedback} feedback 201s",
            ),
            (
                not (job.cancelled and job.pipeline in ("completed", "failed")),
                f"both a cancel and a {job.pipeline} won",
            ),
            (
                not job.cancel_refused or job.pipeline in ("completed", "failed"),
                f"a cancel was refused as already completed, but the pipeline left it {job.pipeline or 'unprocessed'}",
            ),
            (not (job.pipeline or "").startswith("unexpected"), f"the pipeline met {job.pipeline}"),
        )
        wrong = [message for ok, message in checks if not ok]
        for message in wrong:
            self.problem(f"job {job.job_id} ({job.kind}): {message}")
        return not wrong

    def through_the_api(self) -> None:
        jobs = self.jobs
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="verify") as executor:
            good = sum(executor.map(self._check_job, jobs.values()))
        kinds = Counter(job.kind for job in jobs.values())
        statuses = Counter(job.expected_status() for job in jobs.values())
        self.out.figures.update(jobs_created=len(jobs), jobs_verified=good)
        self.out.lines.append(
            f"jobs acknowledged with 201: {len(jobs)} ("
            + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
            + f"); retrievable with the sent hash and size, the expected status and feedback count: {good}/{len(jobs)}"
        )
        self.out.lines.append("  expected statuses: " + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))

    # 2. the jobs table, scanned through the moto endpoint: exactly the acknowledged jobs
    def jobs_table(self) -> None:
        other_items: Counter[str] = Counter()
        for item in _scan_table(self.resources.client("dynamodb"), self.resources.jobs_table):
            key = _attr(item, "job_id")
            if "item_type" not in item and JOB_ID.matches(key):
                self.records[key] = item
            else:
                other_items[_attr(item, "item_type") or key.split("#", 1)[0]] += 1
        phantoms = sorted(set(self.records) - set(self.jobs))
        missing = sorted(set(self.jobs) - set(self.records))
        for job_id in phantoms:
            self.problem(f"phantom: the table holds job {job_id}, which no client got a 201 for")
        for job_id in missing:
            self.problem(f"lost: no table record for job {job_id}")
        self.out.figures.update(table_job_records=len(self.records), phantoms=len(phantoms), missing=len(missing))
        others = ", ".join(f"{kind} {n}" for kind, n in sorted(other_items.items())) or "none"
        self.out.lines.append(
            f"jobs table: {len(self.records)} job records ({len(phantoms)} unacknowledged, {len(missing)} missing); "
            f"other items: {others}"
        )

    # 3. the blueprints bucket: one object per record, at its key, with the bytes sent; no orphans
    def _stored_bytes_ok(self, job: Tracked) -> bool:
        key = _attr(self.records[job.job_id], "blueprint_s3_key")
        try:
            body = self.s3.get_object(Bucket=self.resources.blueprints_bucket, Key=key)
        except ClientError as exc:  # a missing object is reported with the listing
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return False
            raise
        if hashlib.sha256(body["Body"].read()).hexdigest() != job.sha256:
            self.problem(f"job {job.job_id}: the stored bytes differ from the bytes sent")
            return False
        return True

    def blueprints_bucket(self) -> None:
        objects = _list_bucket(self.s3, self.resources.blueprints_bucket)
        blueprints: dict[str, list[str]] = {}
        uploads_left: list[str] = []
        for key in objects:
            parts = key.split("/")
            if parts[0] == "blueprints" and len(parts) == 3:
                blueprints.setdefault(parts[1], []).append(key)
            elif parts[0] == "uploads":
                uploads_left.append(key)
            else:
                self.problem(f"unexpected object in the blueprints bucket: {key}")
        orphans = sorted(job_id for job_id in blueprints if job_id not in self.records)
        for job_id in orphans:
            self.problem(f"orphan: blueprint object(s) {blueprints[job_id]} without a job record")
        without_object = 0
        for job_id, record in self.records.items():
            found, expected_key = blueprints.get(job_id, []), _attr(record, "blueprint_s3_key")
            if found != [expected_key]:
                without_object += not found
                self.problem(f"job {job_id}: blueprint objects {found}, its record says {expected_key}")
            elif objects[expected_key] != int(_attr(record, "blueprint_size") or -1):
                self.problem(
                    f"job {job_id}: object of {objects[expected_key]} bytes, record {_attr(record, 'blueprint_size')}"
                )
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="verify-s3") as executor:
            stored = [job for job in self.jobs.values() if job.job_id in self.records]
            bytes_ok = sum(executor.map(self._stored_bytes_ok, stored))
        finalised = {job.upload_id for job in self.jobs.values() if job.upload_id}
        left_by_finalised = [key for key in uploads_left if key.split("/")[1] in finalised]
        for key in left_by_finalised:
            self.problem(f"upload object {key} left behind after its job was created")
        n_objects = sum(len(keys) for keys in blueprints.values())
        self.out.figures.update(
            blueprint_objects=n_objects,
            orphans=len(orphans),
            records_without_object=without_object,
            stored_bytes_ok=bytes_ok,
        )
        self.out.lines.append(
            f"blueprints bucket: {n_objects} blueprint objects for {len(self.records)} job records; orphans "
            f"{len(orphans)}, records without an object {without_object}; stored bytes = sent bytes: "
            f"{bytes_ok}/{len(self.jobs)}"
        )
        self.out.lines.append(
            f"  uploads/ objects left: {len(uploads_left)} ({len(left_by_finalised)} of uploads that became jobs)"
        )

    # 4. the cache bucket: results for exactly the completed jobs, one document per feedback 201
    def cache_bucket(self) -> None:
        cache = _list_bucket(self.s3, self.resources.cache_bucket)
        results = {key.split("/")[2] for key in cache if key.startswith("cache/results/")}
        documents = Counter(key.split("/")[1] for key in cache if key.startswith("feedback/"))
        completed = {job.job_id for job in self.jobs.values() if job.expected_status() == "completed"}
        for job_id in sorted(results - completed):
            self.problem(f"job {job_id}: a result object, but the job did not complete")
        for job_id in sorted(completed - results):
            self.problem(f"job {job_id}: completed without its result object")
        for job in self.jobs.values():
            if documents.get(job.job_id, 0) != job.feedback:
                self.problem(
                    f"job {job.job_id}: {documents.get(job.job_id, 0)} feedback documents, {job.feedback} 201s"
                )
        feedback = sum(job.feedback for job in self.jobs.values())
        self.out.figures.update(results=len(results), completed=len(completed), feedback=feedback)
        self.out.lines.append(
            f"cache bucket: {len(results)} results for {len(completed)} completed jobs; "
            f"{sum(documents.values())} feedback documents for {feedback} feedback 201s"
        )

    # 5. each client's complete list, paged with cursors, is exactly its own jobs
    def full_lists(self) -> None:
        lists_ok = 0
        for number, api_key in enumerate(self.keys, start=1):
            conn = self.pool.get(api_key)
            seen: list[str] = []
            cursor: str | None = None
            for _ in range(len(self.jobs) // 100 + 5):
                path = "/api/v1/jobs?limit=100" + (f"&cursor={quote(cursor)}" if cursor else "")
                reply = conn.call("verify_list", "GET", path)
                if reply is None or reply.status != 200 or not isinstance(reply.data, dict):
                    break
                seen.extend(str(job.get("job_id")) for job in reply.data.get("jobs") or [])
                cursor = reply.data.get("next_cursor")
                if not cursor:
                    break
            own, distinct = self.ledger.of_key(api_key), set(seen)
            if len(seen) != len(distinct) or distinct != own:
                self.problem(
                    f"client {number}'s full list: {len(seen)} entries ({len(distinct)} distinct), "
                    f"{len(distinct - own)} not its own, {len(own - distinct)} of its {len(own)} jobs missing"
                )
            else:
                lists_ok += 1
        self.out.figures.update(full_lists_ok=lists_ok)
        self.out.lines.append(
            f"lists: {lists_ok}/{len(self.keys)} clients' full paged lists are exactly their own jobs"
        )


# ------------------------------------------------------------------------------------------- report
def report_table(stats: Stats, elapsed: float) -> list[str]:
    lines = [f"{'operation':<26}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}  outcomes"]
    for op in sorted(stats.ops):
        s = stats.ops[op]
        values = sorted(s.latencies)
        figures = [percentile(values, q) * 1000 for q in (0.5, 0.95, 0.99)] + [(values[-1] if values else 0) * 1000]
        outcomes = ", ".join(f"{k}: {n}" for k, n in sorted(s.outcomes.items()))
        lines.append(f"{op:<26}{len(s.latencies):>7}" + "".join(f"{f:>9.1f}" for f in figures) + f"  {outcomes}")
    load_requests = stats.total_requests(lambda name: not name.startswith("verify"))
    lines.append(
        f"load phase: {load_requests} requests in {elapsed:.1f} s = {load_requests / max(elapsed, 1e-9):.1f} req/s; "
        f"5xx: {stats.server_errors}; transport errors: {stats.transport_errors}"
    )
    return lines


def summary(
    stats: Stats, elapsed: float, verification: Verification, pipeline: Counter[str], passed: bool
) -> dict[str, Any]:
    ops = {}
    for op, s in stats.ops.items():
        values = sorted(s.latencies)
        ops[op] = {
            "count": len(values),
            "outcomes": dict(s.outcomes),
            **{f"p{int(q * 100)}_ms": round(percentile(values, q) * 1000, 2) for q in (0.5, 0.95, 0.99)},
        }
    load_requests = stats.total_requests(lambda name: not name.startswith("verify"))
    return {
        "passed": passed,
        "seconds": round(elapsed, 2),
        "requests": load_requests,
        "throughput_rps": round(load_requests / max(elapsed, 1e-9), 1),
        "server_errors": stats.server_errors,
        "transport_errors": stats.transport_errors,
        "problems": stats.problem_count,
        "problem_examples": stats.problems,
        "operations": ops,
        "pipeline": dict(pipeline),
        "verification": verification.figures,
    }


# --------------------------------------------------------------------------------------------- main
def _project_logs_to(path: Path) -> None:
    """The in-process pipeline's log lines (and metrics documents) go to a file, not into the report."""
    root = get_logger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)


def _watchdog(seconds: float, server: LocalApi, done: threading.Event, fired: threading.Event) -> None:
    """The hard bound: whatever hangs, stop the server and exit 124 after ``seconds``."""
    if done.wait(seconds):
        return
    fired.set()
    print(f"load: hard timeout after {seconds:.0f} s; stopping the server (log: {server.log_path})", file=sys.stderr)
    with contextlib.suppress(Exception):
        server.stop()
    os._exit(124)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (default 8)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load phase (default 60)")
    parser.add_argument(
        "--keys", type=int, default=0, help=f"API keys the threads share (default min(clients, {MAX_API_KEYS}))"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the operation mix (default: random, printed)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="hard bound on the whole run (default 240 + 2 x seconds)"
    )
    parser.add_argument("--no-pipeline", action="store_true", help="do not complete or fail jobs while loading")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server's and the pipeline's logs")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the summary as JSON")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients must be >= 1 and --seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    n_keys = max(1, min(args.keys or min(args.clients, MAX_API_KEYS), args.clients))
    keys = [f"ldk_load_{n}_{os.urandom(6).hex()}" for n in range(1, n_keys + 1)]
    timeout = args.timeout or 240 + 2 * args.seconds
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    server = LocalApi(keys, workdir)
    done, fired = threading.Event(), threading.Event()
    watchdog = threading.Thread(
        target=_watchdog, args=(timeout, server, done, fired), name="load-watchdog", daemon=True
    )
    watchdog.start()

    def on_sigterm(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    _project_logs_to(workdir / "pipeline.log")
    stop = threading.Event()
    passed = False
    try:
        print(
            f"load: starting the local API ({n_keys} API keys, seed {seed}, hard timeout {timeout:.0f} s)", flush=True
        )
        started = time.monotonic()
        server.start()
        print(f"load: the local API is up after {time.monotonic() - started:.1f} s", flush=True)
        print(
            f"load: {args.clients} clients x {args.seconds:g} s against http://127.0.0.1:{server.port} "
            f"(emulated AWS at {server.aws_endpoint})",
            flush=True,
        )
        run = run_load(args, server, keys, seed, stop)
        print("load: verifying", flush=True)
        verified_at = time.monotonic()
        api = ("127.0.0.1", server.port)
        verification = Verifier(api, keys, dev_resources(server.aws_endpoint), run.ledger, run.stats).run()
        stats = run.stats
        passed = stats.problem_count == 0 and stats.server_errors == 0 and stats.transport_errors == 0
        print_report(run, verification, time.monotonic() - verified_at, passed, server)
        if args.json is not None:
            document = summary(stats, run.elapsed, verification, run.pipeline, passed)
            args.json.write_text(json.dumps(document, indent=2) + "\n")
        return 0 if passed else 1
    except KeyboardInterrupt:
        print("load: interrupted; stopping the server", file=sys.stderr, flush=True)
        return 130
    except ServerStartError as exc:
        print(f"load: {exc}", file=sys.stderr, flush=True)
        return 3
    finally:
        stop.set()
        if fired.is_set():
            watchdog.join()  # it stops the server and exits 124
        done.set()
        server.stop()
        if passed and not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"load: the server's log is kept in {server.log_path}", file=sys.stderr, flush=True)


@dataclass
class LoadRun:
    stats: Stats
    ledger: Ledger
    elapsed: float
    pipeline: Counter[str]
    #: The machine's 1-minute load average at the end of the load phase (other processes count too).
    load_average: float = 0.0


def run_load(args: argparse.Namespace, server: LocalApi, keys: list[str], seed: int, stop: threading.Event) -> LoadRun:
    """The load phase: the client threads and the pipeline until ``args.seconds`` have passed."""
    api = ("127.0.0.1", server.port)
    stats, ledger, samples = Stats(), Ledger(), load_samples()
    started = time.monotonic()
    until = started + args.seconds
    threads: list[threading.Thread] = [
        Worker(
            index=i,
            api=api,
            api_key=keys[i % len(keys)],
            samples=samples,
            ledger=ledger,
            stats=stats,
            until=until,
            stop=stop,
            seed=seed,
        )
        for i in range(args.clients)
    ]
    pipeline = None
    if not args.no_pipeline:
        resources = dev_resources(server.aws_endpoint)
        pipeline = Pipeline(resources=resources, ledger=ledger, stats=stats, until=until, stop=stop, seed=seed)
    if pipeline is not None:
        threads.append(pipeline)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, until - time.monotonic()) + REQUEST_TIMEOUT_SECONDS + 5)
    stop.set()
    elapsed = time.monotonic() - started
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        stats.problem(f"threads still running after the load phase: {', '.join(stuck)}")
    return LoadRun(stats, ledger, elapsed, pipeline.outcomes if pipeline is not None else Counter(), os.getloadavg()[0])


def print_report(
    run: LoadRun, verification: Verification, verify_seconds: float, passed: bool, server: LocalApi
) -> None:
    stats = run.stats
    print()
    print("\n".join(report_table(stats, run.elapsed)))
    print(f"machine: {os.cpu_count()} CPUs, 1-minute load average {run.load_average:.1f} at the end of the load phase")
    outcomes = ", ".join(f"{k} {n}" for k, n in sorted(run.pipeline.items()) if n)
    print(f"pipeline (JobService in this process): {outcomes or 'off'}")
    print(f"verification ({verify_seconds:.1f} s):")
    print("\n".join(f"  {line}" for line in verification.lines))
    if stats.problem_count:
        print(f"problems ({stats.problem_count}):")
        print("\n".join(f"  - {p}" for p in stats.problems))
        if stats.problem_count > len(stats.problems):
            print(f"  ... and {stats.problem_count - len(stats.problems)} more")
        errors = server.error_lines()
        if errors:
            print("server errors (last lines of its log):")
            print("\n".join(f"  {line}" for line in errors))
    verdict = "nothing lost, no 5xx, every response expected" if passed else f"{stats.problem_count} problem(s)"
    print(f"RESULT: {'PASS' if passed else 'FAIL'}: {verdict}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
