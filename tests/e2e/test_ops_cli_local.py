"""``python -m ops --local`` against a running local API, as the README shows it to a frontend developer."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import samples
from tests.e2e.conftest import ROOT, Client, LocalServer

pytestmark = pytest.mark.e2e

RESULT_FILE = ROOT / "examples" / "result.json"


def test_ops_local_drives_a_job_to_completed_with_a_downloadable_result(local_server: LocalServer) -> None:
    port = urlsplit(local_server.url).port
    state = Path(tempfile.gettempdir()) / f"local-api-test-{port}.json"  # where start_local_server points it
    assert state.exists(), "the local API publishes its URLs for the CLI"
    client = Client(local_server.url)
    try:
        created = client.json(
            "POST", "/api/v1/jobs", {"blueprint": {"file": base64.b64encode(samples.png(extra=b"ops")).decode()}}
        )
        assert created.status == 201, created.raw[:500]
        job_id = created.data["job_id"]

        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env["LOCAL_API_STATE"] = str(state)
        command = [sys.executable, "-m", "ops", "--local", "jobs", "complete", job_id, "--start"]
        run = subprocess.run(
            [*command, "--result", "examples/result.json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        printed = json.loads(run.stdout)
        assert printed["job_id"] == job_id
        assert printed["status"] == "completed"

        polled = client.request("GET", f"/api/v1/jobs/{job_id}")
        assert polled.status == 200
        assert polled.data["status"] == "completed"
        url = polled.data["result_url"]
        assert urlsplit(url).hostname == "127.0.0.1", "the result URL points at the embedded emulated S3"
        with urllib.request.urlopen(url, timeout=10) as response:
            downloaded = json.loads(response.read())
        assert downloaded == json.loads(RESULT_FILE.read_text())
    finally:
        client.close()
