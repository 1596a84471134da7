"""The stack's sweep (workers/sweep.py, hourly) against moto, with the clock moved by the test: it finishes an
erasure whose client never retried (after a grace period, never before), deletes a blueprint whose retention
ended (and only then), and goes on past a job it cannot finish. Also what it relies on: the tag a final
transition puts on a blueprint, and the lifecycle rule that expires tagged blueprints (as provisioned from
template.yaml; moto runs no lifecycle rules)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from local_api.cfn_template import Stack
from local_api.server import LambdaContext
from models.job import JOB_TTL_SECONDS
from services.retention import DAY_SECONDS, SWEEP_INTERVAL_SECONDS
from services.sweep import ERASE_GRACE_SECONDS
from tests.conftest import EVENTS, invoke
from tests.faults import server_error
from tests.integration.test_clock import TimeMachine
from tests.integration.test_erasure import erase, everything_of, nothing_left, versions
from tests.integration.test_faults import inject
from tests.integration.test_jobs_api import BLUEPRINTS, JOBS, assert_error
from tests.integration.test_lifecycle import RESULT, new_job, processing_job, service
from utils import aws as aws_clients
from utils import clock, retry
from workers import dependencies as worker_dependencies
from workers.sweep import lambda_handler

RETENTION_DAYS = 2


@pytest.fixture
def machine(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[TimeMachine]:
    """The dev stack with BlueprintRetentionDays=2 (set before any container reads its settings), and the
    Lambda's clocks under the test's control."""
    monkeypatch.setenv("BLUEPRINT_RETENTION_DAYS", str(RETENTION_DAYS))
    moved = TimeMachine()
    monkeypatch.setattr(clock, "wall_source", moved.wall)
    monkeypatch.setattr(clock, "monotonic_source", moved.monotonic)
    monkeypatch.setattr(retry, "sleeper", moved.advance)
    worker_dependencies.reset()
    yield moved
    worker_dependencies.reset()


@pytest.fixture
def world(aws: Stack, machine: TimeMachine) -> TimeMachine:
    return machine


def sweep() -> dict[str, int]:
    event = json.loads((EVENTS / "workers" / "sweep_schedule.json").read_text())
    return lambda_handler(event, LambdaContext("location-detection-dev-sweep", 300))


def record(dynamodb: Any, job_id: str) -> dict[str, Any] | None:
    return dynamodb.get_item(TableName=JOBS, Key={"job_id": {"S": job_id}}, ConsistentRead=True).get("Item")


# ------------------------------------------------------------------------------------------ erasures
def test_an_erasure_nobody_retried_is_finished_by_the_sweep_after_its_grace(
    world: TimeMachine, s3: Any, dynamodb: Any
) -> None:
    job = processing_job()
    service().complete_job(job["job_id"], RESULT)
    inject("s3", always={"delete_objects": server_error})
    assert_error(erase(job["job_id"]), 503, "SERVICE_UNAVAILABLE")
    aws_clients.reset_clients()
    left = everything_of(s3, dynamodb, job)
    assert not nothing_left(left)
    marked_at = int(left["record"]["erase_requested_at"]["N"])

    world.to_wall(marked_at + ERASE_GRACE_SECONDS - 1)
    early = sweep()
    assert early["erasures_finished"] == 0, "an erasure that may still be running in its request is left alone"

    world.to_wall(marked_at + ERASE_GRACE_SECONDS)
    report = sweep()

    assert report["erasures_finished"] == 1
    assert report["objects_deleted"] == 2  # the blueprint and the result
    assert nothing_left(everything_of(s3, dynamodb, job))
    assert sweep()["erasures_finished"] == 0, "nothing left to do"


def test_the_sweep_goes_on_past_a_job_it_cannot_finish(world: TimeMachine, s3: Any, dynamodb: Any) -> None:
    jobs = [new_job(), new_job()]
    inject("s3", always={"delete_objects": server_error})
    for job in jobs:
        assert_error(erase(job["job_id"]), 503, "SERVICE_UNAVAILABLE")
    world.advance(ERASE_GRACE_SECONDS + 1)
    # The first job's deletion keeps failing (every attempt of its retries), the second's works.
    inject("s3", faults={"delete_objects": [server_error() for _ in range(retry.DEFAULT_POLICY.max_retries + 1)]})

    report = sweep()

    assert (report["erasures_finished"], report["failures"]) == (1, 1)
    aws_clients.reset_clients()
    left = [nothing_left(everything_of(s3, dynamodb, job)) for job in jobs]
    assert sorted(left) == [False, True]
    assert sweep()["erasures_finished"] == 1, "the next run finishes it"
    assert all(nothing_left(everything_of(s3, dynamodb, job)) for job in jobs)


# ----------------------------------------------------------------------------------------- retention
def test_a_finished_jobs_blueprint_goes_when_its_retention_ends_and_not_before(
    world: TimeMachine, s3: Any, dynamodb: Any
) -> None:
    job = new_job()
    job_id = job["job_id"]
    s3.put_object(Bucket=BLUEPRINTS, Key=job["blueprint_s3_key"], Body=b"an older version")
    world.advance(3600)
    service().fail_job(service().start_processing(job_id).job_id, {"code": "MODEL_ERROR", "message": "no rooms"})
    finished = world.wall()
    due = int(finished) + RETENTION_DAYS * DAY_SECONDS - SWEEP_INTERVAL_SECONDS
    tags = s3.get_object_tagging(Bucket=BLUEPRINTS, Key=job["blueprint_s3_key"])["TagSet"]
    assert tags == [{"Key": "retention", "Value": "final"}], "tagged for the lifecycle rule"

    world.to_wall(due - 1)
    assert sweep()["blueprints_expired"] == 0
    assert len(versions(s3, BLUEPRINTS, f"blueprints/{job_id}/")) == 2

    world.to_wall(due)
    report = sweep()

    assert (report["blueprints_expired"], report["objects_deleted"]) == (1, 2)
    assert versions(s3, BLUEPRINTS, f"blueprints/{job_id}/") == [], "every version"
    assert world.wall() <= finished + RETENTION_DAYS * DAY_SECONDS, "no later than the retention promised"
    stored = record(dynamodb, job_id)
    assert stored is not None
    assert "lookup_key" not in stored, "out of the sweep's index"
    assert invoke("GET", f"/api/v1/jobs/{job_id}").data["status"] == "failed", "the job itself lives on"
    assert sweep()["blueprints_expired"] == 0


def test_an_unfinished_jobs_blueprint_goes_when_the_job_expires(world: TimeMachine, s3: Any) -> None:
    job = new_job()
    world.advance(JOB_TTL_SECONDS - 1)
    assert sweep()["blueprints_expired"] == 0

    world.advance(1)
    assert sweep()["blueprints_expired"] == 1
    assert versions(s3, BLUEPRINTS, f"blueprints/{job['job_id']}/") == []


def test_a_job_marked_for_erasure_leaves_retention_to_the_erasure(world: TimeMachine, dynamodb: Any) -> None:
    job = new_job()
    inject("s3", always={"delete_objects": server_error})
    assert_error(erase(job["job_id"]), 503, "SERVICE_UNAVAILABLE")
    aws_clients.reset_clients()
    stored = record(dynamodb, job["job_id"])
    assert stored is not None
    assert stored["lookup_key"]["S"] == "sweep#erase", "the mark took the job's place in the index"


# ------------------------------------------------------------------------------ the lifecycle rule
def test_the_provisioned_lifecycle_rule_expires_tagged_blueprints_after_the_retention(aws: Stack, s3: Any) -> None:
    rules = {rule["ID"]: rule for rule in s3.get_bucket_lifecycle_configuration(Bucket=BLUEPRINTS)["Rules"]}
    final = rules["expire-final-blueprints"]
    assert final["Status"] == "Enabled"
    assert final["Filter"] == {"And": {"Prefix": "blueprints/", "Tags": [{"Key": "retention", "Value": "final"}]}}
    assert final["Expiration"] == {"Days": 7}, "the template's default BlueprintRetentionDays"
    assert final["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    assert rules["expire-objects"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1


@pytest.mark.parametrize("final", ["completed", "failed", "cancelled"])
def test_each_final_transition_tags_the_blueprint_in_s3(world: TimeMachine, s3: Any, final: str) -> None:
    job = new_job()
    if final == "cancelled":
        assert invoke("DELETE", f"/api/v1/jobs/{job['job_id']}").status == 200
    else:
        service().start_processing(job["job_id"])
        tagging = s3.get_object_tagging(Bucket=BLUEPRINTS, Key=job["blueprint_s3_key"])["TagSet"]
        assert tagging == [], "not before the final state"
        if final == "completed":
            service().complete_job(job["job_id"], RESULT)
        else:
            service().fail_job(job["job_id"], {"code": "MODEL_ERROR", "message": "no rooms"})

    tags = s3.get_object_tagging(Bucket=BLUEPRINTS, Key=job["blueprint_s3_key"])["TagSet"]
    assert tags == [{"Key": "retention", "Value": "final"}]
