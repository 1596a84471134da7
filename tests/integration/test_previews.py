"""Previews at the handler, with two clients: a preview only ever comes from the caller's own job, and
the cache entry is the owner's (its key names the owner and the blueprint's hash)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_api.cfn_template import Stack
from tests import samples
from tests.conftest import OTHER_API_KEY, create_body, invoke
from tests.integration.test_ops_cli import RESULT_FILE, cli

RESULT = json.loads(RESULT_FILE.read_text())
PREVIEWS = "location-detection-dev-preview_cache"


def create(content: bytes, api_key: str | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {} if api_key is None else {"api_key": api_key}
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(content), **kwargs)
    assert reply.status == 201, reply.body
    return dict(reply.data)


def complete(capsys: pytest.CaptureFixture[str], job_id: str) -> None:
    code, _, err = cli(capsys, "jobs", "complete", job_id, "--start", "--result", str(RESULT_FILE))
    assert code == 0, err


def test_a_preview_is_never_made_from_another_clients_job(
    aws: Stack, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    content = samples.png(extra=b"the same floor plan")
    alices = create(content)
    complete(capsys, alices["job_id"])

    bobs = create(content, api_key=OTHER_API_KEY)
    fresh = create(samples.png(extra=b"a plan nobody sent"), api_key=OTHER_API_KEY)
    again = create(content)

    assert "preview" not in bobs
    assert set(bobs) == set(fresh), "Bob's answer has the shape of one for a file nobody sent"
    assert alices["job_id"] not in json.dumps(bobs)
    assert again["preview"] == {"rooms": RESULT["rooms"], "model_version": RESULT["model_version"], "cached": True}


def test_the_cache_entry_is_keyed_by_owner_and_hash_and_names_its_owner(
    aws: Stack, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    content = samples.png(extra=b"keyed")
    job = create(content)
    complete(capsys, job["job_id"])

    items = dynamodb.scan(TableName=PREVIEWS)["Items"]
    (item,) = [i for i in items if i.get("job_id", {}).get("S") == job["job_id"]]
    assert item["blueprint_hash"]["S"] == f"cli_alice#{job['blueprint_hash']}"
    assert item["owner_id"]["S"] == "cli_alice"
    assert not any(i["blueprint_hash"]["S"] == job["blueprint_hash"] for i in items), "no unscoped entry"


def test_an_entry_whose_owner_does_not_match_is_not_offered(
    aws: Stack, dynamodb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defence in depth: a row under Bob's key that names another owner (planted, or written by a bug) is
    ignored, not shown to Bob."""
    content = samples.png(extra=b"planted")
    digest = create(content)["blueprint_hash"]
    dynamodb.put_item(
        TableName=PREVIEWS,
        Item={
            "blueprint_hash": {"S": f"cli_bob#{digest}"},
            "owner_id": {"S": "cli_alice"},
            "rooms": {"L": []},
            "model_version": {"S": "m"},
            "expires_at": {"N": "9999999999"},
        },
    )
    assert "preview" not in create(content, api_key=OTHER_API_KEY)
