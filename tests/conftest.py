"""Shared fixtures: emulated AWS built from template.yaml, and a handler invoker with faithful events."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# moto must be imported before any boto3 session exists: importing it adds its stubber to botocore's
# built-in handlers, which every session created afterwards picks up (and uses while a mock is active).
from moto import mock_aws

from local_api import moto_atomic
from local_api.cfn_template import Stack, load_template
from local_api.provision import provision, provision_api_keys
from local_api.server import LambdaContext, build_event

ROOT = Path(__file__).resolve().parent.parent
#: Two clients of the emulated API (the `aws` fixture provisions their keys).
API_KEY = "ldk_test_key_of_alice"
OTHER_API_KEY = "ldk_test_key_of_bob"
TEST_KEYS = {API_KEY: ("cli_alice", "Alice"), OTHER_API_KEY: ("cli_bob", "Bob")}
EVENTS = ROOT / "events"

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # botocore 1.44 sends DynamoDB Streams calls to the account's endpoint ({account}.streams-ddb...), which
    # moto 5.2.5's in-process mock does not route (404 "Not yet implemented"); the regional one it does.
    # Only in-process mocks need it: the local API's clients point at its moto server by AWS_ENDPOINT_URL.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


@pytest.fixture(autouse=True)
def _isolated_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test ever reaches real AWS: fake credentials, no endpoint override, no profile."""
    for key, value in _FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def stack() -> Stack:
    return Stack(load_template(), {"Environment": "dev"})


@pytest.fixture(scope="session")
def boto_session() -> Any:
    """One session for provisioning: it caches service models, so per-test clients are cheap."""
    import boto3

    return boto3.session.Session(region_name="us-east-1")


@pytest.fixture
def aws(stack: Stack, boto_session: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """In-process moto with the template's tables, buckets, parameters, secret, bus and queues; every
    function's environment set (the API's and the workers': ``Stack.process_environment``)."""
    from api import dependencies
    from utils import aws as aws_clients
    from utils import secrets
    from workers import dependencies as worker_dependencies

    moto_atomic.install()
    with mock_aws():
        provision(stack, boto_session)
        provision_api_keys(stack, TEST_KEYS, boto_session)
        for key, value in stack.process_environment().items():
            monkeypatch.setenv(key, value)
        aws_clients.reset_clients()
        dependencies.reset()
        worker_dependencies.reset()
        secrets._store = None
        yield stack
        aws_clients.reset_clients()
        dependencies.reset()
        worker_dependencies.reset()
        secrets._store = None


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    raw: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body["data"]

    @property
    def error(self) -> dict[str, Any]:
        return dict(self.body["error"])


def to_reply(result: dict[str, Any]) -> Reply:
    text = result.get("body") or ""
    return Reply(result["statusCode"], result["headers"], json.loads(text) if text else {}, result)


def invoke_event(event: dict[str, Any], remaining_seconds: int = 25) -> Reply:
    from api.rest_api import lambda_handler

    return to_reply(lambda_handler(event, LambdaContext("location-detection-dev-api", remaining_seconds)))


def invoke(
    method: str,
    path: str,
    *,
    json_body: Any = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    api_key: str | None = API_KEY,
) -> Reply:
    """Call ``lambda_handler`` with the event API Gateway would build for this HTTP request
    (as the client with ``api_key``; ``api_key=None`` sends none)."""
    all_headers = dict(headers or {})
    if api_key is not None and not any(k.lower() == "x-api-key" for k in all_headers):
        all_headers["X-API-Key"] = api_key
    if json_body is not None:
        body = json.dumps(json_body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    all_headers.setdefault("Host", "api.example.test")
    return invoke_event(build_event(method, path, list(all_headers.items()), body or b""))


#: A budget no test meets by accident (the rate-limit tests set their own, small, with ``set_rate_limit``).
GENEROUS_RATE_LIMIT = (100_000, 10_000)


def set_rate_limit(per_minute: int, burst: int) -> None:
    """The emulated account's ``rate-limit-*`` parameters (inside the ``aws`` fixture); the next request
    reads them, in a cold container (the configuration is cached per container)."""
    import boto3

    from api import dependencies

    ssm = boto3.client("ssm", region_name="us-east-1")
    for name, value in (("rate-limit-per-minute", per_minute), ("rate-limit-burst", burst)):
        ssm.put_parameter(Name=f"/location-detection/dev/{name}", Value=str(value), Type="String", Overwrite=True)
    dependencies.reset()


def create_body(content: bytes, fmt: str | None = "png", filename: str | None = "plan.png") -> dict[str, Any]:
    blueprint: dict[str, Any] = {"file": base64.b64encode(content).decode()}
    if fmt is not None:
        blueprint["format"] = fmt
    if filename is not None:
        blueprint["filename"] = filename
    return {"blueprint": blueprint}


def load_event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
