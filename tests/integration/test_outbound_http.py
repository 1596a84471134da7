"""utils.outbound_http against real servers on loopback: the POST goes to the checked address, by name (Host,
TLS SNI and certificate), within its time limit in all, never following a redirect, reading a bounded
amount, and answering (never raising) whatever the server does."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.receivers import Receiver, raw_server, receiving, self_signed
from utils.outbound_http import Answer, Target, post


def target(port: int, *, scheme: str = "http", host: str = "receiver.test", address: str = "127.0.0.1") -> Target:
    return Target(scheme=scheme, host=host, port=port, path="/hooks/ld?x=1", address=address)


def test_a_post_reaches_the_pinned_address_with_the_host_name_and_headers() -> None:
    with receiving() as receiver:
        answer = post(target(receiver.port), b'{"a":1}', {"webhook-id": "e:1"})
    (got,) = receiver.received
    assert answer.succeeded
    assert answer.status == 204
    assert got.path == "/hooks/ld?x=1"
    assert got.headers["host"] == f"receiver.test:{receiver.port}", "the name, though no DNS knows it"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == "e:1"
    assert got.headers["user-agent"].startswith("location-detection-webhooks/")
    assert got.body == b'{"a":1}'


def test_tls_is_by_name_on_the_pinned_address(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed("receiver.test", tmp_path)
    with receiving(tls=server_tls) as receiver:
        answer = post(target(receiver.port, scheme="https"), b"{}", {}, context=client_tls)
        wrong = post(target(receiver.port, scheme="https", host="other.test"), b"{}", {}, context=client_tls)
    assert answer.status == 204
    assert receiver.sni[0] == "receiver.test", "SNI carries the name"
    assert (wrong.status, wrong.error) == (None, "tls"), "the certificate is checked against the name"
    assert len(receiver.received) == 1


@pytest.mark.parametrize(("status", "delivered"), [(200, True), (202, True), (299, True), (302, False), (500, False)])
def test_any_2xx_is_success_and_a_redirect_is_an_answer_not_followed(status: int, delivered: bool) -> None:
    with receiving(Receiver(statuses=[status], location="http://169.254.169.254/")) as receiver:
        answer = post(target(receiver.port), b"{}", {})
    assert (answer.status, answer.succeeded) == (status, delivered)
    assert len(receiver.received) == 1, "nothing followed the Location"


def test_a_slow_endpoint_is_given_up_at_the_time_limit() -> None:
    with receiving(Receiver(delay=2.0)) as receiver:
        started = time.monotonic()
        answer = post(target(receiver.port), b"{}", {}, timeout=0.5)
        elapsed = time.monotonic() - started  # before the server's shutdown, which waits for its poll loop
    assert (answer.status, answer.error) == (None, "timeout")
    assert elapsed < 1.5


@pytest.mark.parametrize(("behaviour", "error"), [("reset", "connection reset"), ("silent", "timeout")])
def test_a_connection_reset_or_silence_is_a_failed_answer(behaviour: str, error: str) -> None:
    with raw_server(behaviour) as port:
        answer = post(target(port), b"{}", {}, timeout=1.0)
    assert answer == Answer(None, answer.error, answer.elapsed_ms)
    assert answer.error == error


def test_a_server_dripping_a_byte_at_a_time_cannot_hold_past_the_limit() -> None:
    with raw_server("drip") as port:
        started = time.monotonic()
        answer = post(target(port), b"{}", {}, timeout=1.0)
    assert answer.status is None
    assert answer.error == "timeout"
    assert time.monotonic() - started < 2.0, "the limit is total, not per read"


def test_an_endless_body_is_read_only_up_to_the_bound() -> None:
    with raw_server("huge") as port:
        started = time.monotonic()
        answer = post(target(port), b"{}", {}, timeout=5.0, max_response_bytes=128 * 1024)
    assert answer.status == 200
    assert answer.succeeded
    assert time.monotonic() - started < 2.0


def test_nothing_listening_is_refused() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, and nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    answer = post(target(port), b"{}", {}, timeout=1.0)
    assert (answer.status, answer.error) == (None, "connection refused")
