"""Headless Chromium on the explorer page (``GET /`` of the local API): the TypeScript client in a real
browser, then the page driven as a person would.

The page bundles the client (``clients/typescript/dist/explorer.html``) and exposes it as ``window.ld``,
so the first tests call it from the page's own JavaScript: a 12 MB PDF through the presigned path with
XHR progress events, a create whose answer is lost (Playwright lets the request reach the API, then
resets the connection) retried into one job, and a 401 and two 413s as typed ``ApiError`` objects.
The last test uses the page's controls only: paste a key, drop two blueprints, watch one complete (the
operator CLI completes it), open its rooms over the blueprint, cancel the other.

``EXPLORER_SCREENSHOTS=DIR`` saves the page's screenshots there (``make screenshots`` -> docs/images).
Runs when Chromium is installed (``.ci/run`` installs it in CI), like tests/e2e/test_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import samples
from tests.e2e.conftest import API_KEY, OTHER_API_KEY, ROOT, Client, LocalServer
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium is not installed (apt-get install chromium; .ci/run installs it in CI)",
    ),
]

RESULT_FILE = ROOT / "examples" / "result.json"
REQUEST_ID = r"^req_\d{8}T\d{6}_[a-z0-9]{6,}$"
SCREENSHOTS = os.environ.get("EXPLORER_SCREENSHOTS")


def floor_plan_png(scale: int = 60, wall: int = 4) -> bytes:
    """A blueprint-like PNG of examples/result.json's rooms: walls on their edges, ``scale`` px per metre."""
    rooms = json.loads(RESULT_FILE.read_text())["rooms"]
    corners = [point for room in rooms for point in room["polygon"]]
    width = round(max(x for x, _ in corners) * scale)
    height = round(max(y for _, y in corners) * scale)
    rows = [bytearray(b"\xf4" * width) for _ in range(height)]
    for y in range(0, height, scale // 2):  # a half-metre grid, as drawing paper has
        rows[y][:] = b"\xe0" * width
    for x in range(0, width, scale // 2):
        for row in rows:
            row[x] = 0xE0
    for room in rooms:
        polygon = room["polygon"]
        for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
            xa, xb = sorted((round(x0 * scale), round(x1 * scale)))
            ya, yb = sorted((round(y0 * scale), round(y1 * scale)))
            for y in range(max(0, ya - wall // 2), min(height, yb + wall // 2 + 1)):
                lo, hi = max(0, xa - wall // 2), min(width, xb + wall // 2 + 1)
                rows[y][lo:hi] = b"\x20" * (hi - lo)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + bytes(row) for row in rows), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, local_server: LocalServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(local_server.url + "/")
    yield opened
    context.close()
    assert not errors, errors


def _ops(local_server: LocalServer, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["LOCAL_API_STATE"] = local_server.state_file
    run = subprocess.run(
        [sys.executable, "-m", "ops", "--local", "jobs", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def _jobs_with_hash(local_server: LocalServer, api_key: str, blueprint_hash: str) -> list[str]:
    client = Client(local_server.url, api_key=api_key)
    try:
        jobs = client.request("GET", "/api/v1/jobs?limit=100").data["jobs"]
    finally:
        client.close()
    return [job["job_id"] for job in jobs if job["blueprint_hash"] == blueprint_hash]


#: In the page: a PDF of `size` random bytes (its own hash), created through the client with progress.
PRESIGNED = """async ([key, size]) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
  bytes.set(new TextEncoder().encode("%PDF-1.7\\n"), 0);
  bytes.set(new TextEncoder().encode("\\n%%EOF\\n"), size - 7);  // a PDF ends with %%EOF (the API checks)
  const file = new File([bytes], "twelve-megabytes.pdf", {type: "application/pdf"});
  const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (b) => b.toString(16).padStart(2, "0")).join("");
  const client = ld.createClient({baseUrl: location.origin, apiKey: key});
  const events = [];
  const created = await client.createJob(file, {onProgress: (p) => events.push({...p})});
  return {hash, events, path: created.path, job: created.job};
}"""


def test_a_12_mb_pdf_goes_through_the_presigned_path_with_progress(page: Any) -> None:
    size = 12 * 1024 * 1024
    # Upload bandwidth held to 40 MB/s so that XHR has time to report progress on loopback.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 40 * 1024 * 1024}
    cdp.send("Network.emulateNetworkConditions", conditions)

    result = page.evaluate(PRESIGNED, [API_KEY, size])

    assert result["path"] == "presigned"
    job = result["job"]
    assert job["status"] == "pending"
    assert job["blueprint_format"] == "pdf"
    assert job["blueprint_size"] == size
    assert job["blueprint_hash"] == result["hash"]  # S3 got the browser's bytes intact
    events = result["events"]
    uploading = [e["loaded"] for e in events if e["phase"] == "uploading"]
    assert uploading == sorted(uploading), "progress never goes back"
    assert len([n for n in uploading if 0 < n < size]) >= 2, events  # XHR upload events along the way
    assert events[-1] == {"path": "presigned", "phase": "done", "loaded": size, "total": size}
    assert any(e["phase"] == "creating" for e in events)


RETRIED = """async ([key, base64]) => {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const client = ld.createClient({baseUrl: location.origin, apiKey: key, retry: {baseDelayMs: 50}});
  const created = await client.createJob(new Blob([bytes], {type: "image/png"}), {filename: "retried.png"});
  return {replayed: created.replayed, key: created.idempotencyKey, job: created.job};
}"""


def test_a_create_whose_answer_is_lost_is_retried_into_one_job(page: Any, local_server: LocalServer) -> None:
    content = samples.png(extra=os.urandom(16))
    seen: list[str | None] = []

    def lose_first_answer(route: Any) -> None:
        seen.append(route.request.header_value("idempotency-key"))
        if len(seen) == 1:
            route.fetch()  # the request reaches the API and the job is made...
            route.abort("connectionreset")  # ...but the browser never gets the answer
        else:
            route.continue_()

    page.route("**/api/v1/jobs", lose_first_answer)
    result = page.evaluate(RETRIED, [OTHER_API_KEY, base64.b64encode(content).decode()])

    assert len(seen) == 2
    assert seen[0] == seen[1] == result["key"], "the same Idempotency-Key on the retry"
    assert result["replayed"] is True
    assert _jobs_with_hash(local_server, OTHER_API_KEY, hashlib.sha256(content).hexdigest()) == [
        result["job"]["job_id"]
    ]


TYPED_ERRORS = """async ([key]) => {
  const caught = async (promise) => {
    try { await promise; return null; } catch (e) {
      return {isApiError: e instanceof ld.ApiError, name: e.name, status: e.status, code: e.code,
              details: e.details, requestId: e.requestId, message: e.message};
    }
  };
  const stranger = ld.createClient({baseUrl: location.origin, apiKey: "ldk_not_a_key"});
  const client = ld.createClient({baseUrl: location.origin, apiKey: key});
  const pdf = (size) => { const b = new Uint8Array(size); b.set(new TextEncoder().encode("%PDF-1.7\\n")); return b; };
  return {
    unauthorized: await caught(stranger.listJobsPage()),
    payload: await caught(
      client.createJob(new Blob([pdf(7 * 1024 * 1024)]), {filename: "big.pdf", strategy: "direct"})),
    file: await caught(client.createJob(new Blob([pdf(50 * 1024 * 1024 + 1)]), {filename: "huge.pdf"})),
  };
}"""


def test_401_and_413_come_back_as_typed_errors(page: Any) -> None:
    errors = page.evaluate(TYPED_ERRORS, [API_KEY])
    expected = {
        "unauthorized": (401, "UNAUTHORIZED"),
        "payload": (413, "PAYLOAD_TOO_LARGE"),
        "file": (413, "FILE_TOO_LARGE"),
    }
    for name, (status, code) in expected.items():
        error = errors[name]
        assert error is not None, name
        assert error["isApiError"], error
        assert error["name"] == "ApiError"
        assert (error["status"], error["code"]) == (status, code), error
        assert re.fullmatch(REQUEST_ID, error["requestId"] or ""), error
    assert errors["file"]["details"]["max_bytes"] == 50 * 1024 * 1024
    assert "uploads" in errors["payload"]["message"]  # the transport's 413 points to the upload flow


#: A `DataTransfer` holding one PNG, for a `drop` event on the drop zone.
DROPPED_FILE = """([name, base64]) => {
  const transfer = new DataTransfer();
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  transfer.items.add(new File([bytes], name, {type: "image/png"}));
  return transfer;
}"""


def _row(page: Any, job_id: str) -> Any:
    return page.locator(f'#jobs tr[data-job-id="{job_id}"]')


def test_the_page_uploads_shows_a_completed_result_over_the_blueprint_and_cancels(
    page: Any, local_server: LocalServer
) -> None:
    plan = floor_plan_png()
    other = samples.png(width=4, height=4, extra=os.urandom(8))
    page.fill("#api-key", API_KEY)
    page.click("#key-form button[type=submit]")

    page.set_input_files("#files", [{"name": "ground-floor.png", "mimeType": "image/png", "buffer": plan}])
    dropped = page.evaluate_handle(DROPPED_FILE, ["annex.png", base64.b64encode(other).decode()])
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})  # as a file dragged onto the page
    uploads = page.locator("#uploads li[data-job-id]")
    uploads.nth(1).wait_for()
    by_name = {uploads.nth(i).get_attribute("data-file"): uploads.nth(i).get_attribute("data-job-id") for i in range(2)}
    plan_job, other_job = by_name["ground-floor.png"], by_name["annex.png"]
    assert plan_job
    assert other_job
    for i in range(2):  # each file's bar went to its end, the direct path (small files)
        bar = uploads.nth(i).locator("progress")
        assert bar.get_attribute("value") == bar.get_attribute("max")
        assert uploads.nth(i).get_attribute("data-path") == "direct"
    _row(page, plan_job).locator('[data-testid=status]:text("pending")').wait_for()

    # The pipeline's part, by the operator CLI; the page sees it by polling.
    _ops(local_server, "complete", plan_job, "--start", "--result", str(RESULT_FILE))
    _ops(local_server, "start", other_job)
    page.locator(f'#jobs tr[data-job-id="{plan_job}"][data-status="completed"]').wait_for()
    page.locator(f'#jobs tr[data-job-id="{other_job}"][data-status="processing"]').wait_for()
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "explorer-jobs.png"), full_page=True)

    _row(page, plan_job).locator("button[data-action=result]").click()
    figure = page.locator("#result .figure")
    figure.locator("svg polygon").nth(2).wait_for()
    assert figure.locator("img").evaluate("img => [img.naturalWidth, img.naturalHeight]") == [570, 498]
    polygons = figure.locator("svg polygon")
    assert polygons.count() == 3
    # Metres fitted onto the image: 60 px per metre, as the plan was drawn.
    assert polygons.nth(0).get_attribute("points") == "0.0,0.0 360.0,0.0 360.0,270.0 0.0,270.0"
    assert figure.locator("svg text").all_text_contents() == ["living room", "kitchen", "bedroom"]
    assert page.locator("#rooms tbody tr").count() == 3
    assert "over the blueprint" in page.locator("#result-note").text_content()
    if SCREENSHOTS:
        page.locator("#result").screenshot(path=str(Path(SCREENSHOTS) / "explorer-result.png"))

    _row(page, other_job).locator("button[data-action=cancel]").click()
    page.locator(f'#jobs tr[data-job-id="{other_job}"][data-status="cancelled"]').wait_for()
    assert _row(page, other_job).locator("button[data-action=cancel]").count() == 0
    client = Client(local_server.url)
    try:
        assert client.request("GET", f"/api/v1/jobs/{other_job}").data["status"] == "cancelled"
        assert client.request("GET", f"/api/v1/jobs/{plan_job}").data["status"] == "completed"
    finally:
        client.close()

    # After a reload the page no longer holds the file: the rooms go on a sheet, with the table.
    page.reload()
    _row(page, plan_job).locator("button[data-action=result]").click()
    page.locator("#result svg.sheet polygon").nth(2).wait_for()
    assert page.locator("#result .figure").count() == 0
    assert "not dropped in this page" in page.locator("#result-note").text_content()
    assert page.locator("#message").text_content() == ""


def test_a_large_pdf_through_the_page_shows_timing_progress_and_its_result_as_a_sheet(
    page: Any, local_server: LocalServer
) -> None:
    """A 5 MB PDF dropped on the page goes through the presigned path; its row shows the job's timing and
    the pipeline's progress and stage as the operator CLI reports them; its result is the rooms on a sheet
    with the table (a PDF cannot be drawn on)."""
    pdf = samples.pdf(extra=os.urandom(5 * 1024 * 1024))
    page.fill("#api-key", OTHER_API_KEY)
    page.click("#key-form button[type=submit]")
    page.set_input_files("#files", [{"name": "steps.pdf", "mimeType": "application/pdf", "buffer": pdf}])
    upload = page.locator('#uploads li[data-file="steps.pdf"][data-job-id]')
    upload.wait_for()
    job_id = upload.get_attribute("data-job-id")
    assert job_id
    assert upload.get_attribute("data-path") == "presigned"
    bar = upload.locator("progress")
    assert bar.get_attribute("value") == bar.get_attribute("max") == str(len(pdf))
    row = _row(page, job_id)
    row.locator('[data-testid=timing]:text-matches("^waiting \\\\d+ s$")').wait_for()
    assert row.locator("[data-testid=progress]").text_content() == "—"

    # Each step by the operator CLI; the page sees it by polling (1 s after a change).
    _ops(local_server, "start", job_id)
    _ops(local_server, "progress", job_id, "40", "--stage", "preprocessing")
    page.locator(f'#jobs tr[data-job-id="{job_id}"] [data-testid=progress]:has-text("preprocessing")').wait_for()
    progress = row.locator("[data-testid=progress]")
    assert progress.locator("progress").get_attribute("value") == "40"
    assert " ".join(progress.text_content().split()) == "40% preprocessing"
    assert re.fullmatch(r"running \d+ s", row.locator("[data-testid=timing]").text_content())
    assert row.get_attribute("data-status") == "processing"
    assert row.locator("button[data-action=cancel]").count() == 1

    completed = _ops(local_server, "complete", job_id, "--result", str(RESULT_FILE))
    page.locator(f'#jobs tr[data-job-id="{job_id}"][data-status="completed"]').wait_for()
    progress = row.locator("[data-testid=progress]")
    assert progress.locator("progress").get_attribute("value") == "100"
    assert " ".join(progress.text_content().split()) == "100% preprocessing"
    ran = re.fullmatch(r"ran (\d+) s", row.locator("[data-testid=timing]").text_content())
    assert ran, row.locator("[data-testid=timing]").text_content()
    started, finished = (_epoch(completed[name]) for name in ("started_at", "finished_at"))
    assert int(ran[1]) == round(finished - started), "the page's figure is the job's own timing"

    row.locator("button[data-action=result]").click()
    page.locator("#result svg.sheet polygon").nth(2).wait_for()
    assert page.locator("#result .figure").count() == 0, "nothing drawn over a PDF"
    assert page.locator("#rooms tbody tr").count() == 3
    note = page.locator("#result-note").text_content()
    assert "PDF" in note, note
    assert page.locator("#result-title").text_content() == "Result of steps.pdf — room-detector-2026.11"


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
