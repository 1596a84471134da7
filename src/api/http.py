"""HTTP API (payload format 2.0) events in, envelope responses out (errors: ``api.errors``; CORS: ``api.cors``).

``Request.from_event`` is tolerant: whatever the event holds, it yields a request or raises
``InvalidRequest`` (never a ``KeyError`` or ``TypeError``), so every response is in the envelope.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import secrets
import string
from typing import TYPE_CHECKING, Any

from models.job import API_VERSION, RequestInfo
from utils.clock import compact_utc
from utils.errors import InvalidRequest

if TYPE_CHECKING:
    from api.multipart import FormPart

_REQUEST_ID_ALPHABET = string.ascii_lowercase + string.digits
_REQUEST_ID_TABLE = bytes(ord(_REQUEST_ID_ALPHABET[n % 36]) for n in range(256))
#: A client's correlation id is echoed and logged only if it is this tame; otherwise the request id is used.
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:/=+-]{1,128}")


def new_request_id(epoch_seconds: float) -> str:
    """``req_{YYYYMMDDTHHMMSS}_{10 lowercase letters or digits}`` (UTC)."""
    # One read of the OS's randomness, not ten (secrets.choice reads once per character), mapped onto
    # the alphabet in C. 256 is not a multiple of 36, so 4 of the 36 characters are a little likelier:
    # 51.6 bits per id instead of 51.7, for an id that is unique, not secret.
    suffix = secrets.token_bytes(10).translate(_REQUEST_ID_TABLE).decode("ascii")
    return f"req_{compact_utc(epoch_seconds)}_{suffix}"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Request:
    """One API Gateway request, as the handlers see it. (A plain class, not a dataclass: ``models.records``.)"""

    __slots__ = (
        "_body",
        "_form",
        "aws_request_id",
        "client_id",
        "correlation_id",
        "headers",
        "idempotency_record",
        "is_base64",
        "jwt_claims",
        "method",
        "path",
        "path_params",
        "query",
        "raw_body",
        "raw_query",
        "request_id",
    )

    def __init__(
        self,
        *,
        method: str,
        path: str,
        headers: dict[str, str],
        query: dict[str, str],
        raw_body: Any,
        is_base64: bool,
        request_id: str,
        correlation_id: str,
        aws_request_id: str | None = None,
        raw_query: str = "",
        jwt_claims: dict[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.query = query
        self.raw_body = raw_body
        self.is_base64 = is_base64
        self.request_id = request_id
        self.correlation_id = correlation_id
        self.aws_request_id = aws_request_id
        self.raw_query = raw_query
        #: Claims of a JWT that API Gateway's authorizer verified (empty without one).
        self.jwt_claims: dict[str, Any] = jwt_claims if jwt_claims is not None else {}
        #: The authenticated client's id (set by the router on authenticated routes).
        self.client_id: str | None = None
        self.path_params: dict[str, str] = {}
        #: The Idempotency-Key record the request runs under (set by ``api.idempotency``), if any.
        self.idempotency_record: str | None = None
        self._body: bytes | None = None
        self._form: list[FormPart] | InvalidRequest | None = None

    def __repr__(self) -> str:  # never the body: it can be 50 MB, and it is the client's data
        return f"Request({self.method} {self.path}, request_id={self.request_id!r})"

    @classmethod
    def from_event(cls, event: Any, request_id: str) -> Request:
        event = _mapping(event)
        context = _mapping(event.get("requestContext"))
        http = _mapping(context.get("http"))
        raw_headers = _mapping(event.get("headers"))
        headers = {str(k).lower(): _text(v) for k, v in raw_headers.items()}
        raw_query = event.get("queryStringParameters")
        query = {str(k): _text(v) for k, v in raw_query.items()} if isinstance(raw_query, dict) else {}
        client_correlation = headers.get("x-correlation-id", "")
        correlation_id = client_correlation if _CORRELATION_ID.fullmatch(client_correlation) else request_id
        return cls(
            method=(_text(http.get("method")) or "GET").upper(),
            path=_text(event.get("rawPath")) or _text(http.get("path")) or "/",
            headers=headers,
            query=query,
            raw_body=event.get("body"),
            is_base64=event.get("isBase64Encoded") is True,
            request_id=request_id,
            correlation_id=correlation_id,
            aws_request_id=_text(context.get("requestId")) or None,
            raw_query=_text(event.get("rawQueryString")),
            jwt_claims=_mapping(_mapping(_mapping(context.get("authorizer")).get("jwt")).get("claims")),
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def info(self) -> RequestInfo:
        """Who asked, as the services record it."""
        return RequestInfo(self.request_id, self.correlation_id, self.client_id, self.idempotency_record)

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased (``""`` when absent)."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()

    @property
    def body(self) -> bytes:
        """The body's bytes (API Gateway base64-encodes binary bodies)."""
        if self._body is None:
            raw = self.raw_body
            if raw is None:
                self._body = b""
            elif not isinstance(raw, str):
                raise InvalidRequest("The request body could not be read")
            elif self.is_base64:
                try:
                    self._body = base64.b64decode(raw, validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidRequest("The request body could not be read") from None
            else:
                self._body = raw.encode("utf-8", errors="surrogatepass")
        return self._body

    def form(self) -> list[FormPart]:
        """The ``multipart/form-data`` parts, parsed once per request (the Idempotency-Key fingerprint and
        the create parser both read them); a body that does not parse raises the same ``InvalidRequest``
        each time."""
        if self._form is None:
            # Imported on the first multipart body: the parser's regular expressions and dataclass are
            # not paid by a cold start whose first request has none (bench: cold start end to end).
            from api.multipart import parse_form_data  # noqa: PLC0415

            try:
                self._form = parse_form_data(self.body, self.header("content-type") or "")
            except InvalidRequest as exc:
                self._form = exc
        if isinstance(self._form, InvalidRequest):
            raise self._form
        return self._form

    def json_body(self) -> Any:
        """The body parsed as JSON, or ``InvalidRequest`` saying what is wrong with it."""
        if isinstance(self.raw_body, str) and not self.is_base64:
            # API Gateway passed the JSON as text: parse that text itself. Going through ``body`` would
            # copy it to bytes and back: two more copies of a body of up to 6 MB at the request's peak.
            text = self.raw_body
            if _lone_surrogate().search(text):  # what the UTF-8 round trip refused
                raise InvalidRequest("The request body is not valid UTF-8")
        else:
            try:
                text = self.body.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequest("The request body is not valid UTF-8") from None
        if not text.strip():
            raise InvalidRequest("A JSON request body is required")
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise InvalidRequest("The request body is not valid JSON") from None
        if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
            raise InvalidRequest(
                "The request body is not valid JSON text: it escapes an unpaired surrogate (\\uD800-\\uDFFF)"
            )
        return value


@functools.cache
def _lone_surrogate() -> re.Pattern[str]:
    """Text that cannot be UTF-8: a lone surrogate (``surrogatepass`` carries one into the bytes).
    Compiled on the first JSON body (~0.3 ms), not at a GET's cold start."""
    return re.compile("[\\ud800-\\udfff]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: A ``\uD800``-``\uDFFF`` escape (a cheap pre-check: most bodies have none, and a pair is fine).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a string (key or value) of a parsed document holds an unpaired surrogate.

    ``json.loads`` turns an escaped pair into its character but keeps a lone ``\\ud800`` as a lone
    surrogate, which no UTF-8 encoder takes: storing or logging it later would fail. I-JSON (RFC 7493,
    section 2.1) forbids them. Iterative, because documents may be deep.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _lone_surrogate().search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def envelope_headers(request_id: str, correlation_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Request-ID": request_id,
        "X-Correlation-ID": correlation_id,
    }


def _response(status: int, payload: dict[str, Any] | None, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": headers,
        "body": "" if payload is None else json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        "isBase64Encoded": False,
    }


def success(
    status: int, data: Any, request_id: str, correlation_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    payload = {"status": "success", "data": data, "meta": {"request_id": request_id, "api_version": API_VERSION}}
    return _response(status, payload, {**envelope_headers(request_id, correlation_id), **(headers or {})})


def failure(
    status: int,
    code: str,
    message: str,
    *,
    details: dict[str, Any],
    request_id: str,
    correlation_id: str,
    headers: dict[str, str],
) -> dict[str, Any]:
    """The error envelope (``api.errors.failure`` maps an exception onto it)."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    payload = {"status": "error", "error": body, "meta": {"request_id": request_id, "api_version": API_VERSION}}
    return _response(status, payload, {**envelope_headers(request_id, correlation_id), **headers})


def ok(request: Request, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The success envelope answering ``request``."""
    return success(status, data, request.request_id, request.correlation_id, headers)


def no_content(request_id: str, correlation_id: str) -> dict[str, Any]:
    headers = envelope_headers(request_id, correlation_id)
    del headers["Content-Type"]
    return _response(204, None, headers)
