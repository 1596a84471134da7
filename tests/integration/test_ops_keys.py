"""`python -m ops keys ...`: keys made by the operator command work, are stored hashed, and can be revoked."""

from __future__ import annotations

import json

import boto3
import pytest

from local_api.cfn_template import Stack
from tests import samples
from tests.conftest import create_body, invoke
from tests.integration.test_ops_cli import cli
from utils import secrets


def stored_secret() -> str:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    return str(client.get_secret_value(SecretId="location-detection/dev/api-keys")["SecretString"])


def test_create_list_and_revoke_a_key(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, created, err = cli(capsys, "keys", "create", "--name", "web frontend")
    assert code == 0, err
    key = created["api_key"]
    assert key.startswith("ldk_")
    assert "shown once" in err
    assert key not in stored_secret(), "only the hash is stored"

    secrets.get_store().invalidate()
    made = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"ops-key")), api_key=key)
    assert made.status == 201

    code, listed, _ = cli(capsys, "keys", "list")
    assert code == 0
    assert {"client_id": created["client_id"], "name": "web frontend"}.items() <= next(
        entry for entry in listed if entry["client_id"] == created["client_id"]
    ).items()
    assert all(key not in json.dumps(entry) for entry in listed)

    code, revoked, _ = cli(capsys, "keys", "revoke", "--client-id", created["client_id"])
    assert (code, revoked) == (0, {"revoked": 1})
    secrets.get_store().invalidate()  # the five-minute cache, elapsed
    refused = invoke("GET", f"/api/v1/jobs/{made.data['job_id']}", api_key=key)
    assert refused.status == 401


def test_a_second_key_for_the_same_client_sees_its_jobs(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    _, first, _ = cli(capsys, "keys", "create", "--name", "rotation")
    _, second, _ = cli(capsys, "keys", "create", "--name", "rotation", "--client-id", first["client_id"])
    secrets.get_store().invalidate()
    job = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"rot")), api_key=first["api_key"])
    seen = invoke("GET", f"/api/v1/jobs/{job.data['job_id']}", api_key=second["api_key"])
    assert seen.status == 200


def test_revoke_needs_a_target(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "keys", "revoke")
    assert code == 1
    assert "--client-id" in err


def secret_document() -> dict[str, object]:
    return dict(json.loads(stored_secret()))


def put_secret(document: dict[str, object]) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.put_secret_value(SecretId="location-detection/dev/api-keys", SecretString=json.dumps(document))


def test_cursor_key_adds_a_random_key_once_and_never_prints_it(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a secret made before the template generated a cursor-signing key
    before = secret_document()
    before.pop("cursor_signing_key", None)
    put_secret(before)

    code, first, _ = cli(capsys, "keys", "cursor-key")
    key = secret_document()["cursor_signing_key"]
    code_again, second, _ = cli(capsys, "keys", "cursor-key")

    assert (code, first) == (0, {"cursor_signing_key": "created"})
    assert isinstance(key, str)
    assert len(key) == 64
    int(key, 16)
    assert (code_again, second) == (0, {"cursor_signing_key": "present"})
    assert secret_document()["cursor_signing_key"] == key, "a second run changes nothing"
    assert secret_document()["keys"] == before["keys"], "the clients' keys are kept"
    assert key not in json.dumps([first, second])


def test_cursor_key_rotate_replaces_it(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "keys", "cursor-key")
    old = secret_document()["cursor_signing_key"]

    code, rotated, _ = cli(capsys, "keys", "cursor-key", "--rotate")

    assert (code, rotated) == (0, {"cursor_signing_key": "rotated"})
    assert secret_document()["cursor_signing_key"] != old


def test_restore_previous_brings_back_the_keys_a_regenerating_deploy_dropped(
    aws: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given clients' keys, then a deploy that made CloudFormation mint a new value (GenerateSecretString)
    _, created, _ = cli(capsys, "keys", "create", "--name", "kept across the deploy")
    kept = secret_document()["keys"]
    put_secret({"keys": {}, "cursor_signing_key": "c" * 64})

    code, restored, _ = cli(capsys, "keys", "restore-previous")

    assert code == 0
    assert restored == {"restored": len(kept)}
    document = secret_document()
    assert document["keys"] == kept
    assert document["cursor_signing_key"] == "c" * 64, "the new cursor key stays"
    secrets.get_store().invalidate()
    made = invoke(
        "POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"restored")), api_key=created["api_key"]
    )
    assert made.status == 201


def test_prod_lists_only_with_a_cursor_key_and_the_cli_gives_it_one(
    aws: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from api import dependencies

    # Given a prod function whose secret predates the generated cursor-signing key
    monkeypatch.setenv("ENVIRONMENT", "prod")
    dependencies.reset()
    document = secret_document()
    document.pop("cursor_signing_key", None)
    put_secret(document)
    secrets.get_store().invalidate()

    refused = invoke("GET", "/api/v1/jobs")
    assert refused.status == 500, "fails closed: no cursor signed with a key derived from public names"
    assert refused.error["code"] == "INTERNAL_ERROR"
    assert "cursor" not in json.dumps(refused.body), "the reason is logged, not told"

    cli(capsys, "keys", "cursor-key")
    secrets.get_store().invalidate()
    assert invoke("GET", "/api/v1/jobs").status == 200
