"""POST /api/v1/jobs/{job_id}/feedback: only on completed jobs, stored in the cache bucket, counted on the job."""

from __future__ import annotations

import calendar
import json
import re
import time
from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack
from tests.conftest import Reply, invoke
from tests.faults import FaultyClient, connection_error, server_error
from tests.integration.conftest import FakeClock
from tests.integration.test_faults import inject
from tests.integration.test_jobs_api import JOBS, assert_error
from tests.integration.test_lifecycle import (
    CACHE,
    RESULT,
    completed_job,
    new_job,
    processing_job,
    raw_job,
    service,
)
from utils import aws as aws_clients

FEEDBACK_ID = re.compile(r"fb_[0-9]{8}T[0-9]{6}_[0-9a-f]{16}")
UNKNOWN_JOB = "job_20261121T231500_0000000000000000"
CORRECTIONS = {"rooms": [{"id": "room_1", "label": "pantry", "bounding_box": [0.5, 1.5, 20.25, 30]}], "missing": 1}
LIMIT = 64 * 1024


def feedback(job_id: str, body: Any = None, *, raw: bytes | None = None, content_type: str | None = None) -> Reply:
    headers = {"Content-Type": content_type} if content_type else None
    if raw is not None:
        return invoke("POST", f"/api/v1/jobs/{job_id}/feedback", body=raw, headers=headers)
    return invoke("POST", f"/api/v1/jobs/{job_id}/feedback", json_body=body, headers=headers)


def feedback_keys(s3: Any, job_id: str = "") -> list[str]:
    prefix = f"feedback/{job_id}/" if job_id else "feedback/"
    return [o["Key"] for o in s3.list_objects_v2(Bucket=CACHE, Prefix=prefix).get("Contents", [])]


def stored_feedback(s3: Any, job_id: str, feedback_id: str) -> Any:
    return json.loads(s3.get_object(Bucket=CACHE, Key=f"feedback/{job_id}/{feedback_id}.json")["Body"].read())


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


# ----------------------------------------------------------------------------------------- accepted
def test_feedback_on_a_completed_job_is_stored_and_counted(s3: Any, dynamodb: Any) -> None:
    job_id = completed_job()["job_id"]
    before = time.time()

    first = feedback(
        job_id,
        {"rating": 4, "comment": "Kitchen is really a pantry", "corrections": CORRECTIONS},
        content_type="application/json; charset=utf-8",
    )

    assert first.status == 201, first.body
    data = first.data
    assert FEEDBACK_ID.fullmatch(data["feedback_id"]), data["feedback_id"]
    assert data["job_id"] == job_id
    assert data["rating"] == 4
    assert data["comment"] == "Kitchen is really a pantry"
    assert data["corrections"] == CORRECTIONS
    assert data["feedback_count"] == 1
    assert data["request_id"] == first.headers["X-Request-ID"]
    created = calendar.timegm(time.strptime(data["created_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert before - 2 <= created <= time.time() + 1
    assert data["created_at"].endswith("Z")
    assert feedback_keys(s3, job_id) == [f"feedback/{job_id}/{data['feedback_id']}.json"]
    stored = stored_feedback(s3, job_id, data["feedback_id"])
    assert stored == {k: v for k, v in data.items() if k != "feedback_count"}

    second = feedback(job_id, {"rating": 1})

    assert second.status == 201, second.body
    assert second.data["feedback_count"] == 2
    assert second.data["feedback_id"] != data["feedback_id"]
    assert second.data["comment"] == ""
    assert second.data["corrections"] is None
    stored_second = stored_feedback(s3, job_id, second.data["feedback_id"])
    assert stored_second == {k: v for k, v in second.data.items() if k != "feedback_count"}
    assert sorted(feedback_keys(s3, job_id)) == sorted(
        f"feedback/{job_id}/{d['feedback_id']}.json" for d in (data, second.data)
    )

    job = invoke("GET", f"/api/v1/jobs/{job_id}").data
    assert job["feedback_count"] == 2
    assert job["status"] == "completed"
    assert int(raw_job(dynamodb, job_id)["feedback_count"]["N"]) == 2


def test_feedback_does_not_change_the_job_or_its_result(s3: Any, dynamodb: Any) -> None:
    job_id = completed_job()["job_id"]
    before = invoke("GET", f"/api/v1/jobs/{job_id}").data
    version = raw_job(dynamodb, job_id)["version"]

    assert feedback(job_id, {"rating": 5}).status == 201

    after = invoke("GET", f"/api/v1/jobs/{job_id}").data
    changed = {k for k in before if before[k] != after[k]} - {"result_url"}
    assert changed == {"feedback_count"}
    assert raw_job(dynamodb, job_id)["version"] == version, "feedback is not a status write"


@pytest.mark.parametrize("rating", [1, 2, 3, 4, 5])
def test_every_rating_from_one_to_five_is_accepted(aws: Stack, rating: int) -> None:
    job_id = completed_job()["job_id"]
    reply = feedback(job_id, {"rating": rating})
    assert reply.status == 201, reply.body
    assert reply.data["rating"] == rating


def test_the_largest_comment_and_corrections_are_accepted(s3: Any) -> None:
    job_id = completed_job()["job_id"]
    corrections = {"note": "x" * (LIMIT - len('{"note":""}'))}
    assert json_size(corrections) == LIMIT

    reply = feedback(job_id, {"rating": 3, "comment": "c" * 2000, "corrections": corrections})

    assert reply.status == 201, reply.body
    assert reply.data["comment"] == "c" * 2000
    stored = stored_feedback(s3, job_id, reply.data["feedback_id"])
    assert stored["corrections"] == corrections
    assert stored["comment"] == "c" * 2000


def test_the_corrections_limit_counts_the_bytes_of_the_json_as_sent_and_stored(s3: Any) -> None:
    """60 KB of UTF-8 JSON (what the client sends and what is stored) is under 64 KB, however many
    ``\\uXXXX`` escapes an ASCII-only encoding of it would need."""
    job_id = completed_job()["job_id"]
    corrections = {"note": "é" * 30_000}
    utf8_size = len(json.dumps(corrections, separators=(",", ":"), ensure_ascii=False).encode())
    assert utf8_size < 61_000 < LIMIT

    reply = feedback(job_id, {"rating": 3, "corrections": corrections})

    assert reply.status == 201, reply.body
    assert stored_feedback(s3, job_id, reply.data["feedback_id"])["corrections"] == corrections


@pytest.mark.parametrize("corrections", [[1, 2, 3], "free text", 7, {"a": None}, None])
def test_corrections_may_be_any_json(aws: Stack, corrections: Any) -> None:
    job_id = completed_job()["job_id"]
    reply = feedback(job_id, {"rating": 2, "corrections": corrections})
    assert reply.status == 201, reply.body
    assert reply.data["corrections"] == corrections


def test_a_unicode_comment_is_kept(s3: Any) -> None:
    job_id = completed_job()["job_id"]
    comment = "Küche ist eigentlich die Speisekammer — 厨房 ✓"
    reply = feedback(job_id, {"rating": 4, "comment": comment})
    assert reply.status == 201
    assert stored_feedback(s3, job_id, reply.data["feedback_id"])["comment"] == comment


# ----------------------------------------------------------------------------------------- refused
def _cancelled() -> str:
    job_id = new_job()["job_id"]
    assert invoke("DELETE", f"/api/v1/jobs/{job_id}").status == 200
    return job_id


def _failed() -> str:
    job_id = processing_job()["job_id"]
    service().fail_job(job_id, {"code": "MODEL_ERROR", "message": "x"})
    return job_id


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda: new_job()["job_id"], "pending"),
        (lambda: processing_job()["job_id"], "processing"),
        (_cancelled, "cancelled"),
        (_failed, "failed"),
    ],
    ids=["pending", "processing", "cancelled", "failed"],
)
def test_feedback_on_a_job_that_is_not_completed_is_409(s3: Any, dynamodb: Any, make: Any, status: str) -> None:
    job_id = make()

    error = assert_error(feedback(job_id, {"rating": 5, "comment": "great"}), 409, "JOB_NOT_COMPLETED")

    assert error["details"]["status"] == status
    assert error["details"]["job_id"] == job_id
    assert feedback_keys(s3) == []
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["feedback_count"] == 0
    assert "feedback_count" not in raw_job(dynamodb, job_id) or raw_job(dynamodb, job_id)["feedback_count"]["N"] == "0"


def test_feedback_on_an_unknown_job_is_404(s3: Any) -> None:
    error = assert_error(feedback(UNKNOWN_JOB, {"rating": 5}), 404, "JOB_NOT_FOUND")
    assert error["details"]["job_id"] == UNKNOWN_JOB
    assert feedback_keys(s3) == []


@pytest.mark.parametrize(
    "job_id",
    ["123", "job_20261121T231500_9F2C4E7A1B3D5F60", "..", "job_20261121T231500_9f2c4e7a1b3d5f6", "x" * 300],
)
def test_feedback_on_a_malformed_job_id_is_400(s3: Any, job_id: str) -> None:
    assert_error(feedback(job_id, {"rating": 5}), 400, "INVALID_JOB_ID")
    assert feedback_keys(s3) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": -1}, "rating"),
        ({"rating": 3.5}, "rating"),
        ({"rating": "5"}, "rating"),
        ({"rating": True}, "rating"),
        ({"rating": None}, "rating"),
        ({"rating": [5]}, "rating"),
        ({"comment": "no rating"}, "rating"),
        ({}, "rating"),
        ({"rating": 5, "comment": "c" * 2001}, "comment"),
        ({"rating": 5, "comment": 5}, "comment"),
        ({"rating": 5, "comment": ["a"]}, "comment"),
        ({"rating": 5, "corrections": {"note": "x" * LIMIT}}, "corrections"),
        ({"rating": 5, "corrections": {"note": "x" * (LIMIT - len('{"note":""}') + 1)}}, "corrections"),
        ({"rating": 5, "extra": 1}, "extra"),
        ({"rating": 5, "Rating": 5}, "Rating"),
    ],
)
def test_invalid_feedback_is_400_with_the_field(s3: Any, dynamodb: Any, body: dict[str, Any], field: str) -> None:
    job_id = completed_job()["job_id"]

    error = assert_error(feedback(job_id, body), 400, "INVALID_REQUEST")

    assert error["details"]["field"] == field
    assert feedback_keys(s3) == []
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["feedback_count"] == 0


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"5", b'{"rating": NaN}'])
def test_malformed_feedback_bodies_are_400(aws: Stack, raw: bytes) -> None:
    job_id = completed_job()["job_id"]
    assert_error(feedback(job_id, raw=raw, content_type="application/json"), 400, "INVALID_REQUEST")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_non_json_feedback_is_415(s3: Any, content_type: str) -> None:
    job_id = completed_job()["job_id"]

    reply = feedback(job_id, raw=json.dumps({"rating": 5}).encode(), content_type=content_type)

    error = assert_error(reply, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert error["details"]["received_content_type"] == content_type
    assert feedback_keys(s3) == []


# ------------------------------------------------------------------------------------------- faults
def test_a_failing_count_is_503_and_deletes_the_stored_feedback(s3: Any, dynamodb: Any, clock: FakeClock) -> None:
    job_id = completed_job()["job_id"]
    table = inject("dynamodb", always={"update_item": server_error})

    reply = feedback(job_id, {"rating": 2, "comment": "lost?"})

    assert_error(reply, 503, "SERVICE_UNAVAILABLE")
    assert int(reply.headers["Retry-After"]) >= 1
    assert table.calls["update_item"] >= 2, "the count was retried"
    assert feedback_keys(s3) == [], "uncounted feedback is not kept"

    aws_clients.reset_clients()
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["feedback_count"] == 0
    retried = feedback(job_id, {"rating": 2, "comment": "lost?"})
    assert retried.status == 201
    assert retried.data["feedback_count"] == 1
    assert feedback_keys(s3) == [f"feedback/{job_id}/{retried.data['feedback_id']}.json"]


def test_a_failing_feedback_write_is_503_and_counts_nothing(s3: Any, dynamodb: Any, clock: FakeClock) -> None:
    job_id = completed_job()["job_id"]
    inject("s3", always={"put_object": server_error})

    assert_error(feedback(job_id, {"rating": 2}), 503, "SERVICE_UNAVAILABLE")

    aws_clients.reset_clients()
    assert feedback_keys(s3) == []
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["feedback_count"] == 0


def test_a_count_that_landed_before_its_connection_dropped_counts_once(
    s3: Any, dynamodb: Any, clock: FakeClock
) -> None:
    job_id = completed_job()["job_id"]
    real = boto3.client("dynamodb", region_name="us-east-1")

    aws_clients.set_client("dynamodb", FaultyClient(real, landed={"update_item": [connection_error()]}))

    reply = feedback(job_id, {"rating": 5})

    assert reply.status == 201, reply.body
    assert reply.data["feedback_count"] == 1
    aws_clients.reset_clients()
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["feedback_count"] == 1
    assert feedback_keys(s3) == [f"feedback/{job_id}/{reply.data['feedback_id']}.json"]


def test_each_piece_of_feedback_counts_once(s3: Any) -> None:
    job_id = completed_job(result=RESULT)["job_id"]
    replies = [feedback(job_id, {"rating": r}) for r in (1, 2, 3)]
    assert [r.data["feedback_count"] for r in replies] == [1, 2, 3]
    assert len(feedback_keys(s3, job_id)) == 3
    assert {stored_feedback(s3, job_id, r.data["feedback_id"])["rating"] for r in replies} == {1, 2, 3}


def test_when_the_cleanup_also_fails_the_uncounted_feedback_is_logged(
    s3: Any, dynamodb: Any, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = completed_job()["job_id"]
    inject("dynamodb", always={"update_item": server_error})
    inject("s3", always={"delete_object": server_error})

    assert_error(feedback(job_id, {"rating": 2}), 503, "SERVICE_UNAVAILABLE")

    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    left = [line["s3_key"] for line in logs if line["message"] == "could not delete uncounted feedback"]
    assert left == feedback_keys(s3, job_id)
    assert len(left) == 1


def test_feedback_on_a_job_deleted_while_it_was_being_stored_is_404(s3: Any, dynamodb: Any) -> None:
    """DynamoDB's TTL removes a job between the read and the count: the job is gone, not 'not completed'."""
    job_id = completed_job()["job_id"]
    real = boto3.client("dynamodb", region_name="us-east-1")

    class DeletedByTtl(FaultyClient):
        def update_item(self, **kwargs: Any) -> Any:
            real.delete_item(TableName=JOBS, Key={"job_id": {"S": job_id}})
            return real.update_item(**kwargs)

    aws_clients.set_client("dynamodb", DeletedByTtl(real))

    reply = feedback(job_id, {"rating": 4})

    error = assert_error(reply, 404, "JOB_NOT_FOUND")
    assert error["details"]["job_id"] == job_id
    assert feedback_keys(s3, job_id) == [], "the stored feedback was deleted"
