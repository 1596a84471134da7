"""Time, injectable. Code that depends on the clock takes one of these so tests can move time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

#: Seconds since the epoch (wall clock); used for expiry and timestamps.
WallClock = Callable[[], float]
#: Seconds from an arbitrary origin that never goes backwards; used for cache ages and deadlines.
MonotonicClock = Callable[[], float]


def wall_time() -> float:
    return time.time()


def monotonic() -> float:
    return time.monotonic()


def utc_datetime(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)


def iso_utc(epoch_seconds: float) -> str:
    """``2026-11-21T23:15:00Z``: the contract's timestamp format (second precision, UTC)."""
    return utc_datetime(epoch_seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_utc(epoch_seconds: float) -> str:
    """``20261121T231500``: the time part of job and request ids."""
    return utc_datetime(epoch_seconds).strftime("%Y%m%dT%H%M%S")
