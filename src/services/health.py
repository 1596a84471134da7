"""Whether requests would succeed: every dependency a request needs, checked in parallel, each cheaply and
within a short timeout, the answer kept for a few seconds per container.

Each probe returns ``HEALTHY`` or ``DEGRADED`` (it failed, but a cached value still serves requests: the
secret's keys, the runtime configuration; or it is a dependency requests succeed without, the preview
cache) and raises when requests would fail. The report is ``healthy`` when every probe is, ``degraded``
when none is worse, ``unhealthy`` otherwise. ``/health`` needs no key, so one request must not fan out into
a call per dependency every time: a report is reused for ``CACHE_SECONDS`` (the Parameter Store quota is
shared with real requests). Dependencies are named by role, never by table or bucket name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from utils.clock import MonotonicClock, monotonic
from utils.logging import get_logger

logger = get_logger("health")

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
_RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}
#: How long a report is reused (per container).
CACHE_SECONDS = 10.0
#: How long one probe may take before it counts as down (they run at the same time).
PROBE_TIMEOUT_SECONDS = 2.0

Probe = Callable[[], str]


class HealthService:
    def __init__(
        self,
        probes: dict[str, Probe],
        *,
        prepare: Callable[[], None] | None = None,
        clock: MonotonicClock = monotonic,
        cache_seconds: float = CACHE_SECONDS,
        timeout_seconds: float = PROBE_TIMEOUT_SECONDS,
    ) -> None:
        """``probes``: dependency -> a cheap call returning HEALTHY or DEGRADED, raising when it is down;
        ``prepare``: run before the probes' time starts (creating their clients is not their latency)."""
        self.probes = probes
        self._prepare = prepare
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._report: dict[str, Any] | None = None
        self._checked = 0.0

    def check(self) -> dict[str, Any]:
        """``{"status", "services": {name: {"status", "latency_ms"}}}``, at most ``cache_seconds`` old."""
        with self._lock:  # concurrent requests share one round of probes
            if self._report is None or self._clock() - self._checked >= self._cache_seconds:
                self._report = self._run()
                self._checked = self._clock()
            return self._report

    def _run(self) -> dict[str, Any]:
        if self._prepare is not None:
            try:
                self._prepare()
            except Exception:  # then the probes meet the same failure and report it
                logger.warning("health probe set-up failed", exc_info=True)
        pool = ThreadPoolExecutor(max_workers=len(self.probes), thread_name_prefix="health")
        started = time.perf_counter()
        futures = {name: pool.submit(_timed, probe) for name, probe in self.probes.items()}
        wait(futures.values(), timeout=self._timeout)
        pool.shutdown(wait=False, cancel_futures=True)  # a hung probe is left to its client's own timeouts
        services = {name: self._outcome(name, future, started) for name, future in futures.items()}
        worst = max((s["status"] for s in services.values()), key=_RANK.__getitem__, default=HEALTHY)
        return {"status": worst, "services": services}

    def _outcome(self, name: str, future: Future[tuple[str, float]], started: float) -> dict[str, Any]:
        if not future.done():
            logger.warning("health probe timed out", extra={"dependency": name})
            return {"status": UNHEALTHY, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
        try:
            status, latency = future.result()
        except Exception as exc:
            logger.warning("health probe failed", extra={"dependency": name, "error_type": type(exc).__name__})
            return {"status": UNHEALTHY, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
        if status != HEALTHY:
            logger.warning("health probe degraded", extra={"dependency": name})
        return {"status": status, "latency_ms": latency}


def _timed(probe: Probe) -> tuple[str, float]:
    started = time.perf_counter()
    status = probe()
    return status, round((time.perf_counter() - started) * 1000, 1)


def reachable(ping: Callable[[], object]) -> Probe:
    """A probe from a call that raises when its dependency is down."""

    def probe() -> str:
        ping()
        return HEALTHY

    return probe


def optional(ping: Callable[[], object]) -> Probe:
    """A probe for a dependency requests succeed without (a cache): down is only ``degraded``."""

    def probe() -> str:
        try:
            ping()
        except Exception:
            logger.warning("optional dependency unavailable", exc_info=True)
            return DEGRADED
        return HEALTHY

    return probe


def cached(refresh: Callable[[], bool]) -> Probe:
    """A probe from a refresh that returns False when only a cached value still serves (``TtlCache``)."""

    def probe() -> str:
        return HEALTHY if refresh() else DEGRADED

    return probe
