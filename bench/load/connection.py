"""One keep-alive HTTP connection to the API (or to emulated S3), recording every reply in ``Stats``."""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from dataclasses import dataclass
from typing import Any

from bench.load.plan import IDLE_RECONNECT_SECONDS, LOOPBACK_HOSTS, REQUEST_TIMEOUT_SECONDS
from bench.load.stats import Stats


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
