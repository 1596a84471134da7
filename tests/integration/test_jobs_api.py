"""lambda_handler against emulated AWS (moto): every route, every error code the routes can return."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack
from tests import samples
from tests.conftest import Reply, create_body, invoke

JOBS = "location-detection-dev-jobs"
BLUEPRINTS = "location-detection-dev-blueprints-123456789012-us-east-1"
ENVELOPE_HEADERS = ("Content-Type", "X-Request-ID", "X-Correlation-ID", "Access-Control-Allow-Origin")


def create(content: bytes, fmt: str | None = "png", filename: str | None = "plan.png", **kw: Any) -> Reply:
    return invoke("POST", "/api/v1/jobs", json_body=create_body(content, fmt, filename), **kw)


def assert_error(reply: Reply, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.body["status"] == "error"
    assert reply.error["code"] == code
    assert reply.body["meta"]["request_id"] == reply.headers["X-Request-ID"]
    for header in ENVELOPE_HEADERS:
        assert header in reply.headers
    return reply.error


def stored_keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BLUEPRINTS).get("Contents", [])]


def stored_items(dynamodb: Any) -> list[dict[str, Any]]:
    """Every item of the jobs table: job records, upload claims, idempotency records, rate-limit states."""
    return list(dynamodb.scan(TableName=JOBS)["Items"])


def stored_jobs(dynamodb: Any) -> list[dict[str, Any]]:
    """The job records only."""
    return [item for item in stored_items(dynamodb) if item["job_id"]["S"].startswith("job_")]


# ----------------------------------------------------------------------------------------------- health
def test_health_reports_each_dependency(aws: Stack) -> None:
    reply = invoke("GET", "/health")
    assert reply.status == 200, reply.data
    assert reply.data["status"] == "healthy", reply.data
    assert set(reply.data["services"]) == {
        "jobs_table",
        "blueprints_bucket",
        "cache_bucket",
        "preview_cache",
        "secret",
        "parameters",
    }
    assert all(s["status"] == "healthy" for s in reply.data["services"].values()), reply.data


def test_health_is_503_when_a_dependency_is_gone(aws: Stack, dynamodb: Any) -> None:
    dynamodb.delete_table(TableName=JOBS)
    reply = invoke("GET", "/health")
    assert reply.status == 503
    assert reply.data["status"] == "unhealthy"
    assert reply.data["services"]["jobs_table"]["status"] == "unhealthy"
    assert reply.data["services"]["blueprints_bucket"]["status"] == "healthy"
    assert JOBS not in reply.raw["body"], "names of tables never reach clients"


# ------------------------------------------------------------------------------------------------ create
@pytest.mark.parametrize(
    ("content", "fmt", "stored_format", "filename", "stored_name"),
    [
        (samples.png(), "png", "png", "plan.png", "plan.png"),
        (samples.jpg(), "jpg", "jpg", "site.jpg", "site.jpg"),
        (samples.jpg(), "jpeg", "jpg", "site.jpeg", "site.jpeg"),
        (samples.jpg(), "JPEG", "jpg", None, "blueprint.jpg"),
        (samples.pdf(), "pdf", "pdf", "floor 2.pdf", "floor 2.pdf"),
        (samples.pdf(), None, "pdf", "scan", "scan.pdf"),
    ],
)
def test_create_job_stores_the_file_and_the_record(
    s3: Any,
    dynamodb: Any,
    content: bytes,
    fmt: str | None,
    stored_format: str,
    filename: str | None,
    stored_name: str,
) -> None:
    before = int(time.time())
    reply = create(content, fmt, filename, headers={"X-Correlation-ID": "trace-42"})

    assert reply.status == 201, reply.body
    job = reply.data
    assert reply.headers["Location"] == f"/api/v1/jobs/{job['job_id']}"
    assert job["status"] == "pending"
    assert job["blueprint_format"] == stored_format
    assert job["blueprint_filename"] == stored_name
    assert job["blueprint_s3_key"] == f"blueprints/{job['job_id']}/{stored_name}"
    assert job["blueprint_hash"] == hashlib.sha256(content).hexdigest()
    assert job["blueprint_size"] == len(content)
    assert job["result_s3_key"] is None
    assert job["error"] is None
    assert job["request_id"] == reply.headers["X-Request-ID"]
    assert job["correlation_id"] == "trace-42" == reply.headers["X-Correlation-ID"]
    assert job["api_version"] == "v1"
    assert job["created_at"] == job["updated_at"]

    stored = s3.get_object(Bucket=BLUEPRINTS, Key=job["blueprint_s3_key"])
    assert stored["Body"].read() == content
    assert stored["ContentType"] in ("image/png", "image/jpeg", "application/pdf")
    item = dynamodb.get_item(TableName=JOBS, Key={"job_id": {"S": job["job_id"]}})["Item"]
    assert item["status"]["S"] == "pending"
    assert before + 7 * 86400 <= int(item["expires_at"]["N"]) <= int(time.time()) + 7 * 86400


def test_create_job_accepts_a_data_url(aws: Stack) -> None:
    data_url = "data:image/png;base64," + base64.b64encode(samples.png()).decode()
    reply = invoke("POST", "/api/v1/jobs", json_body={"blueprint": {"file": data_url}})
    assert reply.status == 201
    assert reply.data["blueprint_format"] == "png"


@pytest.mark.parametrize(
    "hostile",
    ["../../etc/passwd.png", "..\\..\\windows\\system.ini", "a/b/../../c.png", "\x00evil\r\n.png", ".hidden.png"],
)
def test_hostile_filenames_become_one_safe_segment(s3: Any, hostile: str) -> None:
    reply = create(samples.png(), "png", hostile)
    assert reply.status == 201
    name = reply.data["blueprint_filename"]
    for forbidden in ("/", "\\", ".."):
        assert forbidden not in name
    assert not name.startswith(".")
    assert all(ch.isprintable() for ch in name)
    assert stored_keys(s3) == [f"blueprints/{reply.data['job_id']}/{name}"]


def test_each_create_gets_a_new_job_id(aws: Stack) -> None:
    ids = {create(samples.png(extra=bytes([i]))).data["job_id"] for i in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "blueprint"),
        ({"blueprint": "abc"}, "blueprint"),
        ({"blueprint": {}}, "blueprint.file"),
        ({"blueprint": {"file": 123}}, "blueprint.file"),
        ({"blueprint": {"file": ["a"]}}, "blueprint.file"),
        ({"blueprint": {"file": "aGk=", "format": 5}}, "blueprint.format"),
        ({"blueprint": {"file": "aGk=", "filename": {"a": 1}}}, "blueprint.filename"),
        ({"blueprint": {"file": "aGk=", "fromat": "png"}}, "blueprint.fromat"),
        ({"blueprint": {"file": "aGk="}, "extra": True}, "extra"),
        ({"blueprint": {"file": "!!!not base64!!!"}}, "blueprint.file"),
        ({"blueprint": {"file": ""}}, "blueprint.file"),
    ],
)
def test_invalid_bodies_are_400_invalid_request(s3: Any, body: Any, field: str) -> None:
    error = assert_error(invoke("POST", "/api/v1/jobs", json_body=body), 400, "INVALID_REQUEST")
    assert error["details"]["field"] == field
    assert stored_keys(s3) == []


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[1, 2", b'{"blueprint": NaN}', b"\xff\xfe\x00", b"[" * 100_000, b"null", b"[]", b'"text"'],
)
def test_malformed_json_is_400(aws: Stack, raw: bytes) -> None:
    reply = invoke("POST", "/api/v1/jobs", body=raw, headers={"Content-Type": "application/json"})
    assert_error(reply, 400, "INVALID_REQUEST")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_unsupported_content_types_are_415(aws: Stack, content_type: str) -> None:
    reply = invoke("POST", "/api/v1/jobs", body=b"file=abc", headers={"Content-Type": content_type})
    error = assert_error(reply, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert error["details"]["received_content_type"] == content_type


@pytest.mark.parametrize(
    ("content", "fmt", "received", "detected"),
    [
        (samples.GIF, "gif", "gif", None),
        (samples.png(), "bmp", "bmp", None),
        (samples.GIF, "png", "png", "gif"),
        (samples.HTML, "pdf", "pdf", "html"),
        (samples.EXE, "jpg", "jpg", "unknown"),
        (samples.pdf(), "png", "png", "pdf"),
        (samples.png(), "jpg", "jpg", "png"),
        (samples.GIF, None, None, "gif"),
    ],
)
def test_wrong_or_disguised_formats_are_400_invalid_file_format(
    s3: Any, content: bytes, fmt: str | None, received: str | None, detected: str | None
) -> None:
    error = assert_error(create(content, fmt, "x"), 400, "INVALID_FILE_FORMAT")
    assert error["details"]["received_format"] == received
    if detected is not None:
        assert error["details"]["detected_format"] == detected
    assert stored_keys(s3) == []


def test_files_over_the_configured_limit_are_413(aws: Stack, s3: Any) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/location-detection/dev/max-upload-bytes", Value="100", Type="String", Overwrite=True)

    error = assert_error(create(samples.png(extra=b"x" * 200)), 413, "FILE_TOO_LARGE")

    assert error["details"]["max_bytes"] == 100
    assert stored_keys(s3) == []
    assert create(samples.png()).status == 201  # 69 bytes fit


def test_an_invalid_parameter_falls_back_to_its_default(aws: Stack) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/location-detection/dev/allowed-formats", Value="png,gif", Type="String", Overwrite=True)
    assert create(samples.pdf(), "pdf").status == 201


def test_a_format_removed_by_configuration_is_refused(aws: Stack) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/location-detection/dev/allowed-formats", Value="png,jpg", Type="String", Overwrite=True)
    error = assert_error(create(samples.pdf(), "pdf"), 400, "INVALID_FILE_FORMAT")
    assert error["details"]["allowed_formats"] == ["png", "jpg"]


# --------------------------------------------------------------------------------------------------- get
def test_get_returns_the_job_as_created(aws: Stack) -> None:
    created = create(samples.png()).data
    reply = invoke("GET", f"/api/v1/jobs/{created['job_id']}")
    assert reply.status == 200
    assert reply.data == created


def test_get_unknown_job_is_404(aws: Stack) -> None:
    error = assert_error(invoke("GET", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60"), 404, "JOB_NOT_FOUND")
    assert error["details"]["job_id"] == "job_20261121T231500_9f2c4e7a1b3d5f60"


@pytest.mark.parametrize(
    "job_id",
    [
        "123",
        "job_20261121T231500_9F2C4E7A1B3D5F60",
        "job_20261121T231500_9f2c4e7a1b3d5f6",
        "job_20261121T231500_9f2c4e7a1b3d5f600",
        "..",
        "%2e%2e",
        "job_20261121T231500_9f2c4e7a1b3d5f60%00",
        "job_20261121T231500_9f2c4e7a1b3d5f60'OR'1'='1",
        "x" * 5000,
        "<img src=x onerror=alert(1)>",
    ],
)
def test_malformed_job_ids_are_400(aws: Stack, job_id: str) -> None:
    for method in ("GET", "DELETE"):
        assert_error(invoke(method, f"/api/v1/jobs/{job_id}"), 400, "INVALID_JOB_ID")


def test_a_job_past_its_expiry_is_absent_even_before_dynamodb_deletes_it(aws: Stack, dynamodb: Any) -> None:
    job_id = create(samples.png()).data["job_id"]
    dynamodb.update_item(
        TableName=JOBS,
        Key={"job_id": {"S": job_id}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert_error(invoke("GET", f"/api/v1/jobs/{job_id}"), 404, "JOB_NOT_FOUND")
    assert_error(invoke("DELETE", f"/api/v1/jobs/{job_id}"), 404, "JOB_NOT_FOUND")
