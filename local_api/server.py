"""The local API: the deployed Lambda's ``lambda_handler`` behind a small HTTP server, on emulated AWS.

What it does, in the order a request meets it:
1. an embedded moto server on loopback (or ``AWS_ENDPOINT_URL``, when set: LocalStack or another moto)
   holds the tables, buckets, parameters and secret that ``template.yaml`` defines;
2. each HTTP request becomes a faithful HTTP API payload-2.0 event (API Gateway's transport limits
   enforced first: 10 KB of request line and headers, 6 MB of Lambda payload -> 413);
3. the same ``lambda_handler`` that runs in AWS handles it, with a context that counts down the
   function's timeout from the template;
4. its result goes back to the client the way API Gateway returns it (including ``isBase64Encoded``
   and the simple-response inference).
One exception, local only: ``GET /`` answers the explorer page (``local_api/explorer.py``).
Development only: nothing here is packaged into the Lambda (``CodeUri`` is ``src/``).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local_api import explorer, in_process, moto_atomic
from local_api.cfn_template import Stack, load_template
from local_api.provision import provision, provision_api_keys

#: API Gateway's limits (the contract's Transport section).
MAX_HEADER_BYTES = 10 * 1024
MAX_LAMBDA_PAYLOAD_BYTES = 6_291_456
#: An oversized body is read and dropped up to this much before answering 413 (then the connection closes).
MAX_DRAINED_BYTES = 64 * 1024 * 1024
#: Content types API Gateway hands to the Lambda as text; everything else arrives base64-encoded.
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)
LOCAL_ACCOUNT = "123456789012"
_TOO_LARGE = (
    "The request is larger than the 6 MB an API Gateway -> Lambda request can carry; "
    "send files over 4 MB with POST /api/v1/uploads"
)
LOCAL_API_ID = "localapi"


class LambdaContext:
    """The parts of the Lambda context object our handler (and Powertools-style code) reads."""

    def __init__(self, function_name: str, timeout_seconds: int, memory_mb: int = 1024) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{LOCAL_ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def is_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_TEXT_TYPES) or media.endswith("+json") or media.endswith("+xml")


#: The HTTP API's routes (template.yaml's AWS::ApiGatewayV2::Route resources), most specific first.
ROUTES = (
    "GET /health",
    "GET /api/v1/openapi.json",
    "OPTIONS /api/{proxy+}",
    "ANY /api/{proxy+}",
    "ANY /",
    "ANY /{proxy+}",
)


def route_key(method: str, path: str) -> str:
    """The route API Gateway matches a request to: an exact path first, then the longest greedy one."""
    for key in ROUTES:
        route_method, pattern = key.split(" ", 1)
        if route_method not in ("ANY", method):
            continue
        prefix = pattern.removesuffix("{proxy+}")
        if path == pattern or (prefix != pattern and path.startswith(prefix) and len(path) > len(prefix)):
            return key
    return "$default"


def build_event(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """An HTTP API payload-2.0 event, as API Gateway builds it for the route the request matches."""
    url = urlsplit(target)
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = datetime.now(UTC)
    path = url.path or "/"
    route = route_key(method, path)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": url.query,
        "headers": lowered,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": LOCAL_API_ID,
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": lowered.get("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")[:16],
            "routeKey": route,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if route.endswith("{proxy+}"):
        event["pathParameters"] = {"proxy": path.removeprefix(route.split(" ", 1)[1].removesuffix("{proxy+}"))}
    if body:
        if is_text(lowered.get("content-type", "")):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


def to_http(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A Lambda result as API Gateway (payload 2.0) turns it into an HTTP response."""
    if isinstance(result, dict) and "statusCode" in result:
        status = int(result["statusCode"])
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        headers.extend(("Set-Cookie", str(c)) for c in result.get("cookies") or [])
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
        return status, headers, body
    # Simple response inference: anything else is the JSON body of a 200.
    text = result if isinstance(result, str) else json.dumps(result)
    return 200, [("Content-Type", "application/json")], text.encode("utf-8")


def gateway_error(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """What API Gateway itself answers when the integration fails (not our envelope: AWS's)."""
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()


def transport_error(message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """413 ``PAYLOAD_TOO_LARGE`` in the envelope, with the headers every response carries."""
    from api import cors, errors, http
    from utils.clock import wall_time
    from utils.errors import PayloadTooLarge

    request_id = http.new_request_id(wall_time())
    response = errors.failure(PayloadTooLarge(message), request_id, request_id)
    response["headers"].update(cors.cors_headers(None, ("*",)))
    return to_http(response)


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

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True

    def _dispatch(self) -> None:
        header_bytes = len(self.requestline) + sum(len(k) + len(v) + 4 for k, v in self.headers.items())
        if header_bytes > MAX_HEADER_BYTES:
            self._discard_body()
            self._send(*transport_error("The request line and headers exceed 10 KB"))
            return
        body = self._read_body()
        if body is None:
            self._send(*transport_error(_TOO_LARGE))
            return
        page = explorer.response(self.command, self.path, self.aws_endpoint_url)
        if page is not None:
            self._send(*page)
            return
        event = build_event(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
        if len(json.dumps(event)) > MAX_LAMBDA_PAYLOAD_BYTES:
            self._send(*transport_error(_TOO_LARGE))
            return
        try:
            result = type(self).invoke(event)
        except Exception:  # what API Gateway does when the function itself crashes
            self.log_error("lambda_handler raised; answering as API Gateway would")
            self._send(*gateway_error(500, "Internal Server Error"))
            return
        self._send(*to_http(result))

    def __getattr__(self, name: str) -> Any:
        """``do_GET``, ``do_QUERY``, ...: every method goes to the Lambda, whose router answers 405."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _read_body(self) -> bytes | None:
        """The body, or None when it is over the limit (the connection is then closed)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_LAMBDA_PAYLOAD_BYTES:
            self._drain(length)
            return None
        return self.rfile.read(length) if length > 0 else b""

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
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_LAMBDA_PAYLOAD_BYTES:
            self.close_connection = True
            self._send(*transport_error(_TOO_LARGE))
            return False
        return bool(super().handle_expect_100())

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_LAMBDA_PAYLOAD_BYTES:
                self._drain(MAX_DRAINED_BYTES)
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _discard_body(self) -> None:
        self.close_connection = True

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
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


#: ``make run`` variables provisioned as the local parameters' values (``rate-limit-*`` in Parameter Store).
_RATE_LIMIT_PARAMETERS = {"RATE_LIMIT_PER_MINUTE": "RateLimitPerMinute", "RATE_LIMIT_BURST": "RateLimitBurst"}


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
    for variable, parameter in _RATE_LIMIT_PARAMETERS.items():  # the template's defaults when unset
        if os.environ.get(variable):
            parameters[parameter] = os.environ[variable].strip()
    stack = Stack(load_template(), parameters, region=os.environ["AWS_DEFAULT_REGION"])
    provision(stack, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    keys = dev_api_keys()
    provision_api_keys(stack, keys, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    os.environ["LOCAL_API_KEYS"] = ",".join(keys)  # for __main__ to print
    if moto_server is not None and os.environ.get("LOCAL_API_AWS_OVER_HTTP") != "1":
        in_process.install(os.environ["AWS_ENDPOINT_URL"])  # the handler's calls skip loopback HTTP
    for key, value in stack.process_environment().items():  # the API's and the workers'
        os.environ.setdefault(key, value)
    return stack, moto_server


def make_server(port: int, stack: Stack, quiet: bool = False) -> ThreadingHTTPServer:
    from api.rest_api import lambda_handler

    timeout = stack.function_timeout("ApiFunction")
    function_name = stack.physical_name("ApiFunction")

    def invoke(event: dict[str, Any]) -> Any:
        return lambda_handler(event, LambdaContext(function_name, timeout))

    attributes = {
        "invoke": staticmethod(invoke),
        "quiet": quiet,
        "aws_endpoint_url": os.environ.get("AWS_ENDPOINT_URL", ""),
    }
    handler = type("LocalApiHandler", (_Handler,), attributes)
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server
