"""events/*.json, the samples `sam local invoke -e` takes, go through lambda_handler so they never rot."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from local_api.cfn_template import Stack
from local_api.server import ROUTES, build_event
from tests.conftest import EVENTS, Reply, invoke_event, load_event
from tests.samples import png

SAMPLE_JOB_ID = "job_20261121T231500_9f2c4e7a1b3d5f60"
SAMPLES = sorted(path.name for path in EVENTS.glob("*.json"))


def with_job_id(event: dict[str, Any], job_id: str) -> dict[str, Any]:
    """The sample event for another job: the id replaced wherever API Gateway puts the path."""
    changed = copy.deepcopy(event)
    http = changed["requestContext"]["http"]
    for holder, key in ((changed, "rawPath"), (http, "path"), (changed["pathParameters"], "proxy")):
        assert SAMPLE_JOB_ID in holder[key], f"{key} does not carry the sample job id"
        holder[key] = holder[key].replace(SAMPLE_JOB_ID, job_id)
    return changed


def create_sample_job() -> Reply:
    reply = invoke_event(load_event("create_job.json"))
    assert reply.status == 201, reply.body
    return reply


# ------------------------------------------------------------------------------------ the files
def test_the_five_sample_events_exist() -> None:
    assert set(SAMPLES) >= {"health.json", "create_job.json", "get_job.json", "cancel_job.json", "preflight.json"}


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_event_has_the_payload_2_0_shape(name: str, stack: Stack) -> None:
    event = load_event(name)
    http = event["requestContext"]["http"]
    reference = build_event(http["method"], event["rawPath"], list(event["headers"].items()), b"")
    routes = {route["Properties"]["RouteKey"] for route in stack.of_type("AWS::ApiGatewayV2::Route").values()}

    assert event["version"] == "2.0"
    assert event.keys() - {"body"} == reference.keys()
    assert event["requestContext"].keys() == reference["requestContext"].keys()
    assert http.keys() == reference["requestContext"]["http"].keys()
    assert event["routeKey"] == event["requestContext"]["routeKey"] == reference["routeKey"]
    assert event["routeKey"] in routes, "API Gateway would not route this event to the function"
    assert set(ROUTES) == routes, "local_api.server.ROUTES are the template's routes"
    assert http["path"] == event["rawPath"]
    assert all(header == header.lower() for header in event["headers"])


def test_create_job_sample_carries_a_real_png() -> None:
    event = load_event("create_job.json")
    blueprint = json.loads(event["body"])["blueprint"]

    assert event["isBase64Encoded"] is False
    assert event["headers"]["content-type"] == "application/json"
    assert int(event["headers"]["content-length"]) == len(event["body"].encode())
    assert base64.b64decode(blueprint["file"]) == png()
    assert (blueprint["format"], blueprint["filename"]) == ("png", "plan.png")


# ------------------------------------------------------------------------------- through the handler
def test_health_sample_reports_healthy(aws: Stack) -> None:
    reply = invoke_event(load_event("health.json"))

    assert reply.status == 200
    assert reply.data["status"] == "healthy"


def test_create_job_sample_creates_a_pending_job(aws: Stack) -> None:
    reply = create_sample_job()
    job = reply.data

    assert reply.headers["Location"] == f"/api/v1/jobs/{job['job_id']}"
    assert job["status"] == "pending"
    assert (job["blueprint_format"], job["blueprint_filename"], job["blueprint_size"]) == (
        "png",
        "plan.png",
        len(png()),
    )


def test_get_job_sample_reads_the_created_job(aws: Stack) -> None:
    created = create_sample_job().data

    reply = invoke_event(with_job_id(load_event("get_job.json"), created["job_id"]))

    assert reply.status == 200
    assert reply.data == created


def test_get_job_sample_as_shipped_names_no_existing_job(aws: Stack) -> None:
    reply = invoke_event(load_event("get_job.json"))

    assert reply.status == 404
    assert reply.error["code"] == "JOB_NOT_FOUND"


def test_cancel_job_sample_cancels_the_created_job(aws: Stack) -> None:
    created = create_sample_job().data

    reply = invoke_event(with_job_id(load_event("cancel_job.json"), created["job_id"]))

    assert reply.status == 200
    assert reply.data["job_id"] == created["job_id"]
    assert reply.data["status"] == "cancelled"


def test_preflight_sample_is_answered_with_cors_headers(aws: Stack) -> None:
    event = load_event("preflight.json")

    reply = invoke_event(event)

    assert reply.status == 204
    assert reply.raw["body"] == ""
    assert reply.headers["Access-Control-Allow-Origin"] in ("*", event["headers"]["origin"])
    assert event["headers"]["access-control-request-method"] in reply.headers["Access-Control-Allow-Methods"]
