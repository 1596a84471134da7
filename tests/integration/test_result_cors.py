"""A browser frontend reads a completed job's ``result_url`` (a presigned GET of the cache bucket) from its
own origin: the cache bucket's CORS rule must allow the configured origins, as the blueprints bucket's
allows their presigned POSTs, and only those. Checked in-process (moto's S3 applies bucket CORS rules
there; its standalone server answers every origin, whatever the bucket says). The stack here lists one
origin, as prod does, so that an origin not on the list can be seen to get nothing."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from local_api.cfn_template import Stack, load_template
from tests import samples
from tests.conftest import create_body, invoke
from tests.integration.test_ops_cli import RESULT_FILE, cli

ORIGIN = "http://localhost:5173"


@pytest.fixture
def stack() -> Stack:
    """The ``aws`` fixture provisions this stack: one allowed origin instead of dev's ``*``."""
    return Stack(load_template(), {"Environment": "dev", "CorsAllowedOrigins": ORIGIN})


def completed_result_url(capsys: pytest.CaptureFixture[str], marker: bytes) -> str:
    job = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=marker))).data
    code, _, err = cli(capsys, "jobs", "complete", job["job_id"], "--start", "--result", str(RESULT_FILE))
    assert code == 0, err
    return str(invoke("GET", f"/api/v1/jobs/{job['job_id']}").data["result_url"])


def test_a_browser_can_read_the_result_url_from_an_allowed_origin(
    aws: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    url = completed_result_url(capsys, b"result cors")

    fetched = requests.get(url, headers={"Origin": ORIGIN}, timeout=10)

    assert fetched.status_code == 200
    assert fetched.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "GET" in fetched.headers["Access-Control-Allow-Methods"]
    assert fetched.json()["rooms"], "the result itself"


def test_an_origin_that_is_not_allowed_gets_no_cors_headers(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    url = completed_result_url(capsys, b"result cors, other origin")

    fetched = requests.get(url, headers={"Origin": "https://elsewhere.example"}, timeout=10)

    # S3 still answers (a presigned URL is a bearer token); the browser withholds the body from the page.
    assert fetched.status_code == 200
    assert "Access-Control-Allow-Origin" not in fetched.headers


def test_the_cache_buckets_rule_is_get_and_head_for_the_templates_origins(aws: Stack, s3: Any) -> None:
    bucket = aws.function_environment()["CACHE_BUCKET"]
    (rule,) = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert sorted(rule["AllowedMethods"]) == ["GET", "HEAD"]
    assert rule["AllowedOrigins"] == [ORIGIN]
