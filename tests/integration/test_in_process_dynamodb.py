"""``local_api.in_process_dynamodb`` held to the normal ``mock_aws`` path, call by call.

The same calls (the operations and parameter shapes ``src/storage/`` makes, their failures, binary and
nested attributes, pagination, a missing table) run twice, each time on a fresh emulated account with
the template's tables and moto's random numbers seeded alike: once answered by the direct path, once by
moto's stubber and serializer. Every parsed answer (``ResponseMetadata`` included, request ids too: the
seeded generator makes them equal), every ``ClientError`` (code, message, status, ``Item``,
``CancellationReasons``), the tables' contents and the stream's records afterwards must be identical;
only the ``date`` header and the records' creation times (and ``SizeBytes``, which moto counts them in:
the wall clock's) are left out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_api import in_process_dynamodb, moto_atomic
from local_api.cfn_template import Stack
from local_api.provision import create_table
from utils.aws import client_config

JOBS = "location-detection-dev-jobs"
PREVIEWS = "location-detection-dev-preview_cache"
OWNER_INDEX = "owner-created-index"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
LOOKUP_INDEX = "lookup-index"


def _job(n: int, owner: str = "cli_a", **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "job_id": {"S": f"job_{n:03d}"},
        "owner_id": {"S": owner},
        "created_at": {"S": f"2026-12-02T05:{n:02d}:00.000Z"},
        "status": {"S": "pending"},
        "version": {"N": "1"},
        "progress": {"N": "0"},
        "blueprint_size": {"N": str(1000 + n)},
        "filename": {"S": f"plan-{n}.png — é ✓"},
        "rooms": {"L": [{"M": {"x": {"N": "1.5"}, "name": {"S": "hall"}, "ok": {"BOOL": True}}}]},
        "note": {"NULL": True},
        "empty": {"S": ""},
    }
    item.update(extra)
    return item


def _calls() -> list[tuple[str, dict[str, Any]]]:
    """What src/storage sends (jobs_table, upload_claims, idempotency_store, rate_limits, webhook_store,
    preview_cache, lookups, jobs_scan, job_erasure), plus the error shapes a caller must see."""
    key1 = {"job_id": {"S": "job_001"}}
    versioned = {
        "TableName": JOBS,
        "Key": key1,
        "UpdateExpression": "SET #f0 = :v0, #f1 = :v1, #version = #version + :one",
        "ConditionExpression": "#status = :expected_status AND #version = :expected_version",
        "ExpressionAttributeNames": {"#f0": "status", "#f1": "updated_at", "#status": "status", "#version": "version"},
        "ExpressionAttributeValues": {
            ":v0": {"S": "processing"},
            ":v1": {"S": "2026-12-02T06:00:00.000Z"},
            ":expected_status": {"S": "pending"},
            ":expected_version": {"N": "1"},
            ":one": {"N": "1"},
        },
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    calls: list[tuple[str, dict[str, Any]]] = []
    for n in range(1, 8):  # jobs_table.put_new
        calls.append(
            (
                "put_item",
                {
                    "TableName": JOBS,
                    "Item": _job(n, "cli_a" if n % 3 else "cli_b"),
                    "ConditionExpression": "attribute_not_exists(job_id)",
                },
            )
        )
    calls += [
        # a job id taken: ConditionalCheckFailedException, without and with the old item
        ("put_item", {"TableName": JOBS, "Item": _job(1), "ConditionExpression": "attribute_not_exists(job_id)"}),
        (
            "put_item",
            {
                "TableName": JOBS,
                "Item": _job(1),
                "ConditionExpression": "attribute_not_exists(job_id)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        ("get_item", {"TableName": JOBS, "Key": key1, "ConsistentRead": True}),
        ("get_item", {"TableName": JOBS, "Key": {"job_id": {"S": "job_999"}}, "ConsistentRead": True}),  # no item
        (
            "get_item",
            {
                "TableName": JOBS,
                "Key": key1,
                "ProjectionExpression": "#hook",
                "ExpressionAttributeNames": {"#hook": "rooms"},
            },
        ),
        ("get_item", {"TableName": JOBS, "Key": key1, "ReturnConsumedCapacity": "TOTAL"}),
        ("get_item", {"TableName": "no-such-table", "Key": key1}),  # ResourceNotFoundException
        ("get_item", {"TableName": JOBS, "Key": {"owner_id": {"S": "x"}}}),  # not the key: ValidationException
        # jobs_table._versioned_set: wins, then the same write is stale (the old item comes back)
        ("update_item", versioned),
        ("update_item", versioned),
        (
            "update_item",
            {**versioned, "ReturnValuesOnConditionCheckFailure": "NONE"},
        ),
        # count_feedback: ADD to a number and a string set
        (
            "update_item",
            {
                "TableName": JOBS,
                "Key": {"job_id": {"S": "job_002"}},
                "UpdateExpression": "ADD feedback_count :one, feedback_ids :ids",
                "ConditionExpression": "#status = :status AND attribute_not_exists(erase_requested_at) AND "
                "(attribute_not_exists(feedback_ids) OR NOT contains(feedback_ids, :id))",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":ids": {"SS": ["fb_1"]},
                    ":id": {"S": "fb_1"},
                    ":status": {"S": "pending"},
                },
                "ReturnValues": "ALL_NEW",
            },
        ),
        # rate_limits: UPDATED_NEW, then refused with the old values
        (
            "update_item",
            {
                "TableName": JOBS,
                "Key": {"job_id": {"S": "rate#cli_a#jobs"}},
                "UpdateExpression": "SET tat = :next, last_spend = :token, expires_at = :expires, item_type = :type",
                "ConditionExpression": "attribute_not_exists(tat) OR tat < :now",
                "ExpressionAttributeValues": {
                    ":next": {"N": "1796187200"},
                    ":now": {"N": "1796187100"},
                    ":token": {"S": "tok_1"},
                    ":expires": {"N": "1796190000"},
                    ":type": {"S": "rate_limit"},
                },
                "ReturnValues": "UPDATED_NEW",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        (
            "update_item",
            {
                "TableName": JOBS,
                "Key": {"job_id": {"S": "rate#cli_a#jobs"}},
                "UpdateExpression": "SET tat = tat + :interval, last_spend = :token",
                "ConditionExpression": "tat BETWEEN :now AND :limit AND last_spend <> :token",
                "ExpressionAttributeValues": {
                    ":interval": {"N": "6"},
                    ":now": {"N": "1796187100"},
                    ":limit": {"N": "1796187150"},
                    ":token": {"S": "tok_1"},
                },
                "ReturnValues": "UPDATED_NEW",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        ("get_item", {"TableName": JOBS, "Key": {"job_id": {"S": "rate#cli_a#jobs"}}, "ProjectionExpression": "tat"}),
        # webhook_store.add: a map with a binary secret; then the limit refusal with ALL_OLD
        (
            "update_item",
            {
                "TableName": JOBS,
                "Key": {"job_id": {"S": "webhooks#cli_a"}},
                "UpdateExpression": "SET #hook = :hook, hook_count = if_not_exists(hook_count, :zero) + :one, "
                "item_type = :type",
                "ConditionExpression": "attribute_not_exists(#hook) AND "
                "(attribute_not_exists(hook_count) OR hook_count < :max)",
                "ExpressionAttributeNames": {"#hook": "hook_wh_1"},
                "ExpressionAttributeValues": {
                    ":hook": {
                        "M": {
                            "url": {"S": "https://example.test/hook"},
                            "secret": {"B": b"\x00\x01\xfe\xff sealed"},
                            "events": {"SS": ["job.created", "job.completed"]},
                            "sizes": {"NS": ["1", "2.5"]},
                            "keys": {"BS": [b"\x00", b"\xff\xfe"]},
                        }
                    },
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                    ":max": {"N": "1"},
                    ":type": {"S": "webhooks"},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        (
            "update_item",
            {
                "TableName": JOBS,
                "Key": {"job_id": {"S": "webhooks#cli_a"}},
                "UpdateExpression": "SET #hook = :hook, hook_count = hook_count + :one",
                "ConditionExpression": "attribute_not_exists(#hook) AND hook_count < :max",
                "ExpressionAttributeNames": {"#hook": "hook_wh_2"},
                "ExpressionAttributeValues": {
                    ":hook": {"M": {"url": {"S": "u"}}},
                    ":one": {"N": "1"},
                    ":max": {"N": "1"},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        ("get_item", {"TableName": JOBS, "Key": {"job_id": {"S": "webhooks#cli_a"}}, "ConsistentRead": True}),
        # a plain binary attribute and a string that moto's request-id rewriting would touch
        ("put_item", {"TableName": JOBS, "Item": {"job_id": {"S": "bin"}, "blob": {"B": b"\x89PNG\r\n\x1a\n"}}}),
        ("get_item", {"TableName": JOBS, "Key": {"job_id": {"S": "bin"}}}),
        (
            "put_item",
            {"TableName": JOBS, "Item": {"job_id": {"S": "odd"}, "text": {"S": "<RequestId>abc</RequestId>"}}},
        ),
        ("get_item", {"TableName": JOBS, "Key": {"job_id": {"S": "odd"}}}),
        # idempotency_store / upload_claims: put, ReturnValues on put, delete with and without a condition
        (
            "put_item",
            {
                "TableName": JOBS,
                "Item": {"job_id": {"S": "idem#k1"}, "lookup_key": {"S": "idem#cli_a"}, "lookup_at": {"N": "5"}},
                "ReturnValues": "ALL_OLD",
            },
        ),
        (
            "put_item",
            {
                "TableName": JOBS,
                "Item": {"job_id": {"S": "idem#k1"}, "lookup_key": {"S": "idem#cli_a"}, "lookup_at": {"N": "6"}},
                "ReturnValues": "ALL_OLD",
            },
        ),
        (
            "delete_item",
            {
                "TableName": JOBS,
                "Key": {"job_id": {"S": "idem#k1"}},
                "ConditionExpression": "claimed_by = :job_id",
                "ExpressionAttributeValues": {":job_id": {"S": "job_1"}},
            },
        ),
        ("delete_item", {"TableName": JOBS, "Key": {"job_id": {"S": "idem#k1"}}, "ReturnValues": "ALL_OLD"}),
        (
            "delete_item",
            {"TableName": JOBS, "Key": {"job_id": {"S": "idem#k1"}}, "ReturnValues": "ALL_OLD"},
        ),  # gone: no Attributes
        # upload_claims._take_over / preview_cache.put: TransactWriteItems, refused then accepted
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {
                        "ConditionCheck": {
                            "TableName": JOBS,
                            "Key": key1,
                            "ConditionExpression": "attribute_not_exists(job_id)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": JOBS,
                            "Item": {"job_id": {"S": "claim#u1"}, "claimed_by": {"S": "job_001"}},
                            "ConditionExpression": "attribute_not_exists(job_id)",
                        }
                    },
                ]
            },
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {
                        "ConditionCheck": {
                            "TableName": JOBS,
                            "Key": key1,
                            "ConditionExpression": "attribute_not_exists(job_id)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {
                        "Put": {
                            "TableName": PREVIEWS,
                            "Item": {"blueprint_hash": {"S": "h1"}, "job_id": {"S": "job_001"}},
                        }
                    },
                ]
            },
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {
                        "ConditionCheck": {
                            "TableName": JOBS,
                            "Key": key1,
                            "ConditionExpression": "attribute_exists(job_id) AND "
                            "attribute_not_exists(erase_requested_at)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": PREVIEWS,
                            "Item": {
                                "blueprint_hash": {"S": "cli_a#h1"},
                                "job_id": {"S": "job_001"},
                                "rooms": {"L": [{"N": "0.25"}]},
                            },
                        }
                    },
                    {
                        "Update": {
                            "TableName": JOBS,
                            "Key": {"job_id": {"S": "job_003"}},
                            "UpdateExpression": "SET erase_requested_at = :t",
                            "ExpressionAttributeValues": {":t": {"N": "7"}},
                        }
                    },
                    {"Delete": {"TableName": JOBS, "Key": {"job_id": {"S": "bin"}}}},
                ]
            },
        ),
        ("get_item", {"TableName": PREVIEWS, "Key": {"blueprint_hash": {"S": "cli_a#h1"}}, "ConsistentRead": True}),
        (
            "delete_item",
            {
                "TableName": PREVIEWS,
                "Key": {"blueprint_hash": {"S": "cli_a#h1"}},
                "ConditionExpression": "job_id = :job_id",
                "ExpressionAttributeValues": {":job_id": {"S": "job_002"}},
            },
        ),
        # job_erasure: REMOVE, lookup keys for the sweep
        (
            "update_item",
            {
                "TableName": JOBS,
                "Key": {"job_id": {"S": "job_004"}},
                "UpdateExpression": "SET lookup_key = :k, lookup_at = :at REMOVE note",
                "ConditionExpression": "attribute_exists(job_id)",
                "ExpressionAttributeValues": {":k": {"S": "erase"}, ":at": {"N": "3"}},
                "ReturnValues": "UPDATED_OLD",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        ("update_item", {"TableName": JOBS, "Key": key1, "UpdateExpression": "SET = broken"}),  # ValidationException
        ("update_item", {"TableName": JOBS, "Key": key1, "UpdateExpression": "SET a = :missing"}),
    ]
    # job_listing / lookups: the owner index newest first in pages, a filter, a keys-only index
    owner_query = {
        "TableName": JOBS,
        "IndexName": OWNER_INDEX,
        "KeyConditionExpression": "owner_id = :owner",
        "FilterExpression": "attribute_not_exists(expires_at) OR expires_at > :now",
        "ExpressionAttributeValues": {":owner": {"S": "cli_a"}, ":now": {"N": "100"}},
        "ScanIndexForward": False,
        "Limit": 2,
    }
    calls.append(("query", owner_query))
    calls.append(("query", {**owner_query, "ExclusiveStartKey": "previous"}))  # filled in from the answer
    calls.append(("query", {**owner_query, "ExclusiveStartKey": "previous"}))
    calls += [
        (
            "query",
            {
                "TableName": JOBS,
                "IndexName": OWNER_INDEX,
                "KeyConditionExpression": "owner_id = :owner AND created_at BETWEEN :a AND :b",
                "ExpressionAttributeValues": {
                    ":owner": {"S": "cli_a"},
                    ":a": {"S": "2026-12-02T05:02"},
                    ":b": {"S": "2026-12-02T05:06"},
                },
                "ReturnConsumedCapacity": "INDEXES",
            },
        ),
        (
            "query",
            {
                "TableName": JOBS,
                "IndexName": LOOKUP_INDEX,
                "KeyConditionExpression": "lookup_key = :key AND lookup_at <= :due",
                "ExpressionAttributeValues": {":key": {"S": "erase"}, ":due": {"N": "10"}},
                "ProjectionExpression": "job_id",
                "Limit": 1000,
            },
        ),
        (
            "query",
            {
                "TableName": JOBS,
                "IndexName": "no-such-index",
                "KeyConditionExpression": "owner_id = :o",
                "ExpressionAttributeValues": {":o": {"S": "x"}},
            },
        ),
        (
            "query",
            {
                "TableName": JOBS,
                "KeyConditionExpression": "job_id = :id",
                "ExpressionAttributeValues": {":id": {"S": "job_001"}},
                "Select": "COUNT",
            },
        ),
    ]
    # jobs_scan: a filtered, consistent scan in pages
    scan = {
        "TableName": JOBS,
        "FilterExpression": "begins_with(job_id, :job) AND updated_at BETWEEN :first AND :last",
        "ExpressionAttributeValues": {":job": {"S": "job_"}, ":first": {"S": "2026"}, ":last": {"S": "2027"}},
        "ConsistentRead": True,
        "Limit": 3,
    }
    calls += [
        ("scan", scan),
        ("scan", {**scan, "ExclusiveStartKey": "previous"}),
        ("scan", {"TableName": JOBS, "Select": "COUNT"}),
    ]
    return calls


def _clean(value: Any) -> Any:
    """The parsed answer without what the wall clock decides (the ``date`` header)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k != "date"}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _run(stack: Stack, direct: bool) -> dict[str, Any]:
    """The calls on a fresh account; every answer or error, then the tables and the stream."""
    from moto.moto_api._internal import mock_random

    moto_atomic.install()
    in_process_dynamodb.install()
    in_process_dynamodb._enabled = direct
    before = dict(in_process_dynamodb.stats)
    outcomes: list[Any] = []
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        setup = session.client("dynamodb")
        for logical_id in stack.of_type("AWS::DynamoDB::Table"):
            create_table(setup, stack.properties(logical_id))
        mock_random.seed(21)
        client = session.client("dynamodb", config=client_config())  # the Lambda's settings
        previous: dict[str, Any] = {}
        for operation, given in _calls():
            kwargs = dict(given)
            if kwargs.get("ExclusiveStartKey") == "previous":
                kwargs["ExclusiveStartKey"] = previous[operation]
            try:
                answer = getattr(client, operation)(**kwargs)
            except ClientError as exc:
                outcomes.append(("error", operation, type(exc).__name__, str(exc), _clean(exc.response)))
            else:
                outcomes.append(("ok", operation, _clean(answer)))
                if "LastEvaluatedKey" in answer:
                    previous[operation] = answer["LastEvaluatedKey"]
        used = {k: in_process_dynamodb.stats[k] - before[k] for k in before}
        in_process_dynamodb._enabled = False  # what is left, read the same way for both
        tables = {
            name: sorted(
                (
                    item
                    for page in setup.get_paginator("scan").paginate(TableName=name, ConsistentRead=True)
                    for item in page["Items"]
                ),
                key=repr,
            )
            for name in (JOBS, PREVIEWS)
        }
        streams = session.client("dynamodbstreams")
        arn = setup.describe_table(TableName=JOBS)["Table"]["LatestStreamArn"]
        records = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for record in streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]:
                data = dict(record["dynamodb"])
                # the wall clock's: the creation time, and the size moto counts it in
                assert data.pop("ApproximateCreationDateTime") is not None
                assert data.pop("SizeBytes") > 0
                records.append({**record, "dynamodb": data})
    return {"outcomes": outcomes, "tables": tables, "records": records, "used": used}


@pytest.fixture(scope="module")
def both(stack: Stack) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The two runs (module-wide: the autouse environment fixture is per test, so set here alike)."""
    saved = in_process_dynamodb._enabled
    with pytest.MonkeyPatch.context() as env:
        for key, value in FAKE_AWS.items():
            env.setenv(key, value)
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ENDPOINT_URL_DYNAMODB", "MOTO_ACCOUNT_ID"):
            env.delenv(key, raising=False)
        try:
            yield _run(stack, direct=True), _run(stack, direct=False)
        finally:
            in_process_dynamodb._enabled = saved


def test_every_answer_and_error_is_the_normal_paths(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    direct, normal = both
    assert len(direct["outcomes"]) == len(_calls())
    for n, (mine, theirs) in enumerate(zip(direct["outcomes"], normal["outcomes"], strict=True)):
        assert mine == theirs, f"call {n} ({_calls()[n][0]}) differs"


def test_the_outcomes_cover_what_a_caller_relies_on(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    outcomes = both[0]["outcomes"]
    errors = {o[2] if o[0] == "error" else None for o in outcomes} - {None}
    codes = {o[4]["Error"]["Code"] for o in outcomes if o[0] == "error"}
    assert codes == {
        "ConditionalCheckFailedException",
        "ResourceNotFoundException",
        "ValidationException",
        "TransactionCanceledException",
    }
    assert errors == codes - {"ValidationException"} | {"ClientError"}  # botocore's classes (that one is unmodelled)
    refused = [o[4] for o in outcomes if o[0] == "error" and o[4]["Error"]["Code"] == "ConditionalCheckFailedException"]
    assert any("Item" in r for r in refused)
    assert any("Item" not in r for r in refused)
    cancelled = [o[4] for o in outcomes if o[0] == "error" and o[4]["Error"]["Code"] == "TransactionCanceledException"]
    assert [len(c["CancellationReasons"]) for c in cancelled] == [2, 2]
    assert cancelled[1]["CancellationReasons"][0]["Item"]["job_id"] == {"S": "job_001"}
    hooks = next(
        o[2]["Item"] for o in outcomes if o[0] == "ok" and o[2].get("Item", {}).get("job_id") == {"S": "webhooks#cli_a"}
    )
    assert hooks["hook_wh_1"]["M"]["secret"] == {"B": b"\x00\x01\xfe\xff sealed"}
    assert hooks["hook_wh_1"]["M"]["keys"] == {"BS": [b"\x00", b"\xff\xfe"]}
    pages = [o[2] for o in outcomes if o[0] == "ok" and o[1] == "query"][:3]
    assert [len(p["Items"]) for p in pages] == [2, 2, 1]
    assert "LastEvaluatedKey" not in pages[2]
    assert any(o[0] == "ok" and o[2].get("ConsumedCapacity", {}).get("CapacityUnits") == 0.5 for o in outcomes)


def test_the_tables_and_the_stream_end_the_same(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    direct, normal = both
    assert direct["tables"] == normal["tables"]
    assert direct["records"] == normal["records"]
    assert len(direct["records"]) > 20  # inserts, modifications, removals of the calls above
    assert {r["eventName"] for r in direct["records"]} == {"INSERT", "MODIFY", "REMOVE"}


def test_the_direct_path_answered_every_call_and_the_normal_path_none(
    both: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    direct, normal = both
    used = direct["used"]
    assert used["passed"] == 0
    assert used["direct"] + used["served"] == len(_calls())
    errors = sum(1 for o in direct["outcomes"] if o[0] == "error")
    # served: the errors (botocore parses moto's error response) and the one body moto rewrites
    assert used["served"] == errors + 1
    assert normal["used"] == {"direct": 0, "served": 0, "passed": 0}


def test_calls_moto_would_not_route_to_dynamodb_in_process_take_the_normal_path(stack: Stack) -> None:
    moto_atomic.install()
    in_process_dynamodb.install()
    saved = in_process_dynamodb._enabled
    in_process_dynamodb._enabled = True
    try:
        with mock_aws():
            session = boto3.session.Session(region_name="us-east-1")
            client = session.client("dynamodb", config=client_config())
            for logical_id in stack.of_type("AWS::DynamoDB::Table"):
                create_table(client, stack.properties(logical_id))
            before = dict(in_process_dynamodb.stats)
            client.describe_table(TableName=JOBS)  # not an operation src/ makes: not even looked at
            assert in_process_dynamodb.stats == before
            client.get_item(TableName=JOBS, Key={"job_id": {"S": "x"}})
            assert in_process_dynamodb.stats["direct"] == before["direct"] + 1
            unsigned = session.client(
                "dynamodb", config=client_config(signature_version=__import__("botocore").UNSIGNED)
            )
            with pytest.raises(ClientError):  # moto's own answer to an unsigned call, whatever it is
                unsigned.get_item(TableName="no-such-table", Key={"job_id": {"S": "x"}})
            assert in_process_dynamodb.stats["passed"] == before["passed"] + 1
    finally:
        in_process_dynamodb._enabled = saved


def test_conditional_writes_stay_atomic_on_the_direct_path(stack: Stack) -> None:
    """Threads racing one conditional put: exactly one wins (moto_atomic's lock is the one taken)."""
    moto_atomic.install()
    in_process_dynamodb.install()
    saved = in_process_dynamodb._enabled
    in_process_dynamodb._enabled = True
    try:
        with mock_aws():
            session = boto3.session.Session(region_name="us-east-1")
            setup = session.client("dynamodb")
            for logical_id in stack.of_type("AWS::DynamoDB::Table"):
                create_table(setup, stack.properties(logical_id))
            clients = [session.client("dynamodb", config=client_config()) for _ in range(8)]
            for round_number in range(10):
                key = f"race_{round_number}"
                wins: list[int] = []
                refusals: list[str] = []
                barrier = threading.Barrier(len(clients))

                def race(n: int, client: Any, key: str, wins: list[int], refusals: list[str], barrier: Any) -> None:
                    barrier.wait()
                    try:
                        client.update_item(
                            TableName=JOBS,
                            Key={"job_id": {"S": key}},
                            UpdateExpression="SET winner = :n, hits = if_not_exists(hits, :zero) + :one",
                            ConditionExpression="attribute_not_exists(winner)",
                            ExpressionAttributeValues={":n": {"N": str(n)}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
                        )
                        wins.append(n)
                    except ClientError as exc:
                        refusals.append(exc.response["Error"]["Code"])

                threads = [
                    threading.Thread(target=race, args=(n, c, key, wins, refusals, barrier))
                    for n, c in enumerate(clients)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                assert len(wins) == 1
                assert refusals == ["ConditionalCheckFailedException"] * (len(clients) - 1)
                item = setup.get_item(TableName=JOBS, Key={"job_id": {"S": key}})["Item"]
                assert item["winner"] == {"N": str(wins[0])}
                assert item["hits"] == {"N": "1"}
    finally:
        in_process_dynamodb._enabled = saved
