"""src/api/openapi.json: a valid OpenAPI 3.1 document that says what the router and the code do.

schemathesis fuzzes the local API against this document; these tests keep the document itself honest
without a server: the same routes as the router, the contract's error codes and nothing else, each error
response listing only codes of its own HTTP status, and limits and id formats equal to the code's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api import rest_api
from api.errors import STATUS_BY_CODE
from api.media_types import CREATE_MEDIA_TYPES
from api.requests import MAX_COMMENT_CHARS, MAX_FILENAME_CHARS
from api.routes import ROUTES
from models.ids import JOB_ID, UPLOAD_ID
from models.job import PUBLIC_FIELDS, JobStatus
from services.cursors import MAX_CURSOR_CHARS

DOCUMENT_PATH = Path(rest_api.__file__).with_name("openapi.json")
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
#: Operations that touch no AWS service that can fail unexpectedly: no 500 documented.
WITHOUT_INTERNAL_ERROR = {("GET", "/health"), ("GET", "/api/v1/openapi.json")}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _codes_of_error_response(response: dict[str, Any]) -> list[str]:
    """The codes an error response admits: ``allOf: [ErrorEnvelope, {... error.code.enum}]``."""
    schema = response["content"]["application/json"]["schema"]
    assert schema["allOf"][0] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    codes: list[str] = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
    return codes


def test_document_is_openapi_3_1_and_formatted(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Location Detection job API"
    assert document["info"]["version"] == "1.0.0"
    # Kept as 2-space JSON so diffs stay readable (regenerate with json.dumps(doc, indent=2, ensure_ascii=False)).
    assert DOCUMENT_PATH.read_text(encoding="utf-8") == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_document_is_a_valid_openapi_document(document: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    try:
        from openapi_spec_validator import OpenAPIV31SpecValidator
    except ImportError:  # older openapi-spec-validator: validate() picks the validator from "openapi"
        validate(document)
    else:
        validate(document, cls=OpenAPIV31SpecValidator)


def test_document_and_router_have_the_same_operations(document: dict[str, Any]) -> None:
    # GET /api/v1/jobs (listing) and GET /api/v1/openapi.json (this document) arrive with issue 4: both are
    # in the document and must be in api.routes.ROUTES too. OPTIONS (CORS preflight, any path) is answered
    # by the router before routing and is deliberately not an operation of the document.
    router = {(route.method, route.template) for route in ROUTES}
    assert set(_operations(document)) == router


def test_public_operations_are_exactly_the_routes_without_an_api_key(document: dict[str, Any]) -> None:
    assert document["security"] == [{"ApiKey": []}]
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-API-Key")
    public = {key for key, operation in _operations(document).items() if operation.get("security") == []}
    assert public == {("GET", "/health"), ("GET", "/api/v1/openapi.json")}
    routes = {(route.method, route.template): route for route in ROUTES}
    for key, operation in _operations(document).items():
        assert routes[key].public == (operation.get("security") == []), key


def test_idempotency_key_is_taken_exactly_where_the_router_honours_it(document: dict[str, Any]) -> None:
    routes = {(route.method, route.template): route for route in ROUTES}
    for key, operation in _operations(document).items():
        names = {_resolve(document, p)["name"] for p in operation.get("parameters", [])}
        assert ("Idempotency-Key" in names) == routes[key].idempotent, key


def test_error_codes_are_the_codes_of_utils_errors(document: dict[str, Any]) -> None:
    documented = document["components"]["schemas"]["ErrorCode"]["enum"]
    known = set(STATUS_BY_CODE)
    assert len(documented) == len(set(documented))
    assert set(documented) <= known


def test_every_error_code_of_utils_errors_is_documented(document: dict[str, Any]) -> None:
    documented = set(document["components"]["schemas"]["ErrorCode"]["enum"])
    assert set(STATUS_BY_CODE) <= documented


def test_every_operation_has_a_success_and_an_internal_error_response(document: dict[str, Any]) -> None:
    for key, operation in _operations(document).items():
        statuses = set(operation["responses"])
        assert any(status.startswith("2") for status in statuses), key
        if key not in WITHOUT_INTERNAL_ERROR:
            assert "500" in statuses, key
            assert "503" in statuses, key
            assert "401" in statuses, key


def test_error_responses_admit_only_codes_of_their_own_status(document: dict[str, Any]) -> None:
    status_of = STATUS_BY_CODE
    for key, operation in _operations(document).items():
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")) or key == ("GET", "/health"):
                continue  # /health answers 503 in the success envelope (data.status = "unhealthy")
            codes = _codes_of_error_response(_resolve(document, response))
            assert codes, (key, status)
            assert {status_of[code] for code in codes} == {int(status)}, (key, status, codes)


def test_every_response_carries_the_request_and_correlation_ids(document: dict[str, Any]) -> None:
    for key, operation in _operations(document).items():
        for status, response in operation["responses"].items():
            headers = _resolve(document, response)["headers"]
            for name in ("X-Request-ID", "X-Correlation-ID"):
                assert _resolve(document, headers[name])["required"] is True, (key, status, name)
            assert set(_resolve(document, response)["content"]) == {"application/json"}, (key, status)


def test_every_operation_documents_the_transport_limits(document: dict[str, Any]) -> None:
    """Any request can carry too large a body (413) or too long a query and headers (431): both are
    answered before any route, so every operation lists them (schemathesis finds an undocumented one)."""
    for key, operation in _operations(document).items():
        assert {"413", "431"} <= set(operation["responses"]), key


def test_status_specific_headers(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    assert "WWW-Authenticate" in responses["Unauthorized"]["headers"]
    assert "Retry-After" in responses["ServiceUnavailable"]["headers"]
    assert "Retry-After" in responses["Conflict"]["headers"]  # IDEMPOTENCY_IN_PROGRESS
    created = _operations(document)[("POST", "/api/v1/jobs")]["responses"]["201"]["headers"]
    assert {"Location", "Idempotent-Replayed"} <= set(created)


def test_job_schema_has_the_public_fields_of_the_model(document: dict[str, Any]) -> None:
    fields = document["components"]["schemas"]["JobFields"]
    assert set(fields["properties"]) == {*PUBLIC_FIELDS, "result_url"}
    assert fields["required"] == list(PUBLIC_FIELDS)
    assert document["components"]["schemas"]["JobStatus"]["enum"] == [status.value for status in JobStatus]


def test_id_patterns_and_limits_are_the_code_s(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["JobId"]["pattern"] == f"^{JOB_ID.pattern.pattern}$"
    assert schemas["UploadId"]["pattern"] == f"^{UPLOAD_ID.pattern.pattern}$"
    parameters = document["components"]["parameters"]
    assert parameters["Cursor"]["schema"]["maxLength"] == MAX_CURSOR_CHARS
    assert parameters["RawFilename"]["schema"]["maxLength"] == MAX_FILENAME_CHARS
    assert schemas["UploadRequest"]["properties"]["filename"]["maxLength"] == MAX_FILENAME_CHARS
    assert schemas["CreateJobFromFile"]["properties"]["blueprint"]["properties"]["filename"]["maxLength"] == (
        MAX_FILENAME_CHARS
    )
    assert schemas["FeedbackRequest"]["properties"]["comment"]["maxLength"] == MAX_COMMENT_CHARS


def test_create_job_takes_exactly_the_media_types_the_parser_takes(document: dict[str, Any]) -> None:
    content = _operations(document)[("POST", "/api/v1/jobs")]["requestBody"]["content"]
    assert set(content) == set(CREATE_MEDIA_TYPES)


def test_request_bodies_refuse_unknown_fields(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("CreateJobFromFile", "CreateJobFromUpload", "CreateJobForm", "UploadRequest", "FeedbackRequest"):
        assert schemas[name]["additionalProperties"] is False, name
    for name in ("CreateJobFromFile", "CreateJobFromUpload"):
        assert schemas[name]["properties"]["blueprint"]["additionalProperties"] is False, name


def test_rate_limit_headers_and_429_exactly_where_the_router_limits(document: dict[str, Any]) -> None:
    """The limited operations: a 429 with Retry-After, and both RateLimit fields on every response but the
    401 (no client, no budget) and the 431 (answered before the function); each error response is the
    shared one plus those two headers (so the copies cannot drift). No other operation mentions them."""
    limits = {"RateLimit-Policy", "RateLimit"}
    routes = {(route.method, route.template): route for route in ROUTES}
    shared = document["components"]["responses"]
    for key, operation in _operations(document).items():
        responses = operation["responses"]
        if routes[key].rate_limit is None:
            assert "429" not in responses, key
            assert all(not limits & set(_resolve(document, r)["headers"]) for r in responses.values()), key
            continue
        assert _resolve(document, responses["429"]) == shared["RateLimited"], key
        assert "Retry-After" in shared["RateLimited"]["headers"]
        for status, response in responses.items():
            headers = set(_resolve(document, response)["headers"])
            # 401: no client, no budget; 431: refused before the function (local server or API Gateway).
            assert (limits <= headers) == (status not in ("401", "431")), (key, status)
            if status.startswith(("4", "5")) and status not in ("401", "429", "431"):
                (twin,) = [r for r in shared.values() if r["description"] == response["description"]]
                assert {**response, "headers": twin["headers"]} == twin, (key, status)
                assert set(response["headers"]) == set(twin["headers"]) | limits, (key, status)
    assert "pinned" in document["info"]["description"]
    for name in limits:
        assert "draft-ietf-httpapi-ratelimit-headers-10" in document["components"]["headers"][name]["description"]


@pytest.mark.parametrize("kind", ["job.completed", "job.erased"])
def test_the_webhook_delivery_body_is_the_documented_one(document: dict[str, Any], kind: str) -> None:
    """The body the fan-out renders for an event (services.webhook_fanout) validates against the OpenAPI
    document's ``webhooks.jobEvent`` request body, a whole job or, for ``job.erased``, its id and time."""
    from jsonschema import Draft202012Validator

    from models.events import JobEvent
    from services.webhook_fanout import WebhookFanout
    from tests.unit.test_job_model import make_job

    job = make_job(status=JobStatus.COMPLETED)
    public = {"job_id": job.job_id, "erased_at": "2026-11-22T00:00:00Z"} if kind == "job.erased" else job.to_public()
    event = JobEvent(f"{job.job_id}:2", kind, public, "cli_alice", "processing", 1795475700.0)

    class Hooks:
        def list(self, owner_id: str) -> list[Any]:
            from models.webhooks import Webhook

            return [Webhook("wh_20261121T231500_4b1d2c3e5f607182", owner_id, "https://x", (kind,), None, "", b"")]

    (delivery,) = WebhookFanout(Hooks(), None).deliveries_of(event)  # type: ignore[arg-type]
    operation = document["webhooks"]["jobEvent"]["post"]
    schema_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    Draft202012Validator({**document, "$ref": schema_ref}).validate(json.loads(delivery.body))
    assert {p["name"] for p in operation["parameters"]} == {"webhook-id", "webhook-timestamp", "webhook-signature"}
