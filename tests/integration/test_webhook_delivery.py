"""Deliveries in-process, every step the real one (tests/webhooks.py ``Pipeline``): a job's writes through
lambda_handler and the pipeline's task handler, the stream consumer, moto's EventBridge rule to the webhook
events queue, the fan-out, the deliveries queue, the delivery worker, a receiver on loopback. Every
delivery is verified with the Standard Webhooks reference library."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local_api.cfn_template import Stack
from local_api.server import LambdaContext
from tests import samples
from tests.conftest import OTHER_API_KEY, create_body, invoke
from tests.receivers import Receiver, receiving
from tests.webhooks import Pipeline, configure, in_version_order, register, stand_in_dns, verified
from workers import pipeline_task

LIFECYCLE = ["job.created", "job.processing", "job.progress", "job.completed"]
RESULT = {"rooms": [{"id": "room_1", "bounding_box": [0, 0, 10, 10]}], "model_version": "m-1"}


@pytest.fixture
def pipeline(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    configure(monkeypatch, WEBHOOK_ALLOW_LOOPBACK="true", WEBHOOK_RETRY_DELAYS="0,0,0")
    return Pipeline(aws)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as started:
        yield started


def task(**event: Any) -> dict[str, Any]:
    result: dict[str, Any] = pipeline_task.lambda_handler(
        event, LambdaContext("location-detection-dev-pipeline-task", 30)
    )
    return result


def new_job(tag: bytes, api_key: str | None = None) -> str:
    kwargs = {"api_key": api_key} if api_key else {}
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=tag)), **kwargs)
    assert reply.status == 201, reply.body
    return str(reply.data["job_id"])


def drive_to_completed(job_id: str) -> None:
    task(action="start", job_id=job_id)
    task(action="progress", job_id=job_id, progress=40, stage="ocr")
    task(action="complete", job_id=job_id, result=RESULT)


def test_each_state_change_reaches_the_receiver_signed_as_standard_webhooks_says(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    hook = register(receiver.url).data
    job_id = new_job(b"delivered")
    drive_to_completed(job_id)
    pipeline.run()

    received = in_version_order(receiver.wait_for(4))
    events = [verified(hook["secret"], r) for r in received]
    assert [e["type"] for e in events] == LIFECYCLE, "in the order of the versions in their ids"
    assert len({r.headers["webhook-id"] for r in received}) == 4
    assert all(r.headers["webhook-id"].startswith(f"{job_id}:") for r in received), "the event's stable id"
    by_type = {e["type"]: e for e in events}
    assert set(by_type["job.completed"]) == {"type", "timestamp", "data"}
    assert by_type["job.completed"]["data"]["job"]["status"] == "completed"
    assert "result_url" not in by_type["job.completed"]["data"]["job"]
    assert (by_type["job.progress"]["data"]["job"]["progress"], by_type["job.progress"]["data"]["job"]["stage"]) == (
        40,
        "ocr",
    )
    assert all(r.path == "/hooks/ld" for r in received)
    assert pipeline.waiting("deliveries") == pipeline.waiting("events") == 0


def test_a_receiver_failing_twice_gets_the_same_id_three_times_each_freshly_signed(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from utils import clock

    ticks = iter(range(1_795_000_000, 1_796_000_000, 3))  # time moves on at every reading
    monkeypatch.setattr(clock, "wall_source", lambda: float(next(ticks)))
    with receiving(Receiver(statuses=[500, 503])) as receiver:
        hook = register(receiver.url, events=["job.created"]).data
        job_id = new_job(b"fails twice")
        pipeline.run()
        received = receiver.wait_for(3)

    assert [r.headers["webhook-id"] for r in received] == [f"{job_id}:1"] * 3
    timestamps = [int(r.headers["webhook-timestamp"]) for r in received]
    assert timestamps == sorted(set(timestamps)), "a fresh timestamp on every attempt"
    assert len({r.headers["webhook-signature"] for r in received}) == 3
    assert len({r.body for r in received}) == 1, "the same body every time"
    # Each signature covers its own timestamp: the first, presented with a current one, fails to verify.
    received[0].headers["webhook-timestamp"] = str(int(time.time()))
    with pytest.raises(Exception, match="No matching signature"):
        verified(hook["secret"], received[0])
    assert pipeline.waiting("deliveries") == 0


def test_three_attempts_verify_with_the_reference_library_at_real_time(pipeline: Pipeline) -> None:
    with receiving(Receiver(statuses=[500, 500])) as receiver:
        hook = register(receiver.url, events=["job.created"]).data
        job_id = new_job(b"fails twice, real time")
        for _ in range(3):
            pipeline.run()
        received = receiver.wait_for(3)
    assert [verified(hook["secret"], r)["type"] for r in received] == ["job.created"] * 3
    assert {r.headers["webhook-id"] for r in received} == {f"{job_id}:1"}


def test_a_webhook_gets_only_the_types_it_asked_for(pipeline: Pipeline, receiver: Receiver) -> None:
    register(receiver.url, events=["job.completed", "job.cancelled"])
    drive_to_completed(new_job(b"only completed"))
    cancelled = new_job(b"then a cancel")
    invoke("DELETE", f"/api/v1/jobs/{cancelled}")
    pipeline.run()
    types = sorted(json.loads(r.body)["type"] for r in receiver.wait_for(2))
    assert types == ["job.cancelled", "job.completed"]


def test_another_clients_webhooks_never_hear_of_this_clients_jobs(pipeline: Pipeline) -> None:
    with receiving() as alices, receiving() as bobs:
        register(alices.url, events=["job.created"])
        register(bobs.url, events=["job.created"], api_key=OTHER_API_KEY)
        mine = new_job(b"alice's")
        theirs = new_job(b"bob's", api_key=OTHER_API_KEY)
        pipeline.run()
        assert [r.headers["webhook-id"] for r in alices.wait_for(1)] == [f"{mine}:1"]
        assert [r.headers["webhook-id"] for r in bobs.wait_for(1)] == [f"{theirs}:1"]


def test_every_webhook_of_the_owner_gets_its_own_delivery(pipeline: Pipeline) -> None:
    with receiving() as first, receiving() as second:
        one = register(first.url, events=["job.created"]).data
        two = register(second.url, events=["job.created"]).data
        new_job(b"two webhooks")
        pipeline.run()
        verified(one["secret"], first.wait_for(1)[0])
        verified(two["secret"], second.wait_for(1)[0])
        with pytest.raises(Exception, match="No matching signature"):
            verified(one["secret"], second.received[0])


def test_deleting_a_webhook_stops_its_pending_deliveries(pipeline: Pipeline) -> None:
    with receiving(Receiver(statuses=[500] * 10)) as receiver:
        hook = register(receiver.url, events=["job.created"]).data
        new_job(b"deleted while retrying")
        pipeline.run(rounds=1)
        assert len(receiver.wait_for(1)) == 1
        assert invoke("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}").status == 200
        pipeline.run()
        assert len(receiver.received) == 1, "no attempt after the delete"
    assert pipeline.waiting("deliveries") == pipeline.waiting("dead-letters") == 0, "dropped, not dead-lettered"


def test_the_address_is_checked_again_at_delivery_dns_having_changed(
    pipeline: Pipeline, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: public at registration, loopback (the receiver's own address) at delivery. The
    deployed setting (no loopback): the delivery is refused before any connection is made."""
    configure(monkeypatch, WEBHOOK_ALLOW_LOOPBACK="false")
    dns = stand_in_dns(monkeypatch, {"hooks.example.com": ["93.184.216.34"]})
    url = f"https://hooks.example.com:{receiver.port}/hooks/ld"
    assert register(url, events=["job.created"]).status == 201
    dns["hooks.example.com"] = ["127.0.0.1"]
    connections: list[Any] = []
    real_connect = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connections.append(a) or real_connect(*a, **k))
    new_job(b"rebinding")
    pipeline.run(rounds=3)
    assert receiver.received == []
    assert connections == [], "not even a connection to the new address"
    dns["hooks.example.com"] = ["169.254.169.254"]
    pipeline.run(rounds=3)
    assert connections == []
    assert pipeline.waiting("deliveries") + pipeline.waiting("dead-letters") == 1, "kept, to be retried"


def test_the_secret_is_decrypted_once_per_container_for_many_deliveries(pipeline: Pipeline, receiver: Receiver) -> None:
    from tests.faults import FaultyClient
    from utils import aws as aws_clients

    kms = FaultyClient(aws_clients.get_client("kms"))
    aws_clients.set_client("kms", kms)
    hook = register(receiver.url).data
    drive_to_completed(new_job(b"one decryption"))
    pipeline.run()
    assert sorted(verified(hook["secret"], r)["type"] for r in receiver.wait_for(4)) == sorted(LIFECYCLE)
    assert kms.calls.get("decrypt") == 1
    assert kms.calls.get("encrypt") == 1


def test_an_event_nobody_wants_costs_one_read_and_queues_nothing(pipeline: Pipeline) -> None:
    new_job(b"nobody listens")
    pipeline.run()
    assert pipeline.waiting("events") == pipeline.waiting("deliveries") == 0


def test_a_webhook_item_write_is_no_job_event(pipeline: Pipeline, receiver: Receiver) -> None:
    """The webhooks' and the ledger's typed items share the jobs table: their writes publish nothing."""
    import boto3

    from tests.events import Subscriber

    session = boto3.session.Session(region_name="us-east-1")
    subscriber = Subscriber(session.client("events"), session.client("sqs"))
    register(receiver.url, events=["job.created"])
    new_job(b"one event")
    pipeline.run()
    assert len(receiver.wait_for(1)) == 1
    pipeline.run()
    assert [e["detail"]["type"] for e in subscriber.take()] == ["job.created"], "the ledger's writes are no event"
