"""What a client's erasure takes of webhooks (``ops.webhooks`` ``ClientWebhooks`` and ``ClientDeadLetters``,
the ``ClientData`` parts of ``ops clients erase``), in-process on moto with receivers on loopback: its
webhooks and their sealed secrets, its dead letters (which hold its jobs' file names), its pending
deliveries (dropped unsent at their next attempt); another client's stay.
"""

from __future__ import annotations

import json

import pytest

from local_api.cfn_template import Stack
from ops import webhooks as ops_webhooks
from storage.webhook_store import webhooks_key
from tests import samples
from tests.conftest import OTHER_API_KEY, create_body, invoke
from tests.receivers import Receiver, receiving
from tests.webhooks import Pipeline, configure, register

ALICE, BOB = "cli_alice", "cli_bob"
TABLE = "location-detection-dev-jobs"


@pytest.fixture
def pipeline(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    configure(monkeypatch, WEBHOOK_ALLOW_LOOPBACK="true", WEBHOOK_RETRY_DELAYS="0,0")
    started = Pipeline(aws)
    arn = started.sqs.get_queue_attributes(QueueUrl=started.urls["dead-letters"], AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": "3"}  # as make run sets it
    started.set_queue("deliveries", RedrivePolicy=json.dumps(redrive))
    return started


def new_job(tag: bytes, api_key: str | None = None) -> str:
    body = create_body(samples.png(extra=tag), filename="alice-secret-plan.png")
    reply = invoke("POST", "/api/v1/jobs", json_body=body, **({"api_key": api_key} if api_key else {}))
    assert reply.status == 201, reply.body
    return str(reply.data["job_id"])


def test_a_clients_erasure_takes_its_webhooks_secrets_and_dead_letters_and_leaves_others(pipeline: Pipeline) -> None:
    import boto3

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    with receiving(Receiver(statuses=[500] * 6)) as alices, receiving(Receiver(statuses=[500] * 3)) as bobs:
        mine = register(alices.url, events=["job.created"]).data
        register(bobs.url, events=["job.created"], api_key=OTHER_API_KEY)
        new_job(b"alice's, dead-lettered")
        new_job(b"bob's, dead-lettered", api_key=OTHER_API_KEY)
        pipeline.run()
        assert pipeline.waiting("dead-letters") == 2
        letters = [json.loads(m["Body"]) for m in _peek(pipeline)]
        assert any("alice-secret-plan.png" in letter.get("body", "") for letter in letters), "what erasure must take"

        hooks, dead = ops_webhooks.client_parts(TABLE, pipeline.sqs)
        assert hooks.ids_of(ALICE) == [mine["webhook_id"]]
        assert len(dead.ids_of(ALICE)) == 1
        assert pipeline.waiting("dead-letters") == 2, "listing leaves them"
        assert (hooks.erase(ALICE), dead.erase(ALICE)) == (1, 1)

        assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"job_id": {"S": webhooks_key(ALICE)}})
        assert invoke("GET", "/api/v1/webhooks").data == {"webhooks": []}
        assert len(invoke("GET", "/api/v1/webhooks", api_key=OTHER_API_KEY).data["webhooks"]) == 1
        (left,) = [json.loads(m["Body"]) for m in _peek(pipeline)]
        assert left["owner_id"] == BOB
        assert (hooks.erase(ALICE), dead.erase(ALICE)) == (0, 0), "idempotent"


def test_a_pending_delivery_of_an_erased_client_is_dropped_unsent(pipeline: Pipeline) -> None:
    with receiving(Receiver(statuses=[500] * 10)) as receiver:
        register(receiver.url, events=["job.created"])
        new_job(b"pending at the erasure")
        pipeline.run(rounds=1)
        assert len(receiver.received) == 1
        hooks, _ = ops_webhooks.client_parts(TABLE, pipeline.sqs)
        assert hooks.erase(ALICE) == 1
        pipeline.run()
        assert len(receiver.received) == 1, "not sent again"
    assert pipeline.waiting("deliveries") == pipeline.waiting("dead-letters") == 0, "dropped, not kept"


def _peek(pipeline: Pipeline) -> list[dict[str, str]]:
    """The dead letters' messages, made visible again at once."""
    reply = pipeline.sqs.receive_message(QueueUrl=pipeline.urls["dead-letters"], MaxNumberOfMessages=10)
    messages = reply.get("Messages", [])
    for message in messages:
        pipeline.sqs.change_message_visibility(
            QueueUrl=pipeline.urls["dead-letters"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return list(messages)


def test_an_erased_jobs_deliveries_name_no_file_and_validate_against_the_document(pipeline: Pipeline) -> None:
    """A job erased while processing: its job.cancelled (made by the erasure's mark) and job.erased reach
    the webhook with ids, status and times only (services.job_events REDACTED_FIELDS): the fan-out adds
    nothing of its own. Every body validates against the OpenAPI document's webhooks.jobEvent."""
    from pathlib import Path

    from jsonschema import Draft202012Validator

    from tests.integration.test_webhook_delivery import task
    from tests.webhooks import in_version_order, verified

    document = json.loads((Path(__file__).resolve().parents[2] / "src" / "api" / "openapi.json").read_text())
    schema = {**document, "$ref": "#/components/schemas/WebhookDelivery"}
    with receiving() as receiver:
        hook = register(receiver.url).data
        job_id = new_job(b"erased while processing")
        task(action="start", job_id=job_id)
        pipeline.run()
        assert len(receiver.wait_for(2)) == 2
        assert invoke("POST", f"/api/v1/jobs/{job_id}/erase").status == 200
        pipeline.run_until(lambda: len(receiver.received) >= 4)
        received = in_version_order(receiver.wait_for(4))
    events = {verified(hook["secret"], r)["type"]: r for r in received}
    assert list(events) == ["job.created", "job.processing", "job.cancelled", "job.erased"]
    for kind in ("job.cancelled", "job.erased"):
        assert b"alice-secret-plan" not in events[kind].body, kind
        assert b"blueprint" not in events[kind].body, kind
    assert set(json.loads(events["job.cancelled"].body)["data"]["job"]) == {
        "job_id",
        "status",
        "updated_at",
        "finished_at",
    }
    assert set(json.loads(events["job.erased"].body)["data"]["job"]) == {"job_id", "erased_at"}
    for r in received:
        Draft202012Validator(schema).validate(json.loads(r.body))
