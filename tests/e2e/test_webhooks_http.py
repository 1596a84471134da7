"""Webhooks end to end, as `make run` serves them: the local API started as a process (its pollers running
the real consumer, fan-out and delivery worker on emulated AWS, ``WEBHOOK_ALLOW_LOOPBACK`` true as
`make run` sets it, ``WEBHOOK_RETRY_DELAYS=1,1``), webhooks registered over HTTP to receivers on loopback,
a job driven over HTTP and with the operator CLI, and every delivery verified with the Standard Webhooks
reference library (``standardwebhooks``), not with our signing code.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from standardwebhooks import Webhook

from tests import samples
from tests.e2e.conftest import ROOT, Client, LocalServer, start_local_server, stop_local_server
from tests.receivers import Receiver, receiving

pytestmark = pytest.mark.e2e

LIFECYCLE = ["job.created", "job.processing", "job.progress", "job.completed"]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    from local_api.server import free_port

    started = start_local_server(free_port(), {"WEBHOOK_RETRY_DELAYS": "1,1"})
    yield started
    stop_local_server(started)


@pytest.fixture
def client(server: LocalServer) -> Iterator[Client]:
    c = Client(server.url)
    yield c
    c.close()
    for hook in c.request("GET", "/api/v1/webhooks").data["webhooks"]:  # each test's own, gone after it
        c.request("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}")


def ops(server: LocalServer, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["LOCAL_API_STATE"] = server.state_file
    return subprocess.run(
        [sys.executable, "-m", "ops", "--local", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def register(client: Client, url: str, events: list[str] | None = None) -> dict[str, str]:
    reply = client.json("POST", "/api/v1/webhooks", {"url": url, **({"events": events} if events else {})})
    assert reply.status == 201, reply.raw[:300]
    return dict(reply.data)


def create(client: Client, tag: bytes) -> str:
    content = base64.b64encode(samples.png(extra=tag)).decode()
    reply = client.json("POST", "/api/v1/jobs", {"blueprint": {"file": content}})
    assert reply.status == 201, reply.raw[:300]
    return str(reply.data["job_id"])


def test_a_job_driven_to_completed_reaches_the_receiver_signed_each_change_within_two_seconds(
    server: LocalServer, client: Client
) -> None:
    with receiving() as receiver:
        hook = register(client, receiver.url)
        created = time.time()
        job_id = create(client, b"e2e webhooks")
        (first,) = receiver.wait_for(1, timeout=5)
        assert first.at - created < 2.0, "make run delivers an event within 2 s"
        for command in (
            ("jobs", "start", job_id),
            ("jobs", "progress", job_id, "40", "--stage", "preprocessing"),
            ("jobs", "complete", job_id, "--result", "examples/result.json"),
        ):
            run = ops(server, *command)
            assert run.returncode == 0, run.stderr
        received = receiver.wait_for(4, timeout=15)
        time.sleep(0.5)  # a duplicate would arrive now
    events = [Webhook(hook["secret"]).verify(r.body, r.headers) for r in receiver.received]
    ordered = sorted(
        zip(receiver.received, events, strict=True), key=lambda p: int(p[0].headers["webhook-id"].split(":")[1])
    )
    assert [e["type"] for _, e in ordered] == LIFECYCLE
    assert len({r.headers["webhook-id"] for r in received}) == len(receiver.received) == 4, "each change once"
    assert all(e["data"]["job"]["job_id"] == job_id for e in events)
    assert ordered[-1][1]["data"]["job"]["status"] == "completed"


def test_a_receiver_failing_twice_gets_the_same_id_three_times_each_validly_signed(
    server: LocalServer, client: Client
) -> None:
    with receiving(Receiver(statuses=[503, 500])) as receiver:
        hook = register(client, receiver.url, events=["job.created"])
        job_id = create(client, b"e2e webhooks retried")
        received = receiver.wait_for(3, timeout=15)
    assert [r.headers["webhook-id"] for r in received] == [f"{job_id}:1"] * 3
    assert [Webhook(hook["secret"]).verify(r.body, r.headers)["type"] for r in received] == ["job.created"] * 3
    gaps = [b.at - a.at for a, b in itertools.pairwise(received)]
    assert all(gap >= 0.9 for gap in gaps), f"WEBHOOK_RETRY_DELAYS=1,1 spaces the attempts: {gaps}"


def test_after_its_last_attempt_a_delivery_is_listed_and_replayed_by_the_operator(
    server: LocalServer, client: Client
) -> None:
    with receiving(Receiver(statuses=[500] * 3)) as receiver:
        hook = register(client, receiver.url, events=["job.created"])
        job_id = create(client, b"e2e webhooks dead letter")
        assert len(receiver.wait_for(3, timeout=15)) == 3
        listed: dict[str, object] = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not listed.get("count"):
            run = ops(server, "webhooks", "dead-letters")
            assert run.returncode == 0, run.stderr
            listed = json.loads(run.stdout)
            time.sleep(0.3)
        (entry,) = listed["dead_letters"]  # type: ignore[misc]
        assert (entry["event_id"], entry["webhook_id"], entry["kind"]) == (
            f"{job_id}:1",
            hook["webhook_id"],
            "delivery",
        )
        run = ops(server, "webhooks", "replay")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["replayed"] == {"delivery": 1, "event": 0}
        received = receiver.wait_for(4, timeout=15)
    assert Webhook(hook["secret"]).verify(received[-1].body, received[-1].headers)["type"] == "job.created"
    assert json.loads(ops(server, "webhooks", "dead-letters").stdout)["count"] == 0
