"""The route table and its matcher: the authority on routes.

API Gateway sends every request here (a catch-all route); a path no route has is 404 ``NOT_FOUND``, a
method its routes lack is 405 ``METHOD_NOT_ALLOWED`` with ``Allow``. To add a route: a handler in
``api.handlers``, a row below, and the operation in ``openapi.json`` (a test keeps the two equal).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from api.dependencies import Dependencies
from api.handlers import feedback, jobs, system, uploads
from api.http import Request
from utils.errors import MethodNotAllowed, RouteNotFound

Handler = Callable[[Request, Dependencies], dict[str, Any]]


class Route:
    """One row of the table. (A plain class: every class is built at each cold start, a dataclass costs
    ten times as much; bench/findings.md.)"""

    __slots__ = ("handler", "idempotent", "method", "public", "rate_limit", "template")

    def __init__(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        public: bool = False,
        idempotent: bool = False,
        rate_limit: str | None = None,
    ):
        self.method = method
        self.template = template
        self.handler = handler
        #: Public routes need no API key (health checks, the OpenAPI document).
        self.public = public
        #: Honours Idempotency-Key.
        self.idempotent = idempotent
        #: The client's budget (``services.rate_limits`` group) each request spends; None: unlimited.
        self.rate_limit = rate_limit


ROUTES: tuple[Route, ...] = (
    Route("GET", "/health", system.health_check, public=True),
    Route("GET", "/api/v1/openapi.json", system.openapi_document, public=True),
    Route("GET", "/api/v1/jobs", jobs.list_jobs),
    Route("POST", "/api/v1/jobs", jobs.create_job, idempotent=True, rate_limit="jobs"),
    Route("GET", "/api/v1/jobs/{job_id}", jobs.get_job),
    Route("DELETE", "/api/v1/jobs/{job_id}", jobs.cancel_job),
    Route("POST", "/api/v1/jobs/{job_id}/feedback", feedback.submit_feedback),
    Route("POST", "/api/v1/jobs/{job_id}/erase", jobs.erase_job),
    Route("POST", "/api/v1/uploads", uploads.create_upload, idempotent=True, rate_limit="uploads"),
)


def _compile(template: str) -> re.Pattern[str]:
    """``/api/v1/jobs/{job_id}`` -> a pattern with a named group per ``{parameter}`` (one path segment)."""
    parts = re.split(r"(\{\w+\})", template)
    return re.compile("".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts))


_COMPILED = tuple((route, _compile(route.template)) for route in ROUTES)


def match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The route for ``method`` and ``path`` with its path parameters; 404 or 405 otherwise."""
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    allowed: list[str] = []
    for route, pattern in _COMPILED:
        found = pattern.fullmatch(path)
        if found is None:
            continue
        if route.method == method:
            return route, found.groupdict()
        allowed.append(route.method)
    if allowed:
        raise MethodNotAllowed([*dict.fromkeys(allowed), "OPTIONS"])
    raise RouteNotFound(details={"path": path[:200]})
