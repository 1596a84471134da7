"""Time, moved by the test: expiry of jobs and previews, cache lifetimes, and the lifetime of presigned URLs.

``utils.clock`` is where the Lambda reads the time; the ``machine`` fixture replaces its sources, so the
whole handler (services, caches, request ids) lives at a moment the test chooses, and nothing sleeps.
Each expiry is checked on both sides of its edge: one tick before it the thing is there, at it it is
gone. DynamoDB (moto, like AWS for up to two days) still holds the expired items throughout.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests

from api.dependencies import get as get_dependencies
from local_api.cfn_template import Stack
from local_api.provision import provision_api_keys
from models.job import JOB_TTL_SECONDS
from services.previews import PREVIEW_TTL_SECONDS
from tests import samples
from tests.conftest import API_KEY, OTHER_API_KEY, TEST_KEYS, invoke
from tests.integration.test_jobs_api import JOBS, assert_error, create
from utils import clock, retry
from utils.clock import iso_utc
from utils.config import CONFIG_TTL_SECONDS
from utils.secrets import SECRET_TTL_SECONDS

PREVIEWS = "location-detection-dev-preview_cache"
PARAMETERS = "/location-detection/dev/"
RESULT: dict[str, Any] = {
    "rooms": [{"id": "r1", "label": "hall", "bounding_box": [0, 0, 5, 5]}],
    "model_version": "m-7",
}
#: The contract: presigned uploads live 15 minutes (the ``presign-expiry-seconds`` default).
CONTRACT_PRESIGN_SECONDS = 15 * 60
#: Less than any step of the clocks that could matter (a millisecond).
TICK = 0.001


class TimeMachine:
    """The Lambda's wall and monotonic clocks, moving together only when the test says so."""

    def __init__(self) -> None:
        self.start = float(int(time.time()))
        self.elapsed = 0.0

    def wall(self) -> float:
        return self.start + self.elapsed

    def monotonic(self) -> float:
        return 50_000.0 + self.elapsed

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "monotonic time never goes back"
        self.elapsed += seconds

    def to_wall(self, epoch_seconds: float) -> None:
        self.advance(epoch_seconds - self.wall())


@pytest.fixture
def machine(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> TimeMachine:
    moved = TimeMachine()
    monkeypatch.setattr(clock, "wall_source", moved.wall)
    monkeypatch.setattr(clock, "monotonic_source", moved.monotonic)
    monkeypatch.setattr(retry, "sleeper", moved.advance)  # a retry, if any, waits on the same clock
    return moved


def raw_item(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(TableName=table, Key=key, ConsistentRead=True)
    return item.get("Item")


def listed_ids() -> list[str]:
    reply = invoke("GET", "/api/v1/jobs?limit=100")
    assert reply.status == 200, reply.body
    return [job["job_id"] for job in reply.data["jobs"]]


def set_parameter(name: str, value: str) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name=PARAMETERS + name, Value=value, Type="String", Overwrite=True)


def processing_job(content: bytes) -> dict[str, Any]:
    reply = create(content)
    assert reply.status == 201, reply.body
    get_dependencies().job_service().start_processing(reply.data["job_id"])
    return dict(reply.data)


# ------------------------------------------------------------------------------------------ expiry
def test_a_job_past_its_seven_days_is_absent_on_get_and_in_the_list_though_dynamodb_keeps_it(
    machine: TimeMachine,
) -> None:
    created = create(samples.png())
    assert created.status == 201
    job = created.data
    assert job["created_at"] == iso_utc(machine.wall())
    item = raw_item(JOBS, {"job_id": {"S": job["job_id"]}})
    assert item is not None
    expires_at = int(item["expires_at"]["N"])
    assert expires_at == int(machine.wall()) + JOB_TTL_SECONDS == int(machine.wall()) + 7 * 24 * 3600

    machine.to_wall(expires_at - TICK)
    assert invoke("GET", f"/api/v1/jobs/{job['job_id']}").data == job
    assert listed_ids() == [job["job_id"]]

    machine.to_wall(expires_at)
    assert_error(invoke("GET", f"/api/v1/jobs/{job['job_id']}"), 404, "JOB_NOT_FOUND")
    assert listed_ids() == []
    assert_error(invoke("DELETE", f"/api/v1/jobs/{job['job_id']}"), 404, "JOB_NOT_FOUND")
    assert raw_item(JOBS, {"job_id": {"S": job["job_id"]}}) == item, "DynamoDB has not deleted it (nor have we)"


def test_a_preview_past_its_hour_is_not_offered(machine: TimeMachine) -> None:
    content = samples.png(extra=b"seen before")
    first = processing_job(content)
    get_dependencies().job_service().complete_job(first["job_id"], RESULT)
    completed_at = int(machine.wall())
    preview_key = {"blueprint_hash": {"S": f"cli_alice#{first['blueprint_hash']}"}}
    entry = raw_item(PREVIEWS, preview_key)
    assert entry is not None
    assert int(entry["expires_at"]["N"]) == completed_at + PREVIEW_TTL_SECONDS == completed_at + 3600

    machine.to_wall(completed_at + PREVIEW_TTL_SECONDS - TICK)
    again = create(content)
    assert again.status == 201
    assert again.data["preview"] == {"rooms": RESULT["rooms"], "model_version": "m-7", "cached": True}

    machine.to_wall(completed_at + PREVIEW_TTL_SECONDS)
    late = create(content)
    assert late.status == 201
    assert "preview" not in late.data
    assert raw_item(PREVIEWS, preview_key) == entry, "still in DynamoDB"


# -------------------------------------------------------------------------------------------- caches
def test_the_api_keys_are_read_again_five_minutes_after_they_were_cached(aws: Stack, machine: TimeMachine) -> None:
    new_key = "ldk_test_key_of_carol"
    assert invoke("GET", "/api/v1/jobs", api_key=OTHER_API_KEY).status == 200  # the keys are cached now
    # Rotate: Carol's key is added, Bob's revoked.
    provision_api_keys(aws, {API_KEY: TEST_KEYS[API_KEY], new_key: ("cli_carol", "Carol")})

    machine.advance(SECRET_TTL_SECONDS - TICK)
    assert_error(invoke("GET", "/api/v1/jobs", api_key=new_key), 401, "UNAUTHORIZED")
    assert invoke("GET", "/api/v1/jobs", api_key=OTHER_API_KEY).status == 200, "revoked, but not yet seen"

    machine.advance(TICK)
    assert invoke("GET", "/api/v1/jobs", api_key=new_key).status == 200
    assert_error(invoke("GET", "/api/v1/jobs", api_key=OTHER_API_KEY), 401, "UNAUTHORIZED")
    assert SECRET_TTL_SECONDS == 300


def test_the_configuration_is_read_again_a_minute_after_it_was_cached(machine: TimeMachine) -> None:
    def max_bytes() -> int:
        reply = invoke("POST", "/api/v1/uploads", json_body={"filename": "a.png", "format": "png", "size": 10})
        assert reply.status == 201, reply.body
        return int(reply.data["max_bytes"])

    assert max_bytes() == 50 * 1024 * 1024  # the configuration is cached now
    set_parameter("max-upload-bytes", "1000000")

    machine.advance(CONFIG_TTL_SECONDS - TICK)
    assert max_bytes() == 50 * 1024 * 1024

    machine.advance(TICK)
    assert max_bytes() == 1_000_000
    assert CONFIG_TTL_SECONDS == 60


# ---------------------------------------------------------------------------------- presigned URLs
def amz_time(value: str) -> float:
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


def iso_time(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("parameter", "seconds"), [(None, CONTRACT_PRESIGN_SECONDS), ("300", 300)])
def test_a_presigned_upload_expires_when_promised(aws: Stack, parameter: str | None, seconds: int) -> None:
    if parameter is not None:
        set_parameter("presign-expiry-seconds", parameter)  # before the first request: nothing is cached
    before = time.time()

    reply = invoke("POST", "/api/v1/uploads", json_body={"filename": "plan.png", "format": "png", "size": 100})

    after = time.time()
    assert reply.status == 201, reply.body
    fields = reply.data["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    expiration = iso_time(policy["expiration"])
    signed_at = amz_time(fields["x-amz-date"])
    assert int(before) <= signed_at <= after
    assert expiration - signed_at == seconds, "the policy lives exactly as long as configured"
    assert abs(iso_time(reply.data["expires_at"]) - expiration) <= 1, "and the API says when it ends"


@pytest.mark.parametrize(("parameter", "seconds"), [(None, CONTRACT_PRESIGN_SECONDS), ("120", 120)])
def test_a_result_url_expires_when_promised(aws: Stack, parameter: str | None, seconds: int) -> None:
    if parameter is not None:
        set_parameter("presign-expiry-seconds", parameter)
    job = processing_job(samples.png(extra=b"result url"))
    get_dependencies().job_service().complete_job(job["job_id"], RESULT)
    before = time.time()

    url = invoke("GET", f"/api/v1/jobs/{job['job_id']}").data["result_url"]

    after = time.time()
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256", "SigV4: the expiry is relative to X-Amz-Date"
    assert int(query["X-Amz-Expires"]) == seconds
    assert int(before) <= amz_time(query["X-Amz-Date"]) <= after
    assert requests.get(url, timeout=10).json() == RESULT
