"""The job API over HTTP (httpx): creates by size (direct or presigned), retries that are safe, typed errors.

Retries: a request that never reached the server (connection refused) is always safe to repeat; 429 and
409 ``IDEMPOTENCY_IN_PROGRESS`` too (refused before anything happened). Network errors after sending,
5xx and 409 ``CONFLICT`` are retried only for idempotent requests: GET, DELETE, and creates, which carry
one ``Idempotency-Key`` per logical create for all their attempts. An erasure is resumable, not idempotent:
an answered 503 or 409 ``CONFLICT`` is retried (the contract: the retry finishes the work), a lost answer
or a 500 is not (the job may be gone, and the retry would read 404). ``Retry-After`` is honoured.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from ldclient.errors import ApiError, NetworkError, UploadRefused, WaitTimeout, api_error
from ldclient.files import MIME_TYPES, MultipartBody, Progress, detect_format

#: Files up to this size go in the create request; larger ones through POST /api/v1/uploads. A Lambda
#: request carries 6,291,456 bytes, in which the file travels base64-encoded (about 4.5 MB of file).
DIRECT_LIMIT_BYTES = 4 * 1024 * 1024
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
Json = dict[str, Any]
#: Which failures a request repeats (the module's docstring): ``idempotent`` network errors after sending,
#: 5xx and 409 ``CONFLICT``; ``resumable`` (an erasure) an answered 503 or 409 ``CONFLICT``; ``once``
#: neither. All of them: a request that never left, 429 and 409 ``IDEMPOTENCY_IN_PROGRESS``.
Retries = Literal["idempotent", "resumable", "once"]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    #: A longer ``Retry-After`` is not waited for: the error is raised.
    max_retry_after: float = 60.0


@dataclass
class Created:
    job: Json
    path: str
    replayed: bool
    request_id: str | None
    idempotency_key: str


class Client:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry: RetryPolicy | None = None,
        direct_limit: int = DIRECT_LIMIT_BYTES,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.direct_limit = direct_limit
        self._sleep = sleep
        headers = {"X-API-Key": api_key, "Accept": "application/json", "User-Agent": "ldclient/0.1"}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        # S3 gets no API key (a separate client, no default headers).
        self._s3 = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()
        self._s3.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ jobs
    def create_job(
        self,
        path: Path,
        *,
        progress: Progress | None = None,
        idempotency_key: str | None = None,
        strategy: str = "auto",
    ) -> Created:
        """A job from the file at ``path``; the same key on every attempt (at most 247 characters)."""
        key = idempotency_key or str(uuid.uuid4())
        size = path.stat().st_size
        route = strategy if strategy != "auto" else ("direct" if size <= self.direct_limit else "presigned")
        fmt = detect_format(path)
        if route == "direct":
            content_type = MIME_TYPES.get(fmt or "", "application/octet-stream")
            body = MultipartBody(path, path.name, content_type, [])
            response = self._send("POST", "/api/v1/jobs", retries="idempotent", key=key, body=body, progress=progress)
        else:
            response = self._create_presigned(path, fmt, key, progress)
        data = response.json()["data"]
        replayed = response.headers.get("idempotent-replayed") == "true"
        return Created(data, route, replayed, response.headers.get("x-request-id"), key)

    def _create_presigned(self, path: Path, fmt: str | None, key: str, progress: Progress | None) -> httpx.Response:
        if fmt is None:
            raise ApiError(400, "INVALID_FILE_FORMAT", f"{path.name}: not a PNG, JPG or PDF (by its bytes or name)")
        request = {"filename": path.name, "format": fmt, "size": path.stat().st_size}
        upload = self._send("POST", "/api/v1/uploads", retries="idempotent", key=f"{key}.upload", json=request).json()
        upload = upload["data"]
        body = MultipartBody(path, path.name, MIME_TYPES[fmt], list(upload["fields"].items()))
        self._post_to_s3(upload["url"], body, progress)
        payload = {"blueprint": {"upload_id": upload["upload_id"]}}
        return self._send("POST", "/api/v1/jobs", retries="idempotent", key=f"{key}.job", json=payload)

    def _post_to_s3(self, url: str, body: MultipartBody, progress: Progress | None) -> None:
        for attempt in range(1, self.retry.attempts + 1):
            headers = {"Content-Type": body.content_type_header, "Content-Length": str(body.length)}
            try:
                response = self._s3.post(url, content=body.stream(progress), headers=headers)
            except httpx.TransportError as exc:
                if attempt == self.retry.attempts:
                    raise NetworkError(f"upload to S3 failed: {exc}") from exc
                self._sleep(self._backoff(attempt))
                continue
            if response.is_success:
                return
            code = next(iter(response.text.split("<Code>")[1:]), "").split("</Code>")[0] or None
            if response.status_code < 500 or attempt == self.retry.attempts:
                raise UploadRefused(response.status_code, code)
            self._sleep(self._backoff(attempt))  # the same object key: a retry overwrites

    def get_job(self, job_id: str) -> Json:
        return self._data("GET", f"/api/v1/jobs/{quote(job_id, safe='')}", retries="idempotent")

    def cancel_job(self, job_id: str) -> Json:
        """Idempotent (a cancelled job answers again); a finished job is 409 ``JOB_ALREADY_COMPLETED``."""
        return self._data("DELETE", f"/api/v1/jobs/{quote(job_id, safe='')}", retries="idempotent")

    def erase_job(self, job_id: str) -> Json:
        """The contract's ``POST /api/v1/jobs/{job_id}/erase``: the receipt. Retried after an answered
        503 or 409 ``CONFLICT`` (the next call finishes the erasure), not after a lost answer or a 500:
        the retry would read 404 for a job that is gone."""
        return self._data("POST", f"/api/v1/jobs/{quote(job_id, safe='')}/erase", retries="resumable")

    def submit_feedback(self, job_id: str, rating: int, comment: str | None = None, corrections: Any = None) -> Json:
        body: Json = {"rating": rating}
        if comment is not None:
            body["comment"] = comment
        if corrections is not None:
            body["corrections"] = corrections
        path = f"/api/v1/jobs/{quote(job_id, safe='')}/feedback"
        return self._data("POST", path, retries="once", json=body)

    def list_jobs(self, status: str | None = None, page_size: int | None = None) -> Iterator[Json]:
        """The caller's jobs, newest first, page after page through ``next_cursor``."""
        params: dict[str, str | int] = {}
        if status:
            params["status"] = status
        if page_size:
            params["limit"] = page_size
        while True:
            page = self._data("GET", "/api/v1/jobs", retries="idempotent", params=params)
            yield from page["jobs"]
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def wait_for_job(
        self, job_id: str, *, timeout: float = 600.0, on_update: Callable[[Json], None] | None = None
    ) -> Json:
        """Polls (0.5 s, growing by 1.6 up to 5 s; again from 0.5 s when the job moves) until a final status."""
        deadline = time.monotonic() + timeout
        delay, seen = 0.5, ""
        while True:
            job = self.get_job(job_id)
            state = f"{job['status']}|{job.get('progress')}|{job.get('stage')}"
            if state != seen:
                seen, delay = state, 0.5
                if on_update:
                    on_update(job)
            if job["status"] in FINAL_STATUSES:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(job, timeout)
            self._sleep(min(delay, left))
            delay = min(5.0, delay * 1.6)

    # ---------------------------------------------------------------------------------- internals
    def _data(self, method: str, path: str, *, retries: Retries, **kwargs: Any) -> Json:
        data = self._send(method, path, retries=retries, **kwargs).json()["data"]
        return dict(data)

    def _send(
        self,
        method: str,
        path: str,
        *,
        retries: Retries,
        key: str | None = None,
        body: MultipartBody | None = None,
        progress: Progress | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        for attempt in range(1, self.retry.attempts + 1):
            if body is not None:  # a fresh stream per attempt
                headers.update({"Content-Type": body.content_type_header, "Content-Length": str(body.length)})
                kwargs["content"] = body.stream(progress)
            try:
                response = self._http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                # Never sent (ConnectError): always safe to repeat; otherwise only when idempotent.
                retry = isinstance(exc, httpx.ConnectError) or retries == "idempotent"
                if not retry or attempt == self.retry.attempts:
                    raise NetworkError(f"{method} {self.base_url}{path}: {exc or type(exc).__name__}") from exc
                self._sleep(self._backoff(attempt))
                continue
            if response.is_success:
                return response
            error = api_error(response)
            delay = self._retry_delay(error, attempt, retries)
            if delay is None:
                raise error
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_delay(self, error: ApiError, attempt: int, retries: Retries) -> float | None:
        """Seconds to wait before the next attempt, or None when this error must be raised."""
        if attempt >= self.retry.attempts:
            return None
        always = error.status == 429 or error.code == "IDEMPOTENCY_IN_PROGRESS"
        answered = {"idempotent": (500, 502, 503, 504), "resumable": (503,), "once": ()}[retries]
        again = error.status in answered or (retries != "once" and error.code == "CONFLICT")
        if not (always or again):
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.retry.max_retry_after else None
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.random() * ceiling / 2  # noqa: S311 - jitter, not secrets
