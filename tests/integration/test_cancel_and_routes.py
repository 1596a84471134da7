"""Cancel and the state machine, routing (404/405/OPTIONS), CORS and request/correlation ids."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest

from api.dependencies import get as get_dependencies
from local_api.cfn_template import Stack
from models.errors import IllegalTransition
from models.job import JobStatus
from tests import samples
from tests.conftest import create_body, invoke
from tests.integration.test_jobs_api import JOBS, assert_error, create


def new_job() -> str:
    return str(create(samples.png()).data["job_id"])


def force_status(job_id: str, *path: JobStatus) -> None:
    """Drive a job along ``path`` through the service (as the processing pipeline will)."""
    service = get_dependencies().job_service()
    for status in path:
        service.transition(job_id, status)


def stored_version(job_id: str) -> int:
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(TableName=JOBS, Key={"job_id": {"S": job_id}})
    return int(item["Item"]["version"]["N"])


# ------------------------------------------------------------------------------------------------ cancel
@pytest.mark.parametrize("path", [(), (JobStatus.PROCESSING,)])
def test_cancel_a_pending_or_processing_job(aws: Stack, path: tuple[JobStatus, ...]) -> None:
    job_id = new_job()
    force_status(job_id, *path)

    reply = invoke("DELETE", f"/api/v1/jobs/{job_id}")

    assert reply.status == 200
    assert reply.data["status"] == "cancelled"
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "cancelled"


def test_cancel_is_idempotent(aws: Stack) -> None:
    job_id = new_job()
    first = invoke("DELETE", f"/api/v1/jobs/{job_id}")
    second = invoke("DELETE", f"/api/v1/jobs/{job_id}")
    assert first.status == second.status == 200
    assert first.data == second.data
    assert stored_version(job_id) == 2, "the second cancel wrote nothing"


@pytest.mark.parametrize("final", [JobStatus.COMPLETED, JobStatus.FAILED])
def test_cancel_a_finished_job_is_409(aws: Stack, final: JobStatus) -> None:
    job_id = new_job()
    force_status(job_id, JobStatus.PROCESSING, final)

    error = assert_error(invoke("DELETE", f"/api/v1/jobs/{job_id}"), 409, "JOB_ALREADY_COMPLETED")

    assert error["details"]["status"] == final.value
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == final.value


@pytest.mark.parametrize("target", [JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.FAILED])
def test_a_cancelled_job_never_leaves_cancelled(aws: Stack, target: JobStatus) -> None:
    job_id = new_job()
    invoke("DELETE", f"/api/v1/jobs/{job_id}")
    with pytest.raises(IllegalTransition) as raised:
        force_status(job_id, target)
    assert raised.value.current == "cancelled"
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "cancelled"


def test_cancel_unknown_job_is_404(aws: Stack) -> None:
    assert_error(invoke("DELETE", "/api/v1/jobs/job_20261121T231500_0000000000000000"), 404, "JOB_NOT_FOUND")


def test_concurrent_cancels_all_succeed_and_agree(aws: Stack) -> None:
    job_id = new_job()
    replies: list[Any] = []
    start = threading.Barrier(10)

    def cancel() -> None:
        start.wait()
        replies.append(invoke("DELETE", f"/api/v1/jobs/{job_id}"))

    threads = [threading.Thread(target=cancel) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status for r in replies] == [200] * 10
    assert {r.data["status"] for r in replies} == {"cancelled"}
    assert len({r.data["updated_at"] for r in replies}) == 1, "every caller saw the one winning write"
    assert stored_version(job_id) == 2, "exactly one conditional write won"


def test_cancel_racing_start_processing_leaves_a_legal_state(aws: Stack) -> None:
    job_id = new_job()
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def cancel() -> None:
        start.wait()
        outcomes.append(invoke("DELETE", f"/api/v1/jobs/{job_id}").data["status"])

    def begin() -> None:
        start.wait()
        try:
            force_status(job_id, JobStatus.PROCESSING)
            outcomes.append("started")
        except IllegalTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=cancel), threading.Thread(target=begin)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "cancelled"
    assert sorted(outcomes) in (["cancelled", "started"], ["cancelled", "refused"])


# ------------------------------------------------------------------------------------------------ routes
@pytest.mark.parametrize("path", ["/", "/api", "/api/v2/jobs", "/api/v1/jobs/x/y/z", "/healthz", "/%00"])
def test_unknown_routes_are_404_in_the_envelope(aws: Stack, path: str) -> None:
    assert_error(invoke("GET", path), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60", "GET, DELETE, OPTIONS"),
        ("PATCH", "/api/v1/jobs", "GET, POST, OPTIONS"),
        ("POST", "/health", "GET, OPTIONS"),
        ("DELETE", "/health", "GET, OPTIONS"),
    ],
)
def test_wrong_methods_are_405_with_allow(aws: Stack, method: str, path: str, allow: str) -> None:
    reply = invoke(method, path)
    assert_error(reply, 405, "METHOD_NOT_ALLOWED")
    assert reply.headers["Allow"] == allow


def test_trailing_slash_is_the_same_route(aws: Stack) -> None:
    assert invoke("GET", "/health/").status == 200


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/anything/at/all", "/health"])
def test_preflight_is_204_with_cors_headers(aws: Stack, path: str) -> None:
    reply = invoke(
        "OPTIONS",
        path,
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert reply.status == 204
    assert reply.raw["body"] == ""
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in reply.headers["Access-Control-Allow-Methods"]
    for header in ("Content-Type", "X-API-Key", "Idempotency-Key", "X-Correlation-ID", "Authorization"):
        assert header in reply.headers["Access-Control-Allow-Headers"]
    for header in ("X-Request-ID", "X-Correlation-ID", "Location", "Retry-After"):
        assert header in reply.headers["Access-Control-Expose-Headers"]


def test_cors_allow_list_from_parameter_store(aws: Stack) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(
        Name="/location-detection/dev/cors-allowed-origins",
        Value="https://app.example.com, https://admin.example.com",
        Type="String",
        Overwrite=True,
    )
    allowed = invoke("GET", "/health", headers={"Origin": "https://app.example.com"})
    refused = invoke("GET", "/health", headers={"Origin": "https://evil.example.net"})
    errored = invoke("GET", "/nope", headers={"Origin": "https://admin.example.com"})

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert allowed.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert errored.status == 404
    assert errored.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"


def test_request_and_correlation_ids(aws: Stack) -> None:
    plain = invoke("GET", "/health")
    traced = invoke("GET", "/health", headers={"X-Correlation-ID": "checkout-7f3a"})
    hostile = invoke("GET", "/health", headers={"X-Correlation-ID": "x" * 300})

    assert plain.headers["X-Request-ID"] == plain.body["meta"]["request_id"]
    assert plain.headers["X-Correlation-ID"] == plain.headers["X-Request-ID"]
    assert traced.headers["X-Correlation-ID"] == "checkout-7f3a"
    assert hostile.headers["X-Correlation-ID"] == hostile.headers["X-Request-ID"]
    assert plain.headers["X-Request-ID"] != traced.headers["X-Request-ID"]


def test_every_request_logs_one_summary_line_with_its_ids(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    reply = invoke(
        "POST",
        "/api/v1/jobs",
        json_body=create_body(samples.png()),
        headers={"X-Correlation-ID": "corr-1"},
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    summary = [line for line in lines if line["message"] == "request completed"]

    assert len(summary) == 1
    assert summary[0]["request_id"] == reply.headers["X-Request-ID"]
    assert summary[0]["correlation_id"] == "corr-1"
    assert summary[0]["route"] == "POST /api/v1/jobs"
    assert summary[0]["status"] == 201
    assert summary[0]["job_id"] == reply.data["job_id"]
    assert isinstance(summary[0]["latency_ms"], float)
    assert all(line["request_id"] == reply.headers["X-Request-ID"] for line in lines)
    assert samples.png()[8:].hex() not in "".join(json.dumps(line) for line in lines), "file bytes never logged"
