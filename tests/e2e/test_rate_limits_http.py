"""The per-client rate limit over real HTTP: a local API started with a small budget (RATE_LIMIT_* as
``make run`` takes them: two at once, one a minute, so a slow machine cannot refill it mid-test),
refusing the third upload with 429 and every header, and a browser allowed to read them (CORS)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import LOCAL_KEYS, ORIGIN, Client, LocalServer, start_local_server, stop_local_server

pytestmark = pytest.mark.e2e

UPLOAD = {"filename": "plan.png", "format": "png", "size": 1000}


@pytest.fixture(scope="module")
def small_budget() -> Iterator[LocalServer]:
    from local_api.server import free_port

    server = start_local_server(free_port(), {"RATE_LIMIT_PER_MINUTE": "1", "RATE_LIMIT_BURST": "2"})
    yield server
    stop_local_server(server)


def test_over_budget_is_429_with_retry_after_and_the_ratelimit_fields(small_budget: LocalServer) -> None:
    alice, bob = Client(small_budget.url, LOCAL_KEYS[0]), Client(small_budget.url, LOCAL_KEYS[1])
    try:
        replies = [alice.json("POST", "/api/v1/uploads", UPLOAD, {"Origin": ORIGIN}) for _ in range(3)]
        other = bob.json("POST", "/api/v1/uploads", UPLOAD)
    finally:
        alice.close()
        bob.close()

    assert [r.status for r in replies] == [201, 201, 429], "two at once, then refused"
    refused = replies[2]
    assert refused.json["error"]["code"] == "RATE_LIMITED"
    assert [r.headers["ratelimit-policy"] for r in replies] == ['"uploads";q=2;w=120'] * 3
    assert replies[0].headers["ratelimit"] == '"uploads";r=1;t=60', "one a minute: the next in 60 s"
    remaining = [re.fullmatch(r'"uploads";r=(\d+);t=(\d+)', r.headers["ratelimit"]) for r in replies[1:]]
    assert all(remaining), [r.headers["ratelimit"] for r in replies]
    assert [int(m[1]) for m in remaining if m] == [0, 0]
    wait = int(refused.headers["retry-after"])
    assert 50 <= wait <= 60, "whole seconds until the next would pass"
    refused_limit = remaining[1]
    assert refused_limit is not None
    assert int(refused_limit[2]) == wait, "t is Retry-After on a 429"
    exposed = {h.strip().lower() for h in refused.headers["access-control-expose-headers"].split(",")}
    assert {"ratelimit-policy", "ratelimit", "retry-after"} <= exposed
    assert (other.status, other.headers["ratelimit"]) == (201, '"uploads";r=1;t=60'), "another client's own budget"
    assert json.loads(refused.raw)["meta"]["request_id"] == refused.headers["x-request-id"]
