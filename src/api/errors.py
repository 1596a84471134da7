"""The one error map: every error a client can see, as its HTTP status and headers, in the envelope; and
the one place an exception becomes a response (``error_response``).

Errors know their contract ``code`` and nothing of HTTP (``models.errors`` for the domain's,
``utils.errors`` for the generic ones). This table gives each code its status; a code that is not in it
(``ILLEGAL_TRANSITION``, the pipeline's) and any other exception become ``INTERNAL_ERROR``.
"""

from __future__ import annotations

from typing import Any

from api import http
from api.observability import note_error
from models.errors import DomainError
from utils.errors import AppError, InternalError, MethodNotAllowed, Unauthorized
from utils.logging import get_logger

logger = get_logger("api")

ContractError = AppError | DomainError

#: The contract's error codes and their HTTP statuses (API_CONTRACT.md, the OpenAPI ErrorCode enum).
STATUS_BY_CODE: dict[str, int] = {
    "INVALID_REQUEST": 400,
    "INVALID_FILE_FORMAT": 400,
    "INVALID_JOB_ID": 400,
    "INVALID_CURSOR": 400,
    "INVALID_WEBHOOK_URL": 400,
    "UNAUTHORIZED": 401,
    "JOB_NOT_FOUND": 404,
    "UPLOAD_NOT_FOUND": 404,
    "WEBHOOK_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "JOB_ALREADY_COMPLETED": 409,
    "JOB_NOT_COMPLETED": 409,
    "CONFLICT": 409,
    "IDEMPOTENCY_IN_PROGRESS": 409,
    "FILE_TOO_LARGE": 413,
    "PAYLOAD_TOO_LARGE": 413,
    "HEADERS_TOO_LARGE": 431,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "IDEMPOTENCY_KEY_REUSED": 422,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
}
#: How a client authenticates (RFC 9110, section 11.6.1): sent with every 401.
WWW_AUTHENTICATE = 'ApiKey header="X-API-Key"'


def contract_error(exc: BaseException) -> ContractError | None:
    """``exc`` if the contract has a place for it, else None (it will be answered as INTERNAL_ERROR)."""
    if isinstance(exc, AppError | DomainError) and exc.code in STATUS_BY_CODE:
        return exc
    return None


def status_of(error: ContractError) -> int:
    return STATUS_BY_CODE[error.code]


def headers_of(error: ContractError) -> dict[str, str]:
    """The headers an error answers with besides the envelope's."""
    if isinstance(error, Unauthorized):
        return {"WWW-Authenticate": WWW_AUTHENTICATE}
    if isinstance(error, MethodNotAllowed):
        return {"Allow": ", ".join(error.allowed)}
    if isinstance(error, AppError) and error.retry_after is not None:
        return {"Retry-After": str(error.retry_after)}
    return {}


#: The contract: input echoed back in ``details`` is cut to at most this many characters.
MAX_ECHOED_CHARS = 100


def echo_safe(value: Any) -> Any:
    """``details`` with every string in it cut to 100 characters, however deep: values the client sent
    (a 3 MB form field, a long Content-Type) come back bounded, whichever error echoed them."""
    if isinstance(value, str):
        return value[:MAX_ECHOED_CHARS]
    if isinstance(value, dict):
        return {str(k)[:MAX_ECHOED_CHARS]: echo_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [echo_safe(v) for v in value]
    return value


def failure(exc: BaseException, request_id: str, correlation_id: str) -> dict[str, Any]:
    """The error envelope for ``exc`` (``INTERNAL_ERROR``, without details, for anything unknown)."""
    error = contract_error(exc) or InternalError()
    return http.failure(
        status_of(error),
        error.code,
        error.message,
        details=echo_safe(error.details),
        request_id=request_id,
        correlation_id=correlation_id,
        headers=headers_of(error),
    )


def error_response(exc: BaseException, request_id: str, correlation_id: str) -> dict[str, Any]:
    """The response for ``exc``, logged as it deserves: an unexpected exception with its traceback, a 5xx
    with its cause; its code is kept for the request's summary line and Errors metric."""
    error = contract_error(exc)
    if error is None:
        logger.error("unhandled error", exc_info=exc)
    elif status_of(error) >= 500:
        logger.error("request failed", extra={"code": error.code}, exc_info=exc.__cause__ or exc)
    note_error(error.code if error else InternalError.code)
    return failure(exc, request_id, correlation_id)
