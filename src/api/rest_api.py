"""The Lambda entry point: routes HTTP API (payload 2.0) requests by method and path.

This module is the authority on routes: API Gateway sends everything here (a catch-all route), and
unknown paths (404 ``NOT_FOUND``) and wrong methods (405 ``METHOD_NOT_ALLOWED`` with ``Allow``) are
answered here in the envelope. Handlers are thin: parse, call the service, wrap the result. Every
exception becomes a response in exactly one place, ``_error_response``.

Every request writes one summary line ("request completed": route template, method, status, latency,
ids, job and client when known, cold start, error code) and its metrics (``utils.metrics``: Latency by
route, Errors by code, ColdStart; the services add the job counters), buffered for the request and
written as one EMF line at its end.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api import errors, http
from api.http import Request
from api.idempotency import run_idempotently
from api.requests import UploadReference, parse_create_job, parse_feedback, parse_list_query, parse_upload_request
from services import auth, health, job_listing
from services.auth import Client
from services.feedback_service import FeedbackService
from services.job_service import JobService, JobView, RequestInfo, validate_job_id
from services.upload_service import UploadService
from storage import Stores
from utils import config as runtime_config
from utils import logging as log
from utils import metrics, retry, secrets
from utils.clock import wall_time
from utils.errors import MethodNotAllowed, RouteNotFound, Unauthorized
from utils.metrics import Unit
from utils.settings import Settings, get_settings

logger = log.get_logger("api")

#: Kept in hand at the end of an invocation to write the response and the log line.
RESPONSE_RESERVE_SECONDS = 1.0


# ------------------------------------------------------------------------------------ dependencies
@dataclass
class Dependencies:
    """Everything a request needs, built once per container (clients are created lazily inside)."""

    settings: Settings
    stores: Stores

    @classmethod
    def from_settings(cls, settings: Settings) -> Dependencies:
        metrics.configure(
            namespace=settings.metrics_namespace, service=settings.metrics_service, environment=settings.environment
        )
        stores = Stores.from_names(
            settings.jobs_table, settings.preview_cache_table, settings.blueprints_bucket, settings.cache_bucket
        )
        return cls(settings, stores)

    def config(self) -> runtime_config.RuntimeConfig:
        return runtime_config.get_config(self.settings)

    def job_service(self) -> JobService:
        return JobService(self.stores, self.config())

    def api_keys_secret(self) -> dict[str, Any]:
        return secrets.get_store().get_json(self.settings.api_keys_secret_name)

    def authenticate(self, request: Request) -> Client:
        """The caller: a JWT's subject when API Gateway verified one, else the owner of X-API-Key."""
        from_jwt = auth.client_from_jwt(request.jwt_claims)
        if from_jwt is not None:
            return from_jwt
        presented = request.header("x-api-key")
        if not presented:  # no need to read the secret to refuse
            raise Unauthorized("An API key is required in the X-API-Key header")
        keys = self.api_keys_secret().get("keys")
        return auth.client_from_api_key(presented, keys if isinstance(keys, dict) else {})

    def cursor_key(self) -> bytes:
        fallback = f"{self.settings.environment}:{self.settings.api_keys_secret_name}"
        return auth.cursor_signing_key(self.api_keys_secret(), fallback)


_dependencies: Dependencies | None = None
_dependencies_lock = threading.Lock()
#: True until the container's first invocation takes it (the ColdStart metric, ``cold_start`` in the log).
_cold_start = True


def get_dependencies() -> Dependencies:
    global _dependencies
    if _dependencies is None:
        with _dependencies_lock:
            if _dependencies is None:
                settings = get_settings()
                log.set_level(settings.log_level)
                _dependencies = Dependencies.from_settings(settings)
    return _dependencies


def reset_dependencies() -> None:
    """Forget the container's state (tests and the local server use this after changing settings); the
    next invocation is a cold start again."""
    global _dependencies, _cold_start
    with _dependencies_lock:
        _dependencies = None
        _cold_start = True
    get_settings.cache_clear()
    runtime_config.reset()
    metrics.reset()


def _take_cold_start() -> bool:
    """True for the container's first invocation only (once, even when two requests race for it)."""
    global _cold_start
    with _dependencies_lock:
        cold, _cold_start = _cold_start, False
    return cold


# ------------------------------------------------------------------------------------------ routes
Handler = Callable[[Request, Dependencies], dict[str, Any]]


def health_check(request: Request, deps: Dependencies) -> dict[str, Any]:
    report = health.check({"dynamodb": deps.stores.jobs_table.ping, "s3": deps.stores.blueprints.ping})
    status = 200 if report["status"] == "healthy" else 503
    return http.success(status, report, request.request_id, request.correlation_id)


def _info(request: Request) -> RequestInfo:
    return RequestInfo(request.request_id, request.correlation_id, request.client_id)


def _ok(request: Request, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return http.success(status, data, request.request_id, request.correlation_id, headers)


def create_job(request: Request, deps: Dependencies) -> dict[str, Any]:
    service = deps.job_service()
    parsed = parse_create_job(request, service.config.max_upload_bytes)
    if isinstance(parsed, UploadReference):
        view = UploadService(service).finalise(parsed.upload_id, _info(request))
    else:
        view = service.create_job(parsed, _info(request))
    return _ok(request, view.to_public(), 201, {"Location": f"/api/v1/jobs/{view.job.job_id}"})


def list_jobs(request: Request, deps: Dependencies) -> dict[str, Any]:
    service = deps.job_service()
    query = parse_list_query(request, service.config.default_page_size)
    views, cursor = job_listing.list_jobs(service, request.client_id or "", query, deps.cursor_key())
    return _ok(request, {"jobs": [view.to_public() for view in views], "next_cursor": cursor})


def get_job(request: Request, deps: Dependencies) -> dict[str, Any]:
    view = deps.job_service().get_job_view(request.path_params["job_id"], request.client_id)
    return _ok(request, view.to_public())


def cancel_job(request: Request, deps: Dependencies) -> dict[str, Any]:
    job = deps.job_service().cancel_job(request.path_params["job_id"], request.client_id)
    return _ok(request, JobView(job).to_public())


def create_upload(request: Request, deps: Dependencies) -> dict[str, Any]:
    upload = parse_upload_request(request)
    uploads = UploadService(deps.job_service())
    return _ok(request, uploads.create_upload(upload.filename, upload.format, upload.size, request.client_id), 201)


def openapi_document(request: Request, deps: Dependencies) -> dict[str, Any]:
    """The OpenAPI 3.1 document itself (not in the envelope: it is the document clients feed to tools)."""
    headers = http.envelope_headers(request.request_id, request.correlation_id)
    return {"statusCode": 200, "headers": headers, "body": _openapi_text(), "isBase64Encoded": False}


@functools.cache
def _openapi_text() -> str:
    return (Path(__file__).with_name("openapi.json")).read_text(encoding="utf-8")


def submit_feedback(request: Request, deps: Dependencies) -> dict[str, Any]:
    job_id = validate_job_id(request.path_params["job_id"])
    feedback = parse_feedback(request)
    data = FeedbackService(deps.job_service()).submit(job_id, feedback, _info(request))
    return _ok(request, data, 201)


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    #: Public routes need no API key (health checks, the OpenAPI document).
    public: bool = False
    #: Honours Idempotency-Key.
    idempotent: bool = False


def _compile(template: str) -> re.Pattern[str]:
    """``/api/v1/jobs/{job_id}`` -> a pattern with a named group per ``{parameter}`` (one path segment)."""
    parts = re.split(r"(\{\w+\})", template)
    return re.compile("".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/health", health_check, public=True),
    Route("GET", "/api/v1/openapi.json", openapi_document, public=True),
    Route("GET", "/api/v1/jobs", list_jobs),
    Route("POST", "/api/v1/jobs", create_job, idempotent=True),
    Route("GET", "/api/v1/jobs/{job_id}", get_job),
    Route("DELETE", "/api/v1/jobs/{job_id}", cancel_job),
    Route("POST", "/api/v1/jobs/{job_id}/feedback", submit_feedback),
    Route("POST", "/api/v1/uploads", create_upload, idempotent=True),
)
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


# ------------------------------------------------------------------------------------------- entry
JOBS_PATH = "/api/v1/jobs/"
#: The contract error code the current request answers with (its summary line, the Errors metric).
_error_code: ContextVar[str | None] = ContextVar("error_code", default=None)


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    cold_start = _take_cold_start()
    request_id = http.new_request_id(wall_time())
    log.clear()
    log.bind(request_id=request_id, correlation_id=request_id)
    token = _error_code.set(None)
    try:
        with metrics.scope():  # the request's metrics, written as EMF lines when it ends
            if cold_start:
                metrics.add("ColdStart", 1)
            request, route_name, response = _respond(event, context, request_id)
            latency_ms = round((time.perf_counter() - started) * 1000, 1)
            _log_summary(request, route_name, response, latency_ms, cold_start)
            metrics.add("Latency", latency_ms, Unit.MILLISECONDS, Route=route_name)
            error_code = _error_code.get()
            if error_code:
                metrics.add("Errors", 1, Code=error_code)
    finally:
        _error_code.reset(token)
        log.clear()
    return response


def _respond(event: Any, context: Any, request_id: str) -> tuple[Request | None, str, dict[str, Any]]:
    """The response to ``event``, with the request (None if the event was unusable) and the route's
    template (never the raw path: it names a metric dimension and a log field of bounded cardinality)."""
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
            response = http.no_content(request_id, request.correlation_id)
        else:
            route, params = match(request.method, request.path)
            route_name = f"{route.method} {route.template}"
            request.path_params = params
            if "job_id" in params:
                log.bind(job_id=params["job_id"][:64])
            deps = get_dependencies()
            with retry.deadline(_seconds_left(context)):
                response = _run(route, request, deps)
    except Exception as exc:  # the one place where exceptions become responses
        response = _error_response(exc, request_id, request.correlation_id if request else request_id)
    for name, value in http.envelope_headers(request_id, request.correlation_id if request else request_id).items():
        response["headers"].setdefault(name, value)  # a replay keeps the first response's X-Request-ID
    response["headers"].update(_cors(request))
    return request, route_name, response


def _log_summary(
    request: Request | None, route_name: str, response: dict[str, Any], latency_ms: float, cold_start: bool
) -> None:
    """The request's one summary line. Never the path, query, headers or body: ids and outcomes only."""
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


def _run(route: Route, request: Request, deps: Dependencies) -> dict[str, Any]:
    """Authenticate, then run the route (under its Idempotency-Key, if it honours one)."""
    if not route.public:
        client = deps.authenticate(request)
        request.client_id = client.client_id
        log.bind(client_id=client.client_id)
    if not route.idempotent:
        return route.handler(request, deps)

    def handle() -> dict[str, Any]:  # errors become responses here, so a 4xx outcome is kept too
        try:
            return route.handler(request, deps)
        except Exception as exc:
            return _error_response(exc, request.request_id, request.correlation_id)

    store = deps.stores.idempotency
    return run_idempotently(
        request,
        client_id=request.client_id or "",
        store=store,
        now=wall_time(),
        seconds_left=retry.seconds_left(),
        handle=handle,
    )


def _error_response(exc: Exception, request_id: str, correlation_id: str) -> dict[str, Any]:
    """The error response for ``exc``; its code is kept for the summary line and the Errors metric (the
    last one wins: a stored 4xx that could not be kept becomes the 503 the client gets)."""
    error = errors.contract_error(exc)
    if error is None:
        logger.exception("unhandled error", exc_info=exc)
    elif errors.status_of(error) >= 500:
        logger.error("request failed", extra={"code": error.code}, exc_info=exc.__cause__ or exc)
    _error_code.set(error.code if error else "INTERNAL_ERROR")
    return errors.failure(exc, request_id, correlation_id)


def _seconds_left(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    try:
        return max(0.0, float(remaining()) / 1000 - RESPONSE_RESERVE_SECONDS)
    except (TypeError, ValueError):
        return None


def _cors(request: Request | None) -> dict[str, str]:
    """CORS headers for any response; falls back to the deployment default if config cannot load."""
    origin = request.header("origin") if request else None
    try:
        allowed = get_dependencies().config().cors_allowed_origins
    except Exception:
        try:
            allowed = get_settings().cors_allowed_origins
        except Exception:
            allowed = ()
    return http.cors_headers(origin, allowed)
