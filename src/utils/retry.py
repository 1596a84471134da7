"""The one retry layer for AWS calls: exponential backoff with jitter, bounded by the Lambda's deadline.

botocore's own retries are switched off on every client we create (``utils.aws.client_config``), so a
throttled call is retried here and only here: 1 s, 2 s, 4 s, 8 s (each scaled by a random factor in
[0.5, 1.0]), at most ``max_retries`` times, and never when the sleep plus one more attempt would run past
the time the invocation has left. When retries run out the caller gets ``ServiceUnavailable`` (clients
see 503 with ``Retry-After``) chained to the last AWS error, which is logged but never shown to them.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from utils.clock import MonotonicClock, monotonic
from utils.errors import ServiceUnavailable
from utils.logging import get_logger

T = TypeVar("T")
logger = get_logger("retry")

RETRYABLE_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        "SlowDown",
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)

#: Time one more attempt is allowed to take, kept in hand before sleeping (connect + read of a small call).
ATTEMPT_ALLOWANCE_SECONDS = 1.0

_deadline: ContextVar[float | None] = ContextVar("retry_deadline", default=None)

#: How ``call`` waits between attempts and reads the time unless given ``sleep``/``clock``; tests replace
#: them with a fake clock to run without waiting.
sleeper: Callable[[float], None] = time.sleep
now: MonotonicClock = monotonic


class RetryPolicy:
    """How hard to retry. (A plain class, not a frozen dataclass: a dataclass costs about a millisecond
    of every cold start to build; ``bench/first_request.py``.)"""

    __slots__ = ("base_delay", "jitter", "max_delay", "max_retries")

    def __init__(
        self, max_retries: int = 4, base_delay: float = 1.0, max_delay: float = 8.0, jitter: float = 0.5
    ) -> None:
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        #: Each delay is multiplied by a factor drawn from [1 - jitter, 1].
        self.jitter = jitter

    def _key(self) -> tuple[int, float, float, float]:
        return (self.max_retries, self.base_delay, self.max_delay, self.jitter)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RetryPolicy) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_retries={self.max_retries}, base_delay={self.base_delay}, "
            f"max_delay={self.max_delay}, jitter={self.jitter})"
        )

    def delay(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before retry ``retry_number`` (0-based): base * 2**n, capped, with jitter."""
        nominal = min(self.max_delay, self.base_delay * (2**retry_number))
        return float(nominal * (1 - self.jitter * rand()))


DEFAULT_POLICY = RetryPolicy()


class PartlyFailed(Exception):
    """A batch call that answered but did not do all of its work (PutEvents' ``FailedEntryCount``): the
    caller raises it from inside ``call`` to have the rest retried like a throttled call."""

    def __init__(self, operation: str, code: str) -> None:
        self.code = code
        super().__init__(f"{operation}: some entries failed ({code})")


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx, connection errors and partly failed batches are worth retrying; nothing else is."""
    if isinstance(exc, PartlyFailed):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in RETRYABLE_ERROR_CODES or (isinstance(status, int) and status >= 500)
    return isinstance(exc, BotoConnectionError | HTTPClientError)


@contextmanager
def deadline(seconds_left: float | None, clock: MonotonicClock | None = None) -> Iterator[None]:
    """Bound every retry inside the block by ``seconds_left`` from now (the Lambda's remaining time)."""
    token = _deadline.set(None if seconds_left is None else (clock or now)() + seconds_left)
    try:
        yield
    finally:
        _deadline.reset(token)


def seconds_left(clock: MonotonicClock | None = None) -> float | None:
    """Time left before the current deadline, or None outside any deadline."""
    end = _deadline.get()
    return None if end is None else end - (clock or now)()


def call(
    operation: str,
    fn: Callable[[], T],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] | None = None,
    clock: MonotonicClock | None = None,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run ``fn``; retry it on retryable errors; raise ``ServiceUnavailable`` when retries run out."""
    retry_number = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_retryable(exc):
                raise
            delay = policy.delay(retry_number, rand)
            left = seconds_left(clock)
            out_of_retries = retry_number >= policy.max_retries
            out_of_time = left is not None and delay + ATTEMPT_ALLOWANCE_SECONDS > left
            if out_of_retries or out_of_time:
                logger.error(
                    "aws call failed, giving up",
                    extra={
                        "operation": operation,
                        "attempts": retry_number + 1,
                        "reason": "retries exhausted" if out_of_retries else "deadline",
                        "error_type": type(exc).__name__,
                        "error_code": _error_code(exc),
                    },
                )
                raise ServiceUnavailable(retry_after=math.ceil(policy.max_delay / 2)) from exc
            logger.warning(
                "aws call failed, retrying",
                extra={
                    "operation": operation,
                    "attempt": retry_number + 1,
                    "delay_s": round(delay, 3),
                    "error_type": type(exc).__name__,
                    "error_code": _error_code(exc),
                },
            )
            (sleep or sleeper)(delay)
            retry_number += 1


def _error_code(exc: BaseException) -> str | None:
    if isinstance(exc, PartlyFailed):
        return exc.code
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
