"""What only the local API does: transport limits, faithful events, keep-alive, chunked bodies, clean stop.

These always run against the local API (never API_URL): they test the development server itself.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from local_api.server import MAX_LAMBDA_PAYLOAD_BYTES, build_event, free_port, to_http
from tests import samples
from tests.e2e.conftest import API_KEY, Client, LocalServer, start_local_server, stop_local_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def local(local_server: LocalServer) -> Client:
    return Client(local_server.url)


def test_bodies_over_the_lambda_limit_are_413_with_a_pointer_to_uploads(local: Client) -> None:
    reply = local.request(
        "POST", "/api/v1/jobs", b"x" * (MAX_LAMBDA_PAYLOAD_BYTES + 1), {"Content-Type": "application/json"}
    )
    assert reply.status == 413
    assert reply.error["code"] == "PAYLOAD_TOO_LARGE"
    assert "/api/v1/uploads" in reply.error["message"]
    assert reply.headers["x-request-id"] == reply.json["meta"]["request_id"]


def test_a_binary_body_that_grows_past_the_limit_once_base64_encoded_is_413(local: Client) -> None:
    body = b"\x00" * (5 * 1024 * 1024)  # 5 MB of binary: under 6 MB raw, about 6.7 MB in the event
    reply = local.request("POST", "/api/v1/jobs", body, {"Content-Type": "application/octet-stream"})
    assert reply.status == 413
    assert reply.error["code"] == "PAYLOAD_TOO_LARGE"


def test_oversized_headers_are_431_in_the_envelope(local: Client) -> None:
    reply = local.request("GET", "/health", headers={"X-Filler": "a" * 11_000, "Origin": "http://localhost:5173"})
    assert reply.status == 431
    assert reply.error["code"] == "HEADERS_TOO_LARGE"
    assert reply.headers["x-request-id"] == reply.json["meta"]["request_id"]
    assert reply.headers["access-control-allow-origin"] == "*"


def test_two_hundred_small_headers_reach_the_lambda(local: Client) -> None:
    """http.server refuses more than 100 headers; API Gateway takes any number within 10 KB."""
    headers = {f"X-Small-{n}": "v" for n in range(200)}
    reply = local.request("GET", "/health", headers=headers)
    assert reply.status == 200
    assert reply.data["status"] == "healthy"


def test_a_burst_of_fifty_new_connections_is_served_without_a_reset(local_server: LocalServer) -> None:
    """Python's default listen backlog (5) drops or resets most of a burst: SYNs are retried after a second
    or more. Each connect here must complete at once and each request be answered."""
    port = int(local_server.url.rsplit(":", 1)[1])
    clients = 50
    barrier = threading.Barrier(clients)

    def one() -> tuple[float, bytes]:
        barrier.wait()
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            connected = time.monotonic() - started
            sock.sendall(
                b"OPTIONS /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost:5173\r\n"
                b"Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
            )
            return connected, _read_all(sock)

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda _: one(), range(clients)))

    assert all(response.startswith(b"HTTP/1.1 204") for _, response in results)
    slowest = max(connected for connected, _ in results)
    assert slowest < 0.9, f"a connect waited {slowest:.2f} s: SYNs dropped by a full accept queue"


def test_a_4mb_file_fits_and_is_stored(local: Client) -> None:
    content = samples.png(extra=b"z" * (4 * 1024 * 1024))
    reply = local.json("POST", "/api/v1/jobs", {"blueprint": {"file": base64.b64encode(content).decode()}})
    assert reply.status == 201
    assert reply.data["blueprint_size"] == len(content)


def test_keep_alive_serves_many_requests_on_one_connection(local_server: LocalServer) -> None:
    port = int(local_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        stream = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            status = stream.readline()
            headers = {}
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            assert status.startswith(b"HTTP/1.1 200")
            assert json.loads(body)["data"]["status"] == "healthy"


def test_chunked_request_bodies_are_read(local_server: LocalServer) -> None:
    port = int(local_server.url.rsplit(":", 1)[1])
    payload = json.dumps({"blueprint": {"file": base64.b64encode(samples.png(extra=b"chunked")).decode()}}).encode()
    half = len(payload) // 2
    chunks = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (payload[:half], payload[half:])) + b"0\r\n\r\n"
    request = (
        b"POST /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"X-API-Key: " + API_KEY.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        response = b""
        while data := sock.recv(65536):
            response += data
    assert response.startswith(b"HTTP/1.1 201")


def test_events_are_payload_2_0_as_api_gateway_builds_them() -> None:
    event = build_event(
        "POST",
        "/api/v1/jobs?a=1&a=2&b=",
        [("Content-Type", "image/png"), ("X-Thing", "one"), ("x-thing", "two"), ("Cookie", "a=1; b=2")],
        b"\x89PNG\r\n",
    )
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/api/v1/jobs"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"]["x-thing"] == "one,two"
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG\r\n"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["routeKey"] == "ANY /api/{proxy+}"
    assert event["pathParameters"] == {"proxy": "v1/jobs"}
    assert build_event("GET", "/nowhere/else", [], b"")["pathParameters"] == {"proxy": "nowhere/else"}
    other = build_event("GET", "/health", [], b"")
    assert other["requestContext"]["requestId"] != event["requestContext"]["requestId"]
    assert "body" not in other


def test_results_become_http_as_api_gateway_returns_them() -> None:
    assert to_http({"statusCode": 201, "headers": {"A": "b"}, "body": "hi"}) == (201, [("A", "b")], b"hi")
    assert to_http({"statusCode": 200, "body": base64.b64encode(b"\x00").decode(), "isBase64Encoded": True})[2] == (
        b"\x00"
    )
    assert to_http({"statusCode": 200, "cookies": ["s=1"]})[1] == [("Set-Cookie", "s=1")]
    status, headers, body = to_http({"hello": "world"})  # simple response inference
    assert (status, json.loads(body)) == (200, {"hello": "world"})
    assert headers == [("Content-Type", "application/json")]


def test_ctrl_c_stops_the_server_cleanly() -> None:
    server = start_local_server(free_port())
    code, output = stop_local_server(server)
    assert code == 0
    assert "listening on http://127.0.0.1:" in output
    assert "Stopped." in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "switch",
    [{"LOCAL_API_AWS_OVER_HTTP": "1"}, {"LOCAL_API_DYNAMODB_DIRECT": "0"}],
    ids=["aws-over-http", "dynamodb-through-moto-stubber"],
)
def test_the_in_process_shortcuts_can_be_switched_off(switch: dict[str, str]) -> None:
    """Every AWS call over loopback HTTP, or DynamoDB's through mock_aws's stubber: the same API, a
    presigned upload included."""
    import requests

    server = start_local_server(free_port(), extra_env=switch)
    client = Client(server.url)
    try:
        content = samples.pdf()
        ticket = client.json("POST", "/api/v1/uploads", {"filename": "p.pdf", "format": "pdf", "size": len(content)})
        assert ticket.status == 201, ticket.raw
        upload = ticket.data
        posted = requests.post(upload["url"], data=upload["fields"], files={"file": ("p.pdf", content)}, timeout=60)
        assert posted.status_code == 204, posted.text[:300]
        created = client.json("POST", "/api/v1/jobs", {"blueprint": {"upload_id": upload["upload_id"]}})
        assert created.status == 201, created.raw
        location = created.headers["location"]
        assert client.request("GET", location).data == created.data
        assert client.request("DELETE", location).data["status"] == "cancelled"
        assert client.request("GET", location).data["status"] == "cancelled"
    finally:
        client.close()
        code, output = stop_local_server(server)
    assert code == 0
    assert "Traceback" not in output


def _read_all(sock: socket.socket) -> bytes:
    response = b""
    while data := sock.recv(65536):
        response += data
    return response
