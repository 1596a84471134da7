"""The local API: the deployed Lambda's ``lambda_handler`` behind a small HTTP server, on emulated AWS.

What it does, in the order a request meets it:
1. an embedded moto server on loopback (or ``AWS_ENDPOINT_URL``, when set: LocalStack or another moto)
   holds the tables, buckets, parameters and secret that ``template.yaml`` defines;
2. each HTTP request becomes a faithful HTTP API payload-2.0 event (API Gateway's transport limits
   enforced first: 10 KB of request line and headers -> 431, 6 MB of Lambda payload -> 413);
3. the same ``lambda_handler`` that runs in AWS handles it, with a context that counts down the
   function's timeout from the template;
4. its result goes back to the client the way API Gateway returns it (including ``isBase64Encoded``
   and the simple-response inference).
One exception, local only: ``GET /`` answers the explorer page (``local_api/explorer.py``).
Every answer the server makes itself (a malformed request, a broken chunked body, headers or a body over
the limits, a crashed handler) is the contract's error envelope with the CORS headers, never Python's
HTML error page; it listens with a backlog deep enough for a burst of new connections.
Development only: nothing here is packaged into the Lambda (``CodeUri`` is ``src/``). The event and
response translation lives in ``local_api.gateway_event`` (re-exported here), what the HTTP API's CORS
configuration does in ``local_api.gateway_cors``.
"""

from __future__ import annotations

import email.parser
import io
import json
import os
import re
import socket
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local_api import explorer, moto_atomic
from local_api.cfn_template import Stack, load_template
from local_api.gateway_cors import GatewayCors
from local_api.gateway_event import (
    LOCAL_ACCOUNT,
    LOCAL_API_ID,
    ROUTES,
    LambdaContext,
    Response,
    build_event,
    is_text,
    route_key,
    to_http,
)
from local_api.provision import provision, provision_api_keys

__all__ = [
    "LOCAL_ACCOUNT",
    "LOCAL_API_ID",
    "ROUTES",
    "LambdaContext",
    "LocalApiServer",
    "build_event",
    "is_text",
    "make_server",
    "prepare_environment",
    "route_key",
    "to_http",
]

#: API Gateway's limits (the contract's Transport section).
MAX_HEADER_BYTES = 10 * 1024
MAX_LAMBDA_PAYLOAD_BYTES = 6_291_456
#: An oversized body is read and dropped up to this much before answering 413 (then the connection closes).
MAX_DRAINED_BYTES = 64 * 1024 * 1024
#: Oversized headers are read and dropped up to this much before answering 431 (then the connection closes).
MAX_DRAINED_HEADER_BYTES = 1024 * 1024
#: Pending connections the kernel queues before accept (Python's default of 5 resets a burst of clients;
#: API Gateway takes bursts of thousands). Linux caps it at net.core.somaxconn (4096 by default).
LISTEN_BACKLOG = 1024
_TOO_LARGE = (
    "The request is larger than the 6 MB an API Gateway -> Lambda request can carry; "
    "send files over 4 MB with POST /api/v1/uploads"
)


def transport_error(error: Any) -> Response:
    """An error the server answers itself (``error``: an ``utils.errors.ApiError``) in the envelope, with
    the headers every response carries (the CORS ones are added where every response gets them)."""
    from api import errors, http
    from utils.clock import wall_time

    request_id = http.new_request_id(wall_time())
    return to_http(errors.failure(error, request_id, request_id))


class _BadRequest(Exception):
    """The request cannot be read as HTTP/1.1 (answered 400 ``INVALID_REQUEST``, then the connection closes)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocationDetectionLocal/1"
    #: Socket timeout: a client that stops sending mid-request (or idles on keep-alive) frees its thread.
    timeout = 30
    # Headers and body are written separately: without TCP_NODELAY, Nagle plus the client's delayed ACK
    # hold every keep-alive response back ~40 ms (bench/http_latency.py measured it).
    disable_nagle_algorithm = True
    invoke: Callable[[dict[str, Any]], Any]
    quiet = False
    aws_endpoint_url = ""  # for the explorer page's Content-Security-Policy
    cors = GatewayCors(("*",), (), (), ())  # make_server sets the template's

    def handle_one_request(self) -> None:
        """One request, read within API Gateway's limits (http.server's own allow 64 KB lines and refuse
        more than 100 headers, answering in HTML)."""
        self._origin: str | None = None  # for the CORS headers of an answer made here
        try:
            self.raw_requestline = self.rfile.readline(MAX_HEADER_BYTES + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > MAX_HEADER_BYTES:
                self.requestline, self.request_version, self.command = "", "", ""
                self._skip_header_block(self.raw_requestline)
                self.send_error(431)
                return
            if self.parse_request():
                self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True

    def parse_request(self) -> bool:
        """The base class parses the request line; the header block is read here, counted against 10 KB."""
        real_rfile = self.rfile
        self.rfile = io.BytesIO(b"\r\n")  # an empty header block for the base class
        try:
            if not super().parse_request():
                return False
        finally:
            self.rfile = real_rfile
        lines = self._read_header_lines()
        if lines is None:
            self.send_error(431)
            return False
        self.headers = email.parser.Parser(_class=self.MessageClass).parsestr(b"".join(lines).decode("iso-8859-1"))
        self._origin = self.headers.get("Origin")
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if self.headers.get("Expect", "").lower() == "100-continue" and self.request_version >= "HTTP/1.1":
            return bool(self.handle_expect_100())
        return True

    def _read_header_lines(self, counted: int | None = None) -> list[bytes] | None:
        """Header (or trailer) lines; None when they and the ``counted`` bytes before them (the request
        line by default) exceed 10 KB: the rest of the block is then dropped."""
        total = len(self.raw_requestline) if counted is None else counted
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline(MAX_HEADER_BYTES + 1)
            total += len(line)
            if total > MAX_HEADER_BYTES:
                self._skip_header_block(line)
                return None
            if line in (b"\r\n", b"\n", b""):
                return lines
            self._note_origin(line)
            lines.append(line)

    def _skip_header_block(self, last: bytes) -> None:
        """Read on to the end of the header block (bounded), so the client reads our 431 instead of a reset."""
        self.close_connection = True
        seen = len(last)
        while last not in (b"\r\n", b"\n", b"") and seen < MAX_DRAINED_HEADER_BYTES:
            last = self.rfile.readline(MAX_HEADER_BYTES + 1)
            seen += len(last)
            self._note_origin(last)

    def _note_origin(self, line: bytes) -> None:
        """Remember an ``Origin`` header seen in a block that will not be parsed (it is too large)."""
        if line[:7].lower() == b"origin:" and self._origin is None:
            self._origin = line[7:].decode("iso-8859-1").strip()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server answers itself (a malformed request line, an HTTP version it does not speak,
        headers over the limit) in the envelope with CORS headers: never its HTML page, never the input."""
        from utils.errors import HeadersTooLarge, InvalidRequest

        self.close_connection = True
        if self.request_version == self.default_request_version:  # unparsed: answer with a status line anyway
            self.request_version = self.protocol_version
        error = HeadersTooLarge() if code in (414, 431) else InvalidRequest("The request is not valid HTTP/1.1")
        self.log_message("answered %s to a request http.server could not parse", error.code)
        self._send(*self._local_error(error))

    def _local_error(self, error: Any) -> Response:
        return transport_error(error)

    def _dispatch(self) -> None:
        from utils.errors import InternalError, InvalidRequest, PayloadTooLarge

        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._send(*self._local_error(InvalidRequest(str(exc))))
            return
        if body is None:
            self._send(*self._local_error(PayloadTooLarge(_TOO_LARGE)))
            return
        if self.cors.is_preflight(self.command, self.headers.items()):  # API Gateway answers these itself
            self._send(204, self.cors.preflight(self._origin), b"", cors=False)
            return
        page = explorer.response(self.command, self.path, self.aws_endpoint_url)
        if page is not None:
            self._send(*page, cors=False)
            return
        event = build_event(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
        if len(json.dumps(event)) > MAX_LAMBDA_PAYLOAD_BYTES:
            self._send(*self._local_error(PayloadTooLarge(_TOO_LARGE)))
            return
        try:
            result = type(self).invoke(event)
        except Exception:  # the handler catches everything it knows; this is a crash of the function itself
            self.log_error("lambda_handler raised; answering INTERNAL_ERROR in the envelope")
            self._send(*self._local_error(InternalError()))
            return
        self._send(*to_http(result))

    def __getattr__(self, name: str) -> Any:
        """``do_GET``, ``do_QUERY``, ...: every method goes to the Lambda, whose router answers 405."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _declared_length(self) -> int:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        if not raw.strip().isdigit():  # "abc", "-1", "1,2": a request no proxy would pass on
            raise _BadRequest("The Content-Length header is not a length")
        return int(raw)

    def _read_body(self) -> bytes | None:
        """The body, or None when it is over the limit (the connection is then closed)."""
        if self.headers.get("Transfer-Encoding"):
            if self.headers.get("Content-Length") is not None:  # RFC 9112, 6.3: a smuggling attempt
                raise _BadRequest("A request may not carry both Transfer-Encoding and Content-Length")
            if self.headers["Transfer-Encoding"].strip().lower() != "chunked":
                raise _BadRequest("Only the chunked transfer coding is accepted")
            return self._read_chunked()
        length = self._declared_length()
        if length > MAX_LAMBDA_PAYLOAD_BYTES:
            self._drain(length)
            return None
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            raise _BadRequest("The body is shorter than its Content-Length")
        return body

    def _drain(self, length: int) -> None:
        """Read and drop an oversized body (up to a bound) so the client sees our 413, not a reset."""
        self.close_connection = True
        left = min(length, MAX_DRAINED_BYTES)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` (curl sends it for large bodies): refuse oversized ones up front."""
        from utils.errors import PayloadTooLarge

        raw = self.headers.get("Content-Length") or "0"
        if raw.strip().isdigit() and int(raw) > MAX_LAMBDA_PAYLOAD_BYTES:
            self.close_connection = True
            self._send(*self._local_error(PayloadTooLarge(_TOO_LARGE)))
            return False
        return bool(super().handle_expect_100())

    def _read_chunked(self) -> bytes | None:
        """A chunked body (RFC 9112, 7.1); a malformed one is ``_BadRequest``, an oversized one None."""
        chunks: list[bytes] = []
        total = 0
        while True:
            size = _chunk_size(self.rfile.readline(1024))
            if size == 0:
                if self._read_header_lines(counted=0) is None:
                    raise _BadRequest("The chunked body's trailer is too large")
                return b"".join(chunks)
            total += size
            if total > MAX_LAMBDA_PAYLOAD_BYTES:
                self._drain(MAX_DRAINED_BYTES)
                return None
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadRequest("A chunk of the chunked body is shorter than its size")
            chunks.append(chunk)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, cors: bool = True) -> None:
        """Write a response; ``cors``: with the CORS headers API Gateway's configuration gives it."""
        if cors:
            headers = self.cors.response(self._origin, headers)
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if not self.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")  # up to 4 GB a chunk: more than any body we take


def _chunk_size(line: bytes) -> int:
    """A chunk-size line (hex digits, optional ``;extensions``) as a number, else ``_BadRequest``."""
    digits = line.split(b";", 1)[0].strip()
    if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(digits):
        raise _BadRequest("The chunked body has an invalid chunk size")
    return int(digits, 16)


class LocalApiServer(ThreadingHTTPServer):
    """A thread per connection, and a listen backlog that takes a burst of new connections."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


#: Where a running local API says where it is, for the operator CLI (``python -m ops --local ...``).
#: ``LOCAL_API_STATE`` moves it (the e2e tests start servers of their own and must not clobber yours).
STATE_FILE = Path(os.environ.get("LOCAL_API_STATE") or Path(__file__).resolve().parent.parent / ".local-api.json")


def write_state(api_url: str, aws_endpoint_url: str, api_keys: list[str]) -> None:
    state = {"api_url": api_url, "aws_endpoint_url": aws_endpoint_url, "api_keys": api_keys}
    STATE_FILE.write_text(json.dumps(state) + "\n")
    STATE_FILE.chmod(0o600)  # it holds the local API keys


def lambda_environment(stack: Stack) -> dict[str, str]:
    return stack.function_environment("ApiFunction")


def start_emulated_aws() -> tuple[Any, str]:
    """An in-process moto server on a free loopback port; returns it and its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access line per emulated AWS call is noise
    moto_atomic.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dev_api_keys() -> dict[str, tuple[str, str]]:
    """``DEV_API_KEYS=key1,key2``: those keys, each its own client; unset: one freshly generated key."""
    from services.auth import new_api_key

    keys = [k.strip() for k in os.environ.get("DEV_API_KEYS", "").split(",") if k.strip()] or [new_api_key()]
    return {key: (f"dev-client-{n}", f"local key {n}") for n, key in enumerate(keys, start=1)}


def prepare_environment(environment: str = "dev") -> tuple[Stack, Any]:
    """Start (or point at) emulated AWS, provision the template's resources, export the Lambda's env."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    moto_server = None
    if not os.environ.get("AWS_ENDPOINT_URL"):
        moto_server, endpoint = start_emulated_aws()
        os.environ["AWS_ENDPOINT_URL"] = endpoint
    parameters = {"Environment": environment}
    if os.environ.get("CORS_ALLOWED_ORIGINS"):  # the template's CorsAllowedOrigins ("*" when unset)
        parameters["CorsAllowedOrigins"] = os.environ["CORS_ALLOWED_ORIGINS"]
    stack = Stack(load_template(), parameters, region=os.environ["AWS_DEFAULT_REGION"])
    provision(stack, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    keys = dev_api_keys()
    provision_api_keys(stack, keys, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    os.environ["LOCAL_API_KEYS"] = ",".join(keys)  # for __main__ to print
    for key, value in lambda_environment(stack).items():
        os.environ.setdefault(key, value)
    return stack, moto_server


def make_server(port: int, stack: Stack, quiet: bool = False) -> LocalApiServer:
    from api.rest_api import lambda_handler

    timeout = stack.function_timeout("ApiFunction")
    function_name = stack.physical_name("ApiFunction")

    def invoke(event: dict[str, Any]) -> Any:
        return lambda_handler(event, LambdaContext(function_name, timeout))

    attributes = {
        "invoke": staticmethod(invoke),
        "quiet": quiet,
        "aws_endpoint_url": os.environ.get("AWS_ENDPOINT_URL", ""),
        "cors": GatewayCors.from_stack(stack),
    }
    handler = type("LocalApiHandler", (_Handler,), attributes)
    return LocalApiServer(("127.0.0.1", port), handler)
