"""POST /api/v1/jobs/{job_id}/erase against moto: everything stored for a job goes, for good, in every state
a job can be in; another client's job is 404; an erasure cut short is finished by its retry; a completion
racing an erasure either loses or is erased after it (100 rounds, with threads); one audit line and the
metrics, with no file name anywhere in what the erasure logs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from api.dependencies import get as get_dependencies
from local_api.cfn_template import Stack
from models.errors import IllegalTransition, JobNotFound
from models.job import JobStatus
from services import erasure as erasure_module
from services.erasure import ErasureService
from storage.items import from_item
from tests.conftest import GENEROUS_RATE_LIMIT, OTHER_API_KEY, Reply, create_body, invoke, set_rate_limit
from tests.emf import datapoints, emf_documents, json_lines
from tests.faults import server_error
from tests.integration.conftest import FakeClock
from tests.integration.test_faults import inject
from tests.integration.test_jobs_api import BLUEPRINTS, JOBS, assert_error
from tests.integration.test_lifecycle import (
    CACHE,
    PREVIEWS,
    RESULT,
    completed_job,
    get,
    new_job,
    preview_item,
    processing_job,
    service,
    unique_png,
)
from tests.integration.test_uploads import finalise, uploaded
from utils import aws as aws_clients

FILENAME = "secret-floor-plan.png"


@pytest.fixture(autouse=True)
def generous_budget(aws: Stack) -> None:
    """These tests make up to a hundred jobs at once; the rate limits are not what they test."""
    set_rate_limit(*GENEROUS_RATE_LIMIT)


def erase(job_id: str, api_key: str | None = None) -> Reply:
    return invoke("POST", f"/api/v1/jobs/{job_id}/erase", **({"api_key": api_key} if api_key else {}))


def versions(s3: Any, bucket: str, prefix: str) -> list[tuple[str, str]]:
    """Every version and delete marker under ``prefix`` (what a plain listing does not show)."""
    page = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return [(v["Key"], v["VersionId"]) for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]


def everything_of(s3: Any, dynamodb: Any, job: dict[str, Any], upload_id: str | None = None) -> dict[str, Any]:
    """What is stored for ``job`` anywhere: object versions per prefix, its record, its preview entry."""
    job_id = job["job_id"]
    stored = {
        "blueprint": versions(s3, BLUEPRINTS, f"blueprints/{job_id}/"),
        "result": versions(s3, CACHE, f"cache/results/{job_id}/"),
        "feedback": versions(s3, CACHE, f"feedback/{job_id}/"),
        "record": dynamodb.get_item(TableName=JOBS, Key={"job_id": {"S": job_id}}, ConsistentRead=True).get("Item"),
        "preview": (preview_item(dynamodb, job["blueprint_hash"]) or {}).get("job_id") == job_id or None,
    }
    if upload_id:
        stored["upload"] = versions(s3, BLUEPRINTS, f"uploads/{upload_id}/")
        claim = dynamodb.get_item(TableName=JOBS, Key={"job_id": {"S": f"claim#{upload_id}"}}, ConsistentRead=True)
        stored["claim"] = claim.get("Item")
    return stored


def nothing_left(stored: dict[str, Any]) -> bool:
    return not any(stored.values())


def assert_erased(reply: Reply, job_id: str, objects: int | None = None) -> dict[str, Any]:
    assert reply.status == 200, reply.body
    data = dict(reply.data)
    assert set(data) == {"job_id", "erased_at", "objects_deleted"}
    assert data["job_id"] == job_id
    assert data["erased_at"].endswith("Z")
    if objects is not None:
        assert data["objects_deleted"] == objects
    return data


# -------------------------------------------------------------------------------- a completed job
def test_erasing_a_completed_job_removes_everything_stored_for_it(aws: Stack, s3: Any, dynamodb: Any) -> None:
    content = unique_png()
    body, key = create_body(content, filename=FILENAME), {"Idempotency-Key": f"erase-{time.time_ns()}"}
    created = invoke("POST", "/api/v1/jobs", json_body=body, headers=key)
    assert created.status == 201, created.body
    job = dict(created.data)
    job_id = job["job_id"]
    service().start_processing(job_id)
    service().complete_job(job_id, RESULT)
    result_url = get(job_id).data["result_url"]
    assert requests.get(result_url, timeout=10).status_code == 200
    assert invoke("POST", f"/api/v1/jobs/{job_id}/feedback", json_body={"rating": 5}).status == 201
    # The blueprint has an older version too (an overwrite behind the API's back): it must go as well.
    s3.put_object(Bucket=BLUEPRINTS, Key=job["blueprint_s3_key"], Body=content + b"v2")
    before = everything_of(s3, dynamodb, job)
    assert all(before.values()), before

    receipt = assert_erased(erase(job_id), job_id, objects=4)  # 2 blueprint versions, the result, 1 feedback

    assert nothing_left(everything_of(s3, dynamodb, job)), "no version of any of its objects"
    assert_error(invoke("GET", f"/api/v1/jobs/{job_id}"), 404, "JOB_NOT_FOUND")
    assert requests.get(result_url, timeout=10).status_code in (403, 404), "the old result_url serves nothing"
    assert job_id not in [j["job_id"] for j in invoke("GET", "/api/v1/jobs?limit=100").data["jobs"]]
    again = new_job(content)
    assert "preview" not in again, "a new job with the same bytes gets no preview made from the erased one"
    # The idempotency record that named it is gone: the same key and request now make a new job.
    replayed = invoke("POST", "/api/v1/jobs", json_body=body, headers=key)
    assert replayed.status == 201
    assert replayed.headers.get("Idempotent-Replayed") is None
    assert replayed.data["job_id"] != job_id
    assert receipt["erased_at"] >= job["created_at"]


def test_erasing_an_erased_job_is_404_like_any_unknown_job(aws: Stack) -> None:
    job_id = completed_job()["job_id"]
    assert_erased(erase(job_id), job_id)
    gone = assert_error(erase(job_id), 404, "JOB_NOT_FOUND")
    unknown = assert_error(erase(job_id[:-4] + "0000"), 404, "JOB_NOT_FOUND")
    assert gone["message"] == unknown["message"]
    assert_error(erase("job_nope"), 400, "INVALID_JOB_ID")


def test_another_clients_job_is_404_and_stays_whole(aws: Stack, s3: Any, dynamodb: Any) -> None:
    job = completed_job()
    before = everything_of(s3, dynamodb, job)

    assert_error(erase(job["job_id"], OTHER_API_KEY), 404, "JOB_NOT_FOUND")

    assert everything_of(s3, dynamodb, job) == before
    assert get(job["job_id"]).data["status"] == "completed"


def test_an_erasure_needs_a_key(aws: Stack) -> None:
    job_id = new_job()["job_id"]
    assert_error(invoke("POST", f"/api/v1/jobs/{job_id}/erase", api_key=None), 401, "UNAUTHORIZED")
    assert get(job_id).data["status"] == "pending"


# ------------------------------------------------------------------------- pending and processing
def test_a_processing_job_is_cancelled_first_and_the_pipeline_then_fails_cleanly(
    aws: Stack, s3: Any, dynamodb: Any
) -> None:
    job = processing_job()
    job_id = job["job_id"]
    pipeline = service()

    assert_erased(erase(job_id), job_id, objects=1)

    with pytest.raises(JobNotFound):
        pipeline.complete_job(job_id, RESULT)
    with pytest.raises(JobNotFound):
        pipeline.fail_job(job_id, {"code": "MODEL_ERROR", "message": "late"})
    assert nothing_left(everything_of(s3, dynamodb, job)), "and the late completion left nothing behind"


def test_the_cancel_an_erasure_makes_is_stamped_like_any_other_cancel(
    aws: Stack, s3: Any, dynamodb: Any, clock: FakeClock
) -> None:
    """The mark cancels a processing job in its one write: with the job's timing too (issue 16), so the
    cancelled, marked record an erasure cut short leaves says when the job ended, as a DELETE's would."""
    erased, cancelled = processing_job(), processing_job()
    inject("s3", always={"delete_objects": server_error})
    assert_error(erase(erased["job_id"]), 503, "SERVICE_UNAVAILABLE")
    aws_clients.reset_clients()
    assert invoke("DELETE", f"/api/v1/jobs/{cancelled['job_id']}").status == 200

    def record(job_id: str) -> dict[str, Any]:
        item = dynamodb.get_item(TableName=JOBS, Key={"job_id": {"S": job_id}}, ConsistentRead=True)["Item"]
        return from_item(item)

    marked, plain = record(erased["job_id"]), record(cancelled["job_id"])
    assert "erase_requested_at" in marked
    for job in (marked, plain):
        assert job["status"] == "cancelled"
        assert job["finished_at"] == job["updated_at"], "finished when it was cancelled"
        assert job["started_at"] <= job["finished_at"]
    assert set(plain) - set(marked) == set(), "the erasure's cancel writes all a cancel writes"


def test_a_pending_job_made_from_an_upload_takes_the_upload_and_its_claim_with_it(
    aws: Stack, s3: Any, dynamodb: Any
) -> None:
    upload = uploaded("png", unique_png(), FILENAME)
    created = finalise(upload["upload_id"])
    assert created.status == 201, created.body
    job = dict(created.data)
    # The finalisation deleted the upload: what is left is its noncurrent version and a delete marker.
    assert len(versions(s3, BLUEPRINTS, f"uploads/{upload['upload_id']}/")) == 2

    assert_erased(erase(job["job_id"]), job["job_id"], objects=2)  # the blueprint and the upload's version

    assert nothing_left(everything_of(s3, dynamodb, job, upload["upload_id"]))
    with pytest.raises(JobNotFound):
        service().start_processing(job["job_id"])


# ---------------------------------------------------------------------------------- cut short
def test_an_erasure_cut_short_is_404_to_readers_and_its_retry_finishes_it(
    aws: Stack, s3: Any, dynamodb: Any, clock: FakeClock
) -> None:
    job = completed_job()
    job_id = job["job_id"]
    inject("s3", always={"delete_objects": server_error}, after={"delete_objects": 1})

    failed = erase(job_id)

    assert_error(failed, 503, "SERVICE_UNAVAILABLE")
    aws_clients.reset_clients()
    left = everything_of(s3, dynamodb, job)
    assert left["blueprint"] == [], "the first prefix went"
    assert left["result"], "the rest is still there"
    assert "erase_requested_at" in left["record"], "and the job is marked: a retry (or the sweep) finds it"
    assert_error(invoke("GET", f"/api/v1/jobs/{job_id}"), 404, "JOB_NOT_FOUND")
    assert_error(invoke("POST", f"/api/v1/jobs/{job_id}/feedback", json_body={"rating": 1}), 404, "JOB_NOT_FOUND")

    assert_erased(erase(job_id), job_id, objects=1)  # what the retry deleted: the result

    assert nothing_left(everything_of(s3, dynamodb, job))


def test_an_erasure_waits_for_a_completion_in_progress_then_asks_for_a_retry(
    aws: Stack, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(erasure_module, "COMPLETION_WAIT_SECONDS", 0.1)
    job_id = processing_job()["job_id"]
    until = int(time.time()) + 30
    dynamodb.update_item(
        TableName=JOBS,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET completing_by = :a, completing_until = :u",
        ExpressionAttributeValues={":a": {"S": "a-completion"}, ":u": {"N": str(until)}},
    )

    reply = erase(job_id)

    error = assert_error(reply, 409, "CONFLICT")
    assert "completion" in error["message"]
    assert get(job_id).data["status"] == "processing", "nothing was marked"


# ------------------------------------------------------------------------ completion vs erasure
def race_complete_and_erase(eraser: ErasureService, job_id: str, delay: float) -> tuple[Any, Any]:
    start = threading.Barrier(2)
    outcome: dict[str, Any] = {}

    def complete() -> None:
        start.wait()
        try:
            outcome["complete"] = service().complete_job(job_id, RESULT)
        except BaseException as exc:
            outcome["complete"] = exc

    def erase_it() -> None:
        start.wait()
        time.sleep(delay)
        try:
            outcome["erase"] = eraser.erase_job(job_id, "cli_alice", actor="test")
        except BaseException as exc:
            outcome["erase"] = exc

    threads = [threading.Thread(target=complete), threading.Thread(target=erase_it)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome["complete"], outcome["erase"]


def test_a_completion_racing_an_erasure_loses_or_is_erased_after_it_every_time(
    aws: Stack, s3: Any, dynamodb: Any
) -> None:
    rounds = 100
    jobs = [processing_job() for _ in range(rounds)]
    eraser = get_dependencies().erasure()
    outcomes = {"completion lost": 0, "erased after completing": 0}

    for number, job in enumerate(jobs):
        # Stagger the erasure by 0..9 ms so that both orders (and the overlap between them) are exercised.
        completion, receipt = race_complete_and_erase(eraser, job["job_id"], delay=(number % 10) * 0.001)

        assert not isinstance(receipt, BaseException), receipt
        assert receipt.job_id == job["job_id"]
        if isinstance(completion, BaseException):
            assert isinstance(completion, JobNotFound | IllegalTransition), repr(completion)
            outcomes["completion lost"] += 1
        else:
            assert completion.status is JobStatus.COMPLETED
            outcomes["erased after completing"] += 1
        assert nothing_left(everything_of(s3, dynamodb, job)), f"round {number}: {everything_of(s3, dynamodb, job)}"

    assert sum(outcomes.values()) == rounds
    assert dynamodb.scan(TableName=PREVIEWS, Select="COUNT")["Count"] == 0, "no preview of an erased job"


# --------------------------------------------------------------------------------- audit, metrics
def test_one_audit_line_and_the_metrics_and_no_file_name_in_anything_logged(
    aws: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = invoke("POST", "/api/v1/jobs", json_body=create_body(unique_png(), filename=FILENAME)).data["job_id"]
    capsys.readouterr()

    reply = erase(job_id)

    assert reply.status == 200
    text = capsys.readouterr().out
    assert "secret-floor-plan" not in text, "no file name in any line the erasure wrote"
    lines = json_lines(text)
    (line,) = [line for line in lines if line.get("audit") == "erasure"]
    assert line["message"] == "job erased"
    assert (line["actor"], line["job_id"], line["owner_id"]) == ("client:cli_alice", job_id, "cli_alice")
    assert (line["status"], line["cancelled"], line["objects_deleted"]) == ("cancelled", True, 1)
    documents = emf_documents(lines)
    assert datapoints(documents, "JobsErased") == [1]
    assert datapoints(documents, "ObjectsErased") == [1]
    assert datapoints(documents, "JobsCancelled") == [1]


def test_two_erasures_of_one_job_at_once_both_end_with_it_gone(aws: Stack, s3: Any, dynamodb: Any) -> None:
    for _ in range(10):
        job = completed_job()
        start = threading.Barrier(2)
        replies: list[Reply] = []

        def erase_it(
            job_id: str = job["job_id"], start: threading.Barrier = start, replies: list[Reply] = replies
        ) -> None:
            start.wait()
            replies.append(erase(job_id))

        threads = [threading.Thread(target=erase_it) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # Each finds the job (200, the second resuming the first's work) or finds it gone already (404).
        assert sorted(r.status for r in replies) in ([200, 200], [200, 404]), [r.body for r in replies]
        assert sum(r.data["objects_deleted"] for r in replies if r.status == 200) >= 2
        assert nothing_left(everything_of(s3, dynamodb, job))


def test_an_object_s3_would_not_delete_fails_the_erasure_and_its_retry_finishes(
    aws: Stack, s3: Any, dynamodb: Any, clock: FakeClock
) -> None:
    """DeleteObjects answers 200 and lists the keys it could not delete: a throttled key is retried like a
    throttled call; one refused for good (AccessDenied) fails the request and leaves the job marked."""
    job = completed_job()
    real = aws_clients.get_client("s3")

    class RefusesOnce:
        def __init__(self, code: str) -> None:
            self.code, self.refused = code, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def delete_objects(self, **kwargs: Any) -> Any:
            if self.refused < 1:
                self.refused += 1
                first = kwargs["Delete"]["Objects"][0]
                return {"Deleted": [], "Errors": [{**first, "Code": self.code, "Message": "no"}]}
            return real.delete_objects(**kwargs)

    aws_clients.set_client("s3", RefusesOnce("SlowDown"))
    assert_erased(erase(job["job_id"]), job["job_id"], objects=2)
    assert len(clock.sleeps) == 1, "the refused key was retried once"

    again = completed_job()
    aws_clients.set_client("s3", RefusesOnce("AccessDenied"))
    assert erase(again["job_id"]).status == 500, "not something a retry fixes by itself: a bug or a policy"
    aws_clients.reset_clients()
    assert "erase_requested_at" in everything_of(s3, dynamodb, again)["record"], "still marked, still findable"
    assert_erased(erase(again["job_id"]), again["job_id"], objects=2)
