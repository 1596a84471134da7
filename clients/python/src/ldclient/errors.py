"""What can go wrong, as exceptions that carry what a script needs to decide (code, status, request id)."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

_CODE_BY_STATUS = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "IDEMPOTENCY_KEY_REUSED",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


class ClientError(Exception):
    """Base of every ldclient error."""


class ApiError(ClientError):
    """The API answered with an error envelope (or, from a gateway, the code closest to its status)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.request_id = request_id
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "request_id": self.request_id,
        }


class NetworkError(ClientError):
    """No answer at all (refused, reset, timed out), after the retries."""


class UploadRefused(ClientError):
    """S3 refused the presigned upload (an XML error, not our envelope)."""

    def __init__(self, status: int, s3_code: str | None) -> None:
        super().__init__(f"S3 refused the upload: HTTP {status}{f' {s3_code}' if s3_code else ''}")
        self.status = status
        self.s3_code = s3_code


class WaitTimeout(ClientError):
    """``--wait`` gave up before the job reached a final status."""

    def __init__(self, job: dict[str, Any], seconds: float) -> None:
        super().__init__(f"job {job['job_id']} still {job['status']} after {seconds:.0f} s")
        self.job = job


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def api_error(response: httpx.Response) -> ApiError:
    """The ``ApiError`` of a non-2xx answer."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    meta = body.get("meta") if isinstance(body, dict) else None
    gateway_message = body.get("message") if isinstance(body, dict) else None
    status = response.status_code
    fallback = _CODE_BY_STATUS.get(status, "INTERNAL_ERROR" if status >= 500 else "INVALID_REQUEST")
    request_id = meta.get("request_id") if isinstance(meta, dict) else None
    details = error.get("details")
    return ApiError(
        status=status,
        code=str(error.get("code") or fallback),
        message=str(error.get("message") or gateway_message or f"HTTP {status}"),
        details=details if isinstance(details, dict) else None,
        request_id=str(request_id or response.headers.get("x-request-id") or "") or None,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )
