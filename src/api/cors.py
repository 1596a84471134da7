"""CORS: the ``Access-Control-*`` headers every response carries, for the origins the configuration allows."""

from __future__ import annotations

from api import dependencies
from api.http import Request
from utils.settings import get_settings

CORS_ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_ALLOW_HEADERS = "Content-Type, X-API-Key, Authorization, Idempotency-Key, X-Correlation-ID"
CORS_EXPOSE_HEADERS = (
    "X-Request-ID, X-Correlation-ID, Location, Retry-After, Idempotent-Replayed, RateLimit-Policy, RateLimit, "
    "WWW-Authenticate"
)
CORS_MAX_AGE_SECONDS = "600"


def cors_headers(origin: str | None, allowed_origins: tuple[str, ...]) -> dict[str, str]:
    """``Access-Control-*`` headers for every response; the origin is allowed by configuration."""
    headers = {
        "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
        "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
        "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS,
        "Access-Control-Max-Age": CORS_MAX_AGE_SECONDS,
    }
    if "*" in allowed_origins:
        headers["Access-Control-Allow-Origin"] = "*"
    else:
        headers["Vary"] = "Origin"
        if origin and origin.rstrip("/") in allowed_origins:
            headers["Access-Control-Allow-Origin"] = origin
    return headers


def headers_for(request: Request | None) -> dict[str, str]:
    """CORS headers for the response to ``request`` (None: an event too broken to read); falls back to
    the deployment's default origins if the runtime configuration cannot load, then to none."""
    origin = request.header("origin") if request else None
    try:
        allowed = dependencies.get().config().cors_allowed_origins
    except Exception:
        try:
            allowed = get_settings().cors_allowed_origins
        except Exception:
            allowed = ()
    return cors_headers(origin, allowed)
