"""``ldclient`` against a local API with a small rate limit (``RATE_LIMIT_PER_MINUTE=6``,
``RATE_LIMIT_BURST=1``, provisioned as the stack's parameters): the 429s and their ``Retry-After`` (up
to 10 s: one request every ten seconds, far longer than ldclient takes to start) are the API's own. A
recording proxy (test_ldclient's, with no faults) sees every create's key, answer and Retry-After. Each
test first spends the route's budget with a body the API refuses (a 400 spends, and makes no job).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldclient import Client as LdClient
from tests import samples
from tests.e2e.conftest import API_KEY, Client, LocalServer, start_local_server, stop_local_server
from tests.e2e.test_ldclient import FaultyProxy, _file, ldclient, serving

pytestmark = pytest.mark.e2e

SECONDS_PER_REQUEST = 10


@pytest.fixture(scope="module")
def small_budget() -> Iterator[LocalServer]:
    from local_api.server import free_port

    budget = {"RATE_LIMIT_PER_MINUTE": str(60 // SECONDS_PER_REQUEST), "RATE_LIMIT_BURST": "1"}
    server = start_local_server(free_port(), budget)
    yield server
    stop_local_server(server)


@pytest.fixture
def recorder(small_budget: LocalServer) -> Iterator[tuple[FaultyProxy, str]]:
    proxy = FaultyProxy(small_budget.url, faults=[])
    with serving(proxy) as url:
        yield proxy, url


def _spend(server: LocalServer, route: str) -> int:
    """Spends ``route``'s budget of API_KEY until a 429; returns its Retry-After."""
    client = Client(server.url, API_KEY)
    try:
        for _ in range(20):
            reply = client.json("POST", f"/api/v1/{route}", {"not": "a valid body"})
            if reply.status == 429:
                return int(reply.headers["retry-after"])
            assert reply.status == 400, reply.json
    finally:
        client.close()
    raise AssertionError(f"the {route} budget was never spent")


def _jobs_with_hash(server: LocalServer, path: Path) -> list[str]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with LdClient(server.url, API_KEY) as api:
        return [job["job_id"] for job in api.list_jobs(page_size=100) if job["blueprint_hash"] == digest]


def test_a_create_meeting_429_waits_retry_after_and_makes_one_job(
    small_budget: LocalServer, recorder: tuple[FaultyProxy, str], tmp_path: Path
) -> None:
    proxy, url = recorder
    plan = _file(tmp_path, "throttled.png", samples.png(extra=os.urandom(8)))
    # The refusal right after the budget's last allowed request: the whole refill rounded up, or a second
    # less when a busy machine took a second or more between the two requests.
    assert _spend(small_budget, "jobs") in (SECONDS_PER_REQUEST, SECONDS_PER_REQUEST - 1)
    spent_at = time.monotonic()  # the budget's last request was allowed just before this

    run = ldclient("--json", "submit", str(plan), url=url)

    assert run.code == 0, run.stderr
    assert proxy.answers == [429, 201]
    retry_after = int(proxy.retry_after[0] or 0)
    (first, key), (second, again) = proxy.attempts
    # What is left of the refill when the client's create arrived (its whole seconds, rounded up; one
    # less when the last allowed request came a moment before spent_at).
    left = math.ceil(SECONDS_PER_REQUEST - (first - spent_at))
    assert retry_after in (left, left - 1), (retry_after, left)
    assert key == again, "one Idempotency-Key for both attempts"
    assert second - first >= retry_after - 0.05, "Retry-After waited"
    assert run.json[0]["replayed"] is False, "a 429 is never kept as the key's answer: the retry ran"
    assert _jobs_with_hash(small_budget, plan) == [run.json[0]["job"]["job_id"]]


def test_a_presigned_create_whose_upload_request_meets_429_makes_one_job(
    small_budget: LocalServer, tmp_path: Path
) -> None:
    plan = _file(tmp_path, "throttled-upload.png", samples.png(extra=os.urandom(8)))
    _spend(small_budget, "uploads")

    run = ldclient("--json", "submit", str(plan), "--upload", "presigned", url=small_budget.url)

    assert run.code == 0, run.stderr
    assert run.json[0]["upload"] == "presigned"
    assert run.json[0]["job"]["blueprint_hash"] == hashlib.sha256(plan.read_bytes()).hexdigest()
    assert _jobs_with_hash(small_budget, plan) == [run.json[0]["job"]["job_id"]]


def test_retries_exhausted_exit_3_with_rate_limited(
    small_budget: LocalServer, recorder: tuple[FaultyProxy, str], tmp_path: Path
) -> None:
    proxy, url = recorder
    plan = _file(tmp_path, "refused.png", samples.png(extra=os.urandom(8)))
    _spend(small_budget, "jobs")

    run = ldclient("--json", "--retries", "1", "submit", str(plan), url=url)

    assert run.code == 3, "still refused after the retries: the API unavailable for now"
    error = run.json[0]["error"]
    assert (error["status"], error["code"]) == (429, "RATE_LIMITED")
    assert error["request_id"].startswith("req_")
    assert proxy.answers == [429], "one attempt, as --retries 1 asks"
    _spend(small_budget, "jobs")
    human = ldclient("--retries", "1", "submit", str(plan), url=url)
    assert human.code == 3
    assert "RATE_LIMITED" in human.stdout
    assert _jobs_with_hash(small_budget, plan) == [], "a refused create made no job"
