"""The job API over real HTTP, as curl and the frontend use it.

Runs against the local API (started as a process) or, with ``API_URL`` set, against a deployed stack:
``API_URL=https://abc.execute-api.us-east-1.amazonaws.com make e2e``. Every test here is also part of the
post-deploy smoke test (``make smoke``): each one only creates, reads and cancels its own jobs.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from tests import samples
from tests.e2e.conftest import ORIGIN, Client, HttpReply

pytestmark = [pytest.mark.e2e, pytest.mark.smoke]

REQUEST_ID = re.compile(r"^req_\d{8}T\d{6}_[a-z0-9]{6,}$")


def create(client: Client, content: bytes, fmt: str | None, filename: str = "plan") -> HttpReply:
    blueprint = {"file": base64.b64encode(content).decode(), "filename": filename}
    if fmt:
        blueprint["format"] = fmt
    return client.json("POST", "/api/v1/jobs", {"blueprint": blueprint})


def assert_envelope(reply: HttpReply, status: int) -> None:
    assert reply.status == status, reply.raw[:500]
    assert reply.headers["content-type"].startswith("application/json")
    assert REQUEST_ID.match(reply.headers["x-request-id"])
    assert reply.json["meta"] == {"request_id": reply.headers["x-request-id"], "api_version": "v1"}
    assert "x-correlation-id" in reply.headers


def test_health(client: Client) -> None:
    reply = client.request("GET", "/health")
    assert_envelope(reply, 200)
    assert reply.data["status"] == "healthy"


@pytest.mark.parametrize(
    ("content", "fmt", "stored"),
    [
        (samples.png(extra=b"e2e"), "png", "png"),
        (samples.jpg(b"e2e"), "jpeg", "jpg"),
        (samples.pdf(b"e2e"), "pdf", "pdf"),
    ],
)
def test_create_then_get_then_cancel_twice(client: Client, content: bytes, fmt: str, stored: str) -> None:
    created = create(client, content, fmt)
    assert_envelope(created, 201)
    job = created.data
    assert created.headers["location"] == f"/api/v1/jobs/{job['job_id']}"
    assert job["status"] == "pending"
    assert job["blueprint_format"] == stored
    assert job["blueprint_filename"] == f"plan.{stored}"
    assert job["blueprint_hash"] == hashlib.sha256(content).hexdigest()

    fetched = client.request("GET", created.headers["location"])
    assert_envelope(fetched, 200)
    assert fetched.data == job

    first = client.request("DELETE", created.headers["location"])
    second = client.request("DELETE", created.headers["location"])
    assert_envelope(first, 200)
    assert_envelope(second, 200)
    assert first.data["status"] == second.data["status"] == "cancelled"
    assert client.request("GET", created.headers["location"]).data["status"] == "cancelled"


def test_correlation_id_is_echoed(client: Client) -> None:
    reply = client.request("GET", "/health", headers={"X-Correlation-ID": "e2e-trace-1"})
    assert reply.headers["x-correlation-id"] == "e2e-trace-1"


@pytest.mark.parametrize("path", ["/health", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60", "/nowhere"])
def test_answers_and_errors_to_a_browser_origin_carry_the_cors_headers(client: Client, path: str) -> None:
    """API Gateway's CorsConfiguration (the local API plays it): the configured headers on the response to
    any request with an allowed Origin, the function's answers and errors alike."""
    reply = client.request("GET", path, headers={"Origin": ORIGIN})
    assert reply.headers["access-control-allow-origin"] in ("*", ORIGIN)
    exposed = {h.strip().lower() for h in reply.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "x-correlation-id", "location", "retry-after", "idempotent-replayed"} <= exposed


def test_without_an_origin_no_cors_headers_are_sent(client: Client) -> None:
    """API Gateway adds CORS headers only to CORS requests and drops the function's own."""
    reply = client.request("GET", "/health")
    assert not [name for name in reply.headers if name.startswith("access-control-")]


def test_cors_preflight(client: Client) -> None:
    reply = client.request(
        "OPTIONS",
        "/api/v1/jobs",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] in ("*", ORIGIN)
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert "x-api-key" in reply.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"blueprint": ', "application/json", 400, "INVALID_REQUEST"),
        (b'{"blueprint": {"file": 42}}', "application/json", 400, "INVALID_REQUEST"),
        (b"file=abc", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
)
def test_bad_requests_get_a_clear_4xx(client: Client, body: bytes, content_type: str, status: int, code: str) -> None:
    reply = client.request("POST", "/api/v1/jobs", body, {"Content-Type": content_type})
    assert_envelope(reply, status)
    assert reply.error["code"] == code


def test_a_gif_disguised_as_png_is_refused(client: Client) -> None:
    reply = create(client, samples.GIF, "png")
    assert_envelope(reply, 400)
    assert reply.error["code"] == "INVALID_FILE_FORMAT"
    assert reply.error["details"] == {"received_format": "png", "detected_format": "gif"}


def test_unknown_job_and_bad_job_id(client: Client) -> None:
    missing = client.request("GET", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60")
    malformed = client.request("GET", "/api/v1/jobs/not-a-job")
    assert_envelope(missing, 404)
    assert missing.error["code"] == "JOB_NOT_FOUND"
    assert_envelope(malformed, 400)
    assert malformed.error["code"] == "INVALID_JOB_ID"


def test_unknown_route_and_wrong_method(client: Client) -> None:
    unknown = client.request("GET", "/api/v1/nothing-here")
    wrong = client.request("PUT", "/api/v1/jobs")
    assert_envelope(unknown, 404)
    assert unknown.error["code"] == "NOT_FOUND"
    assert_envelope(wrong, 405)
    assert wrong.error["code"] == "METHOD_NOT_ALLOWED"
    assert wrong.headers["allow"] == "GET, POST, OPTIONS"
