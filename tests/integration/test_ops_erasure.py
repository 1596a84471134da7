"""The operator's erasure commands in-process against moto: ``clients erase`` (a dry run that lists, then
``--yes``), ``clients export``, ``jobs erase`` and ``sweep``. Alice's data goes, all of it and every
version; Bob's stays exactly as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_api.cfn_template import Stack
from models.job import JOB_TTL_SECONDS
from storage.rate_limits import limit_key
from tests.conftest import OTHER_API_KEY, create_body, invoke
from tests.integration.test_erasure import everything_of, nothing_left, versions
from tests.integration.test_jobs_api import BLUEPRINTS, JOBS, assert_error
from tests.integration.test_lifecycle import RESULT, service, unique_png
from tests.integration.test_ops_cli import _restore_environ, cli  # noqa: F401 - the fixture, autouse here too
from tests.integration.test_uploads import post_file
from utils import clock, secrets

ALICE, BOB = "cli_alice", "cli_bob"


def alices_data(s3: Any) -> dict[str, Any]:
    """A completed job with feedback and an upload never used (each under an Idempotency-Key: the one's
    record names the job, the other's a file), and a pending job."""
    key = {"Idempotency-Key": "ops-erasure"}
    completed = invoke("POST", "/api/v1/jobs", json_body=create_body(unique_png(), filename="home.png"), headers=key)
    assert completed.status == 201, completed.body
    job = dict(completed.data)
    service().start_processing(job["job_id"])
    service().complete_job(job["job_id"], RESULT)
    feedback = {"rating": 4, "comment": "ok"}
    assert invoke("POST", f"/api/v1/jobs/{job['job_id']}/feedback", json_body=feedback).status == 201
    pending = invoke("POST", "/api/v1/jobs", json_body=create_body(unique_png())).data
    content = unique_png()
    upload_request = {"format": "png", "filename": "draft.png", "size": len(content)}
    upload = invoke("POST", "/api/v1/uploads", json_body=upload_request, headers={"Idempotency-Key": "ops-upload"}).data
    post_file(upload, content)
    return {"completed": job, "pending": dict(pending), "upload_id": upload["upload_id"]}


def rate_limit_keys(dynamodb: Any) -> set[str]:
    items = dynamodb.scan(
        TableName=JOBS, FilterExpression="item_type = :t", ExpressionAttributeValues={":t": {"S": "rate_limit"}}
    )["Items"]
    return {item["job_id"]["S"] for item in items}


def bobs_job() -> dict[str, Any]:
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(unique_png()), api_key=OTHER_API_KEY)
    assert reply.status == 201, reply.body
    return dict(reply.data)


def test_a_dry_run_lists_what_would_go_and_erases_nothing(
    aws: Stack, s3: Any, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = alices_data(s3)
    before = everything_of(s3, dynamodb, alice["completed"])

    code, out, err = cli(capsys, "clients", "erase", ALICE)

    assert code == 0, err
    assert "dry run" in err
    listed = out["would_erase"]
    assert (out["client_id"], out["dry_run"]) == (ALICE, True)
    assert sorted(listed["jobs"]) == sorted([alice["completed"]["job_id"], alice["pending"]["job_id"]])
    assert listed["uploads"] == [alice["upload_id"]]
    assert listed["idempotency_records"] == 2
    assert [key["client_id"] for key in listed["keys"]] == [ALICE]
    assert listed["rate_limits"] == ["jobs", "uploads"], "the limiter's items of both budgets she spent"
    assert "home.png" not in json.dumps(out), "ids, never file names"
    assert everything_of(s3, dynamodb, alice["completed"]) == before


def test_erase_with_yes_takes_every_job_upload_record_and_key_and_leaves_the_other_client_alone(
    aws: Stack, s3: Any, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = alices_data(s3), bobs_job()
    bob_before = everything_of(s3, dynamodb, bob)

    code, out, err = cli(capsys, "clients", "erase", ALICE, "--yes")

    assert code == 0, err
    assert "run this again" in err
    erased = {"keys": 1, "jobs": 2, "objects_deleted": 5, "uploads": 1, "idempotency_records": 1, "rate_limits": 2}
    erased |= {"webhooks": 0, "webhook_dead_letters": 0}
    assert out["erased"] == erased
    for job in (alice["completed"], alice["pending"]):
        assert nothing_left(everything_of(s3, dynamodb, job))
    assert versions(s3, BLUEPRINTS, f"uploads/{alice['upload_id']}/") == []
    records = dynamodb.scan(
        TableName=JOBS, FilterExpression="item_type = :t", ExpressionAttributeValues={":t": {"S": "idempotency"}}
    )
    assert records["Items"] == [], "the job's record went with the job, the upload's with the client"
    assert rate_limit_keys(dynamodb) == {limit_key(BOB, "jobs")}, "her limiter items went, Bob's stayed"
    secrets._store = None  # past the Lambda's five-minute secret cache
    assert_error(invoke("GET", "/api/v1/jobs"), 401, "UNAUTHORIZED")
    assert everything_of(s3, dynamodb, bob) == bob_before
    assert invoke("GET", f"/api/v1/jobs/{bob['job_id']}", api_key=OTHER_API_KEY).status == 200

    again, out, _ = cli(capsys, "clients", "erase", ALICE, "--yes")
    assert again == 0
    nothing = {"keys": 0, "jobs": 0, "objects_deleted": 0, "uploads": 0, "idempotency_records": 0, "rate_limits": 0}
    nothing |= {"webhooks": 0, "webhook_dead_letters": 0}
    assert out["erased"] == nothing


def test_export_has_the_clients_jobs_feedback_uploads_and_key_names_only(
    aws: Stack, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = alices_data(s3), bobs_job()

    code, out, err = cli(capsys, "clients", "export", ALICE)

    assert code == 0, err
    by_id = {job["job_id"]: job for job in out["jobs"]}
    assert set(by_id) == {alice["completed"]["job_id"], alice["pending"]["job_id"]}
    completed = by_id[alice["completed"]["job_id"]]
    assert (completed["status"], completed["blueprint_filename"]) == ("completed", "home.png")
    assert [(f["rating"], f["comment"]) for f in completed["feedback"]] == [(4, "ok")]
    assert by_id[alice["pending"]["job_id"]]["feedback"] == []
    assert out["uploads"] == [alice["upload_id"]]
    assert [key["name"] for key in out["keys"]] == ["Alice"]
    assert bob["job_id"] not in json.dumps(out)
    assert len(out["keys"][0]["key_hash"]) == 12, "a hash prefix, never a key"


def test_jobs_erase_erases_any_clients_job_even_an_expired_one(
    aws: Stack, s3: Any, dynamodb: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    job = bobs_job()
    later = clock.wall_time() + JOB_TTL_SECONDS + 1
    monkeypatch.setattr(clock, "wall_source", lambda: later)
    assert_error(invoke("POST", f"/api/v1/jobs/{job['job_id']}/erase", api_key=OTHER_API_KEY), 404, "JOB_NOT_FOUND")

    code, out, err = cli(capsys, "jobs", "erase", job["job_id"])

    assert code == 0, err
    assert (out["job_id"], out["objects_deleted"]) == (job["job_id"], 1)
    assert nothing_left(everything_of(s3, dynamodb, job))
    code, out, err = cli(capsys, "jobs", "erase", job["job_id"])
    assert (code, out) == (1, None)
    assert "not found" in err


def test_sweep_runs_once_and_reports(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "sweep")
    assert code == 0, err
    assert set(out) == {"erasures_finished", "blueprints_expired", "objects_deleted", "failures"}


def test_a_malformed_client_id_is_refused(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "clients", "erase", "cli alice")
    assert (code, out) == (1, None)
    assert "CLIENT_ID" in err
