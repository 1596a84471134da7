"""Two clients over real HTTP: isolation, paging with cursors, idempotent retries, missing keys.

Against the local API or, with API_URL, API_KEY and OTHER_API_KEY set, a deployed stack; all of it is part
of the post-deploy smoke test (``make smoke``).
"""

from __future__ import annotations

import base64
import uuid
from urllib.parse import quote

import pytest

from tests import samples
from tests.e2e.conftest import OTHER_API_KEY, Client

pytestmark = [pytest.mark.e2e, pytest.mark.smoke]


def create(client: Client, headers: dict[str, str] | None = None) -> dict[str, object]:
    content = samples.png(extra=uuid.uuid4().bytes)
    body = {"blueprint": {"file": base64.b64encode(content).decode()}}
    reply = client.json("POST", "/api/v1/jobs", body, headers)
    assert reply.status == 201, reply.raw
    return dict(reply.data)


def test_clients_never_see_each_others_jobs(api_url: str, client: Client) -> None:
    other = Client(api_url, api_key=OTHER_API_KEY)
    try:
        job = create(client)
        for method in ("GET", "DELETE"):
            reply = other.request(method, f"/api/v1/jobs/{job['job_id']}")
            assert reply.status == 404
            assert reply.error["code"] == "JOB_NOT_FOUND"
        listed = other.request("GET", "/api/v1/jobs?limit=100").data["jobs"]
        assert job["job_id"] not in [j["job_id"] for j in listed]
        assert client.request("GET", f"/api/v1/jobs/{job['job_id']}").data["status"] == "pending"
    finally:
        other.close()


def test_paging_through_my_jobs(client: Client) -> None:
    made = {str(create(client)["job_id"]) for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        path = "/api/v1/jobs?limit=2" + (f"&cursor={quote(cursor)}" if cursor else "")
        page = client.request("GET", path)
        assert page.status == 200, page.raw
        seen.extend(job["job_id"] for job in page.data["jobs"])
        cursor = page.data["next_cursor"]
        # Newest first, so ours come first; a long-lived stack's client has many older jobs to leave unread.
        if not cursor or made <= set(seen):
            break
    assert made <= set(seen)
    assert len(seen) == len(set(seen))


def test_a_retried_create_is_replayed(client: Client) -> None:
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    content = base64.b64encode(samples.png(extra=b"e2e-idem")).decode()
    first = client.json("POST", "/api/v1/jobs", {"blueprint": {"file": content}}, key)
    again = client.json("POST", "/api/v1/jobs", {"blueprint": {"file": content}}, key)
    assert first.status == again.status == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.data["job_id"] == first.data["job_id"]


def test_no_key_is_401(api_url: str) -> None:
    anonymous = Client(api_url, api_key=None)
    try:
        reply = anonymous.request("GET", "/api/v1/jobs")
        assert reply.status == 401
        assert reply.error["code"] == "UNAUTHORIZED"
        assert "www-authenticate" in reply.headers
        assert anonymous.request("GET", "/api/v1/openapi.json").status == 200
    finally:
        anonymous.close()
