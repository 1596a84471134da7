"""Per-client rate limits on the routes that cost money: GCRA over a stored theoretical arrival time.

One budget per client and route group (``jobs``: ``POST /api/v1/jobs``; ``uploads``:
``POST /api/v1/uploads``), each ``rate-limit-per-minute`` requests a minute with bursts of up to
``rate-limit-burst`` (Parameter Store). Per route, not shared: a large file costs an upload and then a
create, a small one only a create, so one shared budget would halve the job rate of clients with large
files; per route, every client may make the same number of jobs a minute whichever way it sends them.

GCRA (the Generic Cell Rate Algorithm, ITU-T I.371's virtual scheduling form; the same as a token
bucket, stated with one number instead of two). With the emission interval ``T = 60 s / per_minute``
and the tolerance ``tau = (burst - 1) * T``, a client's state is its theoretical arrival time ``TAT``:

- a request at ``now`` conforms iff ``TAT <= now + tau`` (no ``TAT``, or one in the past, is ``now``);
- a conforming request sets ``TAT = max(TAT, now) + T``; a refused one changes nothing.

From idle (``TAT <= now``), ``k`` requests at one instant leave ``TAT = now + k * T``, and the next one
conforms iff ``k * T <= tau``, i.e. ``k <= burst - 1``: exactly ``burst`` pass at once. Afterwards one more
passes every ``T``: ``per_minute`` a minute. ``max`` is what DynamoDB's update expressions lack, so the store
splits it on its two cases, each a conditional update with no read before it:

1. ``SET tat = now + T``   IF ``attribute_not_exists(tat) OR tat < now``   (idle: ``max`` is ``now``)
2. ``SET tat = tat + T``   IF ``tat BETWEEN now AND now + tau``              (within the tolerance)

When 1 is refused, its old values (``ReturnValuesOnConditionCheckFailure: ALL_OLD``) give ``TAT >= now``;
over ``now + tau`` the request is refused there and then (one call: a client over its budget costs us
least), else 2 runs. ``TAT`` only grows (while an item lives), so 2 refused means ``TAT > now + tau``, and
its old values give it. At most two updates, no read, no read-modify-write race: each update is atomic.

Times are integer microseconds throughout: no float drift, and (unlike milliseconds, where ``60000 / 7``
or ``60000 / 90`` would not be whole) every allowed budget's ``T`` is exact to under one part in 600. ``T``
is rounded up, so rounding never grants more than the budget.

What the client is told, with ``d = max(TAT - now, 0)`` after the decision:

- ``remaining = max(0, burst - ceil(d / T))``: how many more would conform right now (the next ``k``
  conform iff ``d + (k - 1) * T <= tau``);
- ``reset``: seconds until ``remaining`` next grows (it grows by one each time ``d`` falls to a multiple
  of ``T``: after ``d - (ceil(d / T) - 1) * T``), rounded up; none when the budget is full;
- when refused, ``retry_after = ceil((d - tau) / 1 s)`` (at least 1): at ``now + d - tau``, ``TAT - now``
  is ``tau`` and a request conforms; this is also ``reset`` then, as the draft asks (Retry-After never
  earlier than the reset).

The limiter failing (throttled, unavailable, after the store's bounded retry) never turns a good request
into an error: the request goes through unmetered (fail-open) on both routes, with a warning and a
``RateLimiterUnavailable`` metric. Why: the limit protects cost, not correctness; a create refused because
a bookkeeping write hiccuped is worse than a few unmetered ones; and API Gateway's stage throttle still
caps everyone. An upload unmetered costs a presigned POST; the job it leads to is metered on create.
"""

from __future__ import annotations

import math

from services.runtime_config import RuntimeConfig
from storage.rate_limits import LimiterUnavailable, RateLimitStore, limit_key
from utils import metrics
from utils.clock import WallClock, wall_time
from utils.logging import get_logger

logger = get_logger("rate_limits")

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
#: The route groups, each a budget of its own (also the policy names clients see).
GROUPS = ("jobs", "uploads")


class Policy:
    """A budget: ``burst`` requests at once, one more every ``interval`` microseconds."""

    __slots__ = ("burst", "interval", "name", "per_minute")

    def __init__(self, name: str, per_minute: int, burst: int) -> None:
        self.name = name
        self.per_minute = per_minute
        self.burst = burst
        self.interval = math.ceil(MINUTE_US / per_minute)

    @property
    def tolerance(self) -> int:
        return (self.burst - 1) * self.interval

    @property
    def window_seconds(self) -> int:
        """The time a full budget takes to refill: ``burst`` requests per this many seconds is the rate."""
        return max(1, math.ceil(self.burst * self.interval / SECOND_US))


class Standing:
    """A client's budget as of one request: ``known`` False when the limiter could not say (fail-open)."""

    __slots__ = ("allowed", "known", "policy", "remaining", "reset_seconds", "retry_after")

    def __init__(
        self,
        policy: Policy,
        *,
        allowed: bool = True,
        known: bool = True,
        remaining: int = 0,
        reset_seconds: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.policy = policy
        self.allowed = allowed
        self.known = known
        self.remaining = remaining
        self.reset_seconds = reset_seconds
        self.retry_after = retry_after


def standing(policy: Policy, tat: int | None, now: int, *, allowed: bool = True) -> Standing:
    """What ``tat`` means at ``now`` (the derivation above)."""
    debt = max(0, (tat or now) - now)
    units = -(-debt // policy.interval)  # ceil(debt / T) in integers
    remaining = max(0, policy.burst - units)
    reset = None
    if debt > 0:
        reset = _seconds_up(debt - (units - 1) * policy.interval)
    retry_after = None
    if not allowed:
        retry_after = max(1, _seconds_up(debt - policy.tolerance))
        reset = retry_after if remaining == 0 else reset
    return Standing(policy, allowed=allowed, remaining=remaining, reset_seconds=reset, retry_after=retry_after)


def _seconds_up(microseconds: int) -> int:
    return -(-microseconds // SECOND_US)


class RateLimiter:
    """The budgets of one configuration (built per request from one reading of it)."""

    def __init__(self, store: RateLimitStore, config: RuntimeConfig, *, clock: WallClock = wall_time) -> None:
        self.store = store
        self.config = config
        self._clock = clock

    def policy(self, group: str) -> Policy:
        return Policy(group, self.config.rate_limit_per_minute, self.config.rate_limit_burst)

    def _now(self) -> int:
        return round(self._clock() * SECOND_US)  # the float's nearest microsecond (epoch seconds hold them)

    def spend(self, client_id: str, group: str) -> Standing:
        """Spend one request of the client's budget for ``group``; ``allowed`` False: over it."""
        policy, now = self.policy(group), self._now()
        try:
            spent = self.store.spend(
                limit_key(client_id, group), now=now, interval=policy.interval, tolerance=policy.tolerance
            )
        except LimiterUnavailable as exc:
            return _unmetered(policy, "spend", exc)
        if spent.tat is None:  # refused by an item that vanished in between (a TTL deletion): idle, let it by
            return standing(policy, None, now)
        return standing(policy, spent.tat, now, allowed=spent.allowed)

    def peek(self, client_id: str, group: str) -> Standing:
        """The client's budget for ``group`` without spending (for answers that cost nothing: replays)."""
        policy, now = self.policy(group), self._now()
        try:
            tat = self.store.peek(limit_key(client_id, group))
        except LimiterUnavailable as exc:
            return _unmetered(policy, "peek", exc)
        return standing(policy, tat, now)


def _unmetered(policy: Policy, step: str, exc: LimiterUnavailable) -> Standing:
    logger.warning(
        "rate limiter unavailable; request let through unmetered",
        extra={"route_group": policy.name, "step": step, "error_type": str(exc)},
    )
    metrics.add("RateLimiterUnavailable", 1, RouteGroup=policy.name)
    return Standing(policy, known=False)


class RateLimitState:
    """A client's limiter items as ``services.client_erasure.ClientData``: a client's erasure deletes them
    (they name only a hash of its id and expire within minutes anyway, but an erasure leaves nothing)."""

    name = "rate_limits"

    def __init__(self, store: RateLimitStore) -> None:
        self.store = store

    def ids_of(self, client_id: str) -> list[str]:
        return [group for group in GROUPS if self.store.peek(limit_key(client_id, group)) is not None]

    def erase(self, client_id: str) -> int:
        return sum(self.store.forget(limit_key(client_id, group)) for group in GROUPS)
