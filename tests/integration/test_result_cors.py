"""A browser frontend reads a completed job's ``result_url`` (a presigned GET of the cache bucket) from its
own origin: the cache bucket's CORS rule must allow the configured origins, as the blueprints bucket's
allows their presigned POSTs. Checked in-process (moto's S3 applies bucket CORS rules there; its
standalone server answers every origin, whatever the bucket says)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from local_api.cfn_template import Stack
from tests import samples
from tests.conftest import create_body, invoke
from tests.integration.test_ops_cli import RESULT_FILE, cli

ORIGIN = "http://localhost:5173"


def test_a_browser_can_read_the_result_url_from_an_allowed_origin(
    aws: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    job = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"result cors"))).data
    code, _, err = cli(capsys, "jobs", "complete", job["job_id"], "--start", "--result", str(RESULT_FILE))
    assert code == 0, err
    url = invoke("GET", f"/api/v1/jobs/{job['job_id']}").data["result_url"]

    fetched = requests.get(url, headers={"Origin": ORIGIN}, timeout=10)

    assert fetched.status_code == 200
    assert fetched.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)


def test_the_cache_buckets_rule_is_get_and_head_for_the_templates_origins(aws: Stack, s3: Any) -> None:
    bucket = aws.function_environment()["CACHE_BUCKET"]
    (rule,) = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert sorted(rule["AllowedMethods"]) == ["GET", "HEAD"]
    assert rule["AllowedOrigins"] == aws.parameters["CorsAllowedOrigins"].split(",")
