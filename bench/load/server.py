"""The local API under load: ``python -m local_api`` as a subprocess on its own port, always stopped."""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.load.plan import ROOT, STARTUP_TIMEOUT_SECONDS, STOP_TIMEOUT_SECONDS
from local_api.server import free_port


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
        # The load measures the API, not the per-client limiter (which would refuse most creates at 60 a
        # minute); the limiter's spend is still made on every create, at a budget no client meets.
        env.setdefault("RATE_LIMIT_PER_MINUTE", "100000")
        env.setdefault("RATE_LIMIT_BURST", "10000")
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
