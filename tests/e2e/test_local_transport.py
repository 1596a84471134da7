"""The local server's own answers, over real sockets: everything it says itself is the envelope with CORS
headers (never http.server's HTML page or a traceback), and API Gateway's header limits hold.

The server here is the real ``LocalApiServer`` and handler in this process, with a stand-in for the Lambda
that echoes what it was given: transport behaviour only, no emulated AWS.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local_api.gateway_cors import GatewayCors
from local_api.server import LISTEN_BACKLOG, MAX_HEADER_BYTES, MAX_LAMBDA_PAYLOAD_BYTES, LocalApiServer, _Handler

pytestmark = pytest.mark.e2e

ORIGIN = "https://app.example.com"


def echo_lambda(event: dict[str, Any]) -> dict[str, Any]:
    if event["rawPath"] == "/crash":
        raise RuntimeError("the function itself failed")
    body = {"method": event["requestContext"]["http"]["method"], "headers": len(event["headers"])}
    body["body"] = event.get("body", "")
    headers = {"Content-Type": "application/json"}
    if event["rawPath"] == "/cors-from-the-function":  # what API Gateway ignores when CORS is configured
        headers |= {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "true"}
    return {"statusCode": 200, "headers": headers, "body": json.dumps(body)}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    cors = GatewayCors((ORIGIN,), ("GET", "POST"), ("X-API-Key",), ("X-Request-ID", "X-Correlation-ID"), 600)
    attributes = {"invoke": staticmethod(echo_lambda), "quiet": True, "cors": cors}
    handler = type("StubHandler", (_Handler,), attributes)
    server = LocalApiServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def exchange(port: int, data: bytes, half_close: bool = False) -> Reply:
    """Send raw bytes, read one response (the server closes the connection after its own errors)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        stream = sock.makefile("rb")
        status = int(stream.readline().split()[1])
        headers: dict[str, str] = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return Reply(status, headers, stream.read(int(headers.get("content-length", "0"))))


def request(path: str = "/anything", headers: bytes = b"", body: bytes = b"", method: bytes = b"POST") -> bytes:
    return (
        method
        + b" "
        + path.encode()
        + b" HTTP/1.1\r\nHost: localhost\r\nOrigin: "
        + ORIGIN.encode()
        + b"\r\n"
        + (headers + b"\r\n" + body)
    )


def assert_local_envelope(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    assert reply.json["status"] == "error"
    assert reply.json["error"]["code"] == code
    assert reply.headers["x-request-id"] == reply.json["meta"]["request_id"]
    assert reply.headers["x-correlation-id"] == reply.json["meta"]["request_id"]
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    assert "X-Request-ID" in reply.headers["access-control-expose-headers"]
    assert b"<html" not in reply.body.lower()
    assert b"Traceback" not in reply.body


def test_the_listen_backlog_takes_a_burst() -> None:
    assert LocalApiServer.request_queue_size == LISTEN_BACKLOG >= 128


# --- chunked bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param(b"zz\r\nhello\r\n0\r\n\r\n", id="not-hex"),
        pytest.param(b"-5\r\nhello\r\n0\r\n\r\n", id="negative"),
        pytest.param(b"\r\nhello\r\n0\r\n\r\n", id="empty-size"),
        pytest.param(b"ffffffffff\r\nhello\r\n0\r\n\r\n", id="absurdly-large"),
        pytest.param(b"0x5\r\nhello\r\n0\r\n\r\n", id="0x-prefix"),
        pytest.param(b"5\r\nhelloXX0\r\n\r\n", id="no-crlf-after-data"),
    ],
)
def test_a_malformed_chunked_body_is_400_in_the_envelope(
    port: int, chunks: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    reply = exchange(port, request(headers=b"Transfer-Encoding: chunked\r\n", body=chunks))
    assert_local_envelope(reply, 400, "INVALID_REQUEST")
    assert "chunk" in reply.json["error"]["message"]
    assert reply.headers["connection"] == "close"
    assert "Traceback" not in capfd.readouterr().err


def test_a_chunked_body_cut_short_is_400(port: int) -> None:
    reply = exchange(port, request(headers=b"Transfer-Encoding: chunked\r\n", body=b"a\r\nhello"), half_close=True)
    assert_local_envelope(reply, 400, "INVALID_REQUEST")


def test_a_well_formed_chunked_body_with_extensions_and_a_trailer_reaches_the_lambda(port: int) -> None:
    body = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    reply = exchange(port, request(headers=b"Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n", body=body))
    assert reply.status == 200
    assert reply.json["body"] == "hello world"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(b"Content-Length: abc\r\n", id="length-not-a-number"),
        pytest.param(b"Content-Length: -1\r\n", id="negative-length"),
        pytest.param(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", id="length-and-chunked"),
        pytest.param(b"Transfer-Encoding: gzip\r\n", id="unknown-coding"),
    ],
)
def test_a_body_that_cannot_be_delimited_is_400(port: int, headers: bytes) -> None:
    assert_local_envelope(exchange(port, request(headers=headers, body=b"hello")), 400, "INVALID_REQUEST")


def test_a_body_shorter_than_its_content_length_is_400(port: int) -> None:
    reply = exchange(port, request(headers=b"Content-Length: 50\r\n", body=b"short"), half_close=True)
    assert_local_envelope(reply, 400, "INVALID_REQUEST")


def test_a_declared_body_over_the_lambda_limit_is_413_before_it_is_sent(port: int) -> None:
    """``Expect: 100-continue`` with a Content-Length over 6 MB: refused up front, in the envelope."""
    headers = b"Content-Length: %d\r\nExpect: 100-continue\r\n" % (MAX_LAMBDA_PAYLOAD_BYTES + 1)
    reply = exchange(port, request(headers=headers))
    assert_local_envelope(reply, 413, "PAYLOAD_TOO_LARGE")
    assert "/api/v1/uploads" in reply.json["error"]["message"]


def test_a_chunked_body_that_grows_over_the_lambda_limit_is_413(port: int) -> None:
    chunk = b"x" * (1024 * 1024)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(7)) + b"0\r\n\r\n"
    reply = exchange(port, request(headers=b"Transfer-Encoding: chunked\r\n", body=chunks), half_close=True)
    assert_local_envelope(reply, 413, "PAYLOAD_TOO_LARGE")


# --- request line and headers -------------------------------------------------------------------------


def padded_request(total: int) -> bytes:
    """A GET whose request line and header block (blank line included) are exactly ``total`` bytes."""
    head = request(method=b"GET", headers=b"X-Pad: ")
    return head[:-2] + b"p" * (total - len(head) - 2) + b"\r\n\r\n"


def test_request_line_and_headers_of_exactly_10_kb_are_accepted(port: int) -> None:
    data = padded_request(MAX_HEADER_BYTES)
    assert len(data) == MAX_HEADER_BYTES
    assert exchange(port, data).status == 200


def test_one_byte_over_10_kb_is_431_headers_too_large(port: int) -> None:
    reply = exchange(port, padded_request(MAX_HEADER_BYTES + 1))
    assert_local_envelope(reply, 431, "HEADERS_TOO_LARGE")


def test_two_hundred_small_headers_are_accepted(port: int) -> None:
    """http.server refuses more than 100 headers (431, HTML); API Gateway counts bytes, not headers."""
    headers = b"".join(b"X-H-%d: v\r\n" % n for n in range(200))
    reply = exchange(port, request(method=b"GET", headers=headers))
    assert reply.status == 200
    assert reply.json["headers"] >= 200


def test_a_header_line_over_64_kb_is_431_in_the_envelope(port: int) -> None:
    """http.server's own limit for one line (65,536 bytes) answered with an HTML page."""
    reply = exchange(port, request(method=b"GET", headers=b"X-Big: " + b"b" * 70_000 + b"\r\n"))
    assert_local_envelope(reply, 431, "HEADERS_TOO_LARGE")


def test_a_request_line_over_10_kb_is_431(port: int) -> None:
    reply = exchange(port, request(path="/" + "a" * MAX_HEADER_BYTES, method=b"GET"))
    assert reply.status == 431
    assert reply.json["error"]["code"] == "HEADERS_TOO_LARGE"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="one-word"),
        pytest.param(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", id="http-2-over-plain-text"),
        pytest.param(b"GET / HTTX/1.1\r\nHost: x\r\n\r\n", id="bad-version"),
        pytest.param(b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", id="four-words"),
    ],
)
def test_a_malformed_request_line_is_400_in_the_envelope_without_echoing_it(port: int, data: bytes) -> None:
    reply = exchange(port, data)
    assert reply.status == 400
    assert reply.json["error"]["code"] == "INVALID_REQUEST"
    assert b"GARBAGE" not in reply.body
    assert b"HTTX" not in reply.body
    assert b"<html" not in reply.body.lower()
    assert "access-control-allow-origin" not in reply.headers  # no Origin sent: no CORS headers, as deployed


# --- the function itself ------------------------------------------------------------------------------


def test_a_crash_of_the_function_is_500_internal_error_in_the_envelope(port: int) -> None:
    reply = exchange(port, request("/crash", headers=b"Content-Length: 0\r\n"))
    assert_local_envelope(reply, 500, "INTERNAL_ERROR")
    assert b"the function itself failed" not in reply.body


def test_an_origin_that_is_not_allowed_gets_no_allow_origin(port: int) -> None:
    data = request(headers=b"Content-Length: abc\r\n").replace(ORIGIN.encode(), b"https://evil.example")
    reply = exchange(port, data)
    assert reply.status == 400
    assert "access-control-allow-origin" not in reply.headers
    assert reply.headers["vary"] == "Origin"


def test_keep_alive_survives_a_lambda_answer_and_closes_after_a_local_error(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        stream = sock.makefile("rb")
        sock.sendall(request(method=b"GET"))
        assert stream.readline().startswith(b"HTTP/1.1 200")
        while stream.readline() not in (b"\r\n", b""):
            pass
        sock.sendall(request(headers=b"Content-Length: nope\r\n"))
        assert b"400" in stream.readline()


# --- CORS as the HTTP API's CorsConfiguration gives it -------------------------------------------------


def test_a_preflight_is_answered_here_with_the_configured_headers(port: int) -> None:
    data = request(headers=b"Access-Control-Request-Method: POST\r\nContent-Length: 0\r\n", method=b"OPTIONS")
    reply = exchange(port, data)
    assert reply.status == 204
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    assert reply.headers["access-control-allow-methods"] == "GET, POST"
    assert reply.headers["access-control-allow-headers"] == "X-API-Key"
    assert reply.headers["access-control-max-age"] == "600"
    assert reply.body == b"", "API Gateway's own 204, not the function's"


def test_the_functions_cors_headers_are_replaced_by_the_configured_ones(port: int) -> None:
    reply = exchange(port, request("/cors-from-the-function", headers=b"Content-Length: 0\r\n"))
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    assert reply.headers["access-control-expose-headers"] == "X-Request-ID, X-Correlation-ID"
    assert "access-control-allow-credentials" not in reply.headers


def test_without_an_origin_there_are_no_cors_headers(port: int) -> None:
    data = b"GET /cors-from-the-function HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    reply = exchange(port, data)
    assert reply.status == 200
    assert not [name for name in reply.headers if name.startswith("access-control-")]
