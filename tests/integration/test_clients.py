"""Clients and their jobs: API keys, JWT subjects, isolation, listing with cursors, idempotent creation."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack
from local_api.provision import provision_api_keys
from local_api.server import build_event
from tests import samples
from tests.conftest import API_KEY, OTHER_API_KEY, TEST_KEYS, create_body, invoke, invoke_event
from tests.integration.test_jobs_api import JOBS, assert_error, stored_jobs, stored_keys
from utils import secrets


def create(content: bytes | None = None, **kw: Any) -> Any:
    return invoke(
        "POST", "/api/v1/jobs", json_body=create_body(content or samples.png(extra=str(time.time_ns()).encode())), **kw
    )


# ------------------------------------------------------------------------------------------------ keys
@pytest.mark.parametrize("key", [None, "", "ldk_wrong", "x" * 5000, API_KEY + " "])
def test_missing_or_unknown_keys_are_401(aws: Stack, key: str | None) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    for method, path in [("GET", "/api/v1/jobs"), ("POST", "/api/v1/jobs"), ("POST", "/api/v1/uploads")]:
        reply = invoke(method, path, headers=headers, api_key=None)
        assert_error(reply, 401, "UNAUTHORIZED")
        assert reply.headers["WWW-Authenticate"].startswith("ApiKey")


def test_a_browser_can_read_a_401s_www_authenticate(aws: Stack) -> None:
    """The contract exposes it: without it in Access-Control-Expose-Headers a page reads no scheme."""
    reply = invoke("GET", "/api/v1/jobs", headers={"Origin": "https://app.example.com"}, api_key=None)
    assert_error(reply, 401, "UNAUTHORIZED")
    exposed = {name.strip() for name in reply.headers["Access-Control-Expose-Headers"].split(",")}
    assert "WWW-Authenticate" in exposed


def test_health_options_and_openapi_need_no_key(aws: Stack) -> None:
    assert invoke("GET", "/health", api_key=None).status == 200
    assert invoke("OPTIONS", "/api/v1/jobs", api_key=None).status == 204
    document = invoke("GET", "/api/v1/openapi.json", api_key=None)
    assert document.status == 200
    assert document.body["openapi"].startswith("3.1")


def test_a_revoked_key_stops_working_when_the_cache_expires(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    assert create().status == 201
    provision_api_keys(aws, {OTHER_API_KEY: TEST_KEYS[OTHER_API_KEY]})  # Alice's key revoked
    assert create().status == 201, "within the five-minute cache the old key still works"
    secrets.get_store().invalidate()  # what five minutes do
    assert_error(create(), 401, "UNAUTHORIZED")
    assert create(api_key=OTHER_API_KEY).status == 201


def test_keys_are_stored_hashed(aws: Stack) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    value = client.get_secret_value(SecretId="location-detection/dev/api-keys")["SecretString"]
    assert API_KEY not in value
    assert len(json.loads(value)["keys"]) == 2


def test_a_jwt_subject_is_the_client(aws: Stack) -> None:
    event = build_event("GET", "/api/v1/jobs", [("host", "api.example.test")], b"")
    event["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": "user-123"}, "scopes": None}}
    reply = invoke_event(event)
    assert reply.status == 200
    assert reply.data == {"jobs": [], "next_cursor": None}


# ------------------------------------------------------------------------------------------- ownership
def test_another_clients_job_answers_exactly_like_a_missing_one(aws: Stack) -> None:
    job_id = create().data["job_id"]
    missing_id = "job_20261121T231500_0123456789abcdef"
    for method, path_of in [
        ("GET", "/api/v1/jobs/{}"),
        ("DELETE", "/api/v1/jobs/{}"),
        ("POST", "/api/v1/jobs/{}/feedback"),
    ]:
        kwargs: dict[str, Any] = {"json_body": {"rating": 5}} if method == "POST" else {}
        foreign = invoke(method, path_of.format(job_id), api_key=OTHER_API_KEY, **kwargs)
        missing = invoke(method, path_of.format(missing_id), api_key=OTHER_API_KEY, **kwargs)
        assert foreign.status == missing.status == 404
        assert foreign.error["code"] == missing.error["code"] == "JOB_NOT_FOUND"
        assert set(foreign.error) == set(missing.error)
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "pending", "the owner's job is untouched"


def test_jobs_without_an_owner_are_visible_to_nobody(aws: Stack, dynamodb: Any) -> None:
    job_id = create().data["job_id"]
    dynamodb.update_item(TableName=JOBS, Key={"job_id": {"S": job_id}}, UpdateExpression="REMOVE owner_id")
    for key in (API_KEY, OTHER_API_KEY):
        assert_error(invoke("GET", f"/api/v1/jobs/{job_id}", api_key=key), 404, "JOB_NOT_FOUND")


def test_another_clients_upload_is_not_found(aws: Stack, s3: Any) -> None:
    import requests

    size = len(samples.pdf())
    ticket = invoke("POST", "/api/v1/uploads", json_body={"filename": "p.pdf", "format": "pdf", "size": size}).data
    requests.post(ticket["url"], data=ticket["fields"], files={"file": ("p.pdf", samples.pdf())}, timeout=30)
    body = {"blueprint": {"upload_id": ticket["upload_id"]}}
    assert_error(invoke("POST", "/api/v1/jobs", json_body=body, api_key=OTHER_API_KEY), 404, "UPLOAD_NOT_FOUND")
    assert invoke("POST", "/api/v1/jobs", json_body=body).status == 201, "the owner still can"


# ---------------------------------------------------------------------------------------------- listing
def test_list_is_the_callers_jobs_newest_first(aws: Stack) -> None:
    mine = [create().data["job_id"] for _ in range(3)]
    theirs = create(api_key=OTHER_API_KEY).data["job_id"]
    reply = invoke("GET", "/api/v1/jobs")
    ids = [job["job_id"] for job in reply.data["jobs"]]
    assert sorted(ids) == sorted(mine)
    assert theirs not in ids
    created = [job["created_at"] for job in reply.data["jobs"]]
    assert created == sorted(created, reverse=True)
    assert reply.data["next_cursor"] is None


def test_pages_never_repeat_or_skip_while_jobs_are_created(aws: Stack) -> None:
    first = [create().data["job_id"] for _ in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        path = "/api/v1/jobs?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = invoke("GET", path)
        assert page.status == 200, page.body
        seen.extend(job["job_id"] for job in page.data["jobs"])
        create()  # a new job arrives between pages: it is newer, so it belongs before page one
        cursor = page.data["next_cursor"]
        if not cursor:
            break
    assert set(first) <= set(seen), "no job that existed before the first page is skipped"
    assert len(seen) == len(set(seen)), "no job is repeated"
    # Jobs created during the walk are newer; those created within the same second as the walk's jobs
    # may sort among them (created_at has whole seconds) and show up: never twice, never instead of one.


def test_list_filters_by_status_and_dates(aws: Stack) -> None:
    from api.dependencies import get as get_dependencies

    a, b = create().data, create().data
    get_dependencies().job_service().cancel_job(b["job_id"])
    cancelled = invoke("GET", "/api/v1/jobs?status=cancelled").data["jobs"]
    assert [job["job_id"] for job in cancelled] == [b["job_id"]]
    later = invoke("GET", "/api/v1/jobs?created_after=2999-01-01T00:00:00Z").data["jobs"]
    assert later == []
    earlier = invoke("GET", "/api/v1/jobs?created_before=2000-01-01").data["jobs"]
    assert earlier == []
    window = invoke("GET", "/api/v1/jobs?created_after=2000-01-01T00:00:00%2B02:00&created_before=2999-01-01")
    assert {job["job_id"] for job in window.data["jobs"]} == {a["job_id"], b["job_id"]}


def test_expired_jobs_are_not_listed(aws: Stack, dynamodb: Any) -> None:
    job_id = create().data["job_id"]
    dynamodb.update_item(
        TableName=JOBS,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert invoke("GET", "/api/v1/jobs").data["jobs"] == []


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=abc", "limit=-1", "status=done", "created_after=yesterday", "created_before=0000"],
)
def test_bad_list_parameters_are_400(aws: Stack, query: str) -> None:
    assert_error(invoke("GET", f"/api/v1/jobs?{query}"), 400, "INVALID_REQUEST")


def test_cursors_are_bound_to_client_and_query(aws: Stack) -> None:
    for _ in range(3):
        create()
    cursor = invoke("GET", "/api/v1/jobs?limit=1").data["next_cursor"]
    assert cursor
    payload, signature = cursor.split(".")
    forged_payload = (
        base64.urlsafe_b64encode(base64.urlsafe_b64decode(payload + "==").replace(b"cli_alice", b"cli_bobby"))
        .decode()
        .rstrip("=")
    )
    for bad, key in [
        ("not-a-cursor", API_KEY),
        (cursor[:-2], API_KEY),
        (f"{forged_payload}.{signature}", API_KEY),
        (cursor, OTHER_API_KEY),
    ]:
        assert_error(invoke("GET", f"/api/v1/jobs?limit=1&cursor={bad}", api_key=key), 400, "INVALID_CURSOR")
    assert_error(invoke("GET", f"/api/v1/jobs?limit=1&status=pending&cursor={cursor}"), 400, "INVALID_CURSOR")
    assert invoke("GET", f"/api/v1/jobs?limit=2&cursor={cursor}").status == 200, "page size may change"


# ---------------------------------------------------------------------------------------------- idempotency
def test_a_retried_create_replays_the_first_response(aws: Stack, s3: Any, dynamodb: Any) -> None:
    body = create_body(samples.png(extra=b"idem"))
    first = invoke("POST", "/api/v1/jobs", json_body=body, headers={"Idempotency-Key": "order-1"})
    again = invoke("POST", "/api/v1/jobs", json_body=body, headers={"Idempotency-Key": "order-1"})
    assert first.status == again.status == 201
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["X-Request-ID"] == first.headers["X-Request-ID"] == again.body["meta"]["request_id"]
    assert "Idempotent-Replayed" not in first.headers
    assert len([j for j in stored_jobs(dynamodb) if j["job_id"]["S"].startswith("job_")]) == 1
    assert len(stored_keys(s3)) == 1


def test_the_same_key_with_another_request_is_422(aws: Stack) -> None:
    headers = {"Idempotency-Key": "order-2"}
    assert invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"a")), headers=headers).status == 201
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"b")), headers=headers)
    assert_error(reply, 422, "IDEMPOTENCY_KEY_REUSED")


def test_keys_are_scoped_to_the_client(aws: Stack) -> None:
    body, headers = create_body(samples.png(extra=b"c")), {"Idempotency-Key": "shared-key"}
    alice = invoke("POST", "/api/v1/jobs", json_body=body, headers=headers)
    bob = invoke("POST", "/api/v1/jobs", json_body=body, headers=headers, api_key=OTHER_API_KEY)
    assert alice.status == bob.status == 201
    assert alice.data["job_id"] != bob.data["job_id"]
    assert "Idempotent-Replayed" not in bob.headers


def test_a_4xx_outcome_is_kept_and_a_5xx_is_not(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = {"blueprint": {"file": base64.b64encode(samples.GIF).decode(), "format": "png"}}
    first = invoke("POST", "/api/v1/jobs", json_body=bad, headers={"Idempotency-Key": "bad-1"})
    again = invoke("POST", "/api/v1/jobs", json_body=bad, headers={"Idempotency-Key": "bad-1"})
    assert first.status == again.status == 400
    assert again.headers["Idempotent-Replayed"] == "true"

    from services.job_creation import JobCreation
    from utils.errors import ServiceUnavailable

    original = JobCreation.create_job

    def down(*_: Any, **__: Any) -> Any:
        raise ServiceUnavailable()

    body = create_body(samples.png(extra=b"5xx"))
    monkeypatch.setattr(JobCreation, "create_job", down)
    assert invoke("POST", "/api/v1/jobs", json_body=body, headers={"Idempotency-Key": "k5"}).status == 503
    monkeypatch.setattr(JobCreation, "create_job", original)
    retried = invoke("POST", "/api/v1/jobs", json_body=body, headers={"Idempotency-Key": "k5"})
    assert retried.status == 201
    assert "Idempotent-Replayed" not in retried.headers


def test_a_duplicate_while_the_first_runs_is_409(aws: Stack, dynamodb: Any) -> None:
    from storage.idempotency_store import record_key

    key = record_key("cli_alice", "busy")
    dynamodb.put_item(
        TableName=JOBS,
        Item={
            "job_id": {"S": key},
            "fingerprint": {"S": "whatever"},
            "state": {"S": "in_progress"},
            "lock_until": {"N": str(int(time.time()) + 30)},
            "expires_at": {"N": str(int(time.time()) + 86400)},
        },
    )
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png()), headers={"Idempotency-Key": "busy"})
    assert reply.status in (409, 422)


def test_a_crashed_attempts_lock_lapses(aws: Stack, dynamodb: Any) -> None:
    from api.idempotency import fingerprint  # noqa: F401 - the lock, not the fingerprint, is under test
    from storage.idempotency_store import record_key

    body = create_body(samples.png(extra=b"crash"))
    first = invoke("POST", "/api/v1/jobs", json_body=body, headers={"Idempotency-Key": "crash"})
    key = record_key("cli_alice", "crash")
    dynamodb.update_item(  # as if the first attempt had died mid-way, its Lambda long gone
        TableName=JOBS,
        Key={"job_id": {"S": key}},
        UpdateExpression="SET #s = :p, lock_until = :past",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":p": {"S": "in_progress"}, ":past": {"N": str(int(time.time()) - 1)}},
    )
    retried = invoke("POST", "/api/v1/jobs", json_body=body, headers={"Idempotency-Key": "crash"})
    assert retried.status == 201
    assert first.status == 201


def test_ten_concurrent_duplicates_create_exactly_one_job(aws: Stack, s3: Any, dynamodb: Any) -> None:
    body = create_body(samples.png(extra=b"race"))
    start = threading.Barrier(10)
    replies: list[Any] = []

    def post() -> None:
        start.wait()
        replies.append(invoke("POST", "/api/v1/jobs", json_body=body, headers={"Idempotency-Key": "race-1"}))

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(r.status for r in replies)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    created_ids = {r.data["job_id"] for r in replies if r.status == 201}
    assert len(created_ids) == 1
    assert len([j for j in stored_jobs(dynamodb) if j["job_id"]["S"].startswith("job_")]) == 1
    assert len(stored_keys(s3)) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "tab\tkey"])
def test_malformed_idempotency_keys_are_400(aws: Stack, key: str) -> None:
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png()), headers={"Idempotency-Key": key})
    assert_error(reply, 400, "INVALID_REQUEST")


def test_a_retried_form_upload_with_a_new_boundary_is_the_same_request(aws: Stack) -> None:
    def form(boundary: str, content: bytes) -> bytes:
        return (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.png"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )

    def post(boundary: str, content: bytes) -> Any:
        return invoke(
            "POST",
            "/api/v1/jobs",
            body=form(boundary, content),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "Idempotency-Key": "form-1"},
        )

    first = post("aaaa1111", samples.png(extra=b"form"))
    again = post("bbbb2222", samples.png(extra=b"form"))
    other = post("cccc3333", samples.png(extra=b"another file"))
    assert first.status == again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
