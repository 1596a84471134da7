"""``GET /health`` tells the truth: every dependency a request needs (the jobs table, both buckets, the
secret, the parameters) and the preview cache, checked in parallel with a timeout each; ``degraded``
(200) when a failing dependency's cached value still serves, ``unhealthy`` (503) when requests would fail;
one report per 10 s per container. Before issue 14 it checked the jobs table and one bucket only, and
said ``healthy`` while every authenticated route failed on Secrets Manager or Parameter Store."""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest

from api import dependencies
from local_api.cfn_template import Stack
from services import health
from tests import samples
from tests.conftest import create_body, invoke
from tests.faults import FaultyClient, server_error
from tests.integration.conftest import FakeClock
from utils import aws as aws_clients
from utils import clock as utils_clock

PREVIEWS = "location-detection-dev-preview_cache"


@pytest.fixture
def health_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(utils_clock, "monotonic_source", fake)
    return fake


def inject(service: str, **kwargs: Any) -> FaultyClient:
    faulty = FaultyClient(boto3.client(service, region_name="us-east-1"), **kwargs)
    aws_clients.set_client(service, faulty)
    return faulty


def check() -> tuple[int, str, dict[str, str]]:
    reply = invoke("GET", "/health", api_key=None)
    services = {name: s["status"] for name, s in reply.data["services"].items()}
    return reply.status, reply.data["status"], services


def warm_caches() -> None:
    """One authenticated create: the secret's keys and the runtime configuration are now cached."""
    assert invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"warm"))).status == 201


def test_secrets_manager_down_with_the_keys_cached_is_degraded(aws: Stack, health_clock: FakeClock) -> None:
    warm_caches()
    inject("secretsmanager", always={"get_secret_value": server_error})

    status, overall, services = check()

    assert (status, overall, services["secret"]) == (200, "degraded", "degraded")
    assert invoke("GET", "/api/v1/jobs").status == 200, "and requests do still succeed"


def test_secrets_manager_down_with_nothing_cached_is_unhealthy(aws: Stack, health_clock: FakeClock) -> None:
    inject("secretsmanager", always={"get_secret_value": server_error})
    status, overall, services = check()
    assert (status, overall, services["secret"]) == (503, "unhealthy", "unhealthy")


def test_parameter_store_down_with_the_configuration_cached_is_degraded(aws: Stack, health_clock: FakeClock) -> None:
    warm_caches()
    inject("ssm", always={"get_parameters_by_path": server_error})
    status, overall, services = check()
    assert (status, overall, services["parameters"]) == (200, "degraded", "degraded")


def test_parameter_store_down_with_nothing_cached_is_unhealthy(aws: Stack, health_clock: FakeClock) -> None:
    inject("ssm", always={"get_parameters_by_path": server_error})
    status, overall, services = check()
    assert (status, overall, services["parameters"]) == (503, "unhealthy", "unhealthy")


def test_a_missing_secret_is_unhealthy(aws: Stack, health_clock: FakeClock) -> None:
    boto3.client("secretsmanager", region_name="us-east-1").delete_secret(
        SecretId="location-detection/dev/api-keys", ForceDeleteWithoutRecovery=True
    )
    status, _, services = check()
    assert (status, services["secret"]) == (503, "unhealthy")


def test_the_cache_bucket_gone_is_unhealthy(aws: Stack, s3: Any, health_clock: FakeClock) -> None:
    bucket = aws.function_environment()["CACHE_BUCKET"]
    inject("s3", always={"head_bucket": server_error})
    status, _, services = check()
    assert (status, services["cache_bucket"], services["blueprints_bucket"]) == (503, "unhealthy", "unhealthy")
    assert bucket not in invoke("GET", "/health").raw["body"]


def test_the_preview_cache_gone_is_only_degraded(aws: Stack, dynamodb: Any, health_clock: FakeClock) -> None:
    """Requests create jobs without previews when the cache is down: degraded, not down."""
    dynamodb.delete_table(TableName=PREVIEWS)
    status, overall, services = check()
    assert (status, overall, services["preview_cache"], services["jobs_table"]) == (
        200,
        "degraded",
        "degraded",
        "healthy",
    )


def test_prod_without_a_cursor_signing_key_is_unhealthy(
    aws: Stack, health_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("ENVIRONMENT", "prod")
    dependencies.reset()
    client = boto3.client("secretsmanager", region_name="us-east-1")
    document = json.loads(client.get_secret_value(SecretId="location-detection/dev/api-keys")["SecretString"])
    document.pop("cursor_signing_key", None)
    client.put_secret_value(SecretId="location-detection/dev/api-keys", SecretString=json.dumps(document))

    status, _, services = check()

    assert (status, services["secret"]) == (503, "unhealthy")


def test_one_report_per_ten_seconds_per_container(aws: Stack, health_clock: FakeClock) -> None:
    dynamodb = inject("dynamodb")
    ssm = inject("ssm")

    for _ in range(5):
        check()
    health_clock.now += health.CACHE_SECONDS - 0.1
    check()
    assert (dynamodb.calls.get("get_item"), ssm.calls.get("get_parameters_by_path")) == (2, 1), (
        "one round: the jobs table and the preview cache once each, the parameters once"
    )

    health_clock.now += 0.1
    check()
    assert (dynamodb.calls["get_item"], ssm.calls["get_parameters_by_path"]) == (4, 2)


class SlowClient(FaultyClient):
    """``operation`` hangs for ``seconds``, then answers; once ``released`` (the test is over) it raises
    instead, so that a probe the health check gave up on never reaches AWS after its test."""

    def __init__(self, real: Any, operation: str, seconds: float) -> None:
        super().__init__(real)
        self.operation, self.seconds = operation, seconds
        self.released = threading.Event()

    def __getattr__(self, name: str) -> Any:
        attr = super().__getattr__(name)
        if name != self.operation:
            return attr

        def slow(**kwargs: Any) -> Any:
            if self.released.wait(self.seconds):
                raise ConnectionError("released: the test that hung this call is over")
            return attr(**kwargs)

        return slow


def test_probes_run_in_parallel_and_a_hung_one_times_out(aws: Stack, health_clock: FakeClock) -> None:
    """Both buckets hang for 6 s: in turn, with the 2 s timeout, that would be 4 s; without it, 6; in
    parallel with it, about 2."""
    real_s3 = boto3.client("s3", region_name="us-east-1")
    slow = SlowClient(real_s3, "head_bucket", 6.0)
    aws_clients.set_client("s3", slow)

    started = time.perf_counter()
    try:
        status, _, services = check()
        elapsed = time.perf_counter() - started
    finally:
        slow.released.set()

    assert (status, services["blueprints_bucket"], services["cache_bucket"]) == (503, "unhealthy", "unhealthy")
    assert services["jobs_table"] == "healthy"
    assert health.PROBE_TIMEOUT_SECONDS <= elapsed < 3.9, f"{elapsed:.2f} s: not in parallel, or no timeout"


def test_concurrent_checks_share_one_round(aws: Stack, health_clock: FakeClock) -> None:
    ssm = inject("ssm")
    threads = [threading.Thread(target=check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ssm.calls["get_parameters_by_path"] == 1
