"""Rate limits, the HTTP side: the spend before a limited route's handler, ``429 RATE_LIMITED``, and the
``RateLimit-Policy`` and ``RateLimit`` headers (the rules are ``services.rate_limits``').

The headers follow one pinned revision, draft-ietf-httpapi-ratelimit-headers-10 (27 September 2025),
whose syntax is Structured Field Values (RFC 9651):

- ``RateLimit-Policy``: a non-empty List of quota policy Items. Each is a String (the policy's name)
  with the parameters ``q`` (REQUIRED: the quota, a non-negative Integer of quota units; the unit ``qu``
  defaults to "requests"), ``w`` (OPTIONAL: the time window, an Integer of seconds, not zero) and ``pk``
  (OPTIONAL: a partition key, a Byte Sequence). Its example: ``RateLimit-Policy: "permin";q=50;w=60``.
- ``RateLimit``: a List of service limit Items. Each is a String (a policy's name) with ``r``
  (REQUIRED: the remaining quota units, a non-negative Integer), ``t`` (OPTIONAL: seconds until
  additional quota is made available, a non-negative Integer) and ``pk``. Its example:
  ``RateLimit: "default";r=50;t=30``. With ``Retry-After`` in the same response, Retry-After takes
  precedence and SHOULD NOT be earlier than ``t``.

Ours, one policy per route group (``jobs``, ``uploads``): ``RateLimit-Policy: "jobs";q=20;w=20`` (``q``
the burst, ``w`` the seconds a spent budget takes to refill: ``q`` per ``w`` is the sustained rate, 20 per
20 s being 60 a minute) and ``RateLimit: "jobs";r=19;t=1`` (``r`` requests would pass right now; ``t``
seconds until ``r`` grows by one, absent when the budget is full; on a 429 ``t`` equals ``Retry-After``).
No ``pk``: the partition is the authenticated client, always.

Which responses carry them (on the limited routes): a request that spent (any outcome of the handler,
a 400 for a bad body included: parsing it cost us, and a client must not probe for free) carries what the
spend left; one answered without spending (an idempotent replay, ``IDEMPOTENCY_IN_PROGRESS``,
``IDEMPOTENCY_KEY_REUSED``, a malformed key) carries the budget read without spending; one let through
because the limiter failed carries ``RateLimit-Policy`` only (nothing true can be said of the rest).
A 401 carries neither: there is no client, hence no budget (API Gateway's stage throttle guards those).
"""

from __future__ import annotations

from api.dependencies import Dependencies
from api.http import Request
from services.rate_limits import RateLimiter, Standing
from utils.errors import RateLimited
from utils.logging import get_logger

logger = get_logger("rate_limits")

#: The pinned revision of draft-ietf-httpapi-ratelimit-headers (README and openapi.json name it too).
DRAFT = "draft-ietf-httpapi-ratelimit-headers-10"
HEADER_NAMES = ("RateLimit-Policy", "RateLimit")


def headers_of(standing: Standing) -> dict[str, str]:
    """The two fields for ``standing`` (the policy alone when the limiter could not say more)."""
    policy = standing.policy
    headers = {"RateLimit-Policy": f'"{policy.name}";q={policy.burst};w={policy.window_seconds}'}
    if standing.known:
        value = f'"{policy.name}";r={standing.remaining}'
        if standing.reset_seconds is not None:
            value += f";t={standing.reset_seconds}"
        headers["RateLimit"] = value
    return headers


class Budget:
    """One request's budget on a limited route: spent once, before the handler; its headers after."""

    __slots__ = ("_deps", "_limiter", "_request", "_standing", "group")

    def __init__(self, group: str, request: Request, deps: Dependencies) -> None:
        self.group = group
        self._request = request
        self._deps = deps
        self._limiter: RateLimiter | None = None
        self._standing: Standing | None = None

    def _budgets(self) -> RateLimiter:
        if self._limiter is None:  # one reading of the configuration for the spend and the headers
            self._limiter = self._deps.rate_limiter()
        return self._limiter

    def spend(self) -> None:
        """Spend one request; ``RateLimited`` (429 with ``Retry-After``) when over budget."""
        self._standing = self._budgets().spend(self._request.client_id or "", self.group)
        if not self._standing.allowed:
            raise RateLimited(retry_after=self._standing.retry_after or 1)

    def headers(self) -> dict[str, str]:
        """The response's RateLimit fields: what the spend left, or the budget read without spending.
        Never raises: a response is not lost for want of its rate-limit headers."""
        try:
            standing = self._standing or self._budgets().peek(self._request.client_id or "", self.group)
        except Exception:  # the configuration did not load: the response says why on its own
            logger.warning("rate-limit headers left out", extra={"route_group": self.group})
            return {}
        return headers_of(standing)
