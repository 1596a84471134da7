"""Injected AWS failures: bounded retries, 503 with Retry-After, and storage left consistent."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack
from local_api.provision import provision_api_keys
from services.upload_service import CLAIM_LAPSE_SECONDS
from tests import samples
from tests.conftest import API_KEY, OTHER_API_KEY, TEST_KEYS, Reply, create_body, invoke, invoke_event
from tests.faults import (
    DROPPED,
    THROTTLE,
    CallLog,
    FaultyClient,
    StepFault,
    client_error,
    connection_error,
    server_error,
    throttled,
)
from tests.integration.conftest import FakeClock
from tests.integration.test_jobs_api import assert_error, create, stored_jobs, stored_keys
from utils import aws as aws_clients
from utils import clock as utils_clock
from utils.cache import STALE_RETRY_SECONDS
from utils.config import CONFIG_TTL_SECONDS
from utils.secrets import SECRET_TTL_SECONDS


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

    aws_clients.set_client("dynamodb", FaultyClient(real, landed={"put_item": [connection_error()]}))

    reply = create(samples.png())

    assert reply.status == 201
    assert [job["job_id"]["S"] for job in stored_jobs(dynamodb)] == [reply.data["job_id"]]
    assert stored_keys(s3) == [reply.data["blueprint_s3_key"]]


def test_an_upload_that_landed_before_its_connection_dropped_counts_once(s3: Any, clock: FakeClock) -> None:
    real = boto3.client("s3", region_name="us-east-1")

    aws_clients.set_client("s3", FaultyClient(real, landed={"put_object": [connection_error()]}))

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
    from api import dependencies

    monkeypatch.delenv("JOBS_TABLE")
    dependencies.reset()

    reply = invoke("GET", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60")

    assert reply.status == 500
    assert reply.error["code"] == "INTERNAL_ERROR"
    assert "JOBS_TABLE" not in reply.raw["body"]


# --------------------------------------------------------------- Parameter Store and Secrets Manager
@pytest.fixture
def cache_clock(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The config and secrets caches age on the fake clock too (and so do the retries' sleeps)."""
    monkeypatch.setattr(utils_clock, "monotonic_source", clock)
    return clock


def assert_unavailable(reply: Reply) -> None:
    assert_error(reply, 503, "SERVICE_UNAVAILABLE")
    assert int(reply.headers["Retry-After"]) >= 1
    assert "Access-Control-Allow-Origin" in reply.headers
    assert "injected" not in reply.raw["body"]


def test_parameter_store_outage_serves_cached_config_then_503_when_nothing_is_cached(
    aws: Stack, cache_clock: FakeClock
) -> None:
    from api import dependencies

    assert create(samples.png()).status == 201  # config loaded and cached
    ssm = inject("ssm", always={"get_parameters_by_path": server_error})
    assert create(samples.png(extra=b"1")).status == 201
    assert ssm.calls == {}, "a fresh configuration is not read again"

    cache_clock.now += CONFIG_TTL_SECONDS
    reload_started = cache_clock.now
    assert create(samples.png(extra=b"2")).status == 201, "expired, unreadable: the cached configuration serves"
    assert ssm.calls["get_parameters_by_path"] == 2, "one attempt and one retry"
    cache_clock.now = reload_started + STALE_RETRY_SECONDS - 0.1
    assert create(samples.png(extra=b"3")).status == 201
    assert ssm.calls["get_parameters_by_path"] == 2, "no reload before the stale value's 30 s are up"
    cache_clock.now = reload_started + STALE_RETRY_SECONDS
    assert create(samples.png(extra=b"4")).status == 201
    assert ssm.calls["get_parameters_by_path"] == 4, "then it tries again"

    dependencies.reset()  # a new container: nothing cached
    inject("ssm", always={"get_parameters_by_path": server_error})
    assert_unavailable(create(samples.png(extra=b"5")))


@pytest.mark.parametrize("fault", [throttled, server_error, connection_error], ids=["throttle", "5xx", "connection"])
def test_secrets_manager_outage_with_nothing_cached_is_503_on_every_authenticated_route(
    aws: Stack, clock: FakeClock, fault: Any
) -> None:
    """The API keys cannot be checked: 503 (retry later), neither 401 (the key may well be valid) nor 500."""
    secrets_manager = inject("secretsmanager", always={"get_secret_value": fault})

    assert_unavailable(create(samples.png()))
    assert_unavailable(invoke("GET", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60"))
    assert_unavailable(invoke("GET", "/api/v1/jobs"))
    assert_unavailable(invoke("DELETE", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60"))
    assert_unavailable(invoke("POST", "/api/v1/uploads", json_body={"filename": "a.png", "format": "png", "size": 9}))
    assert_unavailable(invoke("GET", "/api/v1/jobs", api_key="ldk_not_a_key_anyone_has"))
    assert secrets_manager.calls["get_secret_value"] == 6 * 3, "each request: one attempt and two retries"
    assert sum(clock.sleeps) < 6 * 2, "short retries: the secret is small and the client is waiting"
    health = invoke("GET", "/health")  # no key needed, and it tells the truth: requests would fail
    assert (health.status, health.data["status"]) == (503, "unhealthy")
    assert health.data["services"]["secret"]["status"] == "unhealthy"
    assert_error(invoke("GET", "/api/v1/jobs", api_key=None), 401, "UNAUTHORIZED")  # no key: no need to look

    aws_clients.reset_clients()  # Secrets Manager is back
    assert create(samples.png()).status == 201


def test_secrets_manager_outage_with_the_keys_cached_keeps_serving_them_even_once_expired(
    aws: Stack, cache_clock: FakeClock
) -> None:
    assert create(samples.png()).status == 201  # the keys are cached
    secrets_manager = inject("secretsmanager", always={"get_secret_value": server_error})

    cache_clock.now += SECRET_TTL_SECONDS - 0.1
    assert invoke("GET", "/api/v1/jobs").status == 200
    assert secrets_manager.calls == {}, "fresh keys are not read again"

    cache_clock.now += 0.1
    reload_started = cache_clock.now
    assert create(samples.png(extra=b"stale")).status == 201, "expired, unreadable: the cached keys serve"
    assert secrets_manager.calls["get_secret_value"] == 3
    assert_error(invoke("GET", "/api/v1/jobs", api_key="ldk_not_a_key_anyone_has"), 401, "UNAUTHORIZED")
    assert invoke("GET", "/api/v1/jobs", api_key=OTHER_API_KEY).status == 200

    cache_clock.now = reload_started + STALE_RETRY_SECONDS - 0.1
    assert invoke("GET", "/api/v1/jobs").status == 200
    assert secrets_manager.calls["get_secret_value"] == 3, "no reload before the stale value's 30 s are up"

    # Secrets Manager is back, with Bob's key revoked meanwhile: seen at the next reload.
    aws_clients.reset_clients()
    provision_api_keys(aws, {API_KEY: TEST_KEYS[API_KEY]})
    assert invoke("GET", "/api/v1/jobs", api_key=OTHER_API_KEY).status == 200, "still the stale keys"
    cache_clock.now = reload_started + STALE_RETRY_SECONDS
    assert_error(invoke("GET", "/api/v1/jobs", api_key=OTHER_API_KEY), 401, "UNAUTHORIZED")
    assert invoke("GET", "/api/v1/jobs").status == 200


# --------------------------------------------------------------------------------------- Idempotency-Key
def install(log: CallLog) -> None:
    for service in ("dynamodb", "s3", "ssm", "secretsmanager"):
        aws_clients.set_client(service, log.wrap(service, boto3.client(service, region_name="us-east-1")))


def test_an_idempotent_create_whose_first_write_landed_unseen_runs_once(
    s3: Any, dynamodb: Any, clock: FakeClock
) -> None:
    """The Idempotency-Key record's write lands, its response is lost, its retry finds the record: that is
    this request's own record (not another's "in progress"), so the request runs, once."""
    assert create(samples.png()).status == 201  # a warm container: the next call is the record's write
    log = CallLog(StepFault(0, DROPPED, persistent=False))
    install(log)
    headers = {"Idempotency-Key": "plan-7f3a"}

    reply = create(samples.png(extra=b"idem"), headers=headers)

    assert str(log.faulted) == "dynamodb.put_item(jobs)"
    assert reply.status == 201, reply.body
    aws_clients.reset_clients()
    replay = create(samples.png(extra=b"idem"), headers=headers)
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.data["job_id"] == reply.data["job_id"]
    assert len(stored_keys(s3)) == 2


def test_an_idempotent_create_whose_response_could_not_be_kept_still_answers_with_its_job(
    s3: Any, dynamodb: Any, clock: FakeClock
) -> None:
    """The job is made, then keeping the response for replays fails for good. The job exists: answering
    503 sends the client to retry, and (once the record's lock lapses) to make a second job. The fix is
    in ``api.idempotency.run_idempotently``: a failing ``store.finish`` is logged, the response returned."""
    assert invoke("GET", "/api/v1/jobs").status == 200  # a warm container (key and configuration loaded)
    # The create's calls: the key (put), the rate limit (update), the file, the record, the preview, then
    # keeping the response (update): the fifth.
    log = CallLog(StepFault(5, THROTTLE, persistent=True))
    install(log)

    reply = create(samples.png(extra=b"kept?"), headers={"Idempotency-Key": "plan-8e2b"})

    assert str(log.faulted) == "dynamodb.update_item(jobs)"
    assert reply.status == 201, reply.body
    assert reply.data["job_id"] in [item["job_id"]["S"] for item in stored_jobs(dynamodb)]


# ------------------------------------------------------------------------------------------ upload claims
def test_an_upload_whose_claim_could_not_be_given_back_is_finalised_once_the_claim_lapses(
    s3: Any, dynamodb: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finalisation fails after claiming the upload and giving the claim back fails too (or its Lambda
    timed out): the claim is held for two minutes — its finaliser might still be running — then lapses."""
    from tests.integration.test_uploads import claim_items, finalise, job_items, post_file, uploaded  # (a cycle)

    upload = uploaded("png", samples.png(extra=b"lapse"))
    upload_id = upload["upload_id"]
    inject("s3", always={"get_object": throttled}, after={"get_object": 1})  # fails after the claim...
    inject("dynamodb", always={"delete_item": server_error})  # ...and cannot give the claim back

    assert_error(finalise(upload_id), 503, "SERVICE_UNAVAILABLE")
    assert len(claim_items(dynamodb)) == 1

    aws_clients.reset_clients()
    assert_error(finalise(upload_id), 404, "UPLOAD_NOT_FOUND")  # its finaliser might still be running
    monkeypatch.setattr(utils_clock, "wall_source", lambda: time.time() + CLAIM_LAPSE_SECONDS)
    reply = finalise(upload_id)
    assert reply.status == 201, reply.body
    assert [item["claimed_by"]["S"] for item in claim_items(dynamodb)] == [reply.data["job_id"]]
    assert [item["job_id"]["S"] for item in job_items(dynamodb)] == [reply.data["job_id"]]
    assert stored_keys(s3) == [reply.data["blueprint_s3_key"]]

    # A claim whose job was recorded never lapses: the same upload posted again stays used.
    post_file(upload, samples.png(extra=b"lapse"))
    monkeypatch.setattr(utils_clock, "wall_source", lambda: time.time() + 3 * CLAIM_LAPSE_SECONDS)
    assert_error(finalise(upload_id), 404, "UPLOAD_NOT_FOUND")
    assert [item["job_id"]["S"] for item in job_items(dynamodb)] == [reply.data["job_id"]]
