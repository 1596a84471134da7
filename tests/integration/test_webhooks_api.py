"""POST/GET /api/v1/webhooks and DELETE /api/v1/webhooks/{webhook_id} through lambda_handler, on moto: the
contract's answers, the owner's scope, the limit of ten, every input refused in the envelope, the URL
rules at registration (the deployed setting: no loopback), and the secret's protection (encrypted by the
application under an encryption context, shown once, never logged)."""

from __future__ import annotations

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack
from models.events import EVENT_TYPES
from storage.secret_box import context_of
from storage.webhook_store import webhooks_key
from tests.conftest import OTHER_API_KEY, invoke
from tests.faults import FaultyClient, throttled
from tests.integration.conftest import FakeClock
from tests.webhooks import configure, register, stand_in_dns
from utils import aws as aws_clients

PUBLIC = "https://hooks.example.com/ld"
DNS = {
    "hooks.example.com": ["93.184.216.34"],
    "internal.example.com": ["10.0.0.7"],
    "rebind.example.com": ["93.184.216.34", "127.0.0.1"],
}
SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    return stand_in_dns(monkeypatch, dict(DNS))


def test_a_webhook_is_created_listed_and_deleted_and_its_secret_shown_only_once(aws: Stack) -> None:
    created = register(PUBLIC, events=["job.failed", "job.completed"], description="production")
    assert created.status == 201, created.body
    hook = created.data
    assert created.headers["Location"] == f"/api/v1/webhooks/{hook['webhook_id']}"
    assert re.fullmatch(r"wh_\d{8}T\d{6}_[0-9a-f]{16}", hook["webhook_id"])
    assert SECRET.fullmatch(hook["secret"])
    assert (hook["url"], hook["events"], hook["description"]) == (PUBLIC, ["job.completed", "job.failed"], "production")

    listed = invoke("GET", "/api/v1/webhooks")
    public = {k: v for k, v in hook.items() if k != "secret"}
    assert listed.data == {"webhooks": [public]}, "never the secret"
    deleted = invoke("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}")
    assert (deleted.status, deleted.data) == (200, public)
    assert invoke("GET", "/api/v1/webhooks").data == {"webhooks": []}
    again = invoke("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}")
    assert (again.status, again.error["code"]) == (404, "WEBHOOK_NOT_FOUND")


def test_events_default_to_all_and_the_list_is_oldest_first(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from utils import clock

    fake = FakeClock()
    fake.now = 1_795_000_000.0
    monkeypatch.setattr(clock, "wall_source", fake)
    first = register(PUBLIC).data
    fake.now += 5
    second = register(PUBLIC + "/2", events=None, description=None).data
    assert first["events"] == list(EVENT_TYPES)
    assert [h["webhook_id"] for h in invoke("GET", "/api/v1/webhooks").data["webhooks"]] == [
        first["webhook_id"],
        second["webhook_id"],
    ]


def test_another_clients_webhooks_are_invisible_and_cannot_be_deleted(aws: Stack) -> None:
    mine = register(PUBLIC).data
    assert invoke("GET", "/api/v1/webhooks", api_key=OTHER_API_KEY).data == {"webhooks": []}
    theirs = invoke("DELETE", f"/api/v1/webhooks/{mine['webhook_id']}", api_key=OTHER_API_KEY)
    assert (theirs.status, theirs.error["code"]) == (404, "WEBHOOK_NOT_FOUND")
    assert len(invoke("GET", "/api/v1/webhooks").data["webhooks"]) == 1
    assert invoke("GET", "/api/v1/webhooks", api_key=None).status == 401


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/webhooks/nope",
        "/api/v1/webhooks/wh_20261121T231500_4B1D2C3E5F607182",
        "/api/v1/webhooks/wh_20261121T231500_4b1d2c3e5f607182",  # well formed, never created
        "/api/v1/webhooks/job_20261121T231500_9f2c4e7a1b3d5f60",
        "/api/v1/webhooks/" + "w" * 300,
        "/api/v1/webhooks/%00",
    ],
)
def test_a_malformed_or_unknown_id_is_404_in_the_envelope(aws: Stack, path: str) -> None:
    reply = invoke("DELETE", path)
    assert (reply.status, reply.error["code"]) == (404, "WEBHOOK_NOT_FOUND")
    assert len(json.dumps(reply.body)) < 400, "a long id is not echoed back whole"


def test_other_methods_are_405_with_allow(aws: Stack) -> None:
    hook = register(PUBLIC).data
    reply = invoke("GET", f"/api/v1/webhooks/{hook['webhook_id']}")
    assert (reply.status, reply.headers["Allow"]) == (405, "DELETE, OPTIONS")
    assert invoke("PUT", "/api/v1/webhooks").headers["Allow"] == "GET, POST, OPTIONS"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": 7}, "url"),
        ({"url": ""}, "url"),
        ({"url": PUBLIC, "secret": "mine"}, "secret"),
        ({"url": PUBLIC, "events": []}, "events"),
        ({"url": PUBLIC, "events": "job.created"}, "events"),
        ({"url": PUBLIC, "events": ["job.created", 3]}, "events"),
        ({"url": PUBLIC, "events": ["job.done"]}, "events"),
        ({"url": PUBLIC, "events": ["job.created"] * 21}, "events"),
        ({"url": PUBLIC, "description": 5}, "description"),
        ({"url": PUBLIC, "description": "d" * 501}, "description"),
        ({"url": "https://hooks.example.com/" + "a" * 2048}, "url"),
        ([PUBLIC], "body"),
    ],
)
def test_bad_input_is_400_invalid_request_naming_the_field(aws: Stack, body: Any, field: str) -> None:
    reply = invoke("POST", "/api/v1/webhooks", json_body=body)
    assert (reply.status, reply.error["code"], reply.error["details"]["field"]) == (400, "INVALID_REQUEST", field)
    assert invoke("GET", "/api/v1/webhooks").data == {"webhooks": []}


def test_a_body_that_is_not_json_is_refused(aws: Stack) -> None:
    assert invoke("POST", "/api/v1/webhooks", body=b"url=x", headers={"Content-Type": "text/plain"}).status == 415
    assert invoke("POST", "/api/v1/webhooks", body=b"{", headers={"Content-Type": "application/json"}).status == 400


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/ld", "https://"),
        ("http://127.0.0.1:8080/ld", "https://"),
        ("https://127.0.0.1/ld", "loopback"),
        ("https://localhost/ld", "does not resolve"),
        ("https://internal.example.com/ld", "private"),
        ("https://rebind.example.com/ld", "loopback"),
        ("https://169.254.169.254/latest/meta-data/iam/", "link-local"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "private"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://[::ffff:10.0.0.7]/", "private"),
        ("https://[::1]/", "loopback"),
        ("https://224.0.0.251/", "multicast"),
        ("https://user:password@hooks.example.com/", "user name"),
        ("ftp://hooks.example.com/", "https://"),
    ],
)
def test_a_url_that_could_reach_anything_but_a_public_https_endpoint_is_refused(
    aws: Stack, url: str, reason: str
) -> None:
    reply = register(url)
    assert (reply.status, reply.error["code"]) == (400, "INVALID_WEBHOOK_URL")
    assert reason in reply.error["details"]["reason"]
    assert "10.0.0.7" not in json.dumps(reply.body), "what a name resolves to is never shown"


def test_with_loopback_allowed_http_reaches_loopback_only(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, WEBHOOK_ALLOW_LOOPBACK="true")
    assert register("http://127.0.0.1:8080/ld").status == 201
    assert register("http://internal.example.com/ld").error["code"] == "INVALID_WEBHOOK_URL"
    assert register("https://169.254.169.254/").error["code"] == "INVALID_WEBHOOK_URL"


def test_at_most_ten_webhooks_per_client_even_when_they_race(aws: Stack) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda n: register(f"{PUBLIC}/{n}").status, range(12)))
    assert sorted(statuses) == [201] * 10 + [400] * 2
    eleventh = register(PUBLIC)
    assert (eleventh.error["code"], eleventh.error["details"]) == ("INVALID_REQUEST", {"max_webhooks": 10})
    hooks = invoke("GET", "/api/v1/webhooks").data["webhooks"]
    assert len(hooks) == 10
    assert register(PUBLIC, api_key=OTHER_API_KEY).status == 201, "the limit is per client"
    invoke("DELETE", f"/api/v1/webhooks/{hooks[0]['webhook_id']}")
    assert register(PUBLIC).status == 201, "a deleted one frees its place"
    assert register(PUBLIC).status == 400


def test_the_secret_is_stored_encrypted_bound_to_its_owner_and_webhook(aws: Stack) -> None:
    hook = register(PUBLIC).data
    raw = base64.b64decode(hook["secret"].removeprefix("whsec_"))
    table = boto3.client("dynamodb", region_name="us-east-1")
    item = table.get_item(TableName="location-detection-dev-jobs", Key={"job_id": {"S": webhooks_key("cli_alice")}})[
        "Item"
    ]
    stored = item[hook["webhook_id"]]["M"]
    sealed = bytes(stored["secret"]["B"])
    assert raw not in sealed
    assert hook["secret"].encode() not in json.dumps(item, default=str).encode()
    assert "owner_id" not in item, "no job list or index sees the item"
    kms = boto3.client("kms", region_name="us-east-1")
    opened = kms.decrypt(CiphertextBlob=sealed, EncryptionContext=context_of("cli_alice", hook["webhook_id"]))
    assert opened["Plaintext"] == raw
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=sealed, EncryptionContext=context_of("cli_bob", hook["webhook_id"]))
    alias = kms.list_aliases()["Aliases"]
    key_id = next(a["TargetKeyId"] for a in alias if a["AliasName"] == "alias/location-detection-dev-webhook-secrets")
    assert kms.decrypt(CiphertextBlob=sealed, EncryptionContext=context_of("cli_alice", hook["webhook_id"]))[
        "KeyId"
    ].endswith(key_id), "the stack's own key"


def test_the_secret_never_reaches_a_log_line(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    hook = register(PUBLIC).data
    invoke("GET", "/api/v1/webhooks")
    invoke("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}")
    out = capsys.readouterr()
    assert "webhook created" in out.out
    assert hook["secret"] not in out.out + out.err
    assert hook["secret"].removeprefix("whsec_")[:20] not in out.out + out.err
    assert PUBLIC not in out.out, "nor the URL (it may carry a token)"


def test_kms_unavailable_is_503_and_nothing_is_stored(aws: Stack, clock: FakeClock) -> None:
    real = aws_clients.get_client("kms")
    aws_clients.set_client("kms", FaultyClient(real, always={"encrypt": lambda: throttled("Encrypt")}))
    reply = register(PUBLIC)
    assert (reply.status, reply.error["code"]) == (503, "SERVICE_UNAVAILABLE")
    aws_clients.set_client("kms", real)
    assert invoke("GET", "/api/v1/webhooks").data == {"webhooks": []}


def test_an_add_whose_answer_was_lost_is_one_webhook(aws: Stack, clock: FakeClock) -> None:
    real = aws_clients.get_client("dynamodb")
    lost = throttled("UpdateItem")
    aws_clients.set_client("dynamodb", FaultyClient(real, landed={"update_item": [lost]}))
    reply = register(PUBLIC)
    aws_clients.set_client("dynamodb", real)
    assert reply.status == 201, reply.body
    (only,) = invoke("GET", "/api/v1/webhooks").data["webhooks"]
    assert only["webhook_id"] == reply.data["webhook_id"]


def test_a_client_erased_loses_every_webhook(aws: Stack) -> None:
    """The service method issue 18's erasure calls (``WebhookService.delete_all``)."""
    from api import dependencies

    for n in range(3):
        register(f"{PUBLIC}/{n}")
    register(PUBLIC, api_key=OTHER_API_KEY)
    service = dependencies.get().webhooks
    assert service.delete_all("cli_alice") == 3
    assert service.delete_all("cli_alice") == 0, "idempotent"
    assert invoke("GET", "/api/v1/webhooks").data == {"webhooks": []}
    assert len(invoke("GET", "/api/v1/webhooks", api_key=OTHER_API_KEY).data["webhooks"]) == 1
