"""Per-client rate limits through the handler, against moto (made atomic, as DynamoDB is, by the ``aws``
fixture): the budget under concurrency, clients and routes apart, the headers and ``Retry-After`` at the
edges on a clock the test moves, what spends and what does not, expiry, and the limiter's faults.

The wall clock (``utils.clock.wall_source``) stands still unless a test moves it, so every figure is exact.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from storage.rate_limits import EXPIRY_MARGIN_SECONDS, limit_key
from tests import samples
from tests.conftest import API_KEY, OTHER_API_KEY, Reply, create_body, invoke, set_rate_limit
from tests.emf import emf_documents, json_lines
from tests.faults import FaultyClient, connection_error, server_error, throttled
from tests.integration.test_faults import inject
from tests.integration.test_jobs_api import JOBS, assert_error, stored_jobs
from utils import aws as aws_clients
from utils import clock, retry

#: A whole second near now (metrics carry the wall clock's time, and CloudWatch takes only recent ones).
START = float(int(time.time()))
ALICE, BOB = "cli_alice", "cli_bob"


class Wall:
    """The Lambda's wall clock, moved only by the test (and by retry sleeps, as real time would be)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def wall(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Wall:
    moved = Wall()
    monkeypatch.setattr(clock, "wall_source", moved)
    monkeypatch.setattr(retry, "sleeper", moved.advance)
    return moved


def upload(api_key: str = API_KEY, headers: dict[str, str] | None = None) -> Reply:
    body = {"format": "png", "filename": "plan.png", "size": 100}
    return invoke("POST", "/api/v1/uploads", json_body=body, api_key=api_key, headers=headers)


def create(content: bytes = b"", api_key: str = API_KEY, headers: dict[str, str] | None = None) -> Reply:
    body = create_body(content or samples.png())
    return invoke("POST", "/api/v1/jobs", json_body=body, api_key=api_key, headers=headers)


def limits(reply: Reply) -> tuple[str | None, str | None, str | None]:
    return reply.headers.get("RateLimit-Policy"), reply.headers.get("RateLimit"), reply.headers.get("Retry-After")


def state(client_id: str, group: str) -> dict[str, Any]:
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=JOBS, Key={"job_id": {"S": limit_key(client_id, group)}}, ConsistentRead=True
    )
    return dict(item.get("Item") or {})


def tat_of(client_id: str, group: str) -> int:
    return int(state(client_id, group)["tat"]["N"])


def at(seconds: float) -> int:
    """``START + seconds`` in the store's unit (microseconds)."""
    return round((START + seconds) * 1_000_000)


# ------------------------------------------------------------------------------------------ concurrency
def _race(threads: int, each: int, call: Any) -> list[Reply]:
    barrier, replies, lock = threading.Barrier(threads), [], threading.Lock()

    def run() -> None:
        barrier.wait()
        for _ in range(each):
            reply = call()
            with lock:
                replies.append(reply)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return replies


def test_twenty_threads_on_one_client_never_exceed_the_budget(wall: Wall) -> None:
    set_rate_limit(60, 10)

    replies = _race(20, 3, upload)

    statuses = Counter(r.status for r in replies)
    assert statuses == {201: 10, 429: 50}, "time stands still: exactly the burst, however the threads interleave"
    remaining = sorted(int(r.headers["RateLimit"].split("r=")[1].split(";")[0]) for r in replies if r.status == 201)
    assert remaining == list(range(10)), "each spend saw its own state: no two read the same"
    assert {r.headers["Retry-After"] for r in replies if r.status == 429} == {"1"}
    assert tat_of(ALICE, "uploads") == at(10), "ten spends, each one interval"
    assert limits(upload(OTHER_API_KEY))[1] == '"uploads";r=9;t=1', "the other client is untouched"


def test_twenty_threads_creating_jobs_make_exactly_the_burst_of_jobs(wall: Wall, dynamodb: Any) -> None:
    set_rate_limit(60, 5)

    replies = _race(20, 1, lambda: create(samples.png(extra=threading.current_thread().name.encode())))

    assert Counter(r.status for r in replies) == {201: 5, 429: 15}
    assert sorted(j["job_id"]["S"] for j in stored_jobs(dynamodb)) == sorted(
        r.data["job_id"] for r in replies if r.status == 201
    )


def test_two_clients_are_independent_and_so_are_the_two_routes(wall: Wall) -> None:
    set_rate_limit(60, 2)

    assert [upload().status for _ in range(3)] == [201, 201, 429]
    assert limits(upload(OTHER_API_KEY))[:2] == ('"uploads";q=2;w=2', '"uploads";r=1;t=1')
    assert limits(create())[:2] == ('"jobs";q=2;w=2', '"jobs";r=1;t=1'), "creating jobs is a budget of its own"


# ------------------------------------------------------------------------------------------- the edges
def test_headers_and_retry_after_just_under_at_and_just_over_the_budget_and_after_a_refill(wall: Wall) -> None:
    set_rate_limit(60, 3)  # one a second, three at once

    assert limits(upload()) == ('"uploads";q=3;w=3', '"uploads";r=2;t=1', None)
    assert limits(upload()) == ('"uploads";q=3;w=3', '"uploads";r=1;t=1', None)  # just under the budget
    assert limits(upload()) == ('"uploads";q=3;w=3', '"uploads";r=0;t=1', None)  # at it
    over = upload()  # just over
    assert_error(over, 429, "RATE_LIMITED")
    assert limits(over) == ('"uploads";q=3;w=3', '"uploads";r=0;t=1', "1")
    wall.advance(0.999_999)
    assert limits(upload())[1:] == ('"uploads";r=0;t=1', "1"), "a microsecond short: still refused, wait 1 s"
    wall.advance(0.000_001)
    at_refill = upload()
    assert at_refill.status == 201, "one interval after the burst: one request passes"
    assert limits(at_refill)[1] == '"uploads";r=0;t=1'
    wall.advance(3)  # the whole budget back
    assert limits(upload())[1] == '"uploads";r=2;t=1'
    assert tat_of(ALICE, "uploads") == at(5)


def test_an_interval_of_no_whole_seconds_rounds_every_wait_up(wall: Wall) -> None:
    set_rate_limit(7, 1)  # one every 8.571429 s

    first = upload()
    assert limits(first) == ('"uploads";q=1;w=9', '"uploads";r=0;t=9', None)
    assert limits(upload())[1:] == ('"uploads";r=0;t=9', "9")
    wall.advance(8.571_428)
    assert limits(upload())[1:] == ('"uploads";r=0;t=1', "1"), "a microsecond to go is a second to wait"
    wall.advance(0.000_001)
    assert upload().status == 201


# --------------------------------------------------------------------------------- what spends, and not
def test_a_request_refused_for_its_body_spends(wall: Wall) -> None:
    set_rate_limit(60, 3)

    bad = invoke("POST", "/api/v1/jobs", json_body={"blueprint": {"file": "not base64!"}})

    assert_error(bad, 400, "INVALID_REQUEST")
    assert limits(bad)[:2] == ('"jobs";q=3;w=3', '"jobs";r=2;t=1')
    assert limits(create())[1] == '"jobs";r=1;t=1'


def test_an_idempotent_replay_spends_nothing_and_says_what_is_left(wall: Wall) -> None:
    set_rate_limit(60, 3)
    key = {"Idempotency-Key": "plan-42"}
    content = samples.png(extra=b"replayed")

    first = create(content, headers=key)
    replay = create(content, headers=key)

    assert (first.status, replay.status, replay.headers["Idempotent-Replayed"]) == (201, 201, "true")
    assert limits(first)[1] == limits(replay)[1] == '"jobs";r=2;t=1'
    assert tat_of(ALICE, "jobs") == at(1), "one spend"
    reused = create(samples.png(extra=b"another file"), headers=key)
    assert_error(reused, 422, "IDEMPOTENCY_KEY_REUSED")
    assert limits(reused)[1] == '"jobs";r=2;t=1', "answered by the key's record: nothing spent either"
    wall.advance(10)
    assert limits(create(content, headers=key))[1] == '"jobs";r=3', "a full budget has no reset"
    assert limits(create())[1] == '"jobs";r=2;t=1'


def test_a_429_is_not_kept_as_the_keys_answer(wall: Wall) -> None:
    set_rate_limit(60, 1)
    assert create().status == 201
    key = {"Idempotency-Key": "after-the-wait"}
    content = samples.png(extra=b"later")

    assert_error(create(content, headers=key), 429, "RATE_LIMITED")
    wall.advance(1)
    retried = create(content, headers=key)

    assert retried.status == 201, retried.body
    assert "Idempotent-Replayed" not in retried.headers, "it ran: the 429 pinned nothing"
    assert create(content, headers=key).headers["Idempotent-Replayed"] == "true"


def test_an_unauthenticated_request_has_no_budget_to_report(wall: Wall) -> None:
    reply = upload(api_key="ldk_not_a_key")
    assert_error(reply, 401, "UNAUTHORIZED")
    assert limits(reply) == (None, None, None)


def test_browsers_may_read_both_headers() -> None:
    from api.cors import CORS_EXPOSE_HEADERS

    assert {"RateLimit-Policy", "RateLimit", "Retry-After"} <= {h.strip() for h in CORS_EXPOSE_HEADERS.split(",")}


# ---------------------------------------------------------------------------------------------- expiry
def test_items_are_tiny_and_expire_when_idle(wall: Wall, dynamodb: Any) -> None:
    set_rate_limit(60, 20)
    upload()

    item = state(ALICE, "uploads")
    assert set(item) == {"job_id", "item_type", "tat", "last_spend", "expires_at"}
    assert "cli_alice" not in json.dumps(item), "the client's id is hashed"
    assert len(json.dumps(item)) < 250, "well under 1 KB: one write unit per update"
    assert "owner_id" not in item, "no list or index sees it"
    expires_at = int(item["expires_at"]["N"])
    # The TTL outlives the tat (and any tat a spend of this window can write) by the margin, no more.
    assert expires_at == math.ceil(START + 20) + EXPIRY_MARGIN_SECONDS
    assert expires_at > int(item["tat"]["N"]) / 1_000_000

    wall.advance(expires_at - START + 1)  # past its TTL: DynamoDB may delete it (moto, like AWS for a while, has not)
    assert limits(upload())[1] == '"uploads";r=19;t=1', "an item past its time is an idle client"
    dynamodb.delete_item(TableName=JOBS, Key={"job_id": {"S": limit_key(ALICE, "uploads")}})  # as the TTL does
    assert limits(upload())[1] == '"uploads";r=19;t=1'


# ---------------------------------------------------------------------------------------------- faults
@pytest.mark.parametrize(
    ("route", "fault"),
    [("jobs", throttled), ("uploads", server_error), ("jobs", connection_error)],
    ids=["jobs-throttle", "uploads-5xx", "jobs-connection"],
)
def test_a_failing_limiter_never_turns_a_good_request_into_an_error(
    wall: Wall, fault: Any, route: str, capsys: pytest.CaptureFixture[str]
) -> None:
    upload(OTHER_API_KEY)  # a warm container: the first request's own calls are not the point here
    capsys.readouterr()
    table = inject("dynamodb", always={"update_item": fault})
    started = wall.now

    reply = create() if route == "jobs" else upload()

    assert reply.status == 201, reply.body
    assert limits(reply) == (f'"{route}";q=20;w=20', None, None), "the policy stands; nothing true to say of the rest"
    assert table.calls["update_item"] == 2, "one brief retry, then through"
    assert wall.now - started <= 0.05
    lines = json_lines(capsys.readouterr().out)
    (warning,) = [line for line in lines if line["message"].startswith("rate limiter unavailable")]
    assert (warning["level"], warning["route_group"], warning["client_id"]) == ("WARNING", route, ALICE)
    metric = [d for d in emf_documents(lines) if "RateLimiterUnavailable" in d]
    assert [(d["RateLimiterUnavailable"], d["RouteGroup"]) for d in metric] == [(1, route)]


def test_a_spend_whose_answer_was_lost_counts_once(wall: Wall) -> None:
    real = boto3.client("dynamodb", region_name="us-east-1")
    aws_clients.set_client("dynamodb", FaultyClient(real, landed={"update_item": [connection_error()]}))

    reply = upload()  # an idle client: the first update lands, its answer is lost, the retry is refused

    assert limits(reply)[1] == '"uploads";r=19;t=1'
    assert tat_of(ALICE, "uploads") == at(1), "spent once"


def test_a_second_update_whose_answer_was_lost_counts_once(wall: Wall) -> None:
    upload()
    real = boto3.client("dynamodb", region_name="us-east-1")
    faulty = FaultyClient(real, landed={"update_item": [connection_error()]})
    aws_clients.set_client("dynamodb", faulty)

    reply = upload()  # in its burst: the first update is refused, the second lands and its answer is lost

    assert faulty.calls["update_item"] == 3, "refused, landed (answer lost), refused by its own token"
    assert limits(reply)[1] == '"uploads";r=18;t=1'
    assert tat_of(ALICE, "uploads") == at(2), "two requests, two intervals"


def test_a_replay_whose_budget_cannot_be_read_is_still_answered(wall: Wall) -> None:
    key = {"Idempotency-Key": "read-fails"}
    content = samples.png(extra=b"peek")
    assert create(content, headers=key).status == 201
    inject("dynamodb", always={"get_item": throttled}, after={"get_item": 1})  # the key's record, then the budget

    replay = create(content, headers=key)

    assert (replay.status, replay.headers["Idempotent-Replayed"]) == (201, "true")
    assert limits(replay) == ('"jobs";q=20;w=20', None, None)
