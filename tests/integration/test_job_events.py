"""Job events from the jobs table's stream, in-process: the HTTP handler and the job service write (moto),
moto's stream records the writes, the local poller hands them to the stream consumer
(``workers.stream_consumer.lambda_handler``) as the event source mapping would, and a subscriber queue on
the bus receives what was published. Each test steps the poller by hand (``drain``): no threads, no waits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack
from local_api.event_poller import StreamPoller, poller_for
from models.events import DETAIL_TYPE, SOURCE
from ops.cli import build_service
from services.job_events import JobEvents
from services.job_service import JobService
from tests import samples
from tests.conftest import OTHER_API_KEY, create_body, invoke, set_rate_limit
from tests.events import Subscriber, kinds
from tests.integration.test_uploads import uploaded
from workers import dependencies, stream_consumer

RESULT = {"rooms": [{"id": "room_1", "bounding_box": [0, 0, 10, 10]}], "model_version": "m-1"}


class Events:
    """The poller of the emulated stream and a subscriber of the bus."""

    def __init__(self, stack: Stack) -> None:
        session = boto3.session.Session(region_name="us-east-1")
        self.dynamodb, self.sqs = session.client("dynamodb"), session.client("sqs")
        self.poller: StreamPoller = poller_for(
            stack, stream_consumer.lambda_handler, self.dynamodb, session.client("dynamodbstreams"), self.sqs
        )
        self.poller.prime()
        self.subscriber = Subscriber(session.client("events"), self.sqs)

    def drain(self) -> list[dict[str, Any]]:
        """Hand every new stream record to the consumer; what the subscriber received."""
        while self.poller.poll_once():
            pass
        return self.subscriber.take()


@pytest.fixture
def events(aws: Stack) -> Iterator[Events]:
    set_rate_limit(100_000, 10_000)  # these tests make many jobs at once; the limiter has tests of its own
    world = Events(aws)
    yield world
    world.subscriber.close()


@pytest.fixture
def service(aws: Stack) -> JobService:
    return build_service()


def new_job(content: bytes, headers: dict[str, str] | None = None, api_key: str | None = None) -> dict[str, Any]:
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(content), headers=headers, **_key(api_key))
    assert reply.status == 201, reply.body
    return dict(reply.data)


def _key(api_key: str | None) -> dict[str, Any]:
    return {} if api_key is None else {"api_key": api_key}


def test_a_job_driven_to_completed_publishes_each_state_change_once(events: Events, service: JobService) -> None:
    job_id = new_job(samples.png(extra=b"events lifecycle"))["job_id"]
    service.start_processing(job_id)
    service.report_progress(job_id, 40, "preprocessing")
    service.complete_job(job_id, RESULT)

    received = events.drain()
    final = service.get_job(job_id)
    assert kinds(received, job_id) == [
        (f"{job_id}:1", "job.created"),
        (f"{job_id}:2", "job.processing"),
        (f"{job_id}:3", "job.progress"),
        # version 4 is the completion lock: no public field changed, no event
        (f"{job_id}:5", "job.completed"),
    ]
    assert final.version == 5
    by_type = {e["detail"]["type"]: e for e in received}
    completed = by_type["job.completed"]
    assert (completed["source"], completed["detail-type"]) == (SOURCE, DETAIL_TYPE)
    assert completed["detail"] == {
        "id": f"{job_id}:5",
        "type": "job.completed",
        "job": final.to_public(),
        "owner_id": "cli_alice",
        "previous_status": "processing",
    }
    progress = by_type["job.progress"]["detail"]
    assert (progress["job"]["progress"], progress["job"]["stage"], progress["previous_status"]) == (
        40,
        "preprocessing",
        "processing",
    )
    assert by_type["job.created"]["detail"]["previous_status"] is None
    assert "result_url" not in completed["detail"]["job"], "no presigned URL travels in an event"
    assert events.drain() == [], "nothing is published twice"


def test_cancel_and_fail_publish_their_status_with_the_previous_one(events: Events, service: JobService) -> None:
    cancelled = new_job(samples.png(extra=b"events cancel"))["job_id"]
    failed = new_job(samples.png(extra=b"events fail"))["job_id"]
    assert invoke("DELETE", f"/api/v1/jobs/{cancelled}").status == 200
    service.start_processing(failed)
    service.fail_job(failed, {"code": "MODEL_ERROR", "message": "no walls"})

    received = events.drain()
    assert kinds(received, cancelled) == [(f"{cancelled}:1", "job.created"), (f"{cancelled}:2", "job.cancelled")]
    assert [e["detail"]["previous_status"] for e in received if e["detail"]["type"] == "job.cancelled"] == ["pending"]
    (fail,) = [e["detail"] for e in received if e["detail"]["type"] == "job.failed"]
    assert fail["job"]["error"] == {"code": "MODEL_ERROR", "message": "no walls"}
    assert fail["job"]["finished_at"] is not None


def test_typed_items_and_writes_that_change_no_public_field_publish_nothing(
    events: Events, service: JobService
) -> None:
    content = samples.png(extra=b"events idempotent")
    key = {"Idempotency-Key": "events-idempotent-1"}
    job_id = new_job(content, key)["job_id"]
    assert new_job(content, key)["job_id"] == job_id, "the replay: the same job"
    service.start_processing(job_id)
    service.report_progress(job_id, 10)
    service.report_progress(job_id, 10)  # changes nothing: no write
    service.complete_job(job_id, RESULT)
    reply = invoke("POST", f"/api/v1/jobs/{job_id}/feedback", json_body={"rating": 5})
    assert reply.status == 201

    received = events.drain()
    assert [t for _, t in kinds(received)] == ["job.created", "job.processing", "job.progress", "job.completed"]
    assert {e["detail"]["job"]["job_id"] for e in received} == {job_id}, "no event for the idem# record"


def test_events_carry_their_owner_so_subscribers_can_route_them(events: Events) -> None:
    mine = new_job(samples.png(extra=b"events owner a"))["job_id"]
    theirs = new_job(samples.png(extra=b"events owner b"), api_key=OTHER_API_KEY)["job_id"]
    owners = {e["detail"]["job"]["job_id"]: e["detail"]["owner_id"] for e in events.drain()}
    assert owners == {mine: "cli_alice", theirs: "cli_bob"}


def test_a_deleted_job_record_is_job_erased_with_ids_and_time_only(events: Events, service: JobService) -> None:
    job_id = new_job(samples.png(extra=b"events erased"))["job_id"]
    service.start_processing(job_id)
    events.drain()
    events.dynamodb.delete_item(TableName=service.jobs_table.table_name, Key={"job_id": {"S": job_id}})

    (erased,) = events.drain()
    detail = erased["detail"]
    assert detail["id"] == f"{job_id}:3", "the next version after the deleted record's"
    assert detail["type"] == "job.erased"
    assert set(detail["job"]) == {"job_id", "erased_at"}
    assert (detail["owner_id"], detail["previous_status"]) == ("cli_alice", "processing")
    assert "plan.png" not in json.dumps(erased), "never a file name"


def test_the_uploads_claim_item_publishes_nothing(events: Events) -> None:
    content = samples.png(extra=b"events upload")
    upload = uploaded("png", content)
    job = invoke("POST", "/api/v1/jobs", json_body={"blueprint": {"upload_id": upload["upload_id"]}})
    assert job.status == 201, job.body

    assert [t for _, t in kinds(events.drain())] == ["job.created"]


# ----------------------------------------------------------------------------- the derivation, direct
def stream_record(name: str, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None, **extra: Any) -> Any:
    from storage.items import to_item

    data: dict[str, Any] = {
        "Keys": {"job_id": {"S": key}},
        "SequenceNumber": "100",
        "ApproximateCreationDateTime": 1.5e9,
    }
    if old is not None:
        data["OldImage"] = to_item(old)
    if new is not None:
        data["NewImage"] = to_item(new)
    return {"eventName": name, "dynamodb": data, **extra}


def test_a_ttl_deletion_and_records_of_other_items_publish_nothing(service: JobService, events: Events) -> None:
    job_id = new_job(samples.png(extra=b"events ttl"))["job_id"]
    record = service.jobs_table.get(job_id)
    assert record is not None
    events.drain()
    ttl = {"userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"}}
    records = [
        stream_record("REMOVE", job_id, record.to_record(), None, **ttl),
        stream_record("INSERT", "idem#0f", None, {"job_id": "idem#0f", "state": "done"}),
        stream_record("INSERT", "claim#upl_x", None, {"job_id": "claim#upl_x"}),
        stream_record("REMOVE", "rate#cli_alice", {"job_id": "rate#cli_alice"}, None),
        stream_record("INSERT", "job_not_really", None, {"job_id": "job_not_really"}),
    ]
    assert dependencies.get("job_events", JobEvents).publish(records) is None
    assert events.subscriber.take() == []


def test_a_record_that_cannot_be_read_stops_the_batch_there_after_publishing_what_came_before(
    service: JobService, events: Events
) -> None:
    job_id = new_job(samples.png(extra=b"events poison"))["job_id"]
    record = service.jobs_table.get(job_id)
    assert record is not None
    events.drain()
    unknown = {**record.to_record(), "status": "erasing"}  # a status a newer version might write
    records = [
        {
            **stream_record(
                "MODIFY", job_id, record.to_record(), {**record.to_record(), "status": "cancelled", "version": 2}
            )
        },
        {**stream_record("MODIFY", job_id, record.to_record(), unknown)},
    ]
    records[1]["dynamodb"]["SequenceNumber"] = "101"

    assert dependencies.get("job_events", JobEvents).publish(records) == "101"
    assert kinds(events.subscriber.take()) == [(f"{job_id}:2", "job.cancelled")]


def test_a_batch_of_more_than_ten_events_goes_out_ten_at_a_time_in_order(events: Events) -> None:
    from tests.faults import FaultyClient
    from utils import aws as aws_clients

    counting = FaultyClient(aws_clients.get_client("events"))
    aws_clients.set_client("events", counting)
    created = [new_job(samples.png(extra=f"events batch {n}".encode()))["job_id"] for n in range(23)]

    received = events.drain()
    assert sorted(e["detail"]["job"]["job_id"] for e in received) == sorted(created)
    assert counting.calls["put_events"] == 3, "23 events: 10 + 10 + 3"
