"""What an on-call engineer sees: the summary line and the EMF metrics each request writes on stdout,
read back from lambda_handler's output (moto behind it) and checked against the EMF specification."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from api import dependencies
from api.dependencies import get as get_dependencies
from local_api.cfn_template import Stack
from services.job_service import JobService
from tests import samples
from tests.conftest import API_KEY, Reply, create_body, invoke, invoke_event, load_event
from tests.emf import datapoints, dimensions_of, emf_documents, json_lines, metric_names, summaries, unit_of

UNKNOWN_JOB = "job_20261121T231500_0123456789abcdef"
RESULT: dict[str, Any] = {"rooms": [], "model_version": "m-1"}
SUMMARY_FIELDS = (
    "route",
    "method",
    "status",
    "latency_ms",
    "request_id",
    "correlation_id",
    "aws_request_id",
    "job_id",
    "client_id",
    "cold_start",
    "error_code",
)

_counter = iter(range(1_000_000))


def unique_png() -> bytes:
    return samples.png(extra=f"observability {next(_counter)} {time.time_ns()}".encode())


class Output:
    """What the handler wrote since the last read: its JSON lines, EMF documents and summary lines."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.lines = json_lines(capsys.readouterr().out)
        self.documents = emf_documents(self.lines)  # each checked against the specification
        self.summaries = summaries(self.lines)

    def summary(self) -> dict[str, Any]:
        (line,) = self.summaries
        return line


def read(capsys: pytest.CaptureFixture[str]) -> Output:
    return Output(capsys)


@pytest.fixture
def warm(aws: Stack, capsys: pytest.CaptureFixture[str]) -> Stack:
    """A container past its first invocation, with nothing captured yet."""
    invoke("GET", "/health")
    capsys.readouterr()
    return aws


def service() -> JobService:
    return get_dependencies().job_service()


def namespace() -> str:
    return os.environ.get("METRICS_NAMESPACE") or "LocationDetection"


def create(content: bytes, fmt: str = "png", **kw: Any) -> Reply:
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(content, fmt, f"plan.{fmt}"), **kw)
    assert reply.status == 201, reply.body
    return reply


# --------------------------------------------------------------------------------------------- metrics
@pytest.mark.parametrize(("content", "fmt"), [(samples.png(), "png"), (samples.jpg(), "jpg"), (samples.pdf(), "pdf")])
def test_a_creation_counts_the_job_by_format_and_its_bytes(
    warm: Stack, capsys: pytest.CaptureFixture[str], content: bytes, fmt: str
) -> None:
    content += f"{time.time_ns()}".encode() if fmt == "pdf" else b""
    reply = create(content, fmt)
    out = read(capsys)

    assert datapoints(out.documents, "JobsCreated", Format=fmt) == [1]
    assert datapoints(out.documents, "UploadBytes") == [len(content)] == [reply.data["blueprint_size"]]
    (created,) = [d for d in out.documents if "JobsCreated" in metric_names(d)]
    assert dimensions_of(created, "JobsCreated") == ["Service", "Environment", "Format"]
    assert (created["Service"], created["Environment"]) == ("job-api", "dev")
    assert created["_aws"]["CloudWatchMetrics"][0]["Namespace"] == namespace()
    assert unit_of(created, "JobsCreated") == "Count"
    (uploaded,) = [d for d in out.documents if "UploadBytes" in metric_names(d)]
    assert unit_of(uploaded, "UploadBytes") == "Bytes"
    assert dimensions_of(uploaded, "UploadBytes") == ["Service", "Environment"]


def test_a_request_writes_its_metrics_in_a_few_lines_after_its_summary(
    warm: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    reply = create(unique_png())
    out = read(capsys)

    # One document, one directive per dimension set: (defaults: UploadBytes), (Format: JobsCreated), (Route: Latency).
    assert len(out.documents) == 1
    (document,) = out.documents
    assert len(document["_aws"]["CloudWatchMetrics"]) == 3
    assert all(d["request_id"] == reply.headers["X-Request-ID"] for d in out.documents)
    positions = [out.lines.index(d) for d in out.documents]
    assert min(positions) > out.lines.index(out.summary()), "written when the request ends"
    names = [name for d in out.documents for name in metric_names(d)]
    assert len(names) == len(set(names)), "no metric twice"


def test_latency_is_by_route_template_never_the_raw_path(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create(unique_png()).data["job_id"]
    capsys.readouterr()

    invoke("GET", f"/api/v1/jobs/{job_id}")
    out = read(capsys)

    (latency,) = [d for d in out.documents if "Latency" in metric_names(d)]
    assert dimensions_of(latency, "Latency") == ["Service", "Environment", "Route"]
    assert latency["Route"] == "GET /api/v1/jobs/{job_id}"
    assert unit_of(latency, "Latency") == "Milliseconds"
    assert latency["Latency"] == out.summary()["latency_ms"]
    for document in out.documents:
        keys = {key for name in metric_names(document) for key in dimensions_of(document, name)}
        assert all(job_id not in str(document[key]) for key in keys)


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/health", "GET /health"),
        ("GET", "/api/v1/openapi.json", "GET /api/v1/openapi.json"),
        ("GET", "/api/v1/jobs", "GET /api/v1/jobs"),
        ("DELETE", f"/api/v1/jobs/{UNKNOWN_JOB}", "DELETE /api/v1/jobs/{job_id}"),
        ("POST", f"/api/v1/jobs/{UNKNOWN_JOB}/feedback", "POST /api/v1/jobs/{job_id}/feedback"),
        ("OPTIONS", "/api/v1/jobs/anything", "OPTIONS *"),
        ("GET", "/no/such/route/12345", "unmatched"),
    ],
)
def test_every_route_has_a_bounded_route_dimension(
    warm: Stack, capsys: pytest.CaptureFixture[str], method: str, path: str, route: str
) -> None:
    invoke(method, path, json_body={"rating": 5} if method == "POST" else None)
    out = read(capsys)
    assert datapoints(out.documents, "Latency", Route=route) == [out.summary()["latency_ms"]]
    assert out.summary()["route"] == route


@pytest.mark.parametrize(
    ("method", "path", "kw", "status", "code"),
    [
        ("GET", f"/api/v1/jobs/{UNKNOWN_JOB}", {}, 404, "JOB_NOT_FOUND"),
        ("GET", "/api/v1/jobs/not-a-job", {}, 400, "INVALID_JOB_ID"),
        ("GET", "/api/v1/jobs", {"api_key": None}, 401, "UNAUTHORIZED"),
        ("GET", "/nowhere", {}, 404, "NOT_FOUND"),
        ("PUT", "/api/v1/jobs", {}, 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/api/v1/jobs", {"json_body": {"blueprint": {}}}, 400, "INVALID_REQUEST"),
    ],
)
def test_an_error_counts_once_under_its_code(
    warm: Stack, capsys: pytest.CaptureFixture[str], method: str, path: str, kw: dict[str, Any], status: int, code: str
) -> None:
    reply = invoke(method, path, **kw)
    out = read(capsys)

    assert reply.status == status
    assert reply.error["code"] == code
    assert datapoints(out.documents, "Errors") == [1]
    (errors,) = [d for d in out.documents if "Errors" in metric_names(d)]
    assert dimensions_of(errors, "Errors") == ["Service", "Environment", "Code"]
    assert errors["Code"] == code
    assert unit_of(errors, "Errors") == "Count"
    assert out.summary()["error_code"] == code
    assert out.summary()["status"] == status


def test_success_counts_no_error(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    invoke("GET", "/api/v1/jobs")
    out = read(capsys)
    assert datapoints(out.documents, "Errors") == []
    assert out.summary()["error_code"] is None


def test_an_unexpected_error_counts_as_internal_error(
    warm: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(JobService, "get_job_view", broken)
    reply = invoke("GET", f"/api/v1/jobs/{UNKNOWN_JOB}")
    out = read(capsys)
    assert reply.status == 500
    assert datapoints(out.documents, "Errors", Code="INTERNAL_ERROR") == [1]
    assert out.summary()["status"] == 500


def test_cold_start_only_on_the_first_invocation(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    invoke("GET", "/health")
    first = read(capsys)
    invoke("GET", "/health")
    second = read(capsys)

    assert datapoints(first.documents, "ColdStart") == [1]
    (cold,) = [d for d in first.documents if "ColdStart" in metric_names(d)]
    assert dimensions_of(cold, "ColdStart") == ["Service", "Environment"]
    assert cold["Environment"] == "dev", "the settings loaded later in the request still name the dimension"
    assert first.summary()["cold_start"] is True
    assert datapoints(second.documents, "ColdStart") == []
    assert second.summary()["cold_start"] is False

    dependencies.reset()  # a new container
    invoke("GET", "/health")
    assert datapoints(read(capsys).documents, "ColdStart") == [1]


def test_cancel_counts_only_the_transition_that_won(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create(unique_png()).data["job_id"]
    capsys.readouterr()

    assert invoke("DELETE", f"/api/v1/jobs/{job_id}").status == 200
    assert datapoints(read(capsys).documents, "JobsCancelled") == [1]
    assert invoke("DELETE", f"/api/v1/jobs/{job_id}").status == 200  # idempotent: no second cancellation
    again = read(capsys)
    assert datapoints(again.documents, "JobsCancelled") == []
    assert datapoints(again.documents, "Errors") == []


def test_cancel_of_a_finished_job_counts_an_error_not_a_cancellation(
    warm: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = create(unique_png()).data["job_id"]
    service().start_processing(job_id)
    service().complete_job(job_id, RESULT)
    capsys.readouterr()

    reply = invoke("DELETE", f"/api/v1/jobs/{job_id}")
    out = read(capsys)
    assert reply.status == 409
    assert datapoints(out.documents, "JobsCancelled") == []
    assert datapoints(out.documents, "Errors", Code="JOB_ALREADY_COMPLETED") == [1]


def test_complete_and_fail_outside_a_request_write_at_once(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    done, failed = (create(unique_png()).data["job_id"] for _ in range(2))
    service().start_processing(done)
    service().start_processing(failed)
    capsys.readouterr()

    service().complete_job(done, RESULT)
    completed = read(capsys)
    assert datapoints(completed.documents, "JobsCompleted") == [1]
    (document,) = completed.documents
    assert metric_names(document) == ["JobsCompleted"]
    assert dimensions_of(document) == ["Service", "Environment"]
    assert (document["Service"], document["Environment"]) == ("job-api", "dev")
    assert completed.summaries == []

    service().fail_job(failed, {"code": "MODEL_ERROR", "message": "no walls"})
    assert datapoints(read(capsys).documents, "JobsFailed") == [1]


def test_a_refused_transition_counts_nothing(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    from models.errors import IllegalTransition

    job_id = create(unique_png()).data["job_id"]
    service().start_processing(job_id)
    service().fail_job(job_id, {"code": "MODEL_ERROR", "message": "no walls"})
    capsys.readouterr()

    with pytest.raises(IllegalTransition):
        service().complete_job(job_id, RESULT)
    with pytest.raises(IllegalTransition):
        service().fail_job(job_id, {"code": "AGAIN", "message": "twice"})
    assert read(capsys).documents == []


def test_an_idempotent_replay_counts_no_second_job(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    content = unique_png()
    headers = {"Idempotency-Key": f"observability-{time.time_ns()}"}
    first = create(content, headers=headers)
    capsys.readouterr()

    replay = create(content, headers=headers)
    out = read(capsys)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert datapoints(out.documents, "JobsCreated") == []
    assert datapoints(out.documents, "UploadBytes") == []
    assert out.summary()["job_id"] == first.data["job_id"], "the replayed job is still named"
    assert out.summary()["idempotent_replayed"] is True


def test_a_job_from_an_upload_counts_its_stored_bytes(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.integration.test_uploads import finalise, uploaded

    content = samples.pdf(extra=f"upload {time.time_ns()}".encode())
    upload = uploaded("pdf", content, "scan.pdf")
    capsys.readouterr()

    reply = finalise(upload["upload_id"])
    out = read(capsys)
    assert reply.status == 201, reply.body
    assert datapoints(out.documents, "JobsCreated", Format="pdf") == [1]
    assert datapoints(out.documents, "UploadBytes") == [len(content)]
    assert out.summary()["job_id"] == reply.data["job_id"]


# ----------------------------------------------------------------------------------------- summary line
def test_one_summary_line_per_request_with_every_field(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    reply = create(unique_png(), headers={"X-Correlation-ID": "checkout-42"})
    out = read(capsys)

    summary = out.summary()
    for field in SUMMARY_FIELDS:
        assert field in summary, field
    assert summary["route"] == "POST /api/v1/jobs"
    assert summary["method"] == "POST"
    assert summary["status"] == 201
    assert isinstance(summary["latency_ms"], float)
    assert summary["latency_ms"] >= 0
    assert summary["request_id"] == reply.headers["X-Request-ID"]
    assert summary["correlation_id"] == "checkout-42"
    assert summary["aws_request_id"]
    assert summary["job_id"] == reply.data["job_id"]
    assert summary["client_id"] == "cli_alice"
    assert summary["cold_start"] is False
    assert summary["error_code"] is None
    assert summary["level"] == "INFO"


def test_a_job_route_names_its_job_in_the_summary(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    invoke("GET", f"/api/v1/jobs/{UNKNOWN_JOB}")
    summary = read(capsys).summary()
    assert summary["job_id"] == UNKNOWN_JOB
    assert summary["route"] == "GET /api/v1/jobs/{job_id}"


def test_a_public_route_has_no_client(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    invoke("GET", "/health")
    summary = read(capsys).summary()
    assert summary["client_id"] is None
    assert summary["job_id"] is None


@pytest.mark.parametrize(
    "send",
    [
        lambda: invoke("GET", "/health"),
        lambda: invoke("GET", "/api/v1/jobs", api_key="wrong"),
        lambda: invoke("OPTIONS", "/api/v1/jobs"),
        lambda: invoke_event({"not": "an API Gateway event"}),
        lambda: invoke_event(load_event("health.json")),
    ],
)
def test_exactly_one_summary_line_whatever_happens(warm: Stack, capsys: pytest.CaptureFixture[str], send: Any) -> None:
    reply = send()
    out = read(capsys)
    summary = out.summary()
    assert summary["status"] == reply.status
    assert summary["request_id"] == reply.headers["X-Request-ID"]
    assert all(line["request_id"] == reply.headers["X-Request-ID"] for line in out.lines)


def test_no_key_or_body_in_any_line(warm: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    content = unique_png()
    create(content)
    invoke("GET", "/api/v1/jobs", api_key="ldk_wrong_key_that_must_not_be_logged")
    text = capsys.readouterr().out
    assert API_KEY not in text
    assert "ldk_wrong_key_that_must_not_be_logged" not in text
    assert content[8:].hex() not in text
    assert "iVBOR" not in text, "no base64 of the file"
