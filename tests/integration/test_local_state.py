"""What ``make run`` keeps between runs (``local_api.local_state``), in-process: a run is one ``mock_aws``
(a fresh emulated account, provisioned from the template, as each start of the local API is), the state is
saved at its end and restored into the next one. The job events' poller is started after the restore, as
``python -m local_api`` starts it, and a subscriber on the bus sees whether anything is published again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from api import dependencies
from local_api import moto_atomic, secret_changes
from local_api.cfn_template import Stack
from local_api.local_state import LocalState
from local_api.provision import merge_api_keys, provision
from local_api.saved_objects import bucket_names
from local_api.state_store import FORMAT_NAME, FORMAT_VERSION
from ops.cli import main as ops_main
from services.webhooks import secret_text
from storage.secret_box import SecretBox
from storage.webhook_store import WebhookStore
from tests import samples
from tests.conftest import API_KEY, TEST_KEYS, create_body, invoke
from tests.events import kinds
from tests.integration.test_job_events import Events
from tests.webhooks import register, stand_in_dns
from utils import aws as aws_clients
from utils import secrets
from workers import dependencies as worker_dependencies

#: A typed item of the jobs table that no code of this branch writes (a feature landing later, such as a
#: webhook, stores its own kind): the state keeps it because it keeps every item, whatever its kind.
LATER_FEATURE_ITEM = {
    "job_id": {"S": "webhook#cli_alice#wh_0123456789abcdef"},
    "url": {"S": "https://example.test/hook"},
    "events": {"SS": ["job.completed", "job.failed"]},
    "secret_sealed": {"B": b"\x00\x01sealed\xff"},
    "created_at": {"S": "2026-12-02T00:00:00Z"},
    "attempts": {"M": {"count": {"N": "3"}, "last": {"L": [{"S": "503"}, {"NULL": True}]}}},
}


@pytest.fixture(autouse=True)
def _restored_environment() -> Iterator[None]:
    """Each run sets the functions' variables, and ``ops`` its target's: undo both after the test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def instant_secrets() -> Iterator[None]:
    """The local API's hook: a write to a secret empties the Lambda's cache of secrets."""
    secret_changes.install()
    yield
    secret_changes.uninstall()


class Run:
    """One start of the local API: a fresh emulated account, the saved state restored into it, then the
    poller primed (at the stream's newest end) and a subscriber on the bus."""

    def __init__(self, stack: Stack, folder: Path) -> None:
        self.stack = stack
        self.messages: list[str] = []
        self.state = LocalState(folder, say=self.messages.append)
        assert self.state.open()
        provision(self.stack)
        self.restored = self.state.restore(self.stack, "", lambda: provision(self.stack))
        merge_api_keys(self.stack, TEST_KEYS, replaced=self.restored.dev_api_keys)
        self.state.dev_api_keys = list(TEST_KEYS)
        for key, value in stack.process_environment().items():
            os.environ[key] = value
        for reset in (aws_clients.reset_clients, dependencies.reset, worker_dependencies.reset):
            reset()
        secrets._store = None
        self.events = Events(stack)
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.dynamodb = boto3.client("dynamodb", region_name="us-east-1")

    def stop(self) -> None:
        self.events.drain()
        self.events.subscriber.close()
        self.state.close()

    def jobs_table(self) -> list[dict[str, Any]]:
        table = self.stack.properties("JobsTable")["TableName"]
        return sorted(self.dynamodb.scan(TableName=table)["Items"], key=lambda i: i["job_id"]["S"])

    def stored_file(self, key: str) -> dict[str, Any]:
        bucket = next(b for b in bucket_names(self.stack) if "blueprints" in b)
        got = self.s3.get_object(Bucket=bucket, Key=key)
        tags = self.s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        return {
            "body": got["Body"].read(),
            "type": got["ContentType"],
            "metadata": got["Metadata"],
            "tags": sorted((t["Key"], t["Value"]) for t in tags),
        }


def make_key(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert ops_main(["--env", "dev", "keys", "create", "--name", "kept across a restart"]) == 0
    return str(json.loads(capsys.readouterr().out)["api_key"])


def test_a_restart_keeps_jobs_files_keys_and_typed_items_and_publishes_nothing_again(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], instant_secrets: None
) -> None:
    moto_atomic.install()
    folder = tmp_path / "state"
    with mock_aws():
        first = Run(stack, folder)
        assert first.restored.summary.startswith("nothing saved yet")
        created = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"kept")))
        assert created.status == 201, created.body
        job = created.data
        operator_key = make_key(capsys)
        assert invoke("GET", f"/api/v1/jobs/{job['job_id']}", api_key=operator_key).status == 404  # not its job
        first.dynamodb.put_item(TableName=stack.properties("JobsTable")["TableName"], Item=LATER_FEATURE_ITEM)
        published = first.events.drain()
        assert [e["detail"]["type"] for e in published] == ["job.created"]
        items, stored = first.jobs_table(), first.stored_file(job["blueprint_s3_key"])
        assert any(i["job_id"]["S"].startswith("rate#") for i in items), "the limiter's item, to be kept"
        first.stop()

    with mock_aws():
        second = Run(stack, folder)
        assert second.restored.problem is None, second.messages
        assert second.restored.dev_api_keys == list(TEST_KEYS), "the printed keys come back"
        assert second.events.drain() == [], "a restored job is not published again"
        assert second.jobs_table() == items, "every item, typed ones included, exactly as it was"
        assert second.stored_file(job["blueprint_s3_key"]) == stored
        again = invoke("GET", f"/api/v1/jobs/{job['job_id']}")
        assert again.status == 200
        assert {k: again.data[k] for k in ("status", "created_at", "blueprint_hash")} == {
            k: job[k] for k in ("status", "created_at", "blueprint_hash")
        }
        other = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=b"x")), api_key=operator_key)
        assert other.status == 201, "a key the operator made before the restart still works"
        after = second.events.drain()
        assert kinds(after) == [(f"{other.data['job_id']}:1", "job.created")], (
            "the poller is live: what happens after the restore is published, once"
        )
        second.stop()


def test_a_key_made_with_the_operator_cli_works_at_once(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], instant_secrets: None
) -> None:
    with mock_aws():
        run = Run(stack, tmp_path / "state")
        assert invoke("GET", "/api/v1/jobs").status == 200  # the Lambda has read (and cached) the keys
        fresh_key = make_key(capsys)
        assert invoke("GET", "/api/v1/jobs", api_key=fresh_key).status == 200, "no five-minute wait locally"
        run.stop()


def test_deployed_the_secret_cache_still_keeps_a_key_for_five_minutes(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the local hook (the deployed Lambda): the cached keys stand until their five minutes end."""
    with mock_aws():
        run = Run(stack, tmp_path / "state")
        assert invoke("GET", "/api/v1/jobs", api_key=API_KEY).status == 200
        fresh_key = make_key(capsys)
        assert invoke("GET", "/api/v1/jobs", api_key=fresh_key).status == 401
        secrets.get_store().invalidate()  # what the end of the five minutes does
        assert invoke("GET", "/api/v1/jobs", api_key=fresh_key).status == 200
        run.stop()


def saved_document(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "state.json").read_text()))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda doc: "{ not json", "is not JSON"),
        (lambda doc: json.dumps({**doc, "version": FORMAT_VERSION + 1}), "another version of the local API"),
        (lambda doc: json.dumps({**doc, "format": "something-else"}), "is not a local API state"),
        (
            lambda doc: json.dumps({**doc, "tables": {"location-detection-dev-jobs": {"key_schema": [], "items": []}}}),
            "its key schema changed",
        ),
        (
            lambda doc: json.dumps(
                {
                    **doc,
                    "tables": {
                        "location-detection-dev-jobs": {
                            **doc["tables"]["location-detection-dev-jobs"],
                            "items": [{"job_id": {"N": "1"}}],
                        }
                    },
                }
            ),
            "job_id is not of type S",
        ),
    ],
    ids=["not-json", "newer-format", "not-a-state", "key-schema-changed", "item-of-the-wrong-type"],
)
def test_a_state_that_cannot_be_restored_is_set_aside_with_a_message_and_the_run_starts_empty(
    stack: Stack, tmp_path: Path, damage: Any, reason: str
) -> None:
    folder = tmp_path / "state"
    with mock_aws():
        first = Run(stack, folder)
        assert invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png())).status == 201
        first.stop()
    damaged = damage(saved_document(folder))
    (folder / "state.json").write_text(damaged)

    with mock_aws():
        second = Run(stack, folder)
        assert second.restored.problem is not None
        assert reason in second.restored.problem
        (warning,) = [m for m in second.messages if m.startswith("WARNING")]
        aside = sorted(tmp_path.glob("state.broken-*"))
        assert len(aside) == 1
        assert str(aside[0]) in warning
        assert "starts empty" in warning
        assert (aside[0] / "state.json").read_text() == damaged, "set aside as it was, for a look"
        assert not any(i["job_id"]["S"].startswith("job_") for i in second.jobs_table()), "nothing half-restored"
        assert invoke("GET", "/api/v1/jobs").status == 200, "the run serves"
        second.stop()
    assert saved_document(folder)["format"] == FORMAT_NAME, "the new run saves a state of its own"


def test_a_missing_stored_file_sets_the_state_aside_before_anything_is_written(stack: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "state"
    with mock_aws():
        first = Run(stack, folder)
        assert invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png())).status == 201
        first.stop()
    for blob in (folder / "blobs").glob("*/*"):
        blob.unlink()
    with mock_aws():
        second = Run(stack, folder)
        assert second.restored.problem is not None
        assert "missing from the state folder" in second.restored.problem
        assert second.jobs_table() == [], "the job item was not written without its file"
        second.stop()


def test_a_second_local_api_on_the_same_folder_keeps_nothing(stack: Stack, tmp_path: Path) -> None:
    holder = LocalState(tmp_path / "state")
    assert holder.open()
    assert not LocalState(tmp_path / "state").open(), "the folder is taken"
    holder.folder.unlock()
    assert LocalState(tmp_path / "state").open()


def test_a_restart_keeps_a_webhook_registered_over_the_api_and_its_secret_still_opens(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook made with ``POST /api/v1/webhooks`` (its secret sealed with the stack's KMS key) is listed
    after the restart as it was, and the delivery worker can still open its secret (the key is kept too)."""
    stand_in_dns(monkeypatch, {"hooks.example.com": ["93.184.216.34"]})
    moto_atomic.install()
    folder = tmp_path / "state"
    with mock_aws():
        first = Run(stack, folder)
        made = register("https://hooks.example.com/ld", events=["job.completed"])
        assert made.status == 201, made.body
        listed = invoke("GET", "/api/v1/webhooks")
        assert listed.status == 200
        assert made.data["webhook_id"] in json.dumps(listed.data)
        first.stop()

    with mock_aws():
        second = Run(stack, folder)
        assert second.restored.problem is None, second.messages
        again = invoke("GET", "/api/v1/webhooks")
        assert again.status == 200
        assert again.data == listed.data, "the webhook comes back exactly as it was listed"
        (hook,) = WebhookStore(stack.properties("JobsTable")["TableName"]).list("cli_alice")
        raw = SecretBox(os.environ["WEBHOOK_SECRETS_KEY"]).open("cli_alice", hook.webhook_id, hook.sealed_secret)
        assert secret_text(raw) == made.data["secret"], "the kept KMS key still opens the kept secret"
        second.stop()
