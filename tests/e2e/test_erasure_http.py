"""Erasure over real HTTP (``POST /api/v1/jobs/{job_id}/erase``): against the local API or, with API_URL,
a deployed stack; all of it is part of the post-deploy smoke test (``make smoke``): each test erases only a
job it made itself (pending: a deployed stack has no pipeline to complete one; a completed job's erasure
over HTTP, with the operator CLI completing it, is in test_erasure_local.py)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from tests import samples
from tests.e2e.conftest import OTHER_API_KEY, Client, HttpReply

pytestmark = [pytest.mark.e2e, pytest.mark.smoke]


def create(client: Client) -> dict[str, Any]:
    content = samples.png(extra=uuid.uuid4().bytes)
    reply = client.json("POST", "/api/v1/jobs", {"blueprint": {"file": base64.b64encode(content).decode()}})
    assert reply.status == 201, reply.raw[:500]
    return dict(reply.data)


def erase(client: Client, job_id: str) -> HttpReply:
    return client.request("POST", f"/api/v1/jobs/{job_id}/erase")


def test_erasing_a_job_answers_the_receipt_and_the_job_is_gone(client: Client) -> None:
    job = create(client)

    reply = erase(client, job["job_id"])

    assert reply.status == 200, reply.raw[:500]
    assert reply.headers["content-type"].startswith("application/json")
    assert set(reply.data) == {"job_id", "erased_at", "objects_deleted"}
    assert reply.data["job_id"] == job["job_id"]
    assert reply.data["objects_deleted"] == 1, "its blueprint"
    gone = client.request("GET", f"/api/v1/jobs/{job['job_id']}")
    assert (gone.status, gone.error["code"]) == (404, "JOB_NOT_FOUND")
    again = erase(client, job["job_id"])
    assert (again.status, again.error["code"]) == (404, "JOB_NOT_FOUND")
    listed = client.request("GET", "/api/v1/jobs?limit=100").data["jobs"]
    assert job["job_id"] not in [j["job_id"] for j in listed]


def test_another_clients_job_cannot_be_erased(api_url: str, client: Client) -> None:
    other = Client(api_url, api_key=OTHER_API_KEY)
    try:
        job = create(client)
        refused = erase(other, job["job_id"])
        assert (refused.status, refused.error["code"]) == (404, "JOB_NOT_FOUND")
        assert client.request("GET", f"/api/v1/jobs/{job['job_id']}").data["status"] == "pending"
        assert erase(client, job["job_id"]).status == 200
    finally:
        other.close()


def test_erase_needs_a_key_and_a_job_id(api_url: str, client: Client) -> None:
    anonymous = Client(api_url, api_key=None)
    try:
        assert anonymous.request("POST", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60/erase").status == 401
    finally:
        anonymous.close()
    bad = erase(client, "not-a-job")
    assert (bad.status, bad.error["code"]) == (400, "INVALID_JOB_ID")
    wrong_method = client.request("GET", "/api/v1/jobs/job_20261121T231500_9f2c4e7a1b3d5f60/erase")
    assert wrong_method.status == 405
    assert "POST" in wrong_method.headers["allow"]
