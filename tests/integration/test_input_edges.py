"""The input edges issue 14's review found, at the handler: echoed values cut to 100 characters, the
OpenAPI document's limits on every body kind, unusable media types, impossible job-id timestamps, and
files that only look like what they claim (direct bodies and finalised uploads alike)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from urllib3.filepost import encode_multipart_formdata

from local_api.cfn_template import Stack
from tests import samples
from tests.conftest import Reply, create_body, invoke

JOBS = "/api/v1/jobs"
ECHO_LIMIT = 100


def assert_error(reply: Reply, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, reply.body
    assert reply.error["code"] == code, reply.body
    return reply.error


def echoed_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in echoed_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in echoed_strings(v)]
    return []


def multipart(fields: dict[str, Any], target: str = JOBS) -> Reply:
    body, content_type = encode_multipart_formdata(fields)
    return invoke("POST", target, body=body, headers={"Content-Type": content_type})


# --- echoed input ---------------------------------------------------------------------------------


def test_a_3_mb_multipart_format_field_is_echoed_cut_to_100_characters(aws: Stack) -> None:
    reply = multipart({"file": ("plan.png", samples.png(), "image/png"), "format": "g" * (3 * 1024 * 1024)})
    error = assert_error(reply, 400, "INVALID_FILE_FORMAT")
    assert error["details"]["received_format"] == "g" * ECHO_LIMIT
    assert len(json.dumps(reply.body)) < 2000


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"json_body": create_body(samples.png(), fmt="x" * 5000)}, id="json-format"),
        pytest.param({"json_body": {"filename": "a.png", "format": "y" * 5000, "size": 10}}, id="upload-format"),
        pytest.param(
            {"body": b"{}", "headers": {"Content-Type": "text/" + "z" * 5000}},
            id="content-type",
        ),
    ],
)
def test_no_echoed_value_is_longer_than_100_characters(aws: Stack, request_kwargs: dict[str, Any]) -> None:
    target = "/api/v1/uploads" if "size" in json.dumps(request_kwargs.get("json_body", {})) else JOBS
    reply = invoke("POST", target, **request_kwargs)
    assert 400 <= reply.status < 500
    assert all(len(s) <= ECHO_LIMIT for s in echoed_strings(reply.error.get("details", {}))), reply.error


# --- the OpenAPI document's limits on every body kind ------------------------------------------------


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(
            lambda name: multipart({"file": ("plan.png", samples.png(), "image/png")}, f"{JOBS}?filename={name}"),
            id="multipart-query",
        ),
        pytest.param(
            lambda name: multipart({"file": ("plan.png", samples.png(), "image/png"), "filename": name}),
            id="multipart-field",
        ),
        pytest.param(lambda name: multipart({"file": (name, samples.png(), "image/png")}), id="multipart-part-name"),
        pytest.param(
            lambda name: invoke(
                "POST", f"{JOBS}?filename={name}", body=samples.png(), headers={"Content-Type": "image/png"}
            ),
            id="raw-query",
        ),
        pytest.param(lambda name: invoke("POST", JOBS, json_body=create_body(samples.png(), filename=name)), id="json"),
        pytest.param(
            lambda name: invoke(
                "POST", f"{JOBS}?filename={name}", json_body=create_body(samples.png(), filename="plan.png")
            ),
            id="json-with-query",
        ),
    ],
)
def test_a_filename_over_1024_characters_is_400_on_every_body_kind(aws: Stack, send: Any) -> None:
    assert_error(send("f" * 1025), 400, "INVALID_REQUEST")
    assert send("f" * 1020 + ".png").status == 201


# --- media types ------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [";;;", "", " ", "application", "/json", "json/", "a b/c", ";charset=utf-8"])
def test_an_empty_or_unparsable_media_type_is_415(aws: Stack, content_type: str) -> None:
    body = json.dumps(create_body(samples.png())).encode()
    reply = invoke("POST", JOBS, body=body, headers={"Content-Type": content_type})
    assert_error(reply, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_no_content_type_at_all_is_still_json(aws: Stack) -> None:
    body = json.dumps(create_body(samples.png(extra=b"no type"))).encode()
    assert invoke("POST", JOBS, body=body).status == 201


def test_an_unparsable_media_type_on_uploads_and_feedback_is_415(aws: Stack) -> None:
    body = json.dumps({"filename": "a.png", "format": "png", "size": 10}).encode()
    assert_error(
        invoke("POST", "/api/v1/uploads", body=body, headers={"Content-Type": ";;;"}), 415, "UNSUPPORTED_MEDIA_TYPE"
    )


# --- job ids whose timestamp is not a real UTC time -------------------------------------------------


@pytest.mark.parametrize(
    "job_id",
    [
        "job_20261399T256199_9f2c4e7a1b3d5f60",  # month 13, day 99, hour 25, minute 61, second 99
        "job_20260230T120000_9f2c4e7a1b3d5f60",  # 30 February
        "job_20261121T240000_9f2c4e7a1b3d5f60",  # hour 24
        "job_20261121T236000_9f2c4e7a1b3d5f60",  # minute 60
        "job_20261121T235960_9f2c4e7a1b3d5f60",  # second 60 (UTC has leap seconds; Python's clock does not)
        "job_00001121T231500_9f2c4e7a1b3d5f60",  # year 0
        "job_20250229T231500_9f2c4e7a1b3d5f60",  # 29 February of a common year
    ],
)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_job_id_with_an_impossible_timestamp_is_400_invalid_job_id(aws: Stack, job_id: str, method: str) -> None:
    error = assert_error(invoke(method, f"{JOBS}/{job_id}"), 400, "INVALID_JOB_ID")
    assert all(len(s) <= ECHO_LIMIT for s in echoed_strings(error.get("details", {})))


def test_feedback_on_a_job_id_with_an_impossible_timestamp_is_400(aws: Stack) -> None:
    reply = invoke("POST", f"{JOBS}/job_20261399T256199_9f2c4e7a1b3d5f60/feedback", json_body={"rating": 5})
    assert_error(reply, 400, "INVALID_JOB_ID")


def test_a_real_timestamp_that_names_no_job_is_404(aws: Stack) -> None:
    assert_error(invoke("GET", f"{JOBS}/job_20240229T235959_9f2c4e7a1b3d5f60"), 404, "JOB_NOT_FOUND")


# --- files that only look like what they claim, sent directly -----------------------------------------

FORGERIES = [
    pytest.param(b"\x89PNG\r\n\x1a\n", "png", id="lone-png-signature"),
    pytest.param(b"\xff\xd8\xff", "jpg", id="three-jpeg-bytes"),
    pytest.param(
        samples.HTML[:20] + b"%PDF-1.4\n" + samples.HTML[20:] + b"\n%%EOF\n", "pdf", id="html-with-pdf-header"
    ),
    pytest.param(
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xfe\x00\x0bblueprint\xff\xd9",
        "jpg",
        id="old-site-jpg-no-frame-header",
    ),
    pytest.param(b"%PDF-1.7\n" + b"\x00" * 4000, "pdf", id="pdf-without-eof"),
]


@pytest.mark.parametrize(("content", "declared"), FORGERIES)
def test_a_forged_file_sent_directly_is_400_invalid_file_format(aws: Stack, content: bytes, declared: str) -> None:
    error = assert_error(invoke("POST", JOBS, json_body=create_body(content, fmt=declared)), 400, "INVALID_FILE_FORMAT")
    assert "detected_format" in error["details"]
    assert error["details"]["detected_format"] != declared


@pytest.mark.parametrize(("content", "declared"), FORGERIES)
def test_a_forged_file_as_a_raw_body_is_400(aws: Stack, content: bytes, declared: str) -> None:
    media = {"png": "image/png", "jpg": "image/jpeg", "pdf": "application/pdf"}[declared]
    reply = invoke("POST", JOBS, body=content, headers={"Content-Type": media})
    assert_error(reply, 400, "INVALID_FILE_FORMAT")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("baseline.jpg", "jpg"),
        ("progressive.jpg", "jpg"),
        ("cmyk.jpg", "jpg"),
        ("exif.jpg", "jpg"),
        ("plan.pdf", "pdf"),
    ],
)
def test_real_files_are_accepted(aws: Stack, name: str, fmt: str) -> None:
    reply = invoke("POST", JOBS, json_body=create_body(samples.fixture(name), fmt=fmt))
    assert reply.status == 201, reply.body


# --- finalised uploads ------------------------------------------------------------------------------


def upload(content: bytes, fmt: str, size: int | None = None) -> dict[str, Any]:
    declared = len(content) if size is None else size
    reply = invoke("POST", "/api/v1/uploads", json_body={"filename": f"plan.{fmt}", "format": fmt, "size": declared})
    assert reply.status == 201, reply.body
    ticket = dict(reply.data)
    posted = requests.post(ticket["url"], data=ticket["fields"], files={"file": ("blob", content)}, timeout=10)
    assert posted.status_code in (200, 201, 204), posted.text
    return ticket


def finalise(ticket: dict[str, Any]) -> Reply:
    return invoke("POST", JOBS, json_body={"blueprint": {"upload_id": ticket["upload_id"]}})


@pytest.mark.parametrize(("content", "declared"), FORGERIES)
def test_a_forged_file_finalised_from_an_upload_is_400(aws: Stack, content: bytes, declared: str) -> None:
    error = assert_error(finalise(upload(content, declared)), 400, "INVALID_FILE_FORMAT")
    assert "detected_format" in error["details"]


def test_a_big_real_pdf_upload_is_checked_from_its_head_and_tail(aws: Stack) -> None:
    content = samples.pdf(b"x" * (3 * 1024 * 1024))
    assert finalise(upload(content, "pdf")).status == 201


def test_the_presigned_policy_pins_the_declared_size(aws: Stack) -> None:
    ticket = upload(samples.png(extra=b"pinned"), "png")
    policy = json.loads(base64.b64decode(ticket["fields"]["policy"]))
    (ranges,) = [c for c in policy["conditions"] if isinstance(c, list) and c[0] == "content-length-range"]
    size = len(samples.png(extra=b"pinned"))
    assert ranges[1:] == [size, size]


@pytest.mark.parametrize("declared_delta", [-1, 1, 500])
def test_an_upload_whose_object_is_not_the_declared_size_is_refused_on_finalise(
    aws: Stack, declared_delta: int
) -> None:
    """moto accepts a POST that breaks its policy's content-length-range (real S3 does not): the object's
    size is checked again against the size the client declared."""
    content = samples.png(extra=f"size {declared_delta}".encode())
    error = assert_error(finalise(upload(content, "png", size=len(content) + declared_delta)), 400, "INVALID_REQUEST")
    assert error["details"]["field"] == "size"
