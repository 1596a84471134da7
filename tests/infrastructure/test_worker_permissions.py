"""Every AWS call the workers' functions make, and every call Lambda makes with their roles, is allowed by
the function's role and by the permissions boundary; each role grants nothing else (test_function_permissions.py
does the same for the API's function, and has the machinery: ``aws_calls``, ``iam_simulator``).

- The stream consumer (``JobEventsFunctionRole``): its event source mapping reads the jobs table's stream
  and hands a batch it gives up on to the failure queue, with this role; the consumer puts events on the
  bus. The local poller does the mapping's part here (``local_api.event_poller``), so recording the poller
  and the consumer records both.
- The pipeline's task handler (``PipelineTaskFunctionRole``): what Step Functions' tasks make it do.
- The pipeline rule's role (``PipelineStartRole``, with ``PipelineStateMachineArn``): start that state
  machine, nothing else.
- The hourly sweep (``SweepFunctionRole``): finish an erasure cut short after its mark, end a blueprint's
  retention (docs/erasure.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack
from local_api.event_poller import poller_for
from local_api.server import LambdaContext
from tests import samples
from tests.conftest import create_body, invoke
from tests.faults import FaultyClient, throttled
from tests.infrastructure import rehearsal
from tests.infrastructure.aws_calls import Call, lambda_runtime_requests, recording
from tests.infrastructure.iam_simulator import Policies, Request, Simulator, refused
from tests.infrastructure.test_function_permissions import boundary_policy, evaluate, requests_of, role_policies
from utils import aws as aws_clients
from utils import clock as clocks
from workers import pipeline_task, stream_consumer, sweep

ACCOUNT, REGION = rehearsal.ACCOUNT, rehearsal.REGION
RESULT = {"rooms": [{"id": "room_1", "bounding_box": [0, 0, 10, 10]}], "model_version": "m-1"}
#: What a role grants that no scenario reaches, and what needs it.
GRANTED_FOR_PATHS_NOT_RUN = {
    "JobEventsFunctionRole": {
        "dynamodb:ListStreams": "Lambda's mapping lists the table's streams (the poller is given the one ARN)",
    },
    "PipelineTaskFunctionRole": {
        "s3:DeleteObject": "a completion that loses to a cancel deletes its result (services/job_service.py)",
        "s3:DeleteObjectVersion": "the same, by the version it wrote (when S3 answered the put with one)",
    },
    "SweepFunctionRole": {},
}


def new_job(tag: bytes) -> str:
    reply = invoke("POST", "/api/v1/jobs", json_body=create_body(samples.png(extra=tag)))
    assert reply.status == 201, reply.body
    return str(reply.data["job_id"])


def task(**event: Any) -> Any:
    context = LambdaContext("location-detection-dev-pipeline-task", 30)
    try:
        return pipeline_task.lambda_handler(event, context)
    except pipeline_task.TaskError as exc:
        return type(exc).__name__


def recorded(scenario: Callable[[], Callable[[], None]]) -> list[Call]:
    """Run the scenario's set-up (unrecorded: the API's calls, under the API's role), then record its part."""
    act = scenario()
    with recording() as recorder:
        act()
    return recorder.calls


# ------------------------------------------------------------------------------------------ scenarios
def consumer_publishes() -> Callable[[], None]:
    session = boto3.session.Session(region_name=REGION)
    stack = Stack(rehearsal.source_template(), {"Environment": "dev"})
    poller = poller_for(
        stack, stream_consumer.lambda_handler, session.client("dynamodb"), session.client("dynamodbstreams"),
        session.client("sqs"),
    )  # fmt: skip
    poller.prime()
    job_id = new_job(b"permissions: events")
    assert task(action="start", job_id=job_id)["status"] == "processing"

    def act() -> None:
        while poller.poll_once():
            pass

    return act


def consumer_gives_up_on_a_batch() -> Callable[[], None]:
    act = consumer_publishes()
    real = aws_clients.get_client("events")
    aws_clients.set_client("events", FaultyClient(real, always={"put_events": lambda: throttled("PutEvents")}))
    return act


def pipeline_completes() -> Callable[[], None]:
    job_id = new_job(b"permissions: pipeline completes")

    def act() -> None:
        task(action="start", job_id=job_id)
        task(action="progress", job_id=job_id, progress=50, stage="ocr")
        assert task(action="complete", job_id=job_id, result=RESULT)["status"] == "completed"

    return act


def pipeline_fails_and_is_refused() -> Callable[[], None]:
    job_id = new_job(b"permissions: pipeline fails")

    def act() -> None:
        task(action="start", job_id=job_id)
        assert task(action="fail", job_id=job_id, error={"code": "MODEL_ERROR", "message": "x"})["status"] == "failed"
        assert task(action="progress", job_id=job_id, progress=60) == "JOB_NOT_PROCESSING"

    return act


def sweep_finishes_an_erasure_and_ends_a_retention() -> Callable[[], None]:
    """A completed job with feedback whose erasure was cut short after its mark, and a job whose retention
    ended: the sweep (run later, recorded) finishes the one and deletes the other's blueprint."""
    from api.dependencies import get as api_dependencies
    from workers import dependencies as worker_dependencies

    interrupted = new_job(b"permissions: sweep, an interrupted erasure")
    task(action="start", job_id=interrupted)
    task(action="complete", job_id=interrupted, result=RESULT)
    reply = invoke("POST", f"/api/v1/jobs/{interrupted}/feedback", json_body={"rating": 1})
    assert reply.status == 201, reply.body
    stores = api_dependencies().stores
    job = stores.jobs_table.get(interrupted)
    assert job is not None
    stores.marks.mark(job, int(clocks.wall_time()) - 3600)  # marked an hour ago, then nothing
    new_job(b"permissions: sweep, a retention")
    worker_dependencies.reset()

    def act() -> None:
        later = clocks.wall_time() + 8 * 24 * 3600  # past the second job's expiry
        saved, clocks.wall_source = clocks.wall_source, lambda: later
        try:
            report = sweep.lambda_handler({}, LambdaContext("location-detection-dev-sweep", 300))
        finally:
            clocks.wall_source = saved
        assert (report["erasures_finished"], report["blueprints_expired"], report["failures"]) == (1, 1, 0), report

    return act


SCENARIOS: dict[str, tuple[str, str, Callable[[], Callable[[], None]]]] = {
    "the consumer publishes": ("JobEventsFunctionRole", "JobEventsFunction", consumer_publishes),
    "the consumer gives up on a batch": ("JobEventsFunctionRole", "JobEventsFunction", consumer_gives_up_on_a_batch),
    "the pipeline completes a job": ("PipelineTaskFunctionRole", "PipelineTaskFunction", pipeline_completes),
    "the pipeline fails a job": ("PipelineTaskFunctionRole", "PipelineTaskFunction", pipeline_fails_and_is_refused),
    "the sweep finishes an erasure and ends a retention": (
        "SweepFunctionRole",
        "SweepFunction",
        sweep_finishes_an_erasure_and_ends_a_retention,
    ),
}


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with Simulator() as sim:
        yield sim


@pytest.fixture(scope="module")
def translated_dev() -> Stack:
    return rehearsal.deployed("dev")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    from utils import retry

    monkeypatch.setattr(retry, "sleeper", lambda _: None)


# --------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_call_of_the_scenario_is_allowed_by_the_role_and_its_boundary(
    scenario: str, aws: Stack, simulator: Simulator, translated_dev: Stack, clock: None
) -> None:
    role, function, run = SCENARIOS[scenario]
    made = requests_of(recorded(run), translated_dev, scenario)
    made += lambda_runtime_requests(translated_dev, function, ACCOUNT, REGION)

    assert [r for r in made if not r.action.startswith(("logs:", "xray:"))], "a scenario without calls proves nothing"
    assert evaluate(simulator, translated_dev, made, role=role) == []
    assert evaluate(simulator, translated_dev, made, boundary=True, role=role) == []


@pytest.mark.parametrize("role", sorted(GRANTED_FOR_PATHS_NOT_RUN))
def test_the_role_grants_nothing_its_function_does_not_use(
    role: str, aws: Stack, translated_dev: Stack, clock: None
) -> None:
    used: set[str] = set()
    for name, (scenario_role, function, run) in SCENARIOS.items():
        if scenario_role == role:
            used |= {r.action for r in requests_of(recorded(run), translated_dev, name)}
            used |= {r.action for r in lambda_runtime_requests(translated_dev, function, ACCOUNT, REGION)}
    granted = {
        action
        for _, policy in role_policies(translated_dev, role)
        for statement in policy["Statement"]
        for action in rehearsal.as_list(statement["Action"])
    }
    assert granted - used - set(GRANTED_FOR_PATHS_NOT_RUN[role]) == set()
    assert set(GRANTED_FOR_PATHS_NOT_RUN[role]) <= granted


@pytest.mark.parametrize("role", ["JobEventsFunctionRole", "PipelineTaskFunctionRole", "SweepFunctionRole"])
def test_nothing_is_granted_on_star_but_x_rays_two_write_actions(role: str, translated_dev: Stack) -> None:
    on_star = {
        action
        for _, policy in role_policies(translated_dev, role)
        for statement in policy["Statement"]
        if "*" in rehearsal.as_list(statement["Resource"])
        for action in rehearsal.as_list(statement["Action"])
    }
    assert on_star == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_the_pipeline_rules_role_starts_that_state_machine_and_nothing_else(simulator: Simulator) -> None:
    stack = rehearsal.deployed("dev-pipeline")
    principal, identity = stack.arn("PipelineStartRole"), role_policies(stack, "PipelineStartRole")
    pipeline = rehearsal.PIPELINE["PipelineStateMachineArn"]
    start = Request("states:StartExecution", pipeline, why="job.created")
    forbidden = [
        Request("states:StartExecution", pipeline.replace("location-detection-pipeline", "another-machine")),
        Request("states:StopExecution", f"arn:aws:states:{REGION}:{ACCOUNT}:execution:location-detection-pipeline:x"),
        Request("lambda:InvokeFunction", stack.arn("PipelineTaskFunction")),
    ]
    boundary = boundary_policy()
    assert refused(simulator.evaluate(principal, ACCOUNT, Policies(identity, boundary), [start])) == []
    decided = simulator.evaluate(principal, ACCOUNT, Policies(identity), forbidden)
    assert [d.request.describe() for d in decided if d.allowed] == []
