"""The contract's error codes as exceptions.

Every error a client can see is one of these classes. Each carries the contract's ``code``, the HTTP
status, a message safe to show to a client and optional ``details``; the router turns any of them into
the error envelope in one place (``api.rest_api``). Anything that is not an ``ApiError`` becomes
``INTERNAL_ERROR`` there, is logged with its traceback and is never detailed to the client.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Base of every error with a place in the contract."""

    code = "INTERNAL_ERROR"
    http_status = 500
    default_message = "An unexpected error occurred"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


class InvalidRequest(ApiError):
    code = "INVALID_REQUEST"
    http_status = 400
    default_message = "The request is invalid"


class InvalidFileFormat(ApiError):
    code = "INVALID_FILE_FORMAT"
    http_status = 400
    default_message = "File format must be PNG, JPG, or PDF"


class InvalidJobId(ApiError):
    code = "INVALID_JOB_ID"
    http_status = 400
    default_message = "The job id is not a valid job id"


class InvalidCursor(ApiError):
    code = "INVALID_CURSOR"
    http_status = 400
    default_message = "The cursor was not issued by this API for this client"


class Unauthorized(ApiError):
    code = "UNAUTHORIZED"
    http_status = 401
    default_message = "A valid API key is required"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'ApiKey header="X-API-Key"')


class JobNotFound(ApiError):
    code = "JOB_NOT_FOUND"
    http_status = 404
    default_message = "Job not found"


class UploadNotFound(ApiError):
    code = "UPLOAD_NOT_FOUND"
    http_status = 404
    default_message = "Upload not found, expired or already used"


class RouteNotFound(ApiError):
    code = "NOT_FOUND"
    http_status = 404
    default_message = "No such route"


class MethodNotAllowed(ApiError):
    code = "METHOD_NOT_ALLOWED"
    http_status = 405
    default_message = "Method not allowed on this path"

    def __init__(self, allowed: list[str], message: str | None = None) -> None:
        allow = ", ".join(allowed)
        super().__init__(message, details={"allowed_methods": allowed}, headers={"Allow": allow})


class JobAlreadyCompleted(ApiError):
    code = "JOB_ALREADY_COMPLETED"
    http_status = 409
    default_message = "The job has already finished and cannot be cancelled"


class JobNotCompleted(ApiError):
    code = "JOB_NOT_COMPLETED"
    http_status = 409
    default_message = "The job is not completed"


class Conflict(ApiError):
    code = "CONFLICT"
    http_status = 409
    default_message = "A concurrent update won; retry the request"


class IdempotencyInProgress(ApiError):
    code = "IDEMPOTENCY_IN_PROGRESS"
    http_status = 409
    default_message = "A request with this Idempotency-Key is still being processed"


class FileTooLarge(ApiError):
    code = "FILE_TOO_LARGE"
    http_status = 413
    default_message = "The file is larger than the maximum allowed size"

    def __init__(self, max_bytes: int, message: str | None = None) -> None:
        super().__init__(message, details={"max_bytes": max_bytes})


class PayloadTooLarge(ApiError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413
    default_message = "The request body is larger than the API accepts; send files over 4 MB with POST /api/v1/uploads"


class HeadersTooLarge(ApiError):
    """Only the local API answers this itself; deployed, API Gateway refuses such requests before the Lambda."""

    code = "HEADERS_TOO_LARGE"
    http_status = 431
    default_message = "The request line and headers are larger than the 10 KB the API accepts"


class UnsupportedMediaType(ApiError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415
    default_message = "This route does not accept that Content-Type"


class IdempotencyKeyReused(ApiError):
    code = "IDEMPOTENCY_KEY_REUSED"
    http_status = 422
    default_message = "This Idempotency-Key was used with a different request"


class RateLimited(ApiError):
    code = "RATE_LIMITED"
    http_status = 429
    default_message = "Too many requests; retry later"

    def __init__(self, retry_after: int = 1, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(ApiError):
    code = "SERVICE_UNAVAILABLE"
    http_status = 503
    default_message = "A dependency is temporarily unavailable; retry later"

    def __init__(self, retry_after: int = 1, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class InternalError(ApiError):
    """Only ever raised by the router for an unexpected exception."""


class DomainError(Exception):
    """A rule of the job state machine was broken by a caller that is not an HTTP client.

    The processing pipeline (``job_service.start_processing`` and friends) gets these; the HTTP routes
    translate the ones a client can cause into ``ApiError`` subclasses.
    """


class IllegalTransition(DomainError):
    def __init__(self, job_id: str, current: str, target: str) -> None:
        self.job_id = job_id
        self.current = current
        self.target = target
        super().__init__(f"job {job_id} cannot move from {current} to {target}")


class ConfigurationError(Exception):
    """A setting or runtime parameter is missing or invalid (raised at start-up or on load)."""
