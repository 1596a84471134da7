"""Previews over HTTP, with two clients: a preview only ever comes from the caller's own completed job.

Before issue 14, client B creating a job with the bytes of client A's completed job got A's rooms in its
201 — and so learned that someone had sent that file within the hour.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid

import pytest

from tests import samples
from tests.e2e.conftest import OTHER_API_KEY, ROOT, Client, LocalServer

pytestmark = pytest.mark.e2e

RESULT = json.loads((ROOT / "examples" / "result.json").read_text())


def complete_with_ops(server: LocalServer, job_id: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["LOCAL_API_STATE"] = server.state_file
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


def create(client: Client, content: bytes) -> dict[str, object]:
    reply = client.json("POST", "/api/v1/jobs", {"blueprint": {"file": base64.b64encode(content).decode()}})
    assert reply.status == 201, reply.raw[:300]
    return dict(reply.data)


def test_another_clients_completed_job_gives_no_preview_and_nothing_that_reveals_it(
    local_server: LocalServer,
) -> None:
    alice, bob = Client(local_server.url), Client(local_server.url, api_key=OTHER_API_KEY)
    try:
        # Given Alice's job for some bytes, completed with rooms
        content = samples.png(extra=f"shared {uuid.uuid4()}".encode())
        first = create(alice, content)
        complete_with_ops(local_server, str(first["job_id"]))

        # When Bob sends the same bytes, and then a file nobody ever sent
        bobs = create(bob, content)
        fresh = create(bob, samples.png(extra=f"fresh {uuid.uuid4()}".encode()))

        # Then Bob's 201 carries no preview and looks exactly like one for a file nobody sent before
        assert "preview" not in bobs
        assert set(bobs) == set(fresh)
        assert first["job_id"] not in json.dumps(bobs)
        assert bobs["blueprint_hash"] == first["blueprint_hash"], "his own job's hash of his own bytes"

        # And Alice, sending her bytes again, gets her own preview
        again = create(alice, content)
        assert again["preview"] == {"rooms": RESULT["rooms"], "model_version": RESULT["model_version"], "cached": True}
    finally:
        alice.close()
        bob.close()


def test_bobs_own_completed_job_gives_him_his_preview_and_alice_none(local_server: LocalServer) -> None:
    alice, bob = Client(local_server.url), Client(local_server.url, api_key=OTHER_API_KEY)
    try:
        content = samples.jpg(f"bob's {uuid.uuid4()}".encode())
        complete_with_ops(local_server, str(create(bob, content)["job_id"]))

        assert "preview" in create(bob, content)
        assert "preview" not in create(alice, content)
    finally:
        alice.close()
        bob.close()
