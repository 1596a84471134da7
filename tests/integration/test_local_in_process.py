"""The local API's in-process AWS (``local_api/in_process.py``): the handler's calls answered by the
embedded moto's backends without HTTP, one state with the HTTP server that presigned uploads reach."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local_api import in_process
from local_api.cfn_template import Stack, load_template
from local_api.provision import provision, provision_api_keys
from local_api.server import LambdaContext, build_event, start_emulated_aws
from utils import aws

API_KEY = "ldk_in_process_test_key"


@pytest.fixture
def in_process_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, str]]:
    from api import dependencies

    server, endpoint = start_emulated_aws()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    stack = Stack(load_template(), {"Environment": "dev"})
    provision(stack, endpoint_url=endpoint)
    provision_api_keys(stack, {API_KEY: ("cli_in_process", "test")}, endpoint_url=endpoint)
    for key, value in stack.function_environment().items():
        monkeypatch.setenv(key, value)
    dependencies.reset()
    in_process.install(endpoint)
    try:
        yield stack, endpoint
    finally:
        in_process.uninstall()
        dependencies.reset()
        server.stop()


def _invoke(method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    from api.rest_api import lambda_handler

    headers = [("Host", "localhost"), ("X-API-Key", API_KEY), ("Content-Type", "application/json")]
    body = json.dumps(payload).encode() if payload is not None else b""
    return lambda_handler(build_event(method, path, headers, body), LambdaContext("f", 25))


def test_the_handlers_clients_skip_http_but_presigned_urls_name_the_server(in_process_api: tuple[Stack, str]) -> None:
    _, endpoint = in_process_api
    assert aws.get_client("dynamodb").meta.endpoint_url.endswith(".amazonaws.com")  # answered in process
    assert aws.get_client("s3").meta.endpoint_url == endpoint  # so presigned URLs reach the HTTP server
    answer = _invoke("POST", "/api/v1/uploads", {"filename": "plan.pdf", "format": "pdf", "size": 2048})
    assert answer["statusCode"] == 201
    assert json.loads(answer["body"])["data"]["url"].startswith(endpoint)


def test_an_upload_posted_over_http_is_finalised_in_process(in_process_api: tuple[Stack, str]) -> None:
    from tests import samples

    ticket = json.loads(
        _invoke("POST", "/api/v1/uploads", {"filename": "p.pdf", "format": "pdf", "size": 2048})["body"]
    )
    content = samples.pdf() + b"\0" * (2048 - len(samples.pdf()))
    data = ticket["data"]
    posted = requests.post(data["url"], data=data["fields"], files={"file": ("p.pdf", content)}, timeout=30)
    assert posted.status_code == 204
    created = _invoke("POST", "/api/v1/jobs", {"blueprint": {"upload_id": data["upload_id"]}})
    assert created["statusCode"] == 201
    job = json.loads(created["body"])["data"]
    assert job["blueprint_size"] == 2048


def _over_http(endpoint: str, script: str) -> Any:
    """Run boto3 ``script`` in another process (no mock there): what the HTTP server itself holds."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTO_", "AWS_IGNORE", "AWS_ACCOUNT_ID"))}
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"})
    code = "import boto3, json, sys\nddb = boto3.client('dynamodb', region_name='us-east-1')\n" + script
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_a_job_written_in_process_is_the_one_the_http_server_holds(in_process_api: tuple[Stack, str]) -> None:
    import base64

    from tests import samples

    stack, endpoint = in_process_api
    table = stack.function_environment()["JOBS_TABLE"]
    body = {"blueprint": {"file": base64.b64encode(samples.png()).decode(), "format": "png", "filename": "p.png"}}
    job_id = json.loads(_invoke("POST", "/api/v1/jobs", body)["body"])["data"]["job_id"]
    key = json.dumps({"job_id": {"S": job_id}})
    item = _over_http(endpoint, f"print(json.dumps(ddb.get_item(TableName='{table}', Key={key})['Item']))")
    assert item["status"] == {"S": "pending"}
    # and what another process writes over HTTP is what the next in-process read sees
    _over_http(
        endpoint,
        f"ddb.update_item(TableName='{table}', Key={key}, UpdateExpression='SET #s = :s', "
        "ExpressionAttributeNames={'#s': 'status'}, ExpressionAttributeValues={':s': {'S': 'processing'}})\n"
        "print('{}')",
    )
    assert json.loads(_invoke("GET", f"/api/v1/jobs/{job_id}")["body"])["data"]["status"] == "processing"
