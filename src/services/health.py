"""Reachability of the API's dependencies, checked cheaply and without retries (a health check must be fast).

The answer names dependencies by kind (``dynamodb``, ``s3``), never by table or bucket name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from utils.logging import get_logger

logger = get_logger("health")


class HealthService:
    def __init__(self, probes: dict[str, Callable[[], None]]) -> None:
        """``probes``: dependency kind -> a cheap call that raises if the dependency does not answer."""
        self.probes = probes

    def check(self) -> dict[str, Any]:
        """Run each probe; ``{"status": "healthy"|"unhealthy", "services": {name: {"status", "latency_ms"}}}``."""
        services: dict[str, Any] = {}
        for name, probe in self.probes.items():
            started = time.perf_counter()
            try:
                probe()
                status = "healthy"
            except Exception as exc:
                logger.warning("health probe failed", extra={"dependency": name, "error_type": type(exc).__name__})
                status = "unhealthy"
            services[name] = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
        healthy = all(s["status"] == "healthy" for s in services.values())
        return {"status": "healthy" if healthy else "unhealthy", "services": services}
