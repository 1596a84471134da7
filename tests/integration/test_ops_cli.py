"""The operator CLI (``python -m ops``) in-process against emulated AWS (moto).

The ``aws`` fixture has already exported the function's variables (``ENVIRONMENT=dev``, ``JOBS_TABLE``,
...), so ``--env dev`` keeps them and the CLI acts on the mocked account.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack
from ops.cli import main
from tests import samples
from tests.conftest import ROOT, create_body, invoke

RESULT_FILE = ROOT / "examples" / "result.json"
CACHE_BUCKET = "location-detection-dev-cache-123456789012-us-east-1"
UNKNOWN_JOB = "job_20261121T231500_0123456789abcdef"


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """main() sets target variables in os.environ (as it must, before boto3 reads them): undo that."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Run ``python -m ops --env dev ARGV`` in-process: (exit code, stdout as JSON or None, stderr)."""
    capsys.readouterr()  # drop what invoke() logged (the handler logs to stdout, as in Lambda)
    code = main(["--env", "dev", *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def create_job() -> str:
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png()))
    assert reply.status == 201, reply.body
    return str(reply.data["job_id"])


def assert_clean_failure(code: int, out: Any, err: str, *fragments: str) -> None:
    assert code == 1
    assert out is None, "nothing on stdout when the command fails"
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_start_moves_a_pending_job_to_processing(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create_job()

    code, out, _ = cli(capsys, "jobs", "start", job_id)

    assert code == 0
    assert out["job_id"] == job_id
    assert out["status"] == "processing"
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "processing"


def test_complete_stores_the_result_and_get_shows_its_url(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create_job()
    assert cli(capsys, "jobs", "start", job_id)[0] == 0

    code, out, _ = cli(capsys, "jobs", "complete", job_id, "--result", str(RESULT_FILE))

    assert code == 0
    assert out["status"] == "completed"
    assert out["result_s3_key"] == f"cache/results/{job_id}/result.json"
    assert out["result_url"]
    reply = invoke("GET", f"/api/v1/jobs/{job_id}")
    assert reply.data["status"] == "completed"
    assert reply.data["result_url"].startswith("https://")
    stored = boto3.client("s3", region_name="us-east-1").get_object(Bucket=CACHE_BUCKET, Key=out["result_s3_key"])
    assert json.loads(stored["Body"].read()) == json.loads(RESULT_FILE.read_text())


def test_complete_with_start_takes_a_pending_job_to_completed(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create_job()

    code, out, _ = cli(capsys, "jobs", "complete", job_id, "--start", "--result", str(RESULT_FILE))

    assert code == 0
    assert out["status"] == "completed"
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "completed"
    # The preview is cached: the same blueprint again comes back with the rooms.
    again = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png()))
    assert again.data["preview"]["model_version"] == "room-detector-2026.11"
    assert len(again.data["preview"]["rooms"]) == 3


def test_complete_without_start_refuses_a_pending_job(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create_job()

    code, out, err = cli(capsys, "jobs", "complete", job_id, "--result", str(RESULT_FILE))

    assert_clean_failure(code, out, err, f"job {job_id} is pending; cannot move it to completed")


def test_fail_records_the_error(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create_job()
    assert cli(capsys, "jobs", "start", job_id)[0] == 0

    code, out, _ = cli(capsys, "jobs", "fail", job_id, "--code", "MODEL_ERROR", "--message", "no walls found")

    assert code == 0
    assert out["status"] == "failed"
    assert out["error"] == {"code": "MODEL_ERROR", "message": "no walls found"}
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["error"] == out["error"]


def test_fail_with_start_and_an_empty_code(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create_job()
    code, out, err = cli(capsys, "jobs", "fail", job_id, "--code", "", "--message", "x")
    assert_clean_failure(code, out, err, "code")

    code, out, _ = cli(capsys, "jobs", "fail", job_id, "--start", "--code", "TIMEOUT", "--message", "took too long")
    assert code == 0
    assert out["status"] == "failed"


def test_show_prints_the_public_job(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create_job()

    code, out, _ = cli(capsys, "jobs", "show", job_id)

    assert code == 0
    assert out == invoke("GET", f"/api/v1/jobs/{job_id}").data
    assert "result_url" not in out  # only completed jobs carry one


def test_show_a_completed_job_has_a_result_url(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create_job()
    assert cli(capsys, "jobs", "complete", job_id, "--start", "--result", str(RESULT_FILE))[0] == 0

    code, out, _ = cli(capsys, "jobs", "show", job_id)

    assert code == 0
    assert out["status"] == "completed"
    assert out["result_url"].startswith("https://")


def test_start_on_a_cancelled_job_is_refused_clearly(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create_job()
    assert invoke("DELETE", f"/api/v1/jobs/{job_id}").status == 200

    code, out, err = cli(capsys, "jobs", "start", job_id)

    assert_clean_failure(code, out, err, f"job {job_id} is cancelled; cannot move it to processing")
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "cancelled"


def test_complete_on_a_cancelled_job_stores_nothing(aws: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = create_job()
    assert cli(capsys, "jobs", "start", job_id)[0] == 0
    assert invoke("DELETE", f"/api/v1/jobs/{job_id}").status == 200

    code, out, err = cli(capsys, "jobs", "complete", job_id, "--start", "--result", str(RESULT_FILE))

    assert_clean_failure(code, out, err, f"job {job_id} is cancelled; cannot move it to completed")
    listed = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=CACHE_BUCKET)
    assert listed.get("KeyCount", 0) == 0


@pytest.mark.parametrize("command", ["show", "start"])
def test_unknown_job(aws: Stack, capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, err = cli(capsys, "jobs", command, UNKNOWN_JOB)

    assert_clean_failure(code, out, err, f"job {UNKNOWN_JOB} not found")


@pytest.mark.parametrize("job_id", ["nope", "job_20261121T231500_0123456789ABCDEF", "../etc/passwd"])
def test_malformed_job_id(aws: Stack, capsys: pytest.CaptureFixture[str], job_id: str) -> None:
    code, out, err = cli(capsys, "jobs", "start", job_id)

    assert_clean_failure(code, out, err, "is not a job id")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not JSON"),
        ('{"model_version": "m1"}', "rooms must be a list"),
        ('{"rooms": [], "model_version": ""}', "model_version must be a non-empty string"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_bad_result_file_changes_nothing(
    aws: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, expected: str
) -> None:
    job_id = create_job()
    result = tmp_path / "result.json"
    result.write_text(content)

    code, out, err = cli(capsys, "jobs", "complete", job_id, "--start", "--result", str(result))

    assert_clean_failure(code, out, err, expected)
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "pending", "--start waits for a valid file"


def test_missing_result_file(aws: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    job_id = create_job()

    code, out, err = cli(capsys, "jobs", "complete", job_id, "--result", str(tmp_path / "absent.json"))

    assert_clean_failure(code, out, err, "cannot read result file")


def test_local_without_a_running_api_points_to_make_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_API_STATE", str(tmp_path / "absent.json"))

    code = main(["--local", "jobs", "show", UNKNOWN_JOB])

    out, err = capsys.readouterr()
    assert_clean_failure(code, out or None, err, "no local API running: start it with make run")


def test_local_with_a_stale_state_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from local_api.server import free_port

    state = tmp_path / "state.json"
    dead = f"http://127.0.0.1:{free_port()}"
    state.write_text(json.dumps({"api_url": dead, "aws_endpoint_url": dead}))
    monkeypatch.setenv("LOCAL_API_STATE", str(state))

    code = main(["--local", "jobs", "show", UNKNOWN_JOB])

    out, err = capsys.readouterr()
    assert_clean_failure(code, out or None, err, "no local API running: start it with make run", "stale")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["jobs"],
        ["jobs", "start"],
        ["jobs", "complete", UNKNOWN_JOB],  # --result is required
        ["--env", "staging", "jobs", "show", UNKNOWN_JOB],
        ["--local", "--env", "dev", "jobs", "show", UNKNOWN_JOB],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_env_names_come_from_the_template_unless_set_for_that_environment() -> None:
    from ops.target import select_environment

    def elsewhere() -> tuple[str, str]:
        return "210987654321", "eu-west-1"

    environ = {"ENVIRONMENT": "dev", "JOBS_TABLE": "my-dev-jobs"}
    assert select_environment(None, environ, elsewhere).environment == "dev"
    assert environ["JOBS_TABLE"] == "my-dev-jobs", "a name set for this environment is kept"
    # Bucket names carry the credentials' account and region (they are global across all accounts).
    assert environ["CACHE_BUCKET"] == "location-detection-dev-cache-210987654321-eu-west-1"

    environ = {"ENVIRONMENT": "dev", "JOBS_TABLE": "my-dev-jobs"}
    select_environment("prod", environ, elsewhere)
    assert environ["ENVIRONMENT"] == "prod"
    assert environ["JOBS_TABLE"] == "location-detection-prod-jobs", "dev's names never reach --env prod"
    assert environ["CONFIG_PATH"] == "/location-detection/prod/"


def test_deployed_names_use_the_account_the_credentials_belong_to(aws: Stack) -> None:
    """Without an account given, the CLI asks STS whose credentials these are (moto's account here)."""
    from ops.target import select_environment

    environ = {"ENVIRONMENT": "prod"}
    select_environment("dev", environ)
    assert environ["BLUEPRINTS_BUCKET"] == "location-detection-dev-blueprints-123456789012-us-east-1"
