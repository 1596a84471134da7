"""``make run`` across restarts, as a developer lives it: the local API started as a process with a state
folder (``--state-dir``, what ``make run`` passes), stopped with Ctrl-C and started again; the operator CLI
run as its own process against it."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests import samples
from tests.e2e.conftest import ROOT, Client, LocalServer, start_local_server, stop_local_server

pytestmark = pytest.mark.e2e

RESULT_FILE = ROOT / "examples" / "result.json"


def start(folder: Path, *more: str) -> LocalServer:
    from local_api.server import free_port

    return start_local_server(free_port(), args=("--state-dir", str(folder), *more), dev_keys=False)


def printed(server: LocalServer) -> str:
    return Path(server.log_file).read_text()


def printed_key(server: LocalServer) -> str:
    keys = re.findall(r"API key: (ldk_\S+)", printed(server))
    assert len(keys) == 1, printed(server)
    return keys[0]


def ops(server: LocalServer, *argv: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["LOCAL_API_STATE"] = server.state_file
    run = subprocess.run(
        [sys.executable, "-m", "ops", "--local", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert '"_aws"' not in run.stderr, "the operator CLI prints no metric documents"
    return json.loads(run.stdout)


def published_lines(server: LocalServer) -> list[dict[str, Any]]:
    """The stream consumer's "job events" lines (JSON: the log is a file, not a terminal)."""
    lines = [json.loads(line) for line in printed(server).splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == "job events"]


def test_a_restart_keeps_the_key_jobs_files_and_operator_keys_and_publishes_nothing_again(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    first = start(folder)
    key = printed_key(first)
    client = Client(first.url, api_key=key)
    try:
        created = client.json("POST", "/api/v1/jobs", {"blueprint": {"file": base64.b64encode(samples.png()).decode()}})
        assert created.status == 201, created.raw[:300]
        job_id = created.data["job_id"]
        ops(first, "jobs", "complete", job_id, "--start", "--result", str(RESULT_FILE))
        operator_key = ops(first, "keys", "create", "--name", "made before the restart")["api_key"]
        assert Client(first.url, api_key=operator_key).request("GET", "/api/v1/jobs").status == 200, "at once"
        deadline = time.monotonic() + 20
        while len(published_lines(first)) < 3 and time.monotonic() < deadline:  # created, processing, completed
            time.sleep(0.2)
    finally:
        client.close()
    code, output = stop_local_server(first)
    assert code == 0, output
    assert "nothing saved yet" in output

    second = start(folder)
    try:
        assert printed_key(second) == key, "the printed key is the same after a restart"
        assert "state: restored" in printed(second)
        assert "schedule: location-detection-dev-sweep at rate(1 hour), first run now" in printed(second)
        deadline = time.monotonic() + 20
        while '"sweep done"' not in printed(second) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert '"sweep done"' in printed(second), "the sweep ran once at start, over the restored state"
        again = Client(second.url, api_key=key).request("GET", f"/api/v1/jobs/{job_id}")
        assert again.status == 200
        assert again.data["status"] == "completed"
        url = again.data["result_url"]
        assert urlsplit(url).hostname == "127.0.0.1"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert json.loads(response.read()) == json.loads(RESULT_FILE.read_text()), "the stored file is kept"
        other = Client(second.url, api_key=operator_key)
        made = other.json("POST", "/api/v1/jobs", {"blueprint": {"file": base64.b64encode(samples.jpg()).decode()}})
        assert made.status == 201, "a key the operator made before the restart works"
        deadline = time.monotonic() + 20
        while not published_lines(second) and time.monotonic() < deadline:
            time.sleep(0.2)
        lines = published_lines(second)
        assert [line.get("published") for line in lines] == [1], "only the new job's event, none restored"
    finally:
        stop_local_server(second)


def test_a_corrupt_state_is_set_aside_with_a_message_and_fresh_forgets(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    first = start(folder)
    key = printed_key(first)
    stop_local_server(first)
    (folder / "state.json").write_text('{"format": "location-detection/local-state", "version": 1, "tables": [')

    second = start(folder)
    try:
        output = printed(second)
        assert "WARNING: the saved state in" in output
        assert "is not JSON" in output
        assert "this run starts empty" in output
        assert "Traceback" not in output
        (aside,) = tmp_path.glob("state.broken-*")
        assert str(aside) in output
        assert printed_key(second) != key, "nothing restored: a new key"
        assert Client(second.url, api_key=printed_key(second)).request("GET", "/api/v1/jobs").status == 200
        new_key = printed_key(second)
    finally:
        stop_local_server(second)

    third = start(folder, "--fresh")
    try:
        assert "nothing saved yet" in printed(third)
        assert printed_key(third) != new_key, "--fresh (make run FRESH=1) forgets the kept state"
    finally:
        stop_local_server(third)
