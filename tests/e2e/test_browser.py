"""A real browser against the local API: CORS as the web frontend meets it.

Headless Chromium (Debian's ``chromium``, driven by Playwright's Python package, which never downloads a
browser here) loads a tiny page from one loopback origin and, in the page's own JavaScript, calls the local
API on another: it creates a job with ``fetch`` and ``FormData`` (a PNG ``Blob`` as a multipart file part,
with ``X-API-Key``, a non-simple header, so the browser sends a CORS preflight first), reads
``X-Request-ID`` from the response (readable only because ``Access-Control-Expose-Headers`` names it),
polls the job and cancels it. A page from an origin the API does not allow gets nothing: its ``fetch``
rejects with a ``TypeError`` and the preflight keeps its POST from ever reaching the API.

The local API here is its own process, started with ``CORS_ALLOWED_ORIGINS`` set to the allowed page's
origin (the template's ``CorsAllowedOrigins`` -> Parameter Store, as in a prod deployment), not the
session's shared one, which allows every origin (dev's ``*``).

Runs when Chromium is installed (``.ci/run`` installs it in CI); skipped, saying so, when it is not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from local_api.server import free_port
from tests import samples
from tests.e2e.conftest import API_KEY, Client, LocalServer, start_local_server, stop_local_server


def _chromium() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


CHROMIUM = _chromium()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (apt-get install chromium; .ci/run installs it in CI)",
    ),
]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",  # loopback only: an HTTP(S)_PROXY in the environment must not get in the way
]
REQUEST_ID = re.compile(r"req_[0-9]{8}T[0-9]{6}_[a-z0-9]{6,}")
JOB_ID = re.compile(r"job_[0-9]{8}T[0-9]{6}_[0-9a-f]{16}")
PNG = samples.png(width=3, height=2, extra=b"drawn in a browser")

#: The page: plain ``fetch`` as a frontend would write it. Each function resolves to plain data that
#: ``page.evaluate`` hands back to the test.
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>job API client</title></head><body>
<script>
const PNG_BASE64 = "__PNG_BASE64__";

function pngBlob() {
  const bytes = Uint8Array.from(atob(PNG_BASE64), (c) => c.charCodeAt(0));
  return new Blob([bytes], {type: "image/png"});
}

async function call(api, method, path, key, body) {
  const response = await fetch(api + path, {method, headers: {"X-API-Key": key}, body});
  let json = null;
  try { json = await response.json(); } catch (e) { json = null; }
  return {
    status: response.status,
    requestId: response.headers.get("X-Request-ID"),
    correlationId: response.headers.get("X-Correlation-ID"),
    location: response.headers.get("Location"),
    json,
  };
}

async function createPollCancel(api, key) {
  const form = new FormData();
  form.append("file", pngBlob(), "plan.png");
  const created = await call(api, "POST", "/api/v1/jobs", key, form);
  const jobPath = "/api/v1/jobs/" + encodeURIComponent(created.json.data.job_id);
  const polls = [];
  for (let i = 0; i < 3; i++) {
    const poll = await call(api, "GET", jobPath, key);
    polls.push(poll);
    if (poll.status !== 200 || poll.json.data.status !== "pending") break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const cancelled = await call(api, "DELETE", jobPath, key);
  const after = await call(api, "GET", jobPath, key);
  return {origin: window.location.origin, created, polls, cancelled, after};
}

async function attempt(request) {
  try {
    const response = await request();
    return {rejected: false, status: response.status};
  } catch (error) {
    return {rejected: true, name: error.name, message: String(error.message)};
  }
}

async function blockedCalls(api, key) {
  const form = new FormData();
  form.append("file", pngBlob(), "plan.png");
  return {
    origin: window.location.origin,
    // Non-simple (X-API-Key): the preflight fails, so the POST itself is never sent.
    create: await attempt(() => fetch(api + "/api/v1/jobs", {method: "POST", headers: {"X-API-Key": key}, body: form})),
    // Simple (no preflight): the request is sent, but the page may not read the answer.
    health: await attempt(() => fetch(api + "/health")),
  };
}
</script>
</body></html>
""".replace("__PNG_BASE64__", base64.b64encode(PNG).decode())


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE.encode() if self.path in ("/", "/index.html") else b"not found"
        self.send_response(200 if self.path in ("/", "/index.html") else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@dataclass
class Site:
    """The static page served on its own loopback origin."""

    server: ThreadingHTTPServer
    origin: str


def _serve_page() -> Site:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="static-page", daemon=True).start()
    return Site(server, f"http://127.0.0.1:{server.server_address[1]}")


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[Site, Site]]:
    """The frontend's origin (allowed) and another one (not allowed): two ports, two origins."""
    allowed, other = _serve_page(), _serve_page()
    yield allowed, other
    for site in (allowed, other):
        site.server.shutdown()
        site.server.server_close()


@pytest.fixture(scope="module")
def cors_api(sites: tuple[Site, Site]) -> Iterator[LocalServer]:
    """The local API allowing exactly the frontend's origin."""
    server = start_local_server(free_port(), {"CORS_ALLOWED_ORIGINS": sites[0].origin})
    yield server
    stop_local_server(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _run_in_page(browser: Any, site: Site, script: str, *args: Any) -> tuple[Any, list[str]]:
    """Open the page on ``site``'s origin, run ``script`` there; return its result and the console's lines."""
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.set_default_timeout(15_000)
    try:
        page.goto(site.origin + "/")
        return page.evaluate(script, list(args)), console
    finally:
        page.close()


def _assert_envelope(reply: dict[str, Any], status: int) -> dict[str, Any]:
    assert reply["status"] == status, reply
    assert REQUEST_ID.fullmatch(reply["requestId"] or ""), reply  # exposed to the page by CORS
    assert reply["correlationId"] == reply["requestId"]
    assert reply["json"]["status"] == "success", reply
    assert reply["json"]["meta"] == {"request_id": reply["requestId"], "api_version": "v1"}
    return dict(reply["json"]["data"])


def test_page_on_an_allowed_origin_creates_polls_and_cancels_a_job(
    browser: Any, sites: tuple[Site, Site], cors_api: LocalServer
) -> None:
    result, console = _run_in_page(
        browser, sites[0], "([api, key]) => createPollCancel(api, key)", cors_api.url, API_KEY
    )
    assert result["origin"] == sites[0].origin

    job = _assert_envelope(result["created"], 201)
    assert JOB_ID.fullmatch(job["job_id"]), job
    assert result["created"]["location"] == f"/api/v1/jobs/{job['job_id']}"  # exposed too
    assert job["status"] == "pending"
    assert job["blueprint_format"] == "png"  # from the Blob's type, through the multipart part
    assert job["blueprint_filename"] == "plan.png"
    assert job["blueprint_size"] == len(PNG)
    assert job["blueprint_hash"] == hashlib.sha256(PNG).hexdigest()  # the bytes arrived intact
    assert job["blueprint_s3_key"] == f"blueprints/{job['job_id']}/plan.png"
    assert job["request_id"] == result["created"]["requestId"]

    assert result["polls"], result
    for poll in result["polls"]:
        polled = _assert_envelope(poll, 200)
        assert polled["job_id"] == job["job_id"]
        assert polled["status"] == "pending"
        assert polled["blueprint_hash"] == job["blueprint_hash"]
    request_ids = [r["requestId"] for r in (result["created"], *result["polls"], result["cancelled"])]
    assert len(set(request_ids)) == len(request_ids)  # one id per request

    assert _assert_envelope(result["cancelled"], 200)["status"] == "cancelled"
    assert _assert_envelope(result["after"], 200)["status"] == "cancelled"
    assert not [line for line in console if "CORS" in line], console

    # And the API agrees, asked directly (no browser, no CORS).
    client = Client(cors_api.url)
    try:
        stored = client.request("GET", f"/api/v1/jobs/{job['job_id']}")
    finally:
        client.close()
    assert stored.status == 200
    assert stored.data["status"] == "cancelled"
    assert stored.data["blueprint_hash"] == job["blueprint_hash"]


def test_page_on_another_origin_is_refused_by_the_browser(
    browser: Any, sites: tuple[Site, Site], cors_api: LocalServer
) -> None:
    client = Client(cors_api.url)
    try:
        before = client.request("GET", "/api/v1/jobs?limit=100").data["jobs"]
        result, console = _run_in_page(
            browser, sites[1], "([api, key]) => blockedCalls(api, key)", cors_api.url, API_KEY
        )
        after = client.request("GET", "/api/v1/jobs?limit=100").data["jobs"]
    finally:
        client.close()

    assert result["origin"] == sites[1].origin != sites[0].origin
    for name in ("create", "health"):
        assert result[name]["rejected"], (name, result)
        assert result[name]["name"] == "TypeError", (name, result)
    # The browser says why (and it is CORS, not a dead server): no Access-Control-Allow-Origin for this origin.
    blocked = [line for line in console if "blocked by CORS policy" in line]
    assert len(blocked) >= 2, console
    assert any("preflight" in line for line in blocked), console
    assert all("Access-Control-Allow-Origin" in line for line in blocked), console
    # The failed preflight kept the POST from reaching the API: no job was created.
    assert [j["job_id"] for j in after] == [j["job_id"] for j in before]


def test_preflight_answers_the_allowed_origin_only(sites: tuple[Site, Site], cors_api: LocalServer) -> None:
    """What the browser relied on above, seen on the wire."""
    client = Client(cors_api.url, api_key=None)
    try:
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}
        allowed = client.request("OPTIONS", "/api/v1/jobs", headers={"Origin": sites[0].origin, **preflight})
        other = client.request("OPTIONS", "/api/v1/jobs", headers={"Origin": sites[1].origin, **preflight})
    finally:
        client.close()
    assert allowed.status == other.status == 204
    assert allowed.headers["access-control-allow-origin"] == sites[0].origin
    assert "origin" in allowed.headers["vary"].lower()
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in other.headers
    assert json.dumps(other.headers).lower().count(sites[1].origin.lower()) == 0  # never echoed
