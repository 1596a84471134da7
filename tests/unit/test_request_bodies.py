"""The other bodies api.requests takes: multipart forms, raw files, upload references, uploads, feedback."""

from __future__ import annotations

import json
from typing import Any

import pytest
from urllib3.filepost import encode_multipart_formdata

from api.http import Request
from api.requests import (
    UploadReference,
    parse_create_job,
    parse_feedback,
    parse_upload_request,
)
from local_api.server import build_event
from models.errors import FileTooLarge
from services.job_creation import BlueprintFile
from tests import samples
from utils.errors import InvalidRequest, UnsupportedMediaType

MAX = 50 * 1024 * 1024
UPLOAD_ID = "upl_20261121T231500_" + "ab" * 16


def request(body: bytes, content_type: str | None, target: str = "/api/v1/jobs") -> Request:
    headers = [("Host", "api.example.test")]
    if content_type:
        headers.append(("Content-Type", content_type))
    return Request.from_event(build_event("POST", target, headers, body), "req_x")


def form(fields: dict[str, Any]) -> Request:
    body, content_type = encode_multipart_formdata(fields)
    return request(body, content_type)


def as_json(value: Any, target: str = "/api/v1/jobs") -> Request:
    return request(json.dumps(value).encode(), "application/json", target)


# ----------------------------------------------------------------------------------------- multipart
def test_form_with_a_file_part() -> None:
    parsed = parse_create_job(form({"file": ("plan.png", samples.png(), "image/png")}), MAX)
    assert parsed == BlueprintFile(samples.png(), "png", "plan.png")


def test_form_format_field_wins_over_the_part_type() -> None:
    parsed = parse_create_job(form({"file": ("x.bin", samples.pdf(), "image/png"), "format": "pdf"}), MAX)
    assert isinstance(parsed, BlueprintFile)
    assert parsed.declared_format == "pdf"


@pytest.mark.parametrize(
    ("part_type", "declared"),
    [
        ("application/octet-stream", None),
        ("image/jpeg", "jpg"),
        ("image/gif", "gif"),
        ("application/pdf", "pdf"),
        ("text/plain", None),
    ],
)
def test_form_part_type_as_a_declaration(part_type: str, declared: str | None) -> None:
    parsed = parse_create_job(form({"file": ("f", b"\x00data", part_type)}), MAX)
    assert isinstance(parsed, BlueprintFile)
    assert parsed.declared_format == declared


def test_form_filename_field_overrides_the_part_filename() -> None:
    parsed = parse_create_job(form({"file": ("blob", samples.png(), "image/png"), "filename": "ground.png"}), MAX)
    assert isinstance(parsed, BlueprintFile)
    assert parsed.filename == "ground.png"


@pytest.mark.parametrize(
    "fields",
    [
        {"format": "png"},
        {"file": "not a file part but a field", "extra": "x"},
        {"upload": ("plan.png", b"x", "image/png")},
    ],
)
def test_forms_without_exactly_one_file_or_with_unknown_fields_are_400(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        parse_create_job(form(fields), MAX)


def test_form_without_boundary_is_400() -> None:
    with pytest.raises(InvalidRequest):
        parse_create_job(request(b"--x\r\n", "multipart/form-data"), MAX)


def test_form_file_over_the_limit_is_413() -> None:
    with pytest.raises(FileTooLarge):
        parse_create_job(form({"file": ("plan.png", samples.png(extra=b"x" * 500), "image/png")}), 100)


# ----------------------------------------------------------------------------------------------- raw
@pytest.mark.parametrize(
    ("content_type", "declared"),
    [("image/png", "png"), ("image/jpeg", "jpg"), ("application/pdf", "pdf"), ("IMAGE/PNG; x=1", "png")],
)
def test_raw_bodies_declare_their_format_by_content_type(content_type: str, declared: str) -> None:
    parsed = parse_create_job(request(b"\x89PNG", content_type, "/api/v1/jobs?filename=a%20b.png"), MAX)
    assert parsed == BlueprintFile(b"\x89PNG", declared, "a b.png")


def test_raw_body_over_the_limit_is_413() -> None:
    with pytest.raises(FileTooLarge):
        parse_create_job(request(b"x" * 101, "image/png"), 100)


def test_raw_body_filename_too_long_is_400() -> None:
    with pytest.raises(InvalidRequest):
        parse_create_job(request(b"x", "image/png", "/api/v1/jobs?filename=" + "a" * 2000), MAX)


@pytest.mark.parametrize("content_type", ["application/octet-stream", "image/gif", "text/csv"])
def test_other_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_create_job(request(b"x", content_type), MAX)


# ----------------------------------------------------------------------------------- upload reference
def test_upload_reference() -> None:
    assert parse_create_job(as_json({"blueprint": {"upload_id": UPLOAD_ID}}), MAX) == UploadReference(UPLOAD_ID)


@pytest.mark.parametrize(
    "blueprint",
    [{"upload_id": UPLOAD_ID, "file": "aGk="}, {"upload_id": UPLOAD_ID, "format": "png"}, {"upload_id": 5}],
)
def test_upload_reference_goes_alone_and_is_a_string(blueprint: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_create_job(as_json({"blueprint": blueprint}), MAX)
    assert caught.value.details["field"] == "blueprint.upload_id"


# --------------------------------------------------------------------------------------- POST uploads
def test_upload_request() -> None:
    parsed = parse_upload_request(as_json({"filename": "a.pdf", "format": "pdf", "size": 10}, "/api/v1/uploads"))
    assert (parsed.filename, parsed.format, parsed.size) == ("a.pdf", "pdf", 10)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "pdf"}, "size"),
        ({"size": 10}, "format"),
        ({"format": "pdf", "size": "10"}, "size"),
        ({"format": "pdf", "size": True}, "size"),
        ({"format": "pdf", "size": 1.5}, "size"),
        ({"format": "", "size": 1}, "format"),
        ({"format": "pdf", "size": 1, "filename": 3}, "filename"),
        ({"format": "pdf", "size": 1, "bucket": "x"}, "bucket"),
    ],
)
def test_bad_upload_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_upload_request(as_json(body, "/api/v1/uploads"))
    assert caught.value.details["field"] == field


def test_upload_request_must_be_json() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_upload_request(request(b"size=1", "application/x-www-form-urlencoded", "/api/v1/uploads"))


# ------------------------------------------------------------------------------------------ feedback
def test_feedback_with_every_field() -> None:
    parsed = parse_feedback(as_json({"rating": 5, "comment": "good", "corrections": {"rooms": [1]}}))
    assert (parsed.rating, parsed.comment, parsed.corrections) == (5, "good", {"rooms": [1]})


def test_feedback_needs_only_a_rating() -> None:
    parsed = parse_feedback(as_json({"rating": 1}))
    assert (parsed.comment, parsed.corrections) == ("", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "rating"),
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": 4.5}, "rating"),
        ({"rating": "4"}, "rating"),
        ({"rating": True}, "rating"),
        ({"rating": 3, "comment": "x" * 2001}, "comment"),
        ({"rating": 3, "comment": 7}, "comment"),
        ({"rating": 3, "corrections": "x" * (64 * 1024)}, "corrections"),
        ({"rating": 3, "score": 3}, "score"),
    ],
)
def test_bad_feedback_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_feedback(as_json(body))
    assert caught.value.details["field"] == field


def test_feedback_at_the_limits_is_accepted() -> None:
    corrections = "x" * (64 * 1024 - 2)  # the JSON string's quotes make it exactly 64 KB
    parsed = parse_feedback(as_json({"rating": 2, "comment": "y" * 2000, "corrections": corrections}))
    assert parsed.corrections == corrections
