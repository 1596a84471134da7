"""The rate limiter's arithmetic (``services.rate_limits``) against an independent statement of the same
limit, and its headers' syntax (``api.rate_limits``): no AWS, an in-memory store with the real one's
contract (``tests.fakes.FakeRateLimitStore``; the real one is tested against moto in
``tests/integration/test_rate_limits.py``).

The reference is a token bucket in exact rational arithmetic: ``burst`` tokens at most, one more every
``60 s / per_minute``, a request passes when a whole token is there and takes it. GCRA with
``tau = (burst - 1) * T`` is that bucket (``tokens = burst - (TAT - now) / T``), so every decision, every
``remaining``, ``reset`` and ``Retry-After`` the limiter gives must be what the bucket says.
"""

from __future__ import annotations

import json
import math
import random
import re
from fractions import Fraction
from pathlib import Path

import pytest

from api.rate_limits import DRAFT, headers_of
from services.rate_limits import MINUTE_US, SECOND_US, Policy, RateLimiter, Standing, standing
from services.runtime_config import RuntimeConfig, parse_parameters
from storage.rate_limits import LimiterUnavailable
from tests.fakes import FakeRateLimitStore


class Bucket:
    """The reference: a token bucket with continuous refill, in fractions of a token."""

    def __init__(self, per_minute: int, burst: int, start: int) -> None:
        # The limiter rounds the interval up to a whole microsecond (never more than the budget): so does this.
        self.interval = Fraction(math.ceil(MINUTE_US / per_minute))
        self.burst = burst
        self.tokens = Fraction(burst)
        self.at = start

    def take(self, now: int) -> tuple[bool, int, int | None, int | None]:
        """Whether a request at ``now`` passes; then whole tokens left, seconds until another whole token
        (None: full), and, if refused, seconds until one would pass."""
        self.tokens = min(Fraction(self.burst), self.tokens + (now - self.at) / self.interval)
        self.at = now
        allowed = self.tokens >= 1
        if allowed:
            self.tokens -= 1
        whole = math.floor(self.tokens)
        reset = None if self.tokens == self.burst else _up((whole + 1 - self.tokens) * self.interval)
        retry = None if allowed else max(1, _up((1 - self.tokens) * self.interval))
        return allowed, whole, reset, retry


def _up(microseconds: Fraction) -> int:
    return math.ceil(microseconds / SECOND_US)


def limiter(per_minute: int, burst: int, now: list[int], store: FakeRateLimitStore | None = None) -> RateLimiter:
    config = RuntimeConfig(rate_limit_per_minute=per_minute, rate_limit_burst=burst)
    return RateLimiter(store or FakeRateLimitStore(), config, clock=lambda: now[0] / SECOND_US)


@pytest.mark.parametrize("seed", range(12))
def test_every_decision_and_figure_is_the_token_buckets(seed: int) -> None:
    rng = random.Random(seed)
    per_minute, burst = rng.choice([(60, 20), (7, 1), (7, 3), (600, 5), (1, 2), (100_000, 10), (90, 4)])
    start = 1_800_000_000 * SECOND_US
    now = [start]
    budgets, bucket = limiter(per_minute, burst, now), Bucket(per_minute, burst, start)
    interval = math.ceil(MINUTE_US / per_minute)
    for _ in range(300):
        # Bursts, gaps shorter and longer than the interval, and exact multiples of it (the edges).
        step = rng.choice([0, 0, 1, interval - 1, interval, interval + 1, rng.randrange(3 * interval), 40 * interval])
        now[0] += step
        got = budgets.spend("cli_a", "jobs")
        allowed, remaining, reset, retry = bucket.take(now[0])
        assert (got.allowed, got.remaining, got.reset_seconds, got.retry_after) == (allowed, remaining, reset, retry)
        if not allowed:
            assert got.reset_seconds == got.retry_after, "Retry-After is never earlier than the reset"


def test_exactly_burst_pass_at_one_instant_then_one_per_interval() -> None:
    now = [1_800_000_000 * SECOND_US]
    budgets = limiter(60, 20, now)
    passed = [budgets.spend("cli_a", "jobs").allowed for _ in range(25)]
    assert passed == [True] * 20 + [False] * 5
    now[0] += SECOND_US - 1
    assert not budgets.spend("cli_a", "jobs").allowed, "just under a second: nothing refilled"
    now[0] += 1
    assert budgets.spend("cli_a", "jobs").allowed, "at a second: one more"
    assert not budgets.spend("cli_a", "jobs").allowed


def test_an_idle_client_costs_one_update_one_in_its_burst_two_and_one_over_it_one() -> None:
    now, store = [1_800_000_000 * SECOND_US], FakeRateLimitStore()
    budgets = limiter(60, 2, now, store)
    assert [budgets.spend("cli_a", "jobs").allowed for _ in range(3)] == [True, True, False]
    assert store.calls == [1, 2, 1]


def test_clients_and_groups_are_budgets_of_their_own() -> None:
    now = [1_800_000_000 * SECOND_US]
    budgets = limiter(60, 1, now)
    assert budgets.spend("cli_a", "jobs").allowed
    assert not budgets.spend("cli_a", "jobs").allowed
    assert budgets.spend("cli_a", "uploads").allowed
    assert budgets.spend("cli_b", "jobs").allowed


def test_a_peek_spends_nothing() -> None:
    now = [1_800_000_000 * SECOND_US]
    budgets = limiter(60, 3, now)
    assert budgets.peek("cli_a", "jobs").remaining == 3
    budgets.spend("cli_a", "jobs")
    assert [budgets.peek("cli_a", "jobs").remaining for _ in range(5)] == [2] * 5
    assert budgets.spend("cli_a", "jobs").remaining == 1


def test_a_failing_store_lets_the_request_through_unmetered(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeRateLimitStore()
    store.fail = LimiterUnavailable("ClientError")
    got = limiter(60, 1, [1_800_000_000 * SECOND_US], store).spend("cli_a", "jobs")
    assert (got.allowed, got.known) == (True, False)
    assert any(r.getMessage().startswith("rate limiter unavailable") for r in caplog.records)


def test_the_interval_rounds_up_so_rounding_never_grants_more_than_the_budget() -> None:
    policy = Policy("jobs", 7, 3)
    assert policy.interval == 8_571_429  # 60 s / 7, up to the microsecond
    assert policy.interval * 7 >= MINUTE_US
    assert policy.window_seconds == 26  # 3 * 8.571429 s, up
    assert Fraction(policy.burst, policy.window_seconds) <= Fraction(7, 60), "q/w never promises more"
    assert Policy("jobs", 60, 20).window_seconds == 20


# ---------------------------------------------------------------------------------------------- headers
def test_headers_in_the_pinned_drafts_syntax() -> None:
    policy = Policy("jobs", 60, 20)
    assert headers_of(standing(policy, 1_000_000 + 3 * SECOND_US + 1, 1_000_000)) == {
        "RateLimit-Policy": '"jobs";q=20;w=20',
        "RateLimit": '"jobs";r=16;t=1',
    }
    assert headers_of(standing(policy, None, 1_000_000))["RateLimit"] == '"jobs";r=20', "full: no t"
    refused = standing(policy, 1_000_000 + 20 * SECOND_US + 300_000, 1_000_000, allowed=False)
    assert (refused.retry_after, headers_of(refused)["RateLimit"]) == (2, '"jobs";r=0;t=2')
    assert headers_of(Standing(policy, known=False)) == {"RateLimit-Policy": '"jobs";q=20;w=20'}


def test_the_headers_match_what_the_openapi_document_and_readme_say() -> None:
    root = Path(__file__).resolve().parents[2]
    document = json.loads((root / "src" / "api" / "openapi.json").read_text())
    patterns = {
        name: document["components"]["headers"][name]["schema"]["pattern"] for name in ("RateLimit-Policy", "RateLimit")
    }
    for group, (per_minute, burst) in [("jobs", (60, 20)), ("uploads", (7, 1)), ("jobs", (100_000, 10_000))]:
        policy = Policy(group, per_minute, burst)
        for tat in (None, 1, policy.interval * burst):
            for name, value in headers_of(standing(policy, tat, 0)).items():
                assert re.fullmatch(patterns[name], value), (name, value)
    assert DRAFT in document["info"]["description"]
    assert DRAFT in (root / "README.md").read_text()


# ------------------------------------------------------------------------------------------ parameters
@pytest.mark.parametrize(
    ("raw", "field", "default"),
    [
        ({"rate-limit-per-minute": "0"}, "rate_limit_per_minute", 60),
        ({"rate-limit-per-minute": "100001"}, "rate_limit_per_minute", 60),
        ({"rate-limit-per-minute": "sixty"}, "rate_limit_per_minute", 60),
        ({"rate-limit-burst": "0"}, "rate_limit_burst", 20),
        ({"rate-limit-burst": "10001"}, "rate_limit_burst", 20),
    ],
)
def test_an_invalid_rate_parameter_is_reported_and_its_default_used(
    raw: dict[str, str], field: str, default: int
) -> None:
    config, problems = parse_parameters(raw, RuntimeConfig())
    assert getattr(config, field) == default
    assert len(problems) == 1
    assert next(iter(raw)) in problems[0]


def test_valid_rate_parameters_are_taken() -> None:
    config, problems = parse_parameters({"rate-limit-per-minute": " 120 ", "rate-limit-burst": "5"}, RuntimeConfig())
    assert problems == []
    assert (config.rate_limit_per_minute, config.rate_limit_burst) == (120, 5)
