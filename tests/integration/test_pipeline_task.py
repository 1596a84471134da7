"""The pipeline's task handler (``workers.pipeline_task.lambda_handler``) as Step Functions calls it, against
moto; and ``python -m ops jobs progress``, the same service by hand.

Lambda reports a raised exception's class name as ``errorType``, which is what a Step Functions
``Retry``/``Catch`` matches: each test of an error checks that name, and that the message is the JSON the
docs promise, without internals.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from local_api.cfn_template import Stack
from local_api.server import LambdaContext
from ops.cli import main
from tests import samples
from tests.conftest import create_body, invoke
from tests.faults import FaultyClient, throttled
from tests.integration.conftest import FakeClock
from utils import aws as aws_clients
from workers import pipeline_task
from workers.pipeline_task import TaskError, lambda_handler

RESULT = {"rooms": [{"id": "room_1", "bounding_box": [0, 0, 10, 10]}], "model_version": "m-1"}


def task(**event: Any) -> dict[str, Any]:
    return dict(lambda_handler(event, LambdaContext("location-detection-dev-pipeline-task", 30, memory_mb=512)))


def failing(**event: Any) -> TaskError:
    with pytest.raises(TaskError) as raised:
        task(**event)
    return raised.value


def error_of(exc: TaskError) -> tuple[str, dict[str, Any]]:
    """(errorType as Lambda reports it, the parsed errorMessage)."""
    return type(exc).__name__, json.loads(str(exc))


def new_job(tag: bytes) -> str:
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=tag)))
    assert reply.status == 201, reply.body
    return str(reply.data["job_id"])


def test_the_pipeline_drives_a_job_to_completed_and_gets_the_job_back(aws: Stack) -> None:
    job_id = new_job(b"task lifecycle")

    started = task(action="start", job_id=job_id)
    assert (started["status"], started["progress"]) == ("processing", None)
    assert started["started_at"] is not None
    progressed = task(action="progress", job_id=job_id, progress=40, stage="preprocessing")
    assert (progressed["progress"], progressed["stage"]) == (40, "preprocessing")
    completed = task(action="complete", job_id=job_id, result=RESULT)

    assert completed["status"] == "completed"
    assert (completed["progress"], completed["stage"]) == (100, "preprocessing")
    assert completed["finished_at"] is not None
    assert "result_url" not in completed, "no presigned URL in an execution's history"
    seen = invoke("GET", f"/api/v1/jobs/{job_id}").data
    assert {k: seen[k] for k in completed} == completed
    assert seen["result_url"]


def test_fail_records_the_error_for_the_client(aws: Stack) -> None:
    job_id = new_job(b"task fail")
    task(action="start", job_id=job_id)
    failed = task(action="fail", job_id=job_id, error={"code": "MODEL_ERROR", "message": "no walls found"})
    assert (failed["status"], failed["error"]) == ("failed", {"code": "MODEL_ERROR", "message": "no walls found"})


def test_a_cancelled_job_stops_the_pipeline_with_named_errors(aws: Stack) -> None:
    job_id = new_job(b"task cancelled")
    task(action="start", job_id=job_id)
    assert invoke("DELETE", f"/api/v1/jobs/{job_id}").status == 200

    name, message = error_of(failing(action="progress", job_id=job_id, progress=50))
    assert name == "JOB_NOT_PROCESSING"
    assert message == {
        "code": "JOB_NOT_PROCESSING",
        "message": f"job {job_id} is cancelled, not processing",
        "details": {"job_id": job_id, "status": "cancelled"},
    }
    assert error_of(failing(action="complete", job_id=job_id, result=RESULT))[0] == "ILLEGAL_TRANSITION"
    assert error_of(failing(action="start", job_id=job_id))[0] == "ILLEGAL_TRANSITION"


@pytest.mark.parametrize(
    ("event", "name"),
    [
        ({"action": "progress", "progress": 10}, "JOB_NOT_PROCESSING"),
        ({"action": "progress", "progress": 101}, "INVALID_PROGRESS"),
        ({"action": "progress", "progress": 10, "stage": "Not A Stage"}, "INVALID_PROGRESS"),
        ({"action": "complete", "result": RESULT}, "ILLEGAL_TRANSITION"),
        ({"action": "complete", "result": {"rooms": "not a list", "model_version": "m"}}, "INVALID_REQUEST"),
        ({"action": "fail", "error": "not an object"}, "INVALID_REQUEST"),
        ({"action": "restart"}, "INVALID_REQUEST"),
    ],
)
def test_a_pending_job_refuses_what_does_not_apply_to_it(aws: Stack, event: dict[str, Any], name: str) -> None:
    job_id = new_job(b"task pending " + json.dumps(event).encode())
    assert error_of(failing(job_id=job_id, **event))[0] == name
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "pending"


def test_a_bad_result_is_refused_before_the_job_moves(aws: Stack) -> None:
    job_id = new_job(b"task bad result")
    task(action="start", job_id=job_id)
    name, message = error_of(failing(action="complete", job_id=job_id, result={"rooms": []}))
    assert (name, message["message"]) == ("INVALID_REQUEST", "result.model_version must be a non-empty string")
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "processing"


def test_progress_never_goes_down(aws: Stack) -> None:
    job_id = new_job(b"task decrease")
    task(action="start", job_id=job_id)
    task(action="progress", job_id=job_id, progress=70)
    name, message = error_of(failing(action="progress", job_id=job_id, progress=20))
    assert (name, message["details"]["progress"]) == ("PROGRESS_DECREASED", 70)


@pytest.mark.parametrize(
    ("event", "name"),
    [
        ({"action": "start", "job_id": "job_20261121T231500_0123456789abcdef"}, "JOB_NOT_FOUND"),
        ({"action": "start", "job_id": "../etc/passwd"}, "INVALID_JOB_ID"),
        ({"action": "start"}, "INVALID_REQUEST"),
        ({"job_id": "job_20261121T231500_0123456789abcdef"}, "INVALID_REQUEST"),
    ],
)
def test_unknown_and_malformed_inputs_have_their_names(aws: Stack, event: dict[str, Any], name: str) -> None:
    assert error_of(failing(**event))[0] == name


def test_an_input_that_is_not_an_object_is_an_invalid_request(aws: Stack) -> None:
    with pytest.raises(TaskError) as raised:
        lambda_handler(["start"], LambdaContext("location-detection-dev-pipeline-task", 30))
    assert type(raised.value).__name__ == "INVALID_REQUEST"


def test_dynamodb_failing_is_service_unavailable_which_the_pipeline_retries(aws: Stack, clock: FakeClock) -> None:
    job_id = new_job(b"task outage")
    real = aws_clients.get_client("dynamodb")
    aws_clients.set_client("dynamodb", FaultyClient(real, always={"get_item": lambda: throttled("GetItem")}))
    try:
        name, message = error_of(failing(action="start", job_id=job_id))
    finally:
        aws_clients.set_client("dynamodb", real)
    assert name == "SERVICE_UNAVAILABLE"
    assert "Throttling" not in json.dumps(message), "AWS's own error stays in the log"
    assert len(clock.sleeps) == 4, "the service's bounded retries ran first"


def test_a_bug_is_an_internal_error_without_its_internals(aws: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("secret internals /var/task/services/job_service.py")

    monkeypatch.setattr(pipeline_task, "_run", broken)
    name, message = error_of(failing(action="start", job_id="job_20261121T231500_0123456789abcdef"))
    assert name == "INTERNAL_ERROR"
    assert message == {"code": "INTERNAL_ERROR", "message": "An unexpected error occurred", "details": {}}


def test_every_documented_name_is_an_exception_class_of_that_name() -> None:
    for code, kind in pipeline_task.TASK_ERRORS.items():
        assert kind.__name__ == code
        assert issubclass(kind, TaskError)
    assert set(pipeline_task.TASK_ERRORS) == set(pipeline_task.ERROR_CODES)


# ---------------------------------------------------------------------------------- the operator CLI
@pytest.fixture
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    code = main(["--env", "dev", *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_ops_jobs_progress_reports_progress_and_refuses_a_decrease(
    aws: Stack, capsys: pytest.CaptureFixture[str], restore_environ: None
) -> None:
    job_id = new_job(b"ops progress")
    assert cli(capsys, "jobs", "start", job_id)[0] == 0

    code, out, _ = cli(capsys, "jobs", "progress", job_id, "40", "--stage", "preprocessing")
    assert code == 0
    assert (out["progress"], out["stage"], out["status"]) == (40, "preprocessing", "processing")

    code, out, err = cli(capsys, "jobs", "progress", job_id, "30")
    assert (code, out) == (1, None)
    assert "PROGRESS_DECREASED" in err
    assert "Traceback" not in err
    assert cli(capsys, "jobs", "progress", job_id, "forty")[0] == 2, "a usage error"
