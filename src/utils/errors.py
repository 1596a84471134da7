"""Generic errors: a bad request, an unknown caller, an outage, a missing setting.

The contract's generic error codes are ``AppError`` subclasses; each carries its ``code``, a message safe
to show to a client, optional ``details`` and, where the client should wait, ``retry_after`` seconds.
None knows its HTTP status: the api layer holds the one code -> status table (``api.errors``) and turns
these and the domain's errors (``models.errors``) into the error envelope in one place. Anything else
becomes ``INTERNAL_ERROR`` there, is logged with its traceback and is never detailed to the client.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """Base of every generic error with a place in the contract."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "An unexpected error occurred"
    #: Seconds the client should wait before it retries (None: it need not wait).
    retry_after: int | None = None

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class _RetryLater(AppError):
    def __init__(self, retry_after: int = 1, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class InvalidRequest(AppError):
    code = "INVALID_REQUEST"
    default_message = "The request is invalid"


class InvalidCursor(AppError):
    code = "INVALID_CURSOR"
    default_message = "The cursor was not issued by this API for this client"


class Unauthorized(AppError):
    code = "UNAUTHORIZED"
    default_message = "A valid API key is required"


class RouteNotFound(AppError):
    code = "NOT_FOUND"
    default_message = "No such route"


class MethodNotAllowed(AppError):
    code = "METHOD_NOT_ALLOWED"
    default_message = "Method not allowed on this path"

    def __init__(self, allowed: list[str], message: str | None = None) -> None:
        super().__init__(message, details={"allowed_methods": allowed})
        self.allowed = allowed


class IdempotencyInProgress(_RetryLater):
    code = "IDEMPOTENCY_IN_PROGRESS"
    default_message = "A request with this Idempotency-Key is still being processed"


class PayloadTooLarge(AppError):
    code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is larger than the API accepts; send files over 4 MB with POST /api/v1/uploads"


class HeadersTooLarge(AppError):
    """Only the local API answers this itself; deployed, API Gateway refuses such requests before the Lambda."""

    code = "HEADERS_TOO_LARGE"
    default_message = "The request line and headers are larger than the 10 KB the API accepts"


class UnsupportedMediaType(AppError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "This route does not accept that Content-Type"


class IdempotencyKeyReused(AppError):
    code = "IDEMPOTENCY_KEY_REUSED"
    default_message = "This Idempotency-Key was used with a different request"


class RateLimited(_RetryLater):
    code = "RATE_LIMITED"
    default_message = "Too many requests; retry later"


class ServiceUnavailable(_RetryLater):
    code = "SERVICE_UNAVAILABLE"
    default_message = "A dependency is temporarily unavailable; retry later"


class InternalError(AppError):
    """Only ever raised by the router for an unexpected exception."""


class ConfigurationError(Exception):
    """A setting or runtime parameter is missing or invalid (raised at start-up or on load)."""
