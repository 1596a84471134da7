"""The per-request log and metrics scope.

Every request writes one summary line ("request completed": route template, method, status, latency,
ids, job and client when known, cold start, error code) and its metrics (``utils.metrics``: Latency by
route, Errors by code, ColdStart; the services add the job counters), buffered for the request and
written as one EMF line at its end (``utils.metrics.scope``, opened by the entry point). Log context is
bound at the start (``begin``) and cleared at the end (``end``).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from api.http import Request
from utils import logging as log
from utils import metrics
from utils.metrics import Unit

logger = log.get_logger("api")

JOBS_PATH = "/api/v1/jobs/"
#: The contract error code the current request answers with (its summary line, the Errors metric).
_error_code: ContextVar[str | None] = ContextVar("error_code", default=None)


def note_error(code: str) -> None:
    """The request answers with error ``code`` (the last one wins: a stored 4xx that could not be kept
    becomes the 503 the client gets)."""
    _error_code.set(code)


def begin(request_id: str) -> Token[str | None]:
    """The request's log context, bound; its error code, none yet. ``end`` undoes both."""
    log.clear()
    log.bind(request_id=request_id, correlation_id=request_id)
    return _error_code.set(None)


def end(token: Token[str | None]) -> None:
    _error_code.reset(token)
    log.clear()


def record(
    request: Request | None, route_name: str, response: dict[str, Any], latency_ms: float, cold_start: bool
) -> None:
    """The request's summary line and its Latency and Errors metrics. ``route_name`` is the route's
    template, never the raw path: it names a metric dimension and a log field of bounded cardinality."""
    _log_summary(request, route_name, response, latency_ms, cold_start)
    metrics.add("Latency", latency_ms, Unit.MILLISECONDS, Route=route_name)
    error_code = _error_code.get()
    if error_code:
        metrics.add("Errors", 1, Code=error_code)


def _log_summary(
    request: Request | None, route_name: str, response: dict[str, Any], latency_ms: float, cold_start: bool
) -> None:
    """Never the path, query, headers or body: ids and outcomes only."""
    headers = response["headers"]
    location = headers.get("Location", "")
    if log.bound("job_id") is None and location.startswith(JOBS_PATH):
        log.bind(job_id=location[len(JOBS_PATH) :][:64])  # a replayed creation names its job here
    logger.info(
        "request completed",
        extra={
            "method": request.method if request else None,
            "route": route_name,
            "status": response["statusCode"],
            "latency_ms": latency_ms,
            "cold_start": cold_start,
            "client_id": log.bound("client_id"),
            "error_code": _error_code.get(),
            "idempotent_replayed": headers.get("Idempotent-Replayed") == "true",
        },
    )
