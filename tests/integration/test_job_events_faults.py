"""Job events when things fail: the bus throttled, partly failing or unavailable, the consumer crashing
mid-batch, a poison record, records gone from the stream. In every case no state change is lost: its
event reaches the subscriber (perhaps more than once, always with the same id), or the failure queue holds
enough to replay it (``python -m ops events replay``); and the API's own requests never notice.

In-process (moto), the poller stepped by hand, retries on a fake clock (no waiting).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from local_api.cfn_template import Stack
from ops.cli import main as ops_main
from services.job_service import JobService
from storage.event_bus import EventBus
from tests import samples
from tests.conftest import set_rate_limit
from tests.events import kinds
from tests.faults import FaultyClient, throttled
from tests.integration.conftest import FakeClock
from tests.integration.test_job_events import RESULT, Events, new_job
from utils import aws as aws_clients

pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture
def events(aws: Stack) -> Iterator[Events]:
    set_rate_limit(100_000, 10_000)  # these tests make many jobs at once; the limiter has tests of its own
    world = Events(aws)
    yield world
    world.subscriber.close()


@pytest.fixture
def service(aws: Stack) -> JobService:
    from ops.cli import build_service

    return build_service()


@pytest.fixture
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


class PartlyFailingBus:
    """EventBridge answering PutEvents with ``FailedEntryCount``: the entries at ``failing`` positions of
    the first call fail with ``code`` (not put on the bus), the rest are put; later calls all go through."""

    def __init__(self, real: Any, failing: set[int], code: str = "InternalFailure") -> None:
        self.real, self.failing, self.code = real, failing, code
        self.calls: list[int] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls.append(len(Entries))
        if len(self.calls) > 1:
            return dict(self.real.put_events(Entries=Entries))
        kept = [e for i, e in enumerate(Entries) if i not in self.failing]
        answers = iter(self.real.put_events(Entries=kept)["Entries"] if kept else [])
        failure = {"ErrorCode": self.code, "ErrorMessage": "injected"}
        results = [failure if i in self.failing else next(answers) for i in range(len(Entries))]
        return {"FailedEntryCount": len(self.failing), "Entries": results}


def failure_messages(events: Events) -> list[dict[str, Any]]:
    reply = events.sqs.receive_message(QueueUrl=events.poller.failure_queue_url, MaxNumberOfMessages=10)
    messages = [json.loads(m["Body"]) for m in reply.get("Messages", [])]
    for m in reply.get("Messages", []):  # visible again for whoever replays
        events.sqs.change_message_visibility(
            QueueUrl=events.poller.failure_queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )
    return messages


def drive(service: JobService, tag: bytes) -> str:
    job_id = new_job(samples.png(extra=tag))["job_id"]
    service.start_processing(job_id)
    service.report_progress(job_id, 40, "preprocessing")
    service.complete_job(job_id, RESULT)
    return str(job_id)


LIFECYCLE = ["job.created", "job.processing", "job.progress", "job.completed"]


# ------------------------------------------------------------------------------------------- the bus
def test_a_throttled_bus_delays_the_events_and_loses_none(
    events: Events, service: JobService, clock: FakeClock
) -> None:
    real = aws_clients.get_client("events")
    flaky = FaultyClient(real, faults={"put_events": [throttled("PutEvents"), throttled("PutEvents")]})
    aws_clients.set_client("events", flaky)
    job_id = drive(service, b"faults throttled")

    assert [t for _, t in kinds(events.drain(), job_id)] == LIFECYCLE
    assert flaky.calls["put_events"] == 3, "two throttled calls, then the batch went through"
    assert clock.sleeps, "backed off between the attempts"


def test_entries_the_bus_refuses_in_a_partial_failure_are_sent_again_alone(events: Events, service: JobService) -> None:
    real = aws_clients.get_client("events")
    partial = PartlyFailingBus(real, failing={1, 3})
    aws_clients.set_client("events", partial)
    job_id = drive(service, b"faults partial")

    received = events.drain()
    assert [t for _, t in kinds(received, job_id)] == LIFECYCLE, "each exactly once: no duplicate, no gap"
    assert partial.calls == [4, 2]


def test_a_bus_refusing_an_entry_for_good_stops_the_batch_there(events: Events, service: JobService) -> None:
    real = aws_clients.get_client("events")
    aws_clients.set_client("events", PartlyFailingBus(real, failing={2}, code="MalformedDetail"))
    job_id = drive(service, b"faults refused")

    received = events.drain()  # the refused event is delivered again by the poller, and then goes through
    assert sorted({t for _, t in kinds(received, job_id)}) == sorted(LIFECYCLE)
    assert failure_messages(events) == []


def test_a_bus_down_for_good_fills_the_failure_queue_and_the_replay_publishes_everything(
    events: Events, service: JobService, capsys: pytest.CaptureFixture[str], restore_environ: None
) -> None:
    real = aws_clients.get_client("events")
    aws_clients.set_client("events", FaultyClient(real, always={"put_events": lambda: throttled("PutEvents")}))
    job_id = drive(service, b"faults bus down")
    # The API does not depend on the bus: requests go on as usual while it is down.
    other = new_job(samples.png(extra=b"faults bus down, a second job"))["job_id"]
    assert events.drain() == []
    (message,) = failure_messages(events)
    batch = message["DDBStreamBatchInfo"]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 11, "the first delivery and 10 retries"
    assert batch["batchSize"] == 6, "created, processing, progress, lock, completed, and the other job"

    aws_clients.set_client("events", real)  # the bus is back
    capsys.readouterr()
    assert ops_main(["--env", "dev", "events", "replay"]) == 0
    summary = json.loads(capsys.readouterr().out)

    assert (summary["messages"], summary["events"], summary["published"], summary["left"]) == (1, 5, 5, 0)
    replayed = events.subscriber.take()
    assert [t for _, t in kinds(replayed, job_id)] == LIFECYCLE
    assert [t for _, t in kinds(replayed, other)] == ["job.created"]
    assert failure_messages(events) == [], "the message is deleted once its events are published"


def test_the_replay_leaves_a_message_whose_events_still_cannot_be_published(
    events: Events, service: JobService, capsys: pytest.CaptureFixture[str], restore_environ: None
) -> None:
    real = aws_clients.get_client("events")
    aws_clients.set_client("events", FaultyClient(real, always={"put_events": lambda: throttled("PutEvents")}))
    new_job(samples.png(extra=b"faults still down"))
    events.drain()
    capsys.readouterr()
    assert ops_main(["--env", "dev", "events", "replay"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["left"], summary["ok"]) == (1, False)
    assert len(failure_messages(events)) == 1


def test_the_replay_dry_run_changes_nothing(
    events: Events, service: JobService, capsys: pytest.CaptureFixture[str], restore_environ: None
) -> None:
    real = aws_clients.get_client("events")
    aws_clients.set_client("events", FaultyClient(real, always={"put_events": lambda: throttled("PutEvents")}))
    new_job(samples.png(extra=b"faults dry run"))
    events.drain()
    aws_clients.set_client("events", real)
    capsys.readouterr()
    assert ops_main(["--env", "dev", "events", "replay", "--dry-run"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["events"], summary["dry_run"]) == (1, True)
    assert events.subscriber.take() == []
    assert len(failure_messages(events)) == 1


# ----------------------------------------------------------------------------------- the consumer
def test_a_consumer_crashing_mid_batch_is_delivered_again_and_loses_nothing(
    events: Events, service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = EventBus.publish
    crashes = []

    def publish_then_crash(self: EventBus, batch: Any) -> int:
        published = original(self, batch[:2])  # half the batch reaches the bus, then the function dies
        if not crashes:
            crashes.append(published)
            raise MemoryError("the function ran out of memory")
        return published + original(self, batch[2:])

    monkeypatch.setattr(EventBus, "publish", publish_then_crash)
    job_id = drive(service, b"faults crash")

    received = events.drain()
    assert crashes == [2]
    ids = [e["detail"]["id"] for e in received]
    assert sorted(set(ids)) == sorted(f"{job_id}:{v}" for v in (1, 2, 3, 5)), "every state change arrived"
    assert len(ids) == 6, "the two published before the crash arrived twice, with the same ids"


def test_a_poison_record_is_held_then_handed_to_the_failure_queue_while_later_changes_flow(
    events: Events, service: JobService, capsys: pytest.CaptureFixture[str], restore_environ: None
) -> None:
    before = new_job(samples.png(extra=b"faults before poison"))["job_id"]
    poison = "job_20261121T231500_00000000000000aa"
    record = {"job_id": {"S": poison}, "status": {"S": "erasing"}, "version": {"N": "1"}}
    events.dynamodb.put_item(TableName=service.jobs_table.table_name, Item=record)
    after = new_job(samples.png(extra=b"faults after poison"))["job_id"]

    first = events.drain()
    later = new_job(samples.png(extra=b"faults later"))["job_id"]
    second = events.drain()

    assert [i for i, _ in kinds(first)] == [f"{before}:1"], "published up to the poison record"
    (message,) = failure_messages(events)
    assert message["DDBStreamBatchInfo"]["batchSize"] == 2, "the poison record and the one after it"
    assert [i for i, _ in kinds(second)] == [f"{later}:1"], "the shard moved on"

    capsys.readouterr()
    assert ops_main(["--env", "dev", "events", "replay"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["poison"] == [message["DDBStreamBatchInfo"]["startSequenceNumber"]]
    assert [i for i, _ in kinds(events.subscriber.take())] == [f"{after}:1"]


def test_records_gone_from_the_stream_are_replayed_as_the_jobs_current_state(
    events: Events, service: JobService, capsys: pytest.CaptureFixture[str], restore_environ: None
) -> None:
    job_id = drive(service, b"faults gone")
    events.drain()
    job = service.get_job(job_id)
    gone = {
        "requestContext": {"condition": "RecordAgeExceeded", "approximateInvokeCount": 1},
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001541626099285-f35f62ef",
            "startSequenceNumber": "100000000000000000001",
            "endSequenceNumber": "100000000000000000009",
            "approximateArrivalOfFirstRecord": job.created_at,
            "approximateArrivalOfLastRecord": job.updated_at,
            "batchSize": 9,
            # A stream that no longer exists (the table was replaced, or 24 h passed)
            "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/location-detection-dev-gone/stream/x",
        },
    }
    events.sqs.send_message(QueueUrl=events.poller.failure_queue_url, MessageBody=json.dumps(gone))

    capsys.readouterr()
    code = ops_main(["--env", "dev", "events", "replay"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["from_current_state"] >= 1
    assert "records gone from the stream" in err
    (state,) = [e for e in events.subscriber.take() if e["detail"]["job"]["job_id"] == job_id]
    assert state["detail"]["id"] == f"{job_id}:{job.version}", "the id of the state it is in now"
    assert (state["detail"]["type"], state["detail"]["previous_status"]) == ("job.completed", None)
