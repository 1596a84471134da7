"""Webhook deliveries when things go wrong, in-process (tests/webhooks.py ``Pipeline``): an endpoint that
times out, answers 500, redirects or resets the connection; the delivery worker crashing mid-batch; the
queues unavailable; every attempt failing until the dead-letter queue, and the operator's replay.
Nothing is lost, and a healthy endpoint never gets one delivery twice."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from local_api.cfn_template import Stack
from ops import webhooks as ops_webhooks
from services.webhook_delivery import WebhookDelivery
from tests import samples
from tests.conftest import create_body, invoke
from tests.faults import FaultyClient, throttled
from tests.integration.conftest import FakeClock
from tests.receivers import Receiver, raw_server, receiving
from tests.webhooks import Pipeline, configure, register, verified
from utils import aws as aws_clients
from workers import dependencies as worker_dependencies
from workers import webhook_delivery


@pytest.fixture
def pipeline(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    configure(monkeypatch, WEBHOOK_ALLOW_LOOPBACK="true", WEBHOOK_RETRY_DELAYS="0,0,0,0")
    return Pipeline(aws)


def new_job(tag: bytes) -> str:
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=tag)))
    assert reply.status == 201, reply.body
    return str(reply.data["job_id"])


def delivery_service() -> WebhookDelivery:
    return worker_dependencies.get("webhook_delivery", WebhookDelivery)


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (Receiver(statuses=[500]), "status 500"),
        (Receiver(statuses=[302], location="http://169.254.169.254/latest/meta-data/"), "status 302"),
        (Receiver(statuses=[404]), "status 404"),
    ],
)
def test_a_failed_answer_is_retried_and_the_next_attempt_delivers(
    pipeline: Pipeline, first: Receiver, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiving(first) as receiver:
        hook = register(receiver.url, events=["job.created"]).data
        job_id = new_job(reason.encode())
        pipeline.run()
        received = receiver.wait_for(2)
    assert [r.headers["webhook-id"] for r in received] == [f"{job_id}:1"] * 2
    assert all(verified(hook["secret"], r)["type"] == "job.created" for r in received)
    assert len(receiver.received) == 2, "a redirect is not followed, nor delivered"
    assert f'"reason": "{reason}"' in capsys.readouterr().out


def test_an_endpoint_that_times_out_is_retried(pipeline: Pipeline) -> None:
    with receiving(Receiver(delay=1.5)) as receiver:
        register(receiver.url, events=["job.created"])
        new_job(b"slow endpoint")
        pipeline.stream.poll_once()
        pipeline.fanout.poll_once(0)
        delivery_service().timeout = 0.3
        started = time.monotonic()
        pipeline.delivery.poll_once(0)
        assert time.monotonic() - started < 1.2, "given up at the time limit"
        receiver.delay = 0
        delivery_service().timeout = 10.0  # the retry meets a healthy endpoint, however busy the machine
        pipeline.run()
        received = receiver.wait_for(2)
    assert len(received) == 2
    assert pipeline.waiting("deliveries") == 0


def test_a_reset_connection_is_retried(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    with raw_server("reset") as port, receiving() as receiver:
        hook = register(f"http://127.0.0.1:{port}/hooks/ld", events=["job.created"]).data
        new_job(b"reset")
        pipeline.run(rounds=2)
        # The endpoint moves: the stored URL is the webhook's, so re-point it at the healthy receiver.
        from storage.webhook_store import WebhookStore

        store = WebhookStore("location-detection-dev-jobs")
        old = store.get("cli_alice", hook["webhook_id"])
        assert old is not None
        store.remove("cli_alice", hook["webhook_id"])
        store.add(type(old)(**{**old.__dict__, "url": receiver.url}))
        pipeline.run()
        received = receiver.wait_for(1)
    assert len(received) == 1
    assert verified(hook["secret"], received[0])["type"] == "job.created"


def test_one_slow_endpoint_does_not_hold_back_the_others_of_its_batch(pipeline: Pipeline) -> None:
    with receiving(Receiver(delay=3.0)) as slow, receiving() as fast_1, receiving() as fast_2:
        for receiver in (slow, fast_1, fast_2):
            register(receiver.url, events=["job.created"])
        new_job(b"one slow of three")
        pipeline.stream.poll_once()
        pipeline.fanout.poll_once(0)
        pipeline.delivery.poll_once(0)
        (held,) = slow.received
        answered = held.at + slow.delay
        assert fast_1.received[0].at < answered, "delivered while the slow one still waited"
        assert fast_2.received[0].at < answered


class Crash(BaseException):
    """The worker's process dying (not an exception the code could catch as an error)."""


def test_a_worker_crashing_mid_batch_loses_nothing_and_sends_nothing_twice(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    receivers = [Receiver() for _ in range(3)]
    with receiving(receivers[0]), receiving(receivers[1]), receiving(receivers[2]):
        for receiver in receivers:
            register(receiver.url, events=["job.created"])
        new_job(b"crash mid-batch")
        pipeline.set_queue("deliveries", VisibilityTimeout="1")  # the crashed batch comes back in 1 s
        pipeline.stream.poll_once()
        pipeline.fanout.poll_once(0)
        service = delivery_service()
        real_send, sent = service._send, []

        def crashing_send(*args: Any, **kwargs: Any) -> Any:
            sent.append(args[0].port)
            if len(sent) == 2:
                raise Crash  # the process dies while the second of three is in flight
            return real_send(*args, **kwargs)

        service._send = crashing_send
        with pytest.raises(Crash):
            pipeline.delivery.poll_once(0)
        service._send = real_send
        time.sleep(1.2)
        pipeline.run()
        for receiver in receivers:
            assert len(receiver.wait_for(1)) == 1
        time.sleep(1.2)
        pipeline.run()
    assert [len(r.received) for r in receivers] == [1, 1, 1], "each once, though all three messages came back"
    assert pipeline.waiting("deliveries") == 0


def test_a_second_copy_of_a_delivery_is_dropped(pipeline: Pipeline) -> None:
    """SQS delivers at least once, and a fan-out retried after a lost answer queues its deliveries again."""
    with receiving() as receiver:
        register(receiver.url, events=["job.created"])
        new_job(b"queued twice")
        pipeline.stream.poll_once()
        reply = pipeline.sqs.receive_message(QueueUrl=pipeline.urls["events"], VisibilityTimeout=0)
        (event,) = reply["Messages"]
        pipeline.sqs.send_message(QueueUrl=pipeline.urls["events"], MessageBody=event["Body"])  # a duplicate
        pipeline.run()
        assert len(receiver.wait_for(1)) == 1
        time.sleep(0.3)
    assert len(receiver.received) == 1
    assert pipeline.waiting("deliveries") == pipeline.waiting("events") == 0


def test_the_deliveries_queue_unavailable_keeps_the_event_until_it_is_back(
    pipeline: Pipeline, clock: FakeClock
) -> None:
    with receiving() as receiver:
        hook = register(receiver.url, events=["job.created"]).data
        pipeline.set_queue("events", VisibilityTimeout="1")
        real = aws_clients.get_client("sqs")
        down = FaultyClient(real, always={"send_message_batch": lambda: throttled("SendMessageBatch")})
        aws_clients.set_client("sqs", down)
        new_job(b"queue down")
        pipeline.run()
        assert receiver.received == []
        assert pipeline.waiting("events") == 1, "the event waits in its queue"
        assert down.calls["send_message_batch"] > 1, "retried before giving up"
        aws_clients.set_client("sqs", real)
        time.sleep(1.1)
        pipeline.run()
        (received,) = receiver.wait_for(1)
    assert verified(hook["secret"], received)["type"] == "job.created"
    assert pipeline.waiting("events") == pipeline.waiting("deliveries") == 0


def test_a_queue_that_will_not_put_a_delivery_off_still_loses_nothing(pipeline: Pipeline, clock: FakeClock) -> None:
    with receiving(Receiver(statuses=[500])) as receiver:
        register(receiver.url, events=["job.created"])
        # Longer than a round with the put-off's retries takes on a busy machine: one attempt until it is up.
        pipeline.set_queue("deliveries", VisibilityTimeout="3")
        real = aws_clients.get_client("sqs")
        aws_clients.set_client(
            "sqs",
            FaultyClient(real, always={"change_message_visibility": lambda: throttled("ChangeMessageVisibility")}),
        )
        new_job(b"no put-off")
        pipeline.run()
        assert len(receiver.received) == 1
        aws_clients.set_client("sqs", real)
        time.sleep(3.1)  # back after the queue's own visibility timeout instead
        pipeline.run()
        assert len(receiver.wait_for(2)) == 2


def test_after_the_last_attempt_the_delivery_waits_in_the_dead_letter_queue_for_a_replay(
    pipeline: Pipeline,
) -> None:
    with receiving(Receiver(statuses=[500] * 5)) as receiver:
        hook = register(receiver.url, events=["job.created"]).data
        pipeline.set_queue("deliveries", RedrivePolicy=_redrive(pipeline, 5))  # as make run sets it for 4 delays
        job_id = new_job(b"dead letter")
        pipeline.run()
        assert len(receiver.wait_for(5)) == 5
        pipeline.run()
        assert pipeline.waiting("deliveries") == 0
        assert pipeline.waiting("dead-letters") == 1

        listed = ops_webhooks.dead_letters(pipeline.sqs, pipeline.urls["dead-letters"], limit=10)
        (entry,) = listed["dead_letters"]
        assert (entry["kind"], entry["event_id"], entry["webhook_id"]) == (
            "delivery",
            f"{job_id}:1",
            hook["webhook_id"],
        )
        assert pipeline.waiting("dead-letters") == 1, "listing leaves them there"
        dry = ops_webhooks.replay(pipeline.sqs, _ops_urls(pipeline), dry_run=True, limit=10)
        assert (dry["replayed"], pipeline.waiting("dead-letters")) == ({"delivery": 1, "event": 0}, 1)

        summary = ops_webhooks.replay(pipeline.sqs, _ops_urls(pipeline), dry_run=False, limit=10)
        assert (summary["replayed"], summary["ok"]) == ({"delivery": 1, "event": 0}, True)
        pipeline.run()
        received = receiver.wait_for(6)
    assert len(received) == 6
    assert verified(hook["secret"], received[-1])["type"] == "job.created"
    assert pipeline.waiting("dead-letters") == pipeline.waiting("deliveries") == 0


def test_an_event_the_fan_out_gave_up_on_is_replayed_to_the_fan_out(pipeline: Pipeline) -> None:
    with receiving() as receiver:
        register(receiver.url, events=["job.created"])
        pipeline.stream.poll_once()
        job_id = new_job(b"fan-out gave up")
        pipeline.stream.poll_once()
        (event,) = pipeline.sqs.receive_message(QueueUrl=pipeline.urls["events"])["Messages"]
        pipeline.sqs.send_message(QueueUrl=pipeline.urls["dead-letters"], MessageBody=event["Body"])
        pipeline.sqs.delete_message(QueueUrl=pipeline.urls["events"], ReceiptHandle=event["ReceiptHandle"])
        pipeline.sqs.send_message(QueueUrl=pipeline.urls["dead-letters"], MessageBody="not a webhook message")
        summary = ops_webhooks.replay(pipeline.sqs, _ops_urls(pipeline), dry_run=False, limit=10)
        assert summary["replayed"] == {"delivery": 0, "event": 1}
        assert (len(summary["left"]), summary["ok"]) == (1, False), "the unknown message stays"
        pipeline.run()
        (received,) = receiver.wait_for(1)
    assert received.headers["webhook-id"] == f"{job_id}:1"
    assert pipeline.waiting("dead-letters") == 1


def test_a_message_that_is_not_a_delivery_is_kept_for_an_operator(pipeline: Pipeline) -> None:
    pipeline.sqs.send_message(QueueUrl=pipeline.urls["deliveries"], MessageBody=json.dumps({"kind": "other"}))
    reply = pipeline.sqs.receive_message(QueueUrl=pipeline.urls["deliveries"], MessageSystemAttributeNames=["All"])
    (message,) = reply["Messages"]
    record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"]}
    answer = webhook_delivery.lambda_handler({"Records": [record]}, None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}


def _redrive(pipeline: Pipeline, attempts: int) -> str:
    arn = pipeline.sqs.get_queue_attributes(QueueUrl=pipeline.urls["dead-letters"], AttributeNames=["QueueArn"])
    return json.dumps({"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": str(attempts)})


def _ops_urls(pipeline: Pipeline) -> dict[str, str]:
    return {
        "dead-letters": pipeline.urls["dead-letters"],
        "event": pipeline.urls["events"],
        "delivery": pipeline.urls["deliveries"],
    }
