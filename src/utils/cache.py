"""A small time-to-live cache with stale-on-error, shared by the config and secrets utilities.

A value is fresh for ``ttl`` seconds after it was loaded. When a reload fails with ``ServiceUnavailable``
(the dependency is down after retries) and an older value exists, the older value keeps serving and
the next reload is tried after ``stale_retry_seconds``: an SSM or Secrets Manager outage must not take
the API down while we still know the answer. With nothing cached, the error reaches the caller (503).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from utils.clock import MonotonicClock, monotonic
from utils.errors import ServiceUnavailable
from utils.logging import get_logger

V = TypeVar("V")
logger = get_logger("cache")

#: How long a value that could not be reloaded keeps serving before the next reload is tried.
STALE_RETRY_SECONDS = 30.0


class _Entry(Generic[V]):
    __slots__ = ("expires", "value")

    def __init__(self, value: V, expires: float) -> None:
        self.value = value
        self.expires = expires


class TtlCache(Generic[V]):
    def __init__(
        self,
        ttl_seconds: float,
        *,
        clock: MonotonicClock = monotonic,
        stale_retry_seconds: float = STALE_RETRY_SECONDS,
        name: str = "cache",
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.stale_retry_seconds = stale_retry_seconds
        self.name = name
        self._clock = clock
        self._entries: dict[str, _Entry[V]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], V]) -> V:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now < entry.expires:
            return entry.value
        try:
            value = load()
        except ServiceUnavailable:
            if entry is None:
                raise
            logger.warning("reload failed; serving the cached value", extra={"cache": self.name})
            with self._lock:
                entry.expires = now + self.stale_retry_seconds
            return entry.value
        with self._lock:
            self._entries[key] = _Entry(value, now + self.ttl_seconds)
        return value

    def refresh(self, key: str, load: Callable[[], V]) -> bool:
        """Load ``key`` now, fresh or not (a health probe). True when it loaded; False when it could not
        (``ServiceUnavailable``) but a cached value would still serve; raises when nothing would."""
        now = self._clock()
        try:
            value = load()
        except ServiceUnavailable:
            if key not in self._entries:
                raise
            return False
        with self._lock:
            self._entries[key] = _Entry(value, now + self.ttl_seconds)
        return True

    def invalidate(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)
