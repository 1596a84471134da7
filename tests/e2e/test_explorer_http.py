"""``GET /`` of the local API is the explorer page (the contract: local only, at that path only), and only it.

Runs only against the local API: a deployed stack has no page (``GET /`` is the Lambda's 404 there).
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from local_api import explorer
from tests.e2e.conftest import Client, LocalServer

pytestmark = pytest.mark.e2e


def test_get_slash_is_the_self_contained_page_with_a_strict_policy(local_server: LocalServer) -> None:
    client = Client(local_server.url, api_key=None)
    try:
        page = client.request("GET", "/")
        head = client.request("HEAD", "/")
    finally:
        client.close()
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.raw == explorer.PAGE.read_bytes()
    assert b"<title>Location Detection" in page.raw
    # One document: no script, stylesheet or image is fetched from anywhere (no CDN, no other path).
    assert not re.search(rb"<(script|link|img)[^>]*(src|href)=", page.raw)
    policy = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
    script = re.search(rb'<script type="module">(.*?)</script>', page.raw, re.S)
    assert script
    digest = base64.b64encode(hashlib.sha256(script.group(1)).digest()).decode()
    assert policy["script-src"] == f"'sha256-{digest}'"  # only the page's own inline script runs
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    connect = policy["connect-src"].split()
    assert connect[0] == "'self'"
    assert all(source.startswith("http://127.0.0.1:") for source in connect[1:]), connect  # the emulated S3
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert head.status == 200
    assert head.raw == b""
    assert head.headers["content-length"] == str(len(page.raw))


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/index.html", 404, "NOT_FOUND"),
        ("GET", "/explorer", 404, "NOT_FOUND"),
        ("POST", "/", 404, "NOT_FOUND"),
        ("DELETE", "/", 404, "NOT_FOUND"),
    ],
)
def test_every_other_request_still_goes_to_the_lambda(
    local_server: LocalServer, method: str, path: str, status: int, code: str
) -> None:
    client = Client(local_server.url, api_key=None)
    try:
        reply = client.request(method, path)
    finally:
        client.close()
    assert reply.status == status
    assert reply.json["error"]["code"] == code
    assert reply.headers["content-type"] == "application/json"


def test_policy_allows_virtual_hosted_buckets_only_for_a_named_endpoint() -> None:
    page = b'<style>a{}</style><script type="module">1</script>'
    named = explorer.content_security_policy(page, "http://localhost.localstack.cloud:4566")
    assert (
        "connect-src 'self' http://localhost.localstack.cloud:4566 http://*.localhost.localstack.cloud:4566;" in named
    )
    by_ip = explorer.content_security_policy(page, "http://127.0.0.1:5000")
    assert "connect-src 'self' http://127.0.0.1:5000;" in by_ip
    assert "connect-src 'self';" in explorer.content_security_policy(page, "")
