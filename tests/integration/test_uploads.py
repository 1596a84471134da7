"""Large files through S3: POST /api/v1/uploads, the presigned POST, and finalising the upload into a job."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import requests

from api import dependencies
from local_api.cfn_template import Stack
from services.job_creation import JobCreation
from tests import samples
from tests.conftest import Reply, create_body, invoke
from tests.faults import FaultyClient, client_error, server_error, throttled
from tests.integration.conftest import FakeClock
from tests.integration.test_faults import inject
from tests.integration.test_jobs_api import BLUEPRINTS, assert_error, stored_items, stored_jobs
from utils import aws as aws_clients

UPLOADS = "/api/v1/uploads"
MAX_BYTES = 50 * 1024 * 1024
UPLOAD_ID = re.compile(r"upl_[0-9]{8}T[0-9]{6}_[0-9a-f]{32}")
UNKNOWN_UPLOAD_ID = "upl_20261121T231500_" + "0123456789abcdef" * 2
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "pdf": "application/pdf"}


# ------------------------------------------------------------------------------------------ helpers
def request_upload(fmt: str = "png", filename: str | None = "plan.png", size: int = 1000) -> dict[str, Any]:
    body: dict[str, Any] = {"format": fmt, "size": size}
    if filename is not None:
        body["filename"] = filename
    reply = invoke("POST", UPLOADS, json_body=body)
    assert reply.status == 201, reply.body
    return dict(reply.data)


def post_file(upload: dict[str, Any], content: bytes, fields: dict[str, str] | None = None) -> None:
    """What a browser or curl does with the presigned POST (moto intercepts it in-process)."""
    response = requests.post(
        upload["url"], data={**upload["fields"], **(fields or {})}, files={"file": ("blob", content)}, timeout=10
    )
    assert response.status_code in (200, 201, 204), response.text


def uploaded(fmt: str, content: bytes, filename: str | None = "plan.png", size: int | None = None) -> dict[str, Any]:
    upload = request_upload(fmt, filename, size if size is not None else len(content))
    post_file(upload, content)
    return upload


def finalise(upload_id: Any) -> Reply:
    return invoke("POST", "/api/v1/jobs", json_body={"blueprint": {"upload_id": upload_id}})


def keys(s3: Any, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BLUEPRINTS, Prefix=prefix).get("Contents", [])]


def job_items(dynamodb: Any) -> list[dict[str, Any]]:
    """Job records only (upload claims share the table under ``claim#...`` keys)."""
    return stored_jobs(dynamodb)


def claim_items(dynamodb: Any) -> list[dict[str, Any]]:
    return [item for item in stored_items(dynamodb) if item["job_id"]["S"].startswith("claim#")]


def set_max_upload_bytes(value: int) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/location-detection/dev/max-upload-bytes", Value=str(value), Type="String", Overwrite=True)


def parse_iso(value: str) -> float:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def policy_of(upload: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(upload["fields"]["policy"])))


# ------------------------------------------------------------------------------- POST /api/v1/uploads
@pytest.mark.parametrize(
    ("fmt", "filename", "stored_name"),
    [
        ("png", "plan.png", "plan.png"),
        ("jpg", "site photo.jpg", "site photo.jpg"),
        ("jpeg", "scan.jpeg", "scan.jpeg"),
        ("pdf", "../../etc/floor 2.pdf", "floor 2.pdf"),
        ("pdf", None, "blueprint.pdf"),
        ("PNG", "noext", "noext.png"),
    ],
)
def test_create_upload_returns_a_presigned_post(aws: Stack, fmt: str, filename: str | None, stored_name: str) -> None:
    before = time.time()
    body: dict[str, Any] = {"format": fmt, "size": 12 * 1024 * 1024}
    if filename is not None:
        body["filename"] = filename

    reply = invoke("POST", UPLOADS, json_body=body)

    assert reply.status == 201, reply.body
    data = reply.data
    assert UPLOAD_ID.fullmatch(data["upload_id"]), data["upload_id"]
    assert data["url"].startswith("https://")
    fields = data["fields"]
    assert fields["key"] == f"uploads/{data['upload_id']}/{stored_name}"
    assert fields["key"].startswith(f"uploads/{data['upload_id']}/")
    assert fields["Content-Type"] == CONTENT_TYPES[fmt.lower()]
    assert fields["policy"]
    assert fields["x-amz-signature"]
    assert data["max_bytes"] == MAX_BYTES
    expires = parse_iso(data["expires_at"])
    assert before + 900 - 2 <= expires <= time.time() + 900 + 1

    policy = policy_of(data)
    conditions = policy["conditions"]
    # The declared size, exactly, and recorded in the object's metadata for finalise to check again.
    size = 12 * 1024 * 1024
    assert ["content-length-range", size, size] in conditions
    assert fields["x-amz-meta-declared-size"] == str(size)
    assert {"x-amz-meta-declared-size": str(size)} in conditions
    assert {"Content-Type": CONTENT_TYPES[fmt.lower()]} in conditions
    assert {"key": fields["key"]} in conditions
    assert before + 900 - 2 <= parse_iso(policy["expiration"]) <= time.time() + 900 + 1


def test_each_upload_gets_its_own_id(aws: Stack) -> None:
    ids = {request_upload()["upload_id"] for _ in range(5)}
    assert len(ids) == 5


def test_exactly_the_limit_is_accepted(aws: Stack) -> None:
    assert request_upload(size=MAX_BYTES)["max_bytes"] == MAX_BYTES


def test_a_size_over_the_limit_is_413_at_once(aws: Stack) -> None:
    reply = invoke("POST", UPLOADS, json_body={"filename": "big.pdf", "format": "pdf", "size": MAX_BYTES + 1})
    error = assert_error(reply, 413, "FILE_TOO_LARGE")
    assert error["details"]["max_bytes"] == MAX_BYTES


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "png", "size": 0}, "size"),
        ({"format": "png", "size": -1}, "size"),
        ({"format": "png", "size": "1000"}, "size"),
        ({"format": "png", "size": True}, "size"),
        ({"format": "png", "size": 10.5}, "size"),
        ({"format": "png", "size": None}, "size"),
        ({"format": "png"}, "size"),
        ({"size": 1000}, "format"),
        ({"format": "", "size": 1000}, "format"),
        ({"format": 5, "size": 1000}, "format"),
        ({"format": "png", "size": 1000, "filename": 7}, "filename"),
        ({"format": "png", "size": 1000, "filenme": "x.png"}, "filenme"),
    ],
)
def test_invalid_upload_requests_are_400(aws: Stack, body: dict[str, Any], field: str) -> None:
    error = assert_error(invoke("POST", UPLOADS, json_body=body), 400, "INVALID_REQUEST")
    assert error["details"]["field"] == field


@pytest.mark.parametrize("fmt", ["gif", "bmp", "exe"])
def test_an_unsupported_format_is_400_invalid_file_format(aws: Stack, fmt: str) -> None:
    reply = invoke("POST", UPLOADS, json_body={"filename": "x", "format": fmt, "size": 100})
    error = assert_error(reply, 400, "INVALID_FILE_FORMAT")
    assert error["details"]["received_format"] == fmt


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'"png"'])
def test_malformed_upload_bodies_are_400(aws: Stack, raw: bytes) -> None:
    reply = invoke("POST", UPLOADS, body=raw, headers={"Content-Type": "application/json"})
    assert_error(reply, 400, "INVALID_REQUEST")


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", "image/png"])
def test_non_json_upload_requests_are_415(aws: Stack, content_type: str) -> None:
    body = json.dumps({"format": "png", "size": 100}).encode()
    reply = invoke("POST", UPLOADS, body=body, headers={"Content-Type": content_type})
    error = assert_error(reply, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert error["details"]["supported_content_types"] == ["application/json"]


# ------------------------------------------------------------------------------------- finalisation
@pytest.mark.parametrize(
    ("fmt", "content", "filename", "stored_name"),
    [
        ("pdf", samples.pdf(extra=b"%" + b"x" * 3000), "Floor plan (v2).pdf", "Floor plan (v2).pdf"),
        ("png", samples.png(width=40, height=40, extra=b"upload"), "plan.png", "plan.png"),
        ("jpg", samples.jpg(extra=b"upload"), "site.jpg", "site.jpg"),
        ("jpeg", samples.jpg(extra=b"alias"), None, "blueprint.jpg"),
    ],
)
def test_finalising_an_upload_creates_the_job(
    s3: Any, dynamodb: Any, fmt: str, content: bytes, filename: str | None, stored_name: str
) -> None:
    upload = uploaded(fmt, content, filename)
    assert keys(s3, "uploads/") == [upload["fields"]["key"]]

    reply = finalise(upload["upload_id"])

    assert reply.status == 201, reply.body
    job = reply.data
    assert reply.headers["Location"] == f"/api/v1/jobs/{job['job_id']}"
    assert job["status"] == "pending"
    assert job["blueprint_format"] == ("jpg" if fmt == "jpeg" else fmt)
    assert job["blueprint_hash"] == hashlib.sha256(content).hexdigest()
    assert job["blueprint_size"] == len(content)
    assert job["blueprint_filename"] == stored_name
    assert job["blueprint_s3_key"] == f"blueprints/{job['job_id']}/{stored_name}"
    assert "preview" not in job

    stored = s3.get_object(Bucket=BLUEPRINTS, Key=job["blueprint_s3_key"])
    assert stored["Body"].read() == content
    assert stored["ContentType"] == CONTENT_TYPES[fmt]
    assert stored["Metadata"]["sha256"] == job["blueprint_hash"]
    assert keys(s3, "uploads/") == [], "the upload is removed once it became a job"
    assert keys(s3, "blueprints/") == [job["blueprint_s3_key"]]
    assert [item["job_id"]["S"] for item in job_items(dynamodb)] == [job["job_id"]]
    assert invoke("GET", f"/api/v1/jobs/{job['job_id']}").data == job


def test_an_unknown_upload_is_404(s3: Any, dynamodb: Any) -> None:
    error = assert_error(finalise(UNKNOWN_UPLOAD_ID), 404, "UPLOAD_NOT_FOUND")
    assert error["details"]["upload_id"] == UNKNOWN_UPLOAD_ID
    assert job_items(dynamodb) == []


def test_an_upload_that_was_never_posted_is_404(s3: Any, dynamodb: Any) -> None:
    upload = request_upload()
    assert_error(finalise(upload["upload_id"]), 404, "UPLOAD_NOT_FOUND")
    assert job_items(dynamodb) == []
    assert claim_items(dynamodb) == []


@pytest.mark.parametrize(
    "upload_id",
    [
        "upl_123",
        "",
        UNKNOWN_UPLOAD_ID.upper().replace("UPL_", "upl_"),
        UNKNOWN_UPLOAD_ID + "0",
        UNKNOWN_UPLOAD_ID[:-1],
        "job_20261121T231500_9f2c4e7a1b3d5f60",
        "../" + UNKNOWN_UPLOAD_ID,
        "x" * 65,
        123,
        None,
        ["upl"],
    ],
)
def test_malformed_upload_ids_are_400(s3: Any, dynamodb: Any, upload_id: Any) -> None:
    error = assert_error(finalise(upload_id), 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "blueprint.upload_id"
    assert job_items(dynamodb) == []


@pytest.mark.parametrize(
    "extra",
    [
        {"file": base64.b64encode(samples.png()).decode()},
        {"format": "png"},
        {"filename": "plan.png"},
    ],
)
def test_upload_id_goes_alone(s3: Any, dynamodb: Any, extra: dict[str, str]) -> None:
    upload = uploaded("png", samples.png())
    reply = invoke("POST", "/api/v1/jobs", json_body={"blueprint": {"upload_id": upload["upload_id"], **extra}})

    error = assert_error(reply, 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "blueprint.upload_id"
    assert job_items(dynamodb) == []
    assert keys(s3, "uploads/") == [upload["fields"]["key"]], "a refused request leaves the upload usable"
    assert finalise(upload["upload_id"]).status == 201


def test_a_second_finalisation_is_404_and_creates_nothing(s3: Any, dynamodb: Any) -> None:
    upload = uploaded("png", samples.png())
    first = finalise(upload["upload_id"])
    assert first.status == 201

    error = assert_error(finalise(upload["upload_id"]), 404, "UPLOAD_NOT_FOUND")

    assert error["details"]["upload_id"] == upload["upload_id"]
    assert [item["job_id"]["S"] for item in job_items(dynamodb)] == [first.data["job_id"]]
    assert keys(s3, "blueprints/") == [first.data["blueprint_s3_key"]]
    assert keys(s3, "uploads/") == []


def test_posting_the_same_upload_again_after_finalising_creates_no_second_job(s3: Any, dynamodb: Any) -> None:
    """The presigned POST stays valid for 15 minutes: re-posting must not make the id usable twice."""
    upload = uploaded("png", samples.png())
    first = finalise(upload["upload_id"])
    assert first.status == 201

    post_file(upload, samples.png())  # the same size: the policy (in S3) and the finalise check allow it
    second = finalise(upload["upload_id"])

    assert second.status in (404, 409), second.body
    assert second.error["code"] in ("UPLOAD_NOT_FOUND", "CONFLICT")
    assert [item["job_id"]["S"] for item in job_items(dynamodb)] == [first.data["job_id"]]
    assert keys(s3, "blueprints/") == [first.data["blueprint_s3_key"]]


def race_finalisations(upload_id: str, racers: int = 2) -> list[Reply]:
    """Finalise one upload from ``racers`` threads released together."""
    replies: list[Reply] = []
    start = threading.Barrier(racers)

    def go() -> None:
        start.wait()
        replies.append(finalise(upload_id))

    threads = [threading.Thread(target=go) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == racers
    return replies


def test_racing_finalisations_create_exactly_one_job(s3: Any, dynamodb: Any) -> None:
    for attempt in range(10):
        content = samples.png(extra=f"race {attempt}".encode())
        upload = uploaded("png", content)

        replies = race_finalisations(upload["upload_id"])

        statuses = sorted(r.status for r in replies)
        assert statuses in ([201, 404], [201, 409]), [r.body for r in replies]
        winner = next(r for r in replies if r.status == 201)
        loser = next(r for r in replies if r.status != 201)
        assert loser.error["code"] in ("UPLOAD_NOT_FOUND", "CONFLICT")
        digest = hashlib.sha256(content).hexdigest()
        jobs = [item for item in job_items(dynamodb) if item["blueprint_hash"]["S"] == digest]
        assert [item["job_id"]["S"] for item in jobs] == [winner.data["job_id"]]
        assert [k for k in keys(s3, "blueprints/") if k.startswith(f"blueprints/{winner.data['job_id']}/")] == [
            winner.data["blueprint_s3_key"]
        ]
        assert keys(s3, "uploads/") == []
    assert len(job_items(dynamodb)) == 10
    assert len(keys(s3, "blueprints/")) == 10


def test_an_upload_removed_after_it_was_found_is_404_not_500(s3: Any, dynamodb: Any) -> None:
    """A racing finalisation that finished (and removed the upload) between our lookup and our first read."""
    upload = uploaded("png", samples.png())
    real = boto3.client("s3", region_name="us-east-1")

    class RemovedUnderfoot(FaultyClient):
        def get_object(self, **kwargs: Any) -> Any:
            real.delete_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"])
            return real.get_object(**kwargs)

    aws_clients.set_client("s3", RemovedUnderfoot(real))

    reply = finalise(upload["upload_id"])

    assert reply.status in (404, 409), reply.body
    assert reply.error["code"] in ("UPLOAD_NOT_FOUND", "CONFLICT")
    assert job_items(dynamodb) == []


def test_an_object_larger_than_its_upload_declared_is_400_and_deleted(s3: Any, dynamodb: Any) -> None:
    """moto does not enforce the POST policy (AWS does): the size is checked again on the object."""
    set_max_upload_bytes(1000)
    upload = request_upload("png", "plan.png", size=500)
    assert upload["max_bytes"] == 1000
    assert ["content-length-range", 500, 500] in policy_of(upload)["conditions"]
    big = samples.png(extra=b"x" * 2000)
    assert len(big) > 2000
    post_file(upload, big)

    error = assert_error(finalise(upload["upload_id"]), 400, "INVALID_REQUEST")

    assert error["details"]["field"] == "size"
    assert job_items(dynamodb) == []
    assert claim_items(dynamodb) == []
    assert keys(s3, "blueprints/") == []
    assert keys(s3, "uploads/") == [], "an upload that can never become a job is deleted"


def test_an_object_over_a_limit_lowered_since_its_upload_is_413(s3: Any, dynamodb: Any) -> None:
    content = samples.png(extra=b"x" * 2000)
    upload = uploaded("png", content)
    set_max_upload_bytes(1000)
    dependencies.reset()  # a new container: the lowered limit is read

    error = assert_error(finalise(upload["upload_id"]), 413, "FILE_TOO_LARGE")

    assert error["details"]["max_bytes"] == 1000
    assert job_items(dynamodb) == []
    assert claim_items(dynamodb) == []
    assert keys(s3, "blueprints/") == []
    assert keys(s3, "uploads/") == [], "an upload that can never become a job is deleted"
    assert_error(finalise(upload["upload_id"]), 404, "UPLOAD_NOT_FOUND")


@pytest.mark.parametrize(
    ("fmt", "content", "detected"),
    [
        ("png", samples.GIF, "gif"),
        ("pdf", samples.HTML, "html"),
        ("jpg", samples.png(), "png"),
        ("png", samples.pdf(), "pdf"),
        ("pdf", samples.EXE, "unknown"),
    ],
)
def test_a_file_that_is_not_what_the_upload_declared_is_400(
    s3: Any, dynamodb: Any, fmt: str, content: bytes, detected: str
) -> None:
    upload = uploaded(fmt, content)

    error = assert_error(finalise(upload["upload_id"]), 400, "INVALID_FILE_FORMAT")

    assert error["details"]["detected_format"] == detected
    assert job_items(dynamodb) == []
    assert claim_items(dynamodb) == []
    assert keys(s3, "blueprints/") == []
    assert keys(s3, "uploads/") == []
    assert_error(finalise(upload["upload_id"]), 404, "UPLOAD_NOT_FOUND")


def test_a_file_posted_with_another_content_type_still_has_to_match_the_upload(s3: Any, dynamodb: Any) -> None:
    """AWS's policy pins the Content-Type; an emulator does not. The upload said pdf: PNG bytes are refused."""
    upload = request_upload("pdf", "plan.pdf", size=len(samples.png()))
    post_file(upload, samples.png(), fields={"Content-Type": "image/png"})

    reply = finalise(upload["upload_id"])

    error = assert_error(reply, 400, "INVALID_FILE_FORMAT")
    assert error["details"]["detected_format"] == "png"
    assert job_items(dynamodb) == []
    assert keys(s3, "blueprints/") == []


def test_an_empty_object_behind_an_upload_is_400(s3: Any, dynamodb: Any) -> None:
    upload = request_upload("png", "plan.png", size=100)
    post_file(upload, b"")

    reply = finalise(upload["upload_id"])

    assert reply.status == 400, reply.body
    assert reply.error["code"] in ("INVALID_REQUEST", "INVALID_FILE_FORMAT")
    assert job_items(dynamodb) == []
    assert keys(s3, "uploads/") == []


class ReplacedUnderfoot(FaultyClient):
    """S3 where another POST to the presigned URL lands just before ``operation`` (a full GET or the copy)."""

    def __init__(self, real: Any, operation: str, repost: Callable[[], None]) -> None:
        super().__init__(real)
        self.operation = operation
        self.repost = repost
        self.replaced = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name != self.operation:
            return attr

        def call(**kwargs: Any) -> Any:
            if not self.replaced and "Range" not in kwargs:
                self.replaced = True
                source = kwargs.get("CopySource", kwargs)
                self.repost()
                # moto 5.2 ignores CopySourceIfMatch (it honours IfMatch on GET): answer as S3 does.
                if "CopySourceIfMatch" in kwargs:
                    current = self._real.head_object(Bucket=source["Bucket"], Key=source["Key"])["ETag"]
                    if current != kwargs["CopySourceIfMatch"]:
                        raise client_error("PreconditionFailed", 412, "CopyObject")
            return attr(**kwargs)

        return call


@pytest.mark.parametrize("operation", ["get_object", "copy_object"])
def test_an_upload_replaced_during_finalisation_is_409_and_never_slips_in_unchecked(
    s3: Any, dynamodb: Any, operation: str
) -> None:
    """The presigned POST stays valid for 15 minutes: a second POST between the checks and the hash or
    the copy must not turn unchecked bytes into a job."""
    checked = samples.png(extra=b"checked")
    upload = uploaded("png", checked)
    real = boto3.client("s3", region_name="us-east-1")
    replacement = samples.GIF.ljust(len(checked), b"\x00")  # the declared size: only its bytes differ
    aws_clients.set_client("s3", ReplacedUnderfoot(real, operation, lambda: post_file(upload, replacement)))

    reply = finalise(upload["upload_id"])

    assert_error(reply, 409, "CONFLICT")
    aws_clients.reset_clients()
    assert job_items(dynamodb) == []
    assert claim_items(dynamodb) == [], "the claim was given back"
    assert keys(s3, "blueprints/") == []
    assert keys(s3, "uploads/") == [upload["fields"]["key"]]

    again = finalise(upload["upload_id"])

    error = assert_error(again, 400, "INVALID_FILE_FORMAT")
    assert error["details"]["detected_format"] == "gif", "the replacement was checked like any upload"
    assert job_items(dynamodb) == []


def test_an_upload_removed_between_listing_and_reading_its_metadata_is_404(s3: Any, dynamodb: Any) -> None:
    upload = uploaded("png", samples.png())
    real = boto3.client("s3", region_name="us-east-1")

    class RemovedBeforeHead(FaultyClient):
        def head_object(self, **kwargs: Any) -> Any:
            real.delete_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"])
            return real.head_object(**kwargs)

    aws_clients.set_client("s3", RemovedBeforeHead(real))

    assert_error(finalise(upload["upload_id"]), 404, "UPLOAD_NOT_FOUND")
    assert job_items(dynamodb) == []


def test_a_job_id_collision_while_finalising_never_touches_the_other_job(
    s3: Any, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 random bits make this all but impossible; forced here, it must still not harm the other job."""
    other_content = samples.png(extra=b"the other job")
    other = invoke("POST", "/api/v1/jobs", json_body=create_body(other_content, "png", "plan.png")).data
    upload = uploaded("png", samples.png(extra=b"the upload"), "plan.png")
    monkeypatch.setattr(JobCreation, "new_job_id", lambda self: other["job_id"])

    reply = finalise(upload["upload_id"])

    assert reply.status in (201, 409), reply.body
    if reply.status == 201:
        assert reply.data["job_id"] != other["job_id"]
    monkeypatch.undo()
    assert invoke("GET", f"/api/v1/jobs/{other['job_id']}").data == other, "the other job's record is untouched"
    stored = s3.get_object(Bucket=BLUEPRINTS, Key=other["blueprint_s3_key"])["Body"].read()
    assert stored == other_content, "the other job's blueprint is untouched"


def test_a_failing_cleanup_of_a_bad_upload_does_not_change_the_answer(
    s3: Any, dynamodb: Any, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    upload = uploaded("png", samples.GIF)
    inject("s3", always={"delete_object": server_error})

    error = assert_error(finalise(upload["upload_id"]), 400, "INVALID_FILE_FORMAT")

    assert error["details"]["detected_format"] == "gif"
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    left = [line for line in logs if line["message"] == "could not delete an upload"]
    assert [line["s3_key"] for line in left] == [upload["fields"]["key"]]
    assert job_items(dynamodb) == []


# ------------------------------------------------------------------------------------------- faults
def test_a_failing_copy_is_503_and_the_upload_can_be_retried(s3: Any, dynamodb: Any, clock: FakeClock) -> None:
    content = samples.pdf(extra=b"copy fails")
    upload = uploaded("pdf", content, "plan.pdf")
    faulty = inject("s3", always={"copy_object": throttled})

    reply = finalise(upload["upload_id"])

    assert_error(reply, 503, "SERVICE_UNAVAILABLE")
    assert int(reply.headers["Retry-After"]) >= 1
    assert faulty.calls["copy_object"] >= 2, "the copy was retried"
    assert job_items(dynamodb) == []
    assert claim_items(dynamodb) == [], "the claim was given back"
    assert keys(s3, "blueprints/") == []
    assert keys(s3, "uploads/") == [upload["fields"]["key"]], "a retry may still use the upload"

    aws_clients.reset_clients()
    retried = finalise(upload["upload_id"])

    assert retried.status == 201, retried.body
    assert retried.data["blueprint_hash"] == hashlib.sha256(content).hexdigest()
    assert [item["job_id"]["S"] for item in job_items(dynamodb)] == [retried.data["job_id"]]
    assert keys(s3, "blueprints/") == [retried.data["blueprint_s3_key"]]
    assert keys(s3, "uploads/") == []


class FailsJobRecords(FaultyClient):
    """DynamoDB whose put_item fails for job records only (the upload claim still goes through)."""

    def put_item(self, **kwargs: Any) -> Any:
        if kwargs["Item"]["job_id"]["S"].startswith("job_"):
            self.calls["put_item"] = self.calls.get("put_item", 0) + 1
            raise server_error("PutItem")
        return self._real.put_item(**kwargs)


def test_a_failing_record_write_after_the_copy_is_503_and_leaves_no_orphan(
    s3: Any, dynamodb: Any, clock: FakeClock
) -> None:
    content = samples.png(extra=b"record fails")
    upload = uploaded("png", content)
    faulty = FailsJobRecords(boto3.client("dynamodb", region_name="us-east-1"))
    aws_clients.set_client("dynamodb", faulty)

    reply = finalise(upload["upload_id"])

    assert_error(reply, 503, "SERVICE_UNAVAILABLE")
    assert faulty.calls["put_item"] >= 2, "the record write was retried"
    assert job_items(dynamodb) == []
    assert claim_items(dynamodb) == [], "the claim was given back"
    assert keys(s3, "blueprints/") == [], "the copied blueprint was deleted"
    assert keys(s3, "uploads/") == [upload["fields"]["key"]]

    aws_clients.reset_clients()
    retried = finalise(upload["upload_id"])

    assert retried.status == 201, retried.body
    assert [item["job_id"]["S"] for item in job_items(dynamodb)] == [retried.data["job_id"]]
    assert keys(s3, "blueprints/") == [retried.data["blueprint_s3_key"]]
    assert keys(s3, "uploads/") == []


def test_a_failing_claim_is_503_and_the_upload_can_be_retried(s3: Any, dynamodb: Any, clock: FakeClock) -> None:
    upload = uploaded("png", samples.png())
    inject("dynamodb", always={"put_item": throttled})

    assert_error(finalise(upload["upload_id"]), 503, "SERVICE_UNAVAILABLE")
    assert keys(s3, "uploads/") == [upload["fields"]["key"]]
    assert keys(s3, "blueprints/") == []

    aws_clients.reset_clients()
    assert finalise(upload["upload_id"]).status == 201


def test_a_failing_lookup_is_503(s3: Any, dynamodb: Any, clock: FakeClock) -> None:
    upload = uploaded("png", samples.png())
    inject("s3", always={"list_objects_v2": server_error})

    assert_error(finalise(upload["upload_id"]), 503, "SERVICE_UNAVAILABLE")

    aws_clients.reset_clients()
    assert keys(s3, "uploads/") == [upload["fields"]["key"]]
    assert finalise(upload["upload_id"]).status == 201


def test_base64_jobs_still_work_next_to_uploads(s3: Any) -> None:
    upload = uploaded("png", samples.png(extra=b"u"))
    direct = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"d")))
    assert direct.status == 201
    assert keys(s3, "uploads/") == [upload["fields"]["key"]], "a direct upload does not touch pending uploads"
