"""Injected AWS failures: bounded retries, 503 with Retry-After, and storage left consistent."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack
from tests import samples
from tests.conftest import API_KEY, create_body, invoke, invoke_event
from tests.faults import FaultyClient, client_error, connection_error, server_error, throttled
from tests.integration.test_jobs_api import assert_error, create, stored_jobs, stored_keys
from utils import aws as aws_clients
from utils import retry


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(retry, "sleeper", fake.sleep)
    monkeypatch.setattr(retry, "now", fake)
    return fake


def inject(service: str, **kwargs: Any) -> FaultyClient:
    faulty = FaultyClient(boto3.client(service, region_name="us-east-1"), **kwargs)
    aws_clients.set_client(service, faulty)
    return faulty


@pytest.mark.parametrize("fault", [throttled, server_error, connection_error], ids=["throttle", "5xx", "connection"])
def test_record_write_failing_for_good_is_503_and_leaves_no_object(
    s3: Any, dynamodb: Any, clock: FakeClock, fault: Any
) -> None:
    table = inject("dynamodb", always={"put_item": fault})

    reply = create(samples.png())

    assert_error(reply, 503, "SERVICE_UNAVAILABLE")
    assert int(reply.headers["Retry-After"]) >= 1
    assert 2 <= table.calls["put_item"] <= 5, "bounded retries: 1 attempt + 3..4 retries"
    assert sum(clock.sleeps) < 25, "retries never sleep past the Lambda's remaining time"
    assert stored_keys(s3) == [], "the uploaded blueprint was deleted"
    assert stored_jobs(dynamodb) == []


def test_record_write_refused_is_500_and_leaves_no_object(s3: Any, dynamodb: Any, clock: FakeClock) -> None:
    inject("dynamodb", always={"put_item": lambda: client_error("AccessDeniedException", 400, "PutItem")})

    reply = create(samples.png())

    assert_error(reply, 500, "INTERNAL_ERROR")
    assert "AccessDenied" not in reply.raw["body"]
    assert clock.sleeps == [], "non-retryable errors are not retried"
    assert stored_keys(s3) == []


def test_transient_failures_are_retried_to_success(s3: Any, dynamodb: Any, clock: FakeClock) -> None:
    inject("dynamodb", faults={"put_item": [throttled(), server_error()]})
    inject("s3", faults={"put_object": [connection_error()]})

    reply = create(samples.png())

    assert reply.status == 201
    assert len(clock.sleeps) == 3
    assert stored_keys(s3) == [reply.data["blueprint_s3_key"]]
    assert len(stored_jobs(dynamodb)) == 1


def test_blueprint_upload_failing_is_503_and_writes_no_record(s3: Any, dynamodb: Any, clock: FakeClock) -> None:
    inject("s3", always={"put_object": connection_error})

    assert_error(create(samples.png()), 503, "SERVICE_UNAVAILABLE")
    assert stored_keys(s3) == []
    assert stored_jobs(dynamodb) == []


def test_when_cleanup_also_fails_the_orphan_is_logged_for_the_lifecycle_rule(
    s3: Any, dynamodb: Any, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    inject("dynamodb", always={"put_item": throttled})
    inject("s3", always={"delete_object": server_error})

    assert_error(create(samples.png()), 503, "SERVICE_UNAVAILABLE")

    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    orphan = [line for line in logs if line["message"] == "could not delete the blueprint of an unrecorded job"]
    assert len(orphan) == 1
    assert orphan[0]["s3_key"] == stored_keys(s3)[0]
    assert stored_jobs(dynamodb) == []


def test_a_record_write_that_landed_before_its_connection_dropped_counts_once(
    s3: Any, dynamodb: Any, clock: FakeClock
) -> None:
    real = boto3.client("dynamodb", region_name="us-east-1")

    class LandsThenDrops(FaultyClient):
        dropped = False

        def put_item(self, **kwargs: Any) -> Any:
            result = real.put_item(**kwargs)
            if not self.dropped:
                self.dropped = True
                raise connection_error()
            return result

    aws_clients.set_client("dynamodb", LandsThenDrops(real))

    reply = create(samples.png())

    assert reply.status == 201
    assert [job["job_id"]["S"] for job in stored_jobs(dynamodb)] == [reply.data["job_id"]]
    assert stored_keys(s3) == [reply.data["blueprint_s3_key"]]


def test_an_upload_that_landed_before_its_connection_dropped_counts_once(s3: Any, clock: FakeClock) -> None:
    real = boto3.client("s3", region_name="us-east-1")

    class LandsThenDrops(FaultyClient):
        dropped = False

        def put_object(self, **kwargs: Any) -> Any:
            result = real.put_object(**kwargs)
            if not self.dropped:
                self.dropped = True
                raise connection_error()
            return result

    aws_clients.set_client("s3", LandsThenDrops(real))

    reply = create(samples.png())

    assert reply.status == 201
    assert stored_keys(s3) == [reply.data["blueprint_s3_key"]]


def test_reads_and_cancels_answer_503_when_dynamodb_is_down(aws: Stack, clock: FakeClock) -> None:
    job_id = create(samples.png()).data["job_id"]
    inject("dynamodb", always={"get_item": throttled})
    assert_error(invoke("GET", f"/api/v1/jobs/{job_id}"), 503, "SERVICE_UNAVAILABLE")
    assert_error(invoke("DELETE", f"/api/v1/jobs/{job_id}"), 503, "SERVICE_UNAVAILABLE")


def test_a_failing_cancel_write_leaves_the_job_pending(aws: Stack, clock: FakeClock) -> None:
    job_id = create(samples.png()).data["job_id"]
    inject("dynamodb", always={"update_item": server_error})

    assert_error(invoke("DELETE", f"/api/v1/jobs/{job_id}"), 503, "SERVICE_UNAVAILABLE")

    aws_clients.reset_clients()
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "pending"


def test_retries_stop_at_the_lambda_deadline(aws: Stack, clock: FakeClock) -> None:
    from local_api.server import build_event

    table = inject("dynamodb", always={"put_item": throttled})
    event = build_event(
        "POST",
        "/api/v1/jobs",
        [("content-type", "application/json"), ("x-api-key", API_KEY)],
        json.dumps(create_body(samples.png())).encode(),
    )

    reply = invoke_event(event, remaining_seconds=4)

    assert reply.status == 503
    # 4 s left, 1 s kept for the response: at most the 0.5-1 s and 1-2 s retries fit.
    assert sum(clock.sleeps) <= 3.0
    assert table.calls["put_item"] <= 3


def test_an_unexpected_exception_is_500_without_details(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.job_service import JobService

    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError("table location-detection-dev-jobs secret=hunter2")

    monkeypatch.setattr(JobService, "get_job", explode)

    reply = invoke("GET", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60")

    error = assert_error(reply, 500, "INTERNAL_ERROR")
    assert error["message"] == "An unexpected error occurred"
    assert "hunter2" not in reply.raw["body"]
    assert "location-detection" not in reply.raw["body"]


def test_missing_settings_are_500_and_name_nothing(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from api import rest_api

    monkeypatch.delenv("JOBS_TABLE")
    rest_api.reset_dependencies()

    reply = invoke("GET", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60")

    assert reply.status == 500
    assert reply.error["code"] == "INTERNAL_ERROR"
    assert "JOBS_TABLE" not in reply.raw["body"]


def test_parameter_store_outage_serves_cached_config_then_503_when_nothing_is_cached(
    aws: Stack, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api import rest_api

    assert create(samples.png()).status == 201  # config loaded and cached
    inject("ssm", always={"get_parameters_by_path": server_error})
    monkeypatch.setattr("utils.config.CONFIG_TTL_SECONDS", 0.0)
    assert create(samples.png(extra=b"2")).status == 201, "cached configuration keeps serving"

    rest_api.reset_dependencies()  # a new container: nothing cached
    inject("ssm", always={"get_parameters_by_path": server_error})
    reply = create(samples.png(extra=b"3"))
    assert_error(reply, 503, "SERVICE_UNAVAILABLE")
    assert "Access-Control-Allow-Origin" in reply.headers
