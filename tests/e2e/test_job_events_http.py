"""Job events end to end, as `make run` serves them: the local API started as a process (with its poller of
the emulated stream running the real consumer), a job driven over HTTP and with the operator CLI, and a
subscriber queue on the emulated bus (a rule with an SQS target, made here) receiving the events.

One local API for this module (the bus-outage test deletes its bus: no other module must see that).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests import samples
from tests.e2e.conftest import ROOT, Client, LocalServer, start_local_server, stop_local_server
from tests.events import BUS, Subscriber, kinds

pytestmark = pytest.mark.e2e

LIFECYCLE = ["job.created", "job.processing", "job.progress", "job.completed"]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    from local_api.server import free_port

    started = start_local_server(free_port())
    yield started
    stop_local_server(started)


@pytest.fixture(scope="module")
def emulated(server: LocalServer) -> dict[str, Any]:
    """Clients of the local API's emulated AWS (its endpoint from the state file it wrote)."""
    from pathlib import Path

    endpoint = json.loads(Path(server.state_file).read_text())["aws_endpoint_url"]
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return {name: session.client(name, endpoint_url=endpoint) for name in ("events", "sqs")}


@pytest.fixture
def subscriber(emulated: dict[str, Any]) -> Iterator[Subscriber]:
    subscribed = Subscriber(emulated["events"], emulated["sqs"])
    yield subscribed
    subscribed.close()


@pytest.fixture
def client(server: LocalServer) -> Iterator[Client]:
    c = Client(server.url)
    yield c
    c.close()


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


def create(client: Client, tag: bytes) -> str:
    reply = client.json(
        "POST", "/api/v1/jobs", {"blueprint": {"file": base64.b64encode(samples.png(extra=tag)).decode()}}
    )
    assert reply.status == 201, reply.raw[:300]
    return str(reply.data["job_id"])


def test_a_job_driven_over_http_and_the_cli_reaches_a_subscriber_once_per_change(
    server: LocalServer, client: Client, subscriber: Subscriber
) -> None:
    job_id = create(client, b"e2e events")
    for command in (
        ("jobs", "start", job_id),
        ("jobs", "progress", job_id, "40", "--stage", "preprocessing"),
        ("jobs", "complete", job_id, "--result", "examples/result.json"),
    ):
        run = ops(server, *command)
        assert run.returncode == 0, run.stderr

    received = subscriber.take(expected=4, timeout=15)
    received += subscriber.take(timeout=1)  # anything more (a duplicate) would arrive now
    assert [t for _, t in kinds(received, job_id)] == LIFECYCLE
    assert len({e["detail"]["id"] for e in received}) == len(received) == 4, "each once per version id"
    progress = next(e["detail"]["job"] for e in received if e["detail"]["type"] == "job.progress")
    assert (progress["progress"], progress["stage"]) == (40, "preprocessing")

    job = client.request("GET", f"/api/v1/jobs/{job_id}").data
    assert (job["status"], job["progress"], job["stage"]) == ("completed", 100, "preprocessing")
    assert job["created_at"] <= job["started_at"] <= job["finished_at"] == job["updated_at"]


def test_with_the_bus_gone_requests_go_on_and_the_replay_publishes_what_was_missed(
    server: LocalServer, client: Client, emulated: dict[str, Any]
) -> None:
    events, sqs = emulated["events"], emulated["sqs"]
    failed_queue = sqs.get_queue_url(QueueName="location-detection-dev-job-events-failed")["QueueUrl"]
    events.delete_event_bus(Name=BUS)
    try:
        started = time.monotonic()
        job_id = create(client, b"e2e bus gone")
        assert time.monotonic() - started < 5, "the API does not wait for the bus"
        assert client.request("DELETE", f"/api/v1/jobs/{job_id}").status == 200
        assert _messages(sqs, failed_queue, timeout=20) >= 1, "the poller gave up on the batch: in the queue"
    finally:
        events.create_event_bus(Name=BUS)
    subscriber = Subscriber(events, sqs)
    try:
        run = ops(server, "events", "replay")
        assert run.returncode == 0, run.stderr
        received = subscriber.take(expected=2, timeout=15)
        assert [t for _, t in kinds(received, job_id)] == ["job.created", "job.cancelled"]
        assert _messages(sqs, failed_queue, timeout=0) == 0
    finally:
        subscriber.close()


def _messages(sqs: Any, queue_url: str, timeout: float) -> int:
    """Messages waiting in the queue (visible or not), once there are some or ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        count = sum(int(v) for v in attributes.values())
        if count or time.monotonic() >= deadline:
            return count
        time.sleep(0.2)


def test_ops_events_watch_prints_the_events_of_a_job_as_they_happen(server: LocalServer, client: Client) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["LOCAL_API_STATE"] = server.state_file
    command = [sys.executable, "-m", "ops", "--local", "events", "watch", "--count", "2", "--seconds", "30"]
    watcher = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert watcher.stderr is not None
        while "watching" not in (line := watcher.stderr.readline()):
            assert line, "the watch ended before it subscribed"
        job_id = create(client, b"e2e watch")
        assert client.request("DELETE", f"/api/v1/jobs/{job_id}").status == 200
        out, _ = watcher.communicate(timeout=40)
    finally:
        watcher.kill()
    lines = out.splitlines()
    printed = [json.loads(line) for line in lines[:2]]
    assert kinds(printed) == [
        (f"{job_id}:1", "job.created"),
        (f"{job_id}:2", "job.cancelled"),
    ]
    assert json.loads("\n".join(lines[2:])) == {"received": 2}
    assert watcher.returncode == 0
