"""What a load run does and may see: the operation mix, the outcomes each operation may get, the limits."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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
