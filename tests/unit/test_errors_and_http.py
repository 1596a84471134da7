"""models.errors, utils.errors, api.errors and api.http: the contract's error table, the envelope, CORS and
tolerant event parsing."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from api import errors as error_map
from api import http
from api.cors import cors_headers
from api.errors import failure
from api.http import Request, new_request_id, no_content, success
from models import errors as domain_errors
from models.errors import (
    Conflict,
    DomainError,
    FileTooLarge,
    IllegalTransition,
    InvalidFileFormat,
    InvalidJobId,
    InvalidWebhookUrl,
    JobAlreadyCompleted,
    JobNotCompleted,
    JobNotFound,
    PipelineError,
    UploadNotFound,
    WebhookNotFound,
)
from utils import errors
from utils.errors import (
    AppError,
    HeadersTooLarge,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InternalError,
    InvalidCursor,
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    RateLimited,
    RouteNotFound,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)

REQUEST_ID = re.compile(r"^req_\d{8}T\d{6}_[a-z0-9]{6,}$", re.ASCII)
ContractError = AppError | DomainError

# The error table of API_CONTRACT.md, copied here so the test fails if either side drifts.
CONTRACT_ERRORS: list[tuple[type[ContractError], str, int]] = [
    (InvalidRequest, "INVALID_REQUEST", 400),
    (InvalidFileFormat, "INVALID_FILE_FORMAT", 400),
    (InvalidJobId, "INVALID_JOB_ID", 400),
    (InvalidCursor, "INVALID_CURSOR", 400),
    (InvalidWebhookUrl, "INVALID_WEBHOOK_URL", 400),
    (Unauthorized, "UNAUTHORIZED", 401),
    (JobNotFound, "JOB_NOT_FOUND", 404),
    (UploadNotFound, "UPLOAD_NOT_FOUND", 404),
    (WebhookNotFound, "WEBHOOK_NOT_FOUND", 404),
    (RouteNotFound, "NOT_FOUND", 404),
    (MethodNotAllowed, "METHOD_NOT_ALLOWED", 405),
    (JobAlreadyCompleted, "JOB_ALREADY_COMPLETED", 409),
    (JobNotCompleted, "JOB_NOT_COMPLETED", 409),
    (Conflict, "CONFLICT", 409),
    (IdempotencyInProgress, "IDEMPOTENCY_IN_PROGRESS", 409),
    (FileTooLarge, "FILE_TOO_LARGE", 413),
    (PayloadTooLarge, "PAYLOAD_TOO_LARGE", 413),
    (HeadersTooLarge, "HEADERS_TOO_LARGE", 431),
    (UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", 415),
    (IdempotencyKeyReused, "IDEMPOTENCY_KEY_REUSED", 422),
    (RateLimited, "RATE_LIMITED", 429),
    (ServiceUnavailable, "SERVICE_UNAVAILABLE", 503),
    (InternalError, "INTERNAL_ERROR", 500),
]


def build(cls: type[ContractError]) -> ContractError:
    if cls is MethodNotAllowed:
        return MethodNotAllowed(["GET", "DELETE"])
    if cls is FileTooLarge:
        return FileTooLarge(52_428_800)
    return cls()


def _classes(module: Any, base: type[Exception]) -> set[type[Exception]]:
    return {obj for obj in vars(module).values() if isinstance(obj, type) and issubclass(obj, base)}


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "code", "status"), CONTRACT_ERRORS, ids=[c for _, c, _ in CONTRACT_ERRORS])
def test_error_code_and_status(cls: type[ContractError], code: str, status: int) -> None:
    error = build(cls)
    assert error_map.contract_error(error) is error
    assert error.code == code
    assert error_map.status_of(error) == status
    assert error.message
    assert str(error) == error.message


def test_every_error_class_is_in_the_contract_table() -> None:
    classes = _classes(errors, AppError) | _classes(domain_errors, DomainError)
    classes -= {AppError, DomainError, errors._RetryLater}
    pipeline_only = {cls for cls in classes if issubclass(cls, PipelineError)}
    assert IllegalTransition in pipeline_only
    assert not {cls.code for cls in pipeline_only} & set(error_map.STATUS_BY_CODE), "no route answers them"
    assert classes - pipeline_only == {cls for cls, _, _ in CONTRACT_ERRORS}
    assert len({code for _, code, _ in CONTRACT_ERRORS}) == len(CONTRACT_ERRORS)
    assert {code: status for _, code, status in CONTRACT_ERRORS} == error_map.STATUS_BY_CODE


def test_message_details_and_headers_are_per_instance() -> None:
    first = InvalidRequest("bad thing", details={"field": "x"})
    second = InvalidRequest()
    assert first.message == "bad thing"
    assert first.details == {"field": "x"}
    assert second.message == InvalidRequest.default_message
    assert second.details == {}
    assert error_map.headers_of(second) == {}
    second.details["mutated"] = True
    assert InvalidRequest().details == {}


def test_unauthorized_has_www_authenticate() -> None:
    headers = error_map.headers_of(Unauthorized())
    assert headers["WWW-Authenticate"].startswith("ApiKey")
    assert "X-API-Key" in headers["WWW-Authenticate"]
    assert error_map.headers_of(Unauthorized("custom")) == headers


def test_method_not_allowed_has_allow() -> None:
    error = MethodNotAllowed(["GET", "DELETE", "OPTIONS"])
    assert error_map.headers_of(error) == {"Allow": "GET, DELETE, OPTIONS"}
    assert error.details == {"allowed_methods": ["GET", "DELETE", "OPTIONS"]}


@pytest.mark.parametrize("cls", [ServiceUnavailable, RateLimited, IdempotencyInProgress])
def test_retry_after(cls: type[ServiceUnavailable] | type[RateLimited] | type[IdempotencyInProgress]) -> None:
    assert error_map.headers_of(cls()) == {"Retry-After": "1"}
    assert error_map.headers_of(cls(retry_after=7)) == {"Retry-After": "7"}
    assert error_map.headers_of(cls(retry_after=0)) == {"Retry-After": "1"}
    assert error_map.headers_of(cls(retry_after=-3)) == {"Retry-After": "1"}


def test_file_too_large_details() -> None:
    assert FileTooLarge(1234).details == {"max_bytes": 1234}


def test_domain_errors_know_nothing_of_http() -> None:
    for cls in _classes(domain_errors, DomainError):
        assert not hasattr(cls, "http_status"), cls
        assert not hasattr(cls, "headers"), cls


def test_an_unknown_exception_is_an_internal_error_without_details() -> None:
    result = failure(KeyError("secret internals"), "req_4", "req_4")
    body = json.loads(result["body"])
    assert result["statusCode"] == 500
    assert body["error"] == {"code": "INTERNAL_ERROR", "message": InternalError.default_message}
    assert "secret internals" not in result["body"]


# --- request ids ------------------------------------------------------------------------------------


def test_new_request_id_format() -> None:
    request_id = new_request_id(1_795_302_900)  # 2026-11-21T23:15:00Z
    assert REQUEST_ID.match(request_id), request_id
    assert request_id.startswith("req_20261121T231500_")


def test_new_request_ids_are_distinct_and_always_well_formed() -> None:
    ids = {new_request_id(0) for _ in range(500)}
    assert len(ids) == 500
    for request_id in ids:
        assert REQUEST_ID.match(request_id), request_id
        assert request_id.startswith("req_19700101T000000_")


# --- envelope ---------------------------------------------------------------------------------------


def test_success_envelope() -> None:
    result = success(201, {"job_id": "job_x"}, "req_1", "corr_1", headers={"Location": "/api/v1/jobs/job_x"})
    assert result["statusCode"] == 201
    assert result["isBase64Encoded"] is False
    body = json.loads(result["body"])
    assert body == {
        "status": "success",
        "data": {"job_id": "job_x"},
        "meta": {"request_id": "req_1", "api_version": "v1"},
    }
    headers = result["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Request-ID"] == "req_1"
    assert headers["X-Correlation-ID"] == "corr_1"
    assert headers["Location"] == "/api/v1/jobs/job_x"


def test_success_keeps_unicode_readable() -> None:
    result = success(200, {"name": "平面図"}, "req_1", "req_1")
    assert "平面図" in result["body"]
    assert json.loads(result["body"])["data"]["name"] == "平面図"


def test_failure_envelope_with_details_and_error_headers() -> None:
    error = InvalidFileFormat(details={"received_format": "gif"})
    result = failure(error, "req_2", "corr_2")
    assert result["statusCode"] == 400
    body = json.loads(result["body"])
    assert body == {
        "status": "error",
        "error": {
            "code": "INVALID_FILE_FORMAT",
            "message": "File format must be PNG, JPG, or PDF",
            "details": {"received_format": "gif"},
        },
        "meta": {"request_id": "req_2", "api_version": "v1"},
    }
    assert result["headers"]["Content-Type"] == "application/json"
    assert result["headers"]["X-Request-ID"] == "req_2"
    assert result["headers"]["X-Correlation-ID"] == "corr_2"


def test_failure_omits_empty_details_and_carries_error_headers() -> None:
    result = failure(ServiceUnavailable(retry_after=4), "req_3", "req_3")
    body = json.loads(result["body"])
    assert "details" not in body["error"]
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert result["statusCode"] == 503
    assert result["headers"]["Retry-After"] == "4"
    assert result["headers"]["X-Correlation-ID"] == "req_3"


def test_no_content() -> None:
    result = no_content("req_5", "corr_5")
    assert result["statusCode"] == 204
    assert result["body"] == ""
    assert "Content-Type" not in result["headers"]
    assert result["headers"]["X-Request-ID"] == "req_5"
    assert result["headers"]["X-Correlation-ID"] == "corr_5"


# --- CORS -------------------------------------------------------------------------------------------


def test_cors_all_origins() -> None:
    headers = cors_headers("https://anything.example", ("*",))
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in headers
    for method in ("GET", "POST", "DELETE", "OPTIONS"):
        assert method in headers["Access-Control-Allow-Methods"]
    for name in ("Content-Type", "X-API-Key", "Authorization", "Idempotency-Key", "X-Correlation-ID"):
        assert name in headers["Access-Control-Allow-Headers"]
    for name in ("X-Request-ID", "X-Correlation-ID", "Location", "Retry-After", "Idempotent-Replayed"):
        assert name in headers["Access-Control-Expose-Headers"]


def test_cors_all_origins_without_an_origin_header() -> None:
    assert cors_headers(None, ("*",))["Access-Control-Allow-Origin"] == "*"


ALLOW_LIST = ("https://app.example.com", "http://localhost:5173")


@pytest.mark.parametrize("origin", ["https://app.example.com", "http://localhost:5173"])
def test_cors_allow_list_echoes_an_allowed_origin(origin: str) -> None:
    headers = cors_headers(origin, ALLOW_LIST)
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "https://app.example.com.evil.com",
        "http://app.example.com",
        "https://APP.example.com.evil",
        "null",
        "",
        None,
    ],
)
def test_cors_allow_list_refuses_other_origins(origin: str | None) -> None:
    headers = cors_headers(origin, ALLOW_LIST)
    assert "Access-Control-Allow-Origin" not in headers
    assert headers["Vary"] == "Origin"  # caches must not reuse one origin's answer for another


# --- Request.from_event -----------------------------------------------------------------------------

GARBAGE_EVENTS: list[Any] = [
    None,
    [],
    [1, 2, 3],
    "GET /",
    42,
    {},
    {"requestContext": None},
    {"requestContext": "nope", "headers": "nope"},
    {"requestContext": {"http": ["GET"]}},
    {"headers": ["content-type", "application/json"]},
    {"headers": {"X-A": 1, "X-B": None, "X-C": ["a"], 5: "five", "X-D": {"x": 1}}},
    {"queryStringParameters": ["a"], "rawPath": 5},
    {"queryStringParameters": {"a": 1, "b": None}},
    {"body": 123},
    {"body": {"a": 1}},
    {"body": ["a"]},
    {"isBase64Encoded": "yes", "body": "e30="},
    {"requestContext": {"http": {"method": None, "path": None}, "requestId": 7}},
]


@pytest.mark.parametrize("event", GARBAGE_EVENTS)
def test_from_event_never_raises_on_garbage(event: Any) -> None:
    request = Request.from_event(event, "req_g")
    assert request.request_id == "req_g"
    assert request.correlation_id == "req_g"
    assert isinstance(request.method, str)
    assert request.method
    assert isinstance(request.path, str)
    assert request.path.startswith("/")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in request.headers.items())
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in request.query.items())
    assert isinstance(request.media_type, str)
    # Reading the body gives bytes for a string (or absent) body, else the contract's InvalidRequest.
    raw = event.get("body") if isinstance(event, dict) else None
    if raw is None or isinstance(raw, str):
        assert isinstance(request.body, bytes)
    else:
        with pytest.raises(InvalidRequest):
            _ = request.body


def test_from_event_defaults() -> None:
    request = Request.from_event(None, "req_d")
    assert request.method == "GET"
    assert request.path == "/"
    assert request.headers == {}
    assert request.query == {}
    assert request.aws_request_id is None
    assert request.body == b""
    assert request.is_base64 is False


def test_from_event_reads_a_real_event() -> None:
    event = {
        "rawPath": "/api/v1/jobs",
        "headers": {"Content-Type": "application/json; charset=utf-8", "X-Api-Key": "k"},
        "queryStringParameters": {"limit": "5"},
        "requestContext": {"http": {"method": "post", "path": "/api/v1/jobs"}, "requestId": "abc123"},
        "body": '{"a": 1}',
        "isBase64Encoded": False,
    }
    request = Request.from_event(event, "req_r")
    assert request.method == "POST"
    assert request.path == "/api/v1/jobs"
    assert request.header("x-api-key") == "k"
    assert request.header("X-API-KEY") == "k"
    assert request.media_type == "application/json"
    assert request.query == {"limit": "5"}
    assert request.aws_request_id == "abc123"
    assert request.json_body() == {"a": 1}


def test_non_string_header_values_are_empty_strings() -> None:
    request = Request.from_event({"headers": {"X-Count": 3, "X-Ok": "yes"}}, "req_h")
    assert request.header("x-count") == ""
    assert request.header("x-ok") == "yes"


@pytest.mark.parametrize("body", [123, {"a": 1}, ["a"], 1.5, True])
def test_non_string_body_is_invalid_request(body: Any) -> None:
    request = Request.from_event({"body": body}, "req_b")
    with pytest.raises(InvalidRequest):
        _ = request.body
    with pytest.raises(InvalidRequest):
        request.json_body()


def test_base64_body_is_decoded() -> None:
    raw = b"\x89PNG\r\n\x1a\n\x00\xff"
    request = Request.from_event({"body": base64.b64encode(raw).decode(), "isBase64Encoded": True}, "req_1")
    assert request.body == raw


def test_text_body_is_utf8_encoded() -> None:
    request = Request.from_event({"body": '{"name": "план"}', "isBase64Encoded": False}, "req_1")
    assert request.body == '{"name": "план"}'.encode()
    assert request.json_body() == {"name": "план"}


def test_base64_flag_must_be_true_not_truthy() -> None:
    request = Request.from_event({"body": "e30=", "isBase64Encoded": "true"}, "req_1")
    assert request.body == b"e30="


@pytest.mark.parametrize("body", ["not base64!", "e30", "e3=0", "ZXhhbXBsZQ==\n", "плохо"])
def test_invalid_base64_body_is_invalid_request(body: str) -> None:
    request = Request.from_event({"body": body, "isBase64Encoded": True}, "req_1")
    with pytest.raises(InvalidRequest) as caught:
        _ = request.body
    assert caught.value.code == "INVALID_REQUEST"
    assert caught.value.__cause__ is None  # the decoder's message is not chained into our error
    assert "binascii" not in caught.value.message
    assert "Incorrect padding" not in caught.value.message


# --- json_body --------------------------------------------------------------------------------------


def json_request(body: str | bytes) -> Request:
    if isinstance(body, bytes):
        return Request.from_event({"body": base64.b64encode(body).decode(), "isBase64Encoded": True}, "req_j")
    return Request.from_event({"body": body}, "req_j")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("", id="empty"),
        pytest.param("   \n\t", id="whitespace"),
        pytest.param(b"\xff\xfe{}", id="invalid-utf8"),
        pytest.param(b'{"a": "\xc3"}', id="truncated-utf8"),
        pytest.param('{"a": "\udcff"}', id="lone-surrogate"),
        pytest.param("{", id="truncated"),
        pytest.param("{'a': 1}", id="single-quotes"),
        pytest.param('{"a": 1,}', id="trailing-comma"),
        pytest.param("NaN", id="nan"),
        pytest.param('{"a": NaN}', id="nested-nan"),
        pytest.param('{"a": Infinity}', id="infinity"),
        pytest.param("[-Infinity]", id="minus-infinity"),
        pytest.param("1" * 5000, id="huge-integer"),
        pytest.param("[" * 100_000, id="deeply-nested-unclosed"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="deeply-nested-closed"),
        pytest.param('{"a":' * 100_000 + "1" + "}" * 100_000, id="deeply-nested-objects"),
    ],
)
def test_json_body_errors_are_invalid_request(body: str | bytes) -> None:
    request = json_request(body)
    with pytest.raises(InvalidRequest) as caught:
        request.json_body()
    assert error_map.status_of(caught.value) == 400


def test_json_body_reasons_are_specific() -> None:
    with pytest.raises(InvalidRequest, match="required"):
        json_request("").json_body()
    with pytest.raises(InvalidRequest, match="UTF-8"):
        json_request(b"\xff").json_body()
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        json_request("{").json_body()


@pytest.mark.parametrize(
    ("body", "expected"),
    [('{"a": [1, 2.5, null, true]}', {"a": [1, 2.5, None, True]}), ("[]", []), ("0", 0), ('"x"', "x")],
)
def test_json_body_parses_valid_json(body: str, expected: Any) -> None:
    assert json_request(body).json_body() == expected


def test_body_is_decoded_once() -> None:
    request = json_request(b'{"a": 1}')
    assert request.body is request.body


# --- correlation ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["abc-123", "order:42/step=3", "A.B_C+D", "x" * 128, "550e8400-e29b-41d4-a716-446655440000"],
)
def test_tame_correlation_id_is_kept(value: str) -> None:
    request = Request.from_event({"headers": {"X-Correlation-ID": value}}, "req_c")
    assert request.correlation_id == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("abc\ndef", id="newline"),
        pytest.param("abc\r\nX-Injected: 1", id="header-injection"),
        pytest.param("abc\n", id="trailing-newline"),
        pytest.param("x" * 129, id="129-chars"),
        pytest.param("x" * 500, id="500-chars"),
        pytest.param("has space", id="space"),
        pytest.param('{"json": true}', id="json"),
        pytest.param("<script>", id="html"),
        pytest.param("корреляция", id="non-ascii"),
        pytest.param("abc\x00", id="nul"),
    ],
)
def test_hostile_correlation_id_is_replaced_by_the_request_id(value: str) -> None:
    request = Request.from_event({"headers": {"x-correlation-id": value}}, "req_c")
    assert request.correlation_id == "req_c"


def test_non_string_correlation_id_is_replaced() -> None:
    request = Request.from_event({"headers": {"x-correlation-id": 12345}}, "req_c")
    assert request.correlation_id == "req_c"


def test_api_version_constant() -> None:
    assert http.API_VERSION == "v1"


def test_illegal_transition_is_a_domain_error_outside_the_http_contract() -> None:
    error = IllegalTransition("job_x", "completed", "processing")
    assert isinstance(error, DomainError)
    assert error_map.contract_error(error) is None  # a client never causes one: 500 if it reached the router
    assert (error.job_id, error.current, error.target) == ("job_x", "completed", "processing")
    assert str(error) == "job job_x cannot move from completed to processing"
