"""The Lambda entry point (``Handler: api.rest_api.lambda_handler``): one HTTP API (payload 2.0) request in,
one response out.

In the order a request meets it: a request id, its log context (``api.observability``) and metrics
buffer (``utils.metrics.scope``); the event read into a ``Request`` (``api.http``); CORS preflight answered; the
route matched (``api.routes``); the caller authenticated (``services.auth``) unless the route is public;
the handler run under the request's ``Idempotency-Key`` where the route honours one (``api.idempotency``),
after the client's rate-limit budget is spent where the route has one (``api.rate_limits``: a replay is
answered before the spend, so it spends nothing), every AWS call bounded by the Lambda's remaining time
(``utils.retry.deadline``). Any exception becomes a
response in one place, ``api.errors.error_response``; every response then gets the envelope headers
and CORS (``api.cors``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from api import cors, dependencies, observability, routes
from api.dependencies import Dependencies
from api.errors import error_response
from api.http import Request, envelope_headers, new_request_id, no_content
from api.routes import Route

if TYPE_CHECKING:
    from api.rate_limits import Budget
from utils import logging as log
from utils import metrics, retry
from utils.clock import wall_time

#: Kept in hand at the end of an invocation to write the response and the log line.
RESPONSE_RESERVE_SECONDS = 1.0


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    cold_start = dependencies.take_cold_start()
    request_id = new_request_id(wall_time())
    token = observability.begin(request_id)
    try:
        with metrics.scope():  # the request's metrics, written as one EMF line when it ends
            if cold_start:
                metrics.add("ColdStart", 1)
            request, route_name, response = _respond(event, context, request_id)
            latency_ms = round((time.perf_counter() - started) * 1000, 1)
            observability.record(request, route_name, response, latency_ms, cold_start)
    finally:
        observability.end(token)
    return response


def _respond(event: Any, context: Any, request_id: str) -> tuple[Request | None, str, dict[str, Any]]:
    """The response to ``event``, with the request (None if the event was unusable) and the route's
    template (``unmatched`` when no route took it)."""
    request: Request | None = None
    route_name = "unmatched"
    try:
        request = Request.from_event(event, request_id)
        log.bind(
            correlation_id=request.correlation_id,
            aws_request_id=getattr(context, "aws_request_id", None),
            api_gateway_request_id=request.aws_request_id,
        )
        if request.method == "OPTIONS":
            route_name = "OPTIONS *"
            response = no_content(request_id, request.correlation_id)
        else:
            route, params = routes.match(request.method, request.path)
            route_name = f"{route.method} {route.template}"
            request.path_params = params
            if "job_id" in params:
                log.bind(job_id=params["job_id"][:64])
            deps = dependencies.get()
            with retry.deadline(_seconds_left(context)):
                response = _run(route, request, deps)
    except Exception as exc:  # the one place where exceptions become responses
        response = error_response(exc, request_id, request.correlation_id if request else request_id)
    correlation_id = request.correlation_id if request else request_id
    for name, value in envelope_headers(request_id, correlation_id).items():
        response["headers"].setdefault(name, value)  # a replay keeps the first response's X-Request-ID
    response["headers"].update(cors.headers_for(request))
    return request, route_name, response


def _run(route: Route, request: Request, deps: Dependencies) -> dict[str, Any]:
    """Authenticate, then run the route (under its rate limit and its Idempotency-Key, if it has them)."""
    if not route.public:
        client = deps.auth.authenticate(request.header("x-api-key"), request.jwt_claims)
        request.client_id = client.client_id
        log.bind(client_id=client.client_id)
    if route.rate_limit is None:
        return _dispatch(route, request, deps, None)
    # Only the POST routes have a budget or an Idempotency-Key: their modules load on the first such
    # request, so a container whose first request is a GET does not import them at its cold start.
    from api.rate_limits import Budget  # noqa: PLC0415

    budget = Budget(route.rate_limit, request, deps)
    try:
        response = _dispatch(route, request, deps, budget)
    except Exception as exc:  # answered here, so the error carries the budget's headers too
        response = error_response(exc, request.request_id, request.correlation_id)
    response["headers"].update(budget.headers())
    return response


def _dispatch(route: Route, request: Request, deps: Dependencies, budget: Budget | None) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        if budget is not None:
            budget.spend()
        return route.handler(request, deps)

    if not route.idempotent:
        return run()
    from api.idempotency import run_idempotently  # noqa: PLC0415 - see _run

    def handle() -> dict[str, Any]:  # errors become responses here, so a 4xx outcome is kept too
        try:
            return run()
        except Exception as exc:
            return error_response(exc, request.request_id, request.correlation_id)

    return run_idempotently(request, deps.idempotency, handle)


def _seconds_left(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    try:
        return max(0.0, float(remaining()) / 1000 - RESPONSE_RESERVE_SECONDS)
    except (TypeError, ValueError):
        return None
