"""The order of one job's deliveries to one webhook within a batch (``workers.webhook_delivery``): a
standard queue hands messages over in any order and a batch is attempted in parallel, so the worker
chains one job's events to one webhook, oldest version first, and stops the chain at the first failure.
The batches here are the deliveries queue's real messages, handed to the worker newest first."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from local_api.cfn_template import Stack
from local_api.server import LambdaContext
from tests.integration.test_webhook_delivery import new_job, task
from tests.receivers import Receiver, receiving
from tests.webhooks import Pipeline, configure, in_version_order, register, version_of
from workers import webhook_delivery

DELAY = 0.4


@pytest.fixture
def pipeline(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    configure(monkeypatch, WEBHOOK_ALLOW_LOOPBACK="true", WEBHOOK_RETRY_DELAYS="0,0,0,0")
    return Pipeline(aws)


def queued_version(record: dict[str, Any]) -> int:
    return version_of(json.loads(record["body"])["event_id"])


def queued_newest_first(pipeline: Pipeline, count: int) -> list[dict[str, Any]]:
    """The job events made so far, fanned out, and their ``count`` deliveries taken off the queue as a
    Lambda batch, in reverse version order."""
    pipeline.stream.poll_once()
    pipeline.fanout.poll_once(0)
    messages: list[dict[str, Any]] = []
    for _ in range(10):
        reply = pipeline.sqs.receive_message(
            QueueUrl=pipeline.urls["deliveries"],
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            MessageSystemAttributeNames=["All"],
        )
        messages += reply.get("Messages", [])
        if len(messages) >= count:
            break
    assert len(messages) == count
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m["Attributes"],
        }
        for m in messages
    ]
    return sorted(records, key=lambda r: (json.loads(r["body"])["event_id"].split(":")[0], -queued_version(r)))


def three_events(tag: bytes) -> str:
    job_id = new_job(tag)
    task(action="start", job_id=job_id)
    task(action="progress", job_id=job_id, progress=40, stage="ocr")
    return job_id


def failed_ids(answer: dict[str, Any]) -> set[str]:
    return {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}


def test_one_jobs_events_reach_a_webhook_one_after_another_oldest_first(pipeline: Pipeline) -> None:
    with receiving(Receiver(delay=DELAY)) as receiver:
        register(receiver.url)
        job_id = three_events(b"in order")
        batch = queued_newest_first(pipeline, 3)
        assert [queued_version(r) for r in batch] == [3, 2, 1]
        answer = webhook_delivery.lambda_handler({"Records": batch}, None)
        received = receiver.wait_for(3)
    assert failed_ids(answer) == set()
    assert [r.headers["webhook-id"] for r in received] == [f"{job_id}:{v}" for v in (1, 2, 3)]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(received)]
    assert all(gap >= DELAY * 0.9 for gap in gaps), f"each sent after the one before was answered: {gaps}"


def test_after_a_failure_the_jobs_later_events_wait_behind_it_and_then_follow_in_order(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiving(Receiver(statuses=[500])) as receiver:
        register(receiver.url)
        job_id = three_events(b"blocked")
        batch = queued_newest_first(pipeline, 3)
        answer = webhook_delivery.lambda_handler({"Records": batch}, None)
        assert [r.headers["webhook-id"] for r in receiver.wait_for(1)] == [f"{job_id}:1"]
        assert failed_ids(answer) == {r["messageId"] for r in batch}, "all three stay in the queue"
        logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"webhook delivery"' in line]
        assert sorted((entry["event_id"], entry["reason"]) for entry in logged) == [
            (f"{job_id}:1", "status 500"),
            (f"{job_id}:2", f"behind {job_id}:1"),
            (f"{job_id}:3", f"behind {job_id}:1"),
        ]
        pipeline.run_until(lambda: len(receiver.received) >= 4)
        received = receiver.wait_for(4)
    assert [version_of(r.headers["webhook-id"]) for r in received] == [1, 1, 2, 3]
    assert pipeline.waiting("deliveries") == 0


def test_other_jobs_and_other_webhooks_are_not_held_back_by_one_jobs_chain(pipeline: Pipeline) -> None:
    with receiving(Receiver(delay=3.0)) as slow, receiving() as other:
        register(slow.url)
        register(other.url)
        first, second = new_job(b"first job"), new_job(b"second job")
        batch = queued_newest_first(pipeline, 4)
        webhook_delivery.lambda_handler({"Records": batch}, None)
        at_slow = {r.headers["webhook-id"]: r.at for r in slow.wait_for(2)}
        at_other = {r.headers["webhook-id"]: r.at for r in other.wait_for(2)}
    assert set(at_slow) == set(at_other) == {f"{first}:1", f"{second}:1"}
    assert abs(at_slow[f"{first}:1"] - at_slow[f"{second}:1"]) < 3.0, "two jobs to one webhook in parallel"
    assert max(at_other.values()) < min(at_slow.values()) + 3.0, "the other webhook did not wait for the slow one"


def test_a_delivery_that_would_outlast_the_invocation_is_put_off_not_begun(pipeline: Pipeline) -> None:
    with receiving() as receiver:
        register(receiver.url)
        job_id = three_events(b"short of time")
        batch = queued_newest_first(pipeline, 3)
        # 7 s of Lambda time, 2 s kept in reserve: 5 s left, less than an attempt's 10 s.
        context = LambdaContext("location-detection-dev-webhook-delivery", 7)
        answer = webhook_delivery.lambda_handler({"Records": batch}, context)
        assert [r.headers["webhook-id"] for r in receiver.wait_for(1)] == [f"{job_id}:1"], "the first is tried"
        later = {r["messageId"] for r in batch if queued_version(r) > 1}
        assert failed_ids(answer) == later
        pipeline.run_until(lambda: len(receiver.received) >= 3)
        received = receiver.wait_for(3)
    assert in_version_order(received) == received
    assert len(received) == 3
