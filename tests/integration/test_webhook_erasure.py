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
