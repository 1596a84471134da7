"""Time, injectable. Code that depends on the clock takes one of these so tests can move time.

Every reader of the clock in ``src/`` goes through ``wall_time`` and ``monotonic`` (services and caches
take them as their default clocks), and both read the module-level sources below on every call. So a
test moves time for the whole Lambda at once — job and preview expiry, cache ages, request ids — by
replacing a source (``monkeypatch.setattr(clock, "wall_source", fake)``), without sleeping and without
knowing which objects captured a clock. Presigned URLs are the exception: botocore signs them with the
real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds since the epoch (wall clock); used for expiry and timestamps.
WallClock = Callable[[], float]
#: Seconds from an arbitrary origin that never goes backwards; used for cache ages and deadlines.
MonotonicClock = Callable[[], float]

#: Where ``wall_time`` and ``monotonic`` get the time (tests replace these).
wall_source: WallClock = time.time
monotonic_source: MonotonicClock = time.monotonic


def wall_time() -> float:
    return wall_source()


def monotonic() -> float:
    return monotonic_source()


def iso_utc(epoch_seconds: float) -> str:
    """``2026-11-21T23:15:00Z``: the contract's timestamp format (second precision, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))  # a third of datetime's cost


def compact_utc(epoch_seconds: float) -> str:
    """``20261121T231500``: the time part of job and request ids."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(epoch_seconds))
