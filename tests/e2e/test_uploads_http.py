"""Every way of sending a blueprint, over real HTTP: curl -F, raw bodies, data URLs, and S3 presigned uploads.

Like test_api_http.py, this runs against the local API or, with API_URL set, a deployed stack, and is part
of the post-deploy smoke test (``make smoke``): the presigned upload is the one check of real S3's POST policy.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

import pytest
import requests

from tests import samples
from tests.e2e.conftest import API_KEY, Client

pytestmark = [pytest.mark.e2e, pytest.mark.smoke]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-q", "-s", "--noproxy", "*", "--max-time", "60", "-H", f"X-API-Key: {API_KEY}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def test_curl_form_upload(api_url: str) -> None:
    out = curl("-w", "\n%{http_code}", "-F", f"file=@{EXAMPLES / 'plan.pdf'}", f"{api_url}/api/v1/jobs")
    body, status = out.stdout.rsplit("\n", 1)
    assert status == "201", body
    assert '"blueprint_format":"pdf"' in body
    assert '"blueprint_filename":"plan.pdf"' in body


def test_curl_form_upload_with_a_format_field(api_url: str) -> None:
    out = curl(
        "-w", "\n%{http_code}", "-F", f"file=@{EXAMPLES / 'site.jpg'}", "-F", "format=jpeg", f"{api_url}/api/v1/jobs"
    )
    body, status = out.stdout.rsplit("\n", 1)
    assert status == "201", body
    assert '"blueprint_format":"jpg"' in body


def test_curl_raw_body(api_url: str) -> None:
    out = curl(
        "-w",
        "\n%{http_code}",
        "--data-binary",
        f"@{EXAMPLES / 'plan.png'}",
        "-H",
        "Content-Type: image/png",
        f"{api_url}/api/v1/jobs?filename=ground%20floor.png",
    )
    body, status = out.stdout.rsplit("\n", 1)
    assert status == "201", body
    assert '"blueprint_filename":"ground floor.png"' in body
    assert hashlib.sha256((EXAMPLES / "plan.png").read_bytes()).hexdigest() in body


def test_browser_style_form_with_a_mismatched_declaration(api_url: str) -> None:
    response = requests.post(
        f"{api_url}/api/v1/jobs",
        files={"file": ("plan.png", samples.GIF, "image/png")},
        headers={"X-API-Key": API_KEY},
        timeout=60,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_FILE_FORMAT"
    assert error["details"] == {"received_format": "png", "detected_format": "gif"}


def test_data_url(client: Client) -> None:
    data_url = "data:image/jpeg;base64," + base64.b64encode(samples.jpg(b"data-url")).decode()
    reply = client.json("POST", "/api/v1/jobs", {"blueprint": {"file": data_url, "filename": "site"}})
    assert reply.status == 201
    assert reply.data["blueprint_filename"] == "site.jpg"


def test_other_content_types_are_415(client: Client) -> None:
    reply = client.request("POST", "/api/v1/jobs", b"hello", {"Content-Type": "text/plain"})
    assert reply.status == 415
    assert reply.error["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_a_12mb_blueprint_through_a_presigned_upload(client: Client) -> None:
    content = samples.pdf(b"%" + b"scan" * (3 * 1024 * 1024))
    assert len(content) > 12 * 1024 * 1024

    ticket = client.json("POST", "/api/v1/uploads", {"filename": "scan.pdf", "format": "pdf", "size": len(content)})
    assert ticket.status == 201, ticket.raw
    upload = ticket.data
    posted = requests.post(
        upload["url"], data=upload["fields"], files={"file": ("scan.pdf", content, "application/pdf")}, timeout=120
    )
    assert posted.status_code in (200, 201, 204), posted.text[:500]

    created = client.json("POST", "/api/v1/jobs", {"blueprint": {"upload_id": upload["upload_id"]}})
    assert created.status == 201, created.raw
    assert created.data["blueprint_size"] == len(content)
    assert created.data["blueprint_hash"] == hashlib.sha256(content).hexdigest()
    assert created.data["blueprint_filename"] == "scan.pdf"

    reused = client.json("POST", "/api/v1/jobs", {"blueprint": {"upload_id": upload["upload_id"]}})
    assert reused.status == 404
    assert reused.error["code"] == "UPLOAD_NOT_FOUND"


def test_an_upload_over_50mb_is_refused_at_once(client: Client) -> None:
    reply = client.json("POST", "/api/v1/uploads", {"filename": "huge.pdf", "format": "pdf", "size": 60 * 1024 * 1024})
    assert reply.status == 413
    assert reply.error["code"] == "FILE_TOO_LARGE"
    assert reply.error["details"]["max_bytes"] == 50 * 1024 * 1024


def test_feedback_on_a_job_that_is_not_completed_is_409(client: Client) -> None:
    job = client.json(
        "POST", "/api/v1/jobs", {"blueprint": {"file": base64.b64encode(samples.png(extra=b"fb")).decode()}}
    ).data
    reply = client.json("POST", f"/api/v1/jobs/{job['job_id']}/feedback", {"rating": 4})
    assert reply.status == 409
    assert reply.error["code"] == "JOB_NOT_COMPLETED"
