"""api.requests.parse_create_job on requests built exactly as API Gateway (and the local server) builds them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from api.errors import status_of
from api.http import Request
from api.media_types import is_json
from api.requests import decode_file, parse_create_job
from local_api.server import build_event
from models.errors import FileTooLarge
from services.job_creation import BlueprintFile
from tests import samples
from utils.errors import InvalidRequest, UnsupportedMediaType

MAX_BYTES = 50 * 1024 * 1024
PNG = samples.png(extra=b"requests")
PNG_B64 = base64.b64encode(PNG).decode()


def make_request(body: Any, content_type: str | None = "application/json") -> Request:
    """``body``: bytes as sent, or anything else JSON-encoded."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = [("Host", "api.example.test"), ("X-API-Key", "k")]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    return Request.from_event(build_event("POST", "/api/v1/jobs", headers, raw), "req_x")


def blueprint(**fields: Any) -> dict[str, Any]:
    return {"blueprint": fields}


def parse(body: Any, content_type: str | None = "application/json", max_bytes: int = MAX_BYTES) -> BlueprintFile:
    return parse_create_job(make_request(body, content_type), max_bytes)


def invalid(body: Any, content_type: str | None = "application/json", max_bytes: int = MAX_BYTES) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse(body, content_type, max_bytes)
    assert status_of(caught.value) == 400
    assert caught.value.code == "INVALID_REQUEST"
    return caught.value


# --- the file ---------------------------------------------------------------------------------------


def test_plain_base64_with_format_and_filename() -> None:
    result = parse(blueprint(file=PNG_B64, format="png", filename="plan.png"))
    assert result == BlueprintFile(content=PNG, declared_format="png", filename="plan.png")


def test_only_the_file_is_required() -> None:
    result = parse(blueprint(file=PNG_B64))
    assert result.content == PNG
    assert result.declared_format is None
    assert result.filename is None


def test_null_format_and_filename_are_absent() -> None:
    result = parse(blueprint(file=PNG_B64, format=None, filename=None))
    assert (result.declared_format, result.filename) == (None, None)


def test_declared_format_is_passed_through_unnormalised() -> None:
    # Normalising (and refusing gif) is the service's job; parsing only checks the type.
    assert parse(blueprint(file=PNG_B64, format="JPEG")).declared_format == "JPEG"


def test_base64_with_newlines_and_spaces() -> None:
    wrapped = base64.encodebytes(PNG).decode()  # MIME style: a newline every 76 characters
    assert "\n" in wrapped
    assert parse(blueprint(file=wrapped)).content == PNG
    spaced = " ".join(PNG_B64[i : i + 10] for i in range(0, len(PNG_B64), 10))
    assert parse(blueprint(file="\r\n" + spaced + "\t")).content == PNG


def test_url_safe_alphabet() -> None:
    content = bytes(range(256)) * 3  # guarantees '+' and '/' in the standard alphabet
    urlsafe = base64.urlsafe_b64encode(content).decode()
    assert "-" in urlsafe
    assert "_" in urlsafe
    assert parse(blueprint(file=urlsafe)).content == content


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 100, 101, 102])
def test_missing_padding(length: int) -> None:
    content = bytes(range(length % 256)) + b"x" * length
    unpadded = base64.b64encode(content).decode().rstrip("=")
    assert parse(blueprint(file=unpadded)).content == content


@pytest.mark.parametrize(
    ("mime", "fmt"),
    [
        ("image/png", "png"),
        ("image/jpeg", "jpg"),
        ("image/jpg", "jpg"),
        ("application/pdf", "pdf"),
        ("IMAGE/PNG", "png"),
    ],
)
def test_data_url_gives_the_declared_format(mime: str, fmt: str) -> None:
    result = parse(blueprint(file=f"data:{mime};base64,{PNG_B64}"))
    assert result.content == PNG
    assert result.declared_format == fmt


def test_data_url_of_an_unsupported_type_names_it() -> None:
    result = parse(blueprint(file=f"data:image/gif;base64,{base64.b64encode(samples.GIF).decode()}"))
    assert result.content == samples.GIF
    assert result.declared_format == "gif"


def test_data_url_with_parameters_and_no_mime() -> None:
    assert parse(blueprint(file=f"data:image/png;name=plan.png;base64,{PNG_B64}")).declared_format == "png"
    untyped = parse(blueprint(file=f"data:;base64,{PNG_B64}"))
    assert untyped.content == PNG
    assert untyped.declared_format is None


def test_explicit_format_wins_over_the_data_url() -> None:
    assert parse(blueprint(file=f"data:image/png;base64,{PNG_B64}", format="pdf")).declared_format == "pdf"


@pytest.mark.parametrize(
    "value",
    [
        "data:image/png,%89PNG%0D%0A",
        "data:image/png;charset=utf-8,abc",
        "data:,hello",
        "data:image/png;base64",
    ],
)
def test_data_url_without_base64_is_invalid(value: str) -> None:
    error = invalid(blueprint(file=value))
    assert error.details["field"] == "blueprint.file"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not base64 at all!", id="punctuation"),
        pytest.param("abcde", id="length-1-mod-4"),
        pytest.param("ab=cd", id="padding-in-the-middle"),
        pytest.param("iVBORw0KGgo*AAAA", id="star"),
        pytest.param("iVBORw0KGgo=AAA", id="early-padding"),
        pytest.param("плохо", id="non-ascii"),
        pytest.param("data:image/png;base64,@@@@", id="bad-base64-in-data-url"),
        pytest.param("aGVsbG8=\x00", id="nul"),
    ],
)
def test_bad_base64_is_invalid(value: str) -> None:
    error = invalid(blueprint(file=value))
    assert error.details == {"field": "blueprint.file"}
    assert "binascii" not in error.message


def test_empty_file_string_decodes_to_no_bytes() -> None:
    # An empty file is refused by the service ("The file is empty"); parsing hands it over as b"".
    assert parse(blueprint(file="")).content == b""


# --- types and shape --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"file": 123}, "blueprint.file"),
        ({"file": None}, "blueprint.file"),
        ({"file": ["iVBO"]}, "blueprint.file"),
        ({"file": {"data": PNG_B64}}, "blueprint.file"),
        ({"file": True}, "blueprint.file"),
        ({"file": PNG_B64, "format": 5}, "blueprint.format"),
        ({"file": PNG_B64, "format": ["png"]}, "blueprint.format"),
        ({"file": PNG_B64, "format": True}, "blueprint.format"),
        ({"file": PNG_B64, "format": "p" * 33}, "blueprint.format"),
        ({"file": PNG_B64, "filename": 7}, "blueprint.filename"),
        ({"file": PNG_B64, "filename": ["plan.png"]}, "blueprint.filename"),
        ({"file": PNG_B64, "filename": {"name": "plan.png"}}, "blueprint.filename"),
        ({"file": PNG_B64, "filename": "a" * 1025}, "blueprint.filename"),
    ],
)
def test_wrong_types_name_the_field(fields: dict[str, Any], field: str) -> None:
    error = invalid({"blueprint": fields})
    assert error.details["field"] == field
    assert field in error.message


def test_long_but_acceptable_filename_is_passed_through() -> None:
    assert parse(blueprint(file=PNG_B64, filename="a" * 1024)).filename == "a" * 1024


def test_unknown_field_in_blueprint() -> None:
    error = invalid(blueprint(file=PNG_B64, fromat="png"))
    assert error.details["field"] == "blueprint.fromat"
    assert error.details["allowed_fields"] == ["file", "filename", "format", "upload_id"]


def test_unknown_top_level_field() -> None:
    error = invalid({"blueprint": {"file": PNG_B64}, "callback_url": "http://x"})
    assert "callback_url" in error.message
    assert error.details["allowed_fields"] == ["blueprint"]
    # details.field is a path from the body's root, as for a missing field ("blueprint", not "body.blueprint").
    assert error.details["field"] == "callback_url"


def test_missing_blueprint() -> None:
    error = invalid({})
    assert error.details == {"field": "blueprint"}
    assert "blueprint" in error.message


def test_missing_file() -> None:
    error = invalid(blueprint(format="png", filename="plan.png"))
    assert error.details == {"field": "blueprint.file"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([{"blueprint": {"file": PNG_B64}}], "body"),
        ("just a string", "body"),
        (42, "body"),
        (None, "body"),
        ({"blueprint": [PNG_B64]}, "blueprint"),
        ({"blueprint": PNG_B64}, "blueprint"),
        ({"blueprint": None}, "blueprint"),
    ],
)
def test_non_objects_are_invalid(body: Any, field: str) -> None:
    error = invalid(body)
    assert error.details["field"] == field
    assert "JSON object" in error.message


@pytest.mark.parametrize("raw", [b"", b"{", b"{'blueprint': 1}", b'{"blueprint": NaN}', b"[" * 100_000])
def test_malformed_bodies_are_invalid(raw: bytes) -> None:
    invalid(raw)


# --- media types ------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"])
def test_non_json_content_type_is_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse(blueprint(file=PNG_B64), content_type)
    assert status_of(caught.value) == 415
    assert caught.value.details["received_content_type"] == content_type
    assert caught.value.details["supported_content_types"] == [
        "application/json",
        "multipart/form-data",
        "image/png",
        "image/jpeg",
        "application/pdf",
    ]


def test_unsupported_media_type_is_checked_before_the_body() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse(b"not json at all", "text/plain")


def test_long_content_type_is_truncated_in_details() -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse(blueprint(file=PNG_B64), "text/" + "x" * 500)
    assert len(caught.value.details["received_content_type"]) == 100


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
        "application/problem+json; charset=utf-8",
    ],
)
def test_json_media_types_are_accepted(content_type: str) -> None:
    assert parse(blueprint(file=PNG_B64), content_type).content == PNG


def test_missing_content_type_is_treated_as_json() -> None:
    request = make_request(blueprint(file=PNG_B64), content_type=None)
    assert request.media_type == ""
    assert request.is_base64 is True  # API Gateway base64-encodes a body of unknown type
    assert parse_create_job(request, MAX_BYTES).content == PNG


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        ("application/json", True),
        ("application/vnd.api+json", True),
        ("application/json-patch+json", True),
        ("text/json", False),
        ("application/jsonx", False),
        ("", False),
    ],
)
def test_is_json(media_type: str, expected: bool) -> None:
    assert is_json(media_type) is expected


# --- size -------------------------------------------------------------------------------------------


def test_file_at_the_limit_is_accepted() -> None:
    content = b"x" * 300
    assert parse(blueprint(file=base64.b64encode(content).decode()), max_bytes=300).content == content


def test_file_over_the_limit_is_refused_before_decoding() -> None:
    # Not even valid base64: refusing it with FILE_TOO_LARGE proves the length is checked first.
    with pytest.raises(FileTooLarge) as caught:
        parse(blueprint(file="!" * 4000), max_bytes=1000)
    assert status_of(caught.value) == 413
    assert caught.value.details == {"max_bytes": 1000}


def test_file_clearly_over_the_limit() -> None:
    content = b"y" * 1000
    with pytest.raises(FileTooLarge):
        parse(blueprint(file=base64.b64encode(content).decode()), max_bytes=900)


def test_whitespace_does_not_count_towards_the_size() -> None:
    content = b"z" * 300
    encoded = base64.b64encode(content).decode()
    padded = "\n".join(encoded[i : i + 4] for i in range(0, len(encoded), 4)) + " " * 2000
    assert parse(blueprint(file=padded), max_bytes=300).content == content


def test_data_url_prefix_does_not_count_towards_the_size() -> None:
    content = b"w" * 300
    value = f"data:application/pdf;name={'n' * 500};base64,{base64.b64encode(content).decode()}"
    result = parse(blueprint(file=value), max_bytes=300)
    assert result.content == content
    assert result.declared_format == "pdf"


def test_decode_file_directly() -> None:
    assert decode_file(PNG_B64, MAX_BYTES) == (PNG, None)
    assert decode_file(f"data:image/png;base64,{PNG_B64}", MAX_BYTES) == (PNG, "png")
    with pytest.raises(FileTooLarge):
        decode_file("AAAA" * 100, 10)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda b: b, id="plain, padded (decoded in place)"),
        pytest.param(lambda b: "\n".join(b[i : i + 76] for i in range(0, len(b), 76)), id="line-wrapped"),
        pytest.param(lambda b: b.rstrip("="), id="unpadded"),
        pytest.param(lambda b: b.replace("+", "-").replace("/", "_"), id="URL-safe alphabet"),
    ],
)
def test_every_base64_spelling_decodes_to_the_same_bytes(variant: Callable[[str], str]) -> None:
    content = bytes(range(256)) * 5 + b"\xfb\xff"  # '+' and '/' in its base64, and padding
    encoded = base64.b64encode(content).decode()
    assert "+" in encoded
    assert "/" in encoded
    assert encoded.endswith("=")
    assert decode_file(variant(encoded), MAX_BYTES) == (content, None)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("QUJD" + "é" * 4, id="non-ASCII in a plain-looking value"),
        pytest.param("QU=D", id="padding in the middle"),
        pytest.param("QUJDRA==QQ==", id="data after the padding"),
        pytest.param("QUJ*", id="outside the alphabet"),
    ],
)
def test_a_value_that_is_not_base64_is_refused_on_either_path(value: str) -> None:
    with pytest.raises(InvalidRequest, match="not valid base64"):
        decode_file(value, MAX_BYTES)


def test_the_plain_path_refuses_an_oversized_file_before_decoding() -> None:
    with pytest.raises(FileTooLarge):
        decode_file(base64.b64encode(b"x" * 12).decode(), 8)
    assert decode_file(base64.b64encode(b"x" * 12).decode(), 12) == (b"x" * 12, None)
