"""A completed job erased over real HTTP, against the local API (the operator CLI completes the job, as the
pipeline would): its result_url from before serves nothing and its preview is gone."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest

from tests import samples
from tests.e2e.conftest import ROOT, Client, LocalServer
from tests.e2e.test_erasure_http import erase

pytestmark = pytest.mark.e2e


def test_a_completed_jobs_result_url_and_preview_go_with_it(local_server: LocalServer) -> None:
    client = Client(local_server.url)
    try:
        content = samples.png(extra=uuid.uuid4().bytes)
        body = {"blueprint": {"file": base64.b64encode(content).decode()}}
        job_id = client.json("POST", "/api/v1/jobs", body).data["job_id"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env["LOCAL_API_STATE"] = local_server.state_file
        command = [sys.executable, "-m", "ops", "--local", "jobs", "complete", job_id, "--start", "--result"]
        run = subprocess.run(
            [*command, "examples/result.json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        result_url = client.request("GET", f"/api/v1/jobs/{job_id}").data["result_url"]
        assert client.json("POST", f"/api/v1/jobs/{job_id}/feedback", {"rating": 5}).status == 201

        receipt = erase(client, job_id)

        assert receipt.status == 200, receipt.raw[:500]
        assert receipt.data["objects_deleted"] == 3, "the blueprint, the result, the feedback"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(result_url, timeout=10)
        assert refused.value.code == 404, "the result_url from before serves nothing"
        again = client.json("POST", "/api/v1/jobs", body)
        assert "preview" not in again.data, json.dumps(again.data)[:300]
    finally:
        client.close()
