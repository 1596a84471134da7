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

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local_api import console, explorer, in_process, moto_atomic, secret_changes
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
from local_api.http_reader import (
    MAX_HEADER_BYTES,
    MAX_LAMBDA_PAYLOAD_BYTES,
    BadRequest,
    RequestReader,
)
from local_api.local_state import LocalState
from local_api.provision import merge_api_keys, provision, provision_api_keys

__all__ = [
    "LOCAL_ACCOUNT",
    "LOCAL_API_ID",
    "MAX_HEADER_BYTES",
    "MAX_LAMBDA_PAYLOAD_BYTES",
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


class _Handler(RequestReader):
    protocol_version = "HTTP/1.1"
    server_version = "LocationDetectionLocal/1"
    #: Socket timeout: a client that stops sending mid-request (or idles on keep-alive) frees its thread.
    timeout = 30
    # Headers and body are written separately: without TCP_NODELAY, Nagle plus the client's delayed ACK
    # hold every keep-alive response back ~40 ms (bench/http_latency.py measured it).
    disable_nagle_algorithm = True
    invoke: Callable[[dict[str, Any]], Any]
    quiet = False
    #: One human line per request (``local_api.console``) instead of http.server's access line.
    human = False
    aws_endpoint_url = ""  # for the explorer page's Content-Security-Policy
    cors = GatewayCors(("*",), (), (), ())  # make_server sets the template's

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

    def handle_one_request(self) -> None:
        self._started: float | None = None
        self._lambda_answered = False
        super().handle_one_request()

    def _dispatch(self) -> None:
        from utils.errors import InternalError, InvalidRequest, PayloadTooLarge

        self._started = time.perf_counter()
        try:
            body = self._read_body()
        except BadRequest as exc:
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
            token = console.request_path.set(urlsplit(self.path).path)
            try:
                result = type(self).invoke(event)
            finally:
                console.request_path.reset(token)
            self._lambda_answered = True  # its own summary line says how it went
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

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` (curl sends it for large bodies): refuse oversized ones up front."""
        from utils.errors import PayloadTooLarge

        raw = self.headers.get("Content-Length") or "0"
        if raw.strip().isdigit() and int(raw) > MAX_LAMBDA_PAYLOAD_BYTES:
            self.close_connection = True
            self._send(*self._local_error(PayloadTooLarge(_TOO_LARGE)))
            return False
        return bool(super().handle_expect_100())

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

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not self.human:
            super().log_request(code, size)
        elif not self.quiet and not self._lambda_answered:  # the explorer page, a 413: no Lambda line
            path = urlsplit(getattr(self, "path", "") or "").path or "-"
            started = self._started or time.perf_counter()
            console.log_local_request(getattr(self, "command", None) or "-", path, int(code), started)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if not self.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


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
    moto_atomic.forget_used_stream_iterators()
    secret_changes.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dev_api_keys(saved: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """``DEV_API_KEYS=key1,key2``: those keys, each its own client; unset: the ``saved`` ones (the previous
    run's, from its kept state), else one freshly generated key."""
    from services.auth import new_api_key

    chosen = [k.strip() for k in os.environ.get("DEV_API_KEYS", "").split(",") if k.strip()]
    keys = chosen or list(saved or []) or [new_api_key()]
    return {key: (f"dev-client-{n}", f"local key {n}") for n, key in enumerate(keys, start=1)}


#: ``make run`` variables provisioned as the local parameters' values (``rate-limit-*`` in Parameter Store).
_RATE_LIMIT_PARAMETERS = {"RATE_LIMIT_PER_MINUTE": "RateLimitPerMinute", "RATE_LIMIT_BURST": "RateLimitBurst"}


def webhook_attempts() -> dict[str, int]:
    """``WEBHOOK_RETRY_DELAYS=1,2,4``: each delivery is attempted once more than there are delays, so the
    deliveries queue's redrive policy counts that many receives (the template's count is the deployed
    schedule's)."""
    from utils.settings import parse_retry_delays

    delays = parse_retry_delays(os.environ.get("WEBHOOK_RETRY_DELAYS"))
    return {} if delays is None else {"WebhookDeliveriesQueue": len(delays) + 1}


def prepare_environment(environment: str = "dev", state: LocalState | None = None) -> tuple[Stack, Any]:
    """Start (or point at) emulated AWS, provision the template's resources, export the Lambda's env.
    ``state``: what a previous run kept, restored into the emulator (``local_api.local_state``)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    moto_server = None
    if not os.environ.get("AWS_ENDPOINT_URL"):
        moto_server, endpoint = start_emulated_aws()
        os.environ["AWS_ENDPOINT_URL"] = endpoint
    # Webhooks to http://127.0.0.1 receivers: local development only (every deployed function says false).
    os.environ.setdefault("WEBHOOK_ALLOW_LOOPBACK", "true")
    parameters = {"Environment": environment}
    if os.environ.get("CORS_ALLOWED_ORIGINS"):  # the template's CorsAllowedOrigins ("*" when unset)
        parameters["CorsAllowedOrigins"] = os.environ["CORS_ALLOWED_ORIGINS"]
    for variable, parameter in _RATE_LIMIT_PARAMETERS.items():  # the template's defaults when unset
        if os.environ.get(variable):
            parameters[parameter] = os.environ[variable].strip()
    stack = Stack(load_template(), parameters, region=os.environ["AWS_DEFAULT_REGION"])
    endpoint = os.environ["AWS_ENDPOINT_URL"]

    def provision_all() -> None:
        provision(stack, endpoint_url=endpoint, max_receive_counts=webhook_attempts())

    provision_all()
    if state is None:
        keys = dev_api_keys()
        provision_api_keys(stack, keys, endpoint_url=endpoint)
    else:
        restored = state.restore(stack, endpoint, provision_all)
        keys = dev_api_keys(restored.dev_api_keys)
        merge_api_keys(stack, keys, replaced=restored.dev_api_keys, endpoint_url=endpoint)
        state.dev_api_keys = list(keys)
    os.environ["LOCAL_API_KEYS"] = ",".join(keys)  # for __main__ to print
    if moto_server is not None and os.environ.get("LOCAL_API_AWS_OVER_HTTP") != "1":
        in_process.install(os.environ["AWS_ENDPOINT_URL"])  # the handler's calls skip loopback HTTP
    for key, value in stack.process_environment().items():  # the API's and the workers'
        os.environ.setdefault(key, value)
    return stack, moto_server


def make_server(port: int, stack: Stack, quiet: bool = False, human: bool = False) -> LocalApiServer:
    from api.rest_api import lambda_handler

    timeout = stack.function_timeout("ApiFunction")
    function_name = stack.physical_name("ApiFunction")

    def invoke(event: dict[str, Any]) -> Any:
        return lambda_handler(event, LambdaContext(function_name, timeout))

    attributes = {
        "invoke": staticmethod(invoke),
        "quiet": quiet,
        "human": human,
        "aws_endpoint_url": os.environ.get("AWS_ENDPOINT_URL", ""),
        "cors": GatewayCors.from_stack(stack),
    }
    handler = type("LocalApiHandler", (_Handler,), attributes)
    return LocalApiServer(("127.0.0.1", port), handler)
