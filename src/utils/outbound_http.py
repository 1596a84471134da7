"""One outbound HTTP POST to an address that was already checked (``utils.addresses.check``).

What makes it safe to point at a URL a client chose:
- the connection goes to the checked address, never to a second lookup of the name (no DNS rebinding
  between the check and the connect); TLS still sends the host name (SNI) and verifies the certificate
  against it, and ``Host`` carries it, so virtual hosts and certificates work as they would by name;
- a total time limit (connect, TLS, request, status line and body together), not per read: a server that
  drips a byte at a time cannot hold a worker past it;
- redirects are never followed (a 3xx is the answer), no proxy is used (the environment's proxy
  variables are ignored), and at most ``max_response_bytes`` of the body are read and dropped.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

USER_AGENT = "location-detection-webhooks/1"
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Target:
    """Where to send: the URL's parts and the address its host was checked to resolve to."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Answer:
    """What came back: the status (None when none arrived in time) or why nothing did."""

    status: int | None
    error: str | None
    elapsed_ms: float

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Watchdog:
    """Shuts the connection's socket down when the time limit passes, whatever it is blocked in (a TLS
    handshake read by read, a slow body): the total limit holds, not one per socket operation."""

    def __init__(self, seconds: float) -> None:
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
            if self._fired:
                self._shut(sock)
        return sock

    def _fire(self) -> None:
        with self._lock:
            self._fired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _connection(
    target: Target, timeout: float, context: ssl.SSLContext | None, watchdog: _Watchdog
) -> http.client.HTTPConnection:
    def pinned(address: tuple[str, int], timeout: Any = None, source: Any = None) -> socket.socket:
        return watchdog.watch(socket.create_connection((target.address, address[1]), timeout, source))

    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=context or ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    conn._create_connection = pinned  # type: ignore[attr-defined]  # http.client's seam for the socket
    return conn


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    context: ssl.SSLContext | None = None,
) -> Answer:
    """POST ``body`` to ``target`` within ``timeout`` seconds in all; never raises for the network."""
    started = time.monotonic()
    deadline = started + timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the time limit passed")
        return remaining

    def answer(status: int | None, error: str | None) -> Answer:
        return Answer(status, error, round((time.monotonic() - started) * 1000, 1))

    watchdog = _Watchdog(timeout)
    conn = _connection(target, timeout, context, watchdog)
    status: int | None = None
    try:
        sent = {"User-Agent": USER_AGENT, "Content-Type": "application/json", "Connection": "close", **headers}
        conn.request("POST", target.path, body=body, headers=sent)
        _set_timeout(conn, left())
        response = conn.getresponse()
        status = response.status
        _drain(conn, response, max_response_bytes, left)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if status is None:
            return answer(None, "timeout" if time.monotonic() >= deadline else _describe(exc))
    finally:
        watchdog.cancel()
        conn.close()
    return answer(status, None)


def _set_timeout(conn: http.client.HTTPConnection, seconds: float) -> None:
    if conn.sock is not None:
        conn.sock.settimeout(seconds)


def _drain(conn: http.client.HTTPConnection, response: http.client.HTTPResponse, limit: int, left: Any) -> None:
    """Read at most ``limit`` bytes of the body within the time left (a status is already in hand)."""
    read = 0
    while read < limit:
        _set_timeout(conn, left())
        chunk = response.read(min(8192, limit - read))
        if not chunk:
            return
        read += len(chunk)


def _describe(exc: BaseException) -> str:
    """A short, safe name for what went wrong (never the server's text)."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | http.client.RemoteDisconnected):
        return "connection reset"
    return type(exc).__name__
