"""The API over real HTTP: the local API started as a process, or a deployed stack when API_URL is set."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The local API started here knows these two clients (DEV_API_KEYS); a deployed stack: API_KEY, OTHER_API_KEY.
LOCAL_KEYS = ("ldk_e2e_key_of_alice", "ldk_e2e_key_of_bob")
API_KEY = os.environ.get("API_KEY") or LOCAL_KEYS[0]
OTHER_API_KEY = os.environ.get("OTHER_API_KEY") or LOCAL_KEYS[1]
#: A browser origin the API allows: any one against the local API and dev (CORS "*"); against prod, one of
#: its CorsAllowedOrigins (deploy.yml passes the environment's SMOKE_ORIGIN variable).
ORIGIN = os.environ.get("SMOKE_ORIGIN") or "http://localhost:5173"


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def data(self) -> Any:
        return self.json["data"]

    @property
    def error(self) -> Any:
        return self.json["error"]


class Client:
    """A tiny curl: one keep-alive connection per client, headers case-insensitive in replies."""

    def __init__(self, base_url: str, api_key: str | None = API_KEY) -> None:
        parts = urlsplit(base_url)
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.prefix = parts.path.rstrip("/")
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._netloc, timeout=60)
        return self._conn

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> HttpReply:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                sent = dict(headers or {})
                if self.api_key and not any(k.lower() == "x-api-key" for k in sent):
                    sent["X-API-Key"] = self.api_key
                conn.request(method, self.prefix + path, body=body, headers=sent)
                response = conn.getresponse()
                raw = response.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return HttpReply(response.status, {k.lower(): v for k, v in response.getheaders()}, raw)
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: Any, headers: dict[str, str] | None = None) -> HttpReply:
        return self.request(
            method, path, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class LocalServer:
    url: str
    process: subprocess.Popen[str]
    state_file: str
    log_file: str


def start_local_server(
    port: int, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = (), dev_keys: bool = True
) -> LocalServer:
    """``python -m local_api --quiet ARGS`` on ``port``; ``dev_keys=False``: it makes (or restores) its key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    state = Path(tempfile.gettempdir()) / f"local-api-test-{port}.json"
    log = Path(tempfile.gettempdir()) / f"local-api-test-{port}.log"
    env.update(
        {
            "PORT": str(port),
            "PYTHONUNBUFFERED": "1",
            "LOCAL_API_STATE": str(state),
            "DEV_API_KEYS": ",".join(LOCAL_KEYS),
            # A budget no e2e test meets by accident: schemathesis and the clients' tests exercise the
            # handlers, not the limiter (a 429 would stop them short); tests/e2e/test_rate_limits_http.py
            # starts a server with a small one.
            "RATE_LIMIT_PER_MINUTE": "100000",
            "RATE_LIMIT_BURST": "10000",
            **(extra_env or {}),
        }
    )
    if not dev_keys:
        env.pop("DEV_API_KEYS")
    process = subprocess.Popen(
        [sys.executable, "-m", "local_api", "--quiet", *args],
        cwd=ROOT,
        env=env,
        # A file, not a pipe: nobody reads a pipe while tests run, and a full one would block the server.
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local API exited early:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return LocalServer(url, process, str(state), str(log))
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("local API did not become healthy within 60 s")


def stop_local_server(server: LocalServer) -> tuple[int, str]:
    """Ctrl-C, as a developer would; returns the exit code and everything it printed."""
    server.process.send_signal(signal.SIGINT)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    return server.process.returncode, Path(server.log_file).read_text()


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalServer]:
    from local_api.server import free_port

    server = start_local_server(free_port())
    yield server
    stop_local_server(server)


@pytest.fixture(scope="session")
def api_url(request: pytest.FixtureRequest) -> str:
    """API_URL (a deployed stack) when set, else the local API."""
    deployed = os.environ.get("API_URL")
    if deployed:
        if not (os.environ.get("API_KEY") and os.environ.get("OTHER_API_KEY")):
            pytest.fail("API_URL needs API_KEY and OTHER_API_KEY: two keys of that deployment (docs/deploy.md)")
        return deployed.rstrip("/")
    server: LocalServer = request.getfixturevalue("local_server")
    return server.url


@pytest.fixture
def client(api_url: str) -> Iterator[Client]:
    c = Client(api_url)
    yield c
    c.close()


@pytest.fixture
def is_local() -> bool:
    return not os.environ.get("API_URL")
