"""Retention tied to a job's life (services/retention.py) and a marked job's absence, against the in-memory
stores of tests/fakes.py with the injectable clock: the due date each final transition writes, the tag
it asks for, and what the pipeline meets once a job is marked for erasure. (The lifecycle rule's
configuration: tests/infrastructure/test_template.py; the sweep against moto: tests/integration/test_sweep.py.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from models.errors import JobNotFound
from models.job import Job, JobStatus
from services.job_service import JobService
from services.retention import DAY_SECONDS, SWEEP_INTERVAL_SECONDS, BlueprintRetention
from storage.lookups import RETENTION
from tests.unit.test_job_service import RESULT, RETENTION_DAYS, World


@pytest.fixture
def world() -> World:
    return World()


def finish(service: JobService, job: Job, status: JobStatus) -> Job:
    if status is JobStatus.COMPLETED:
        return service.complete_job(job.job_id, RESULT)
    if status is JobStatus.FAILED:
        return service.fail_job(job.job_id, {"code": "MODEL_ERROR", "message": "no rooms"})
    return service.cancel_job(job.job_id).job


def test_a_new_jobs_blueprint_is_due_when_the_job_expires(world: World) -> None:
    job = world.job()
    assert (job.lookup_key, job.lookup_at) == (RETENTION, job.expires_at)
    assert world.blueprints.tagged == []


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_each_final_transition_brings_the_deletion_forward_and_tags_the_blueprint(
    world: World, status: JobStatus
) -> None:
    job = world.job(JobStatus.PROCESSING)
    world.now += 3600  # an hour of processing

    finished = finish(world.service, job, status)

    assert finished.status is status
    # Days after the final state, less one sweep interval: the hourly run that first sees it is in time.
    assert finished.lookup_key == RETENTION
    assert finished.lookup_at == int(world.now) + RETENTION_DAYS * DAY_SECONDS - SWEEP_INTERVAL_SECONDS
    assert finished.lookup_at <= int(world.now) + RETENTION_DAYS * DAY_SECONDS
    assert world.jobs_table.jobs[job.job_id].lookup_at == finished.lookup_at, "written by the transition itself"
    assert world.blueprints.tagged == [job.blueprint_s3_key]


def test_a_job_that_finishes_late_keeps_its_blueprint_no_longer_than_the_job(world: World) -> None:
    job = world.job(JobStatus.PROCESSING)
    world.now = job.expires_at - 3600  # finishes an hour before it expires
    failed = world.service.fail_job(job.job_id, {"code": "TIMEOUT", "message": "slow"})
    assert failed.lookup_at == job.expires_at


def test_starting_a_job_neither_tags_nor_moves_its_retention(world: World) -> None:
    job = world.job()
    started = world.service.start_processing(job.job_id)
    assert (started.lookup_key, started.lookup_at) == (RETENTION, job.expires_at)
    assert world.blueprints.tagged == []


def test_a_tag_that_cannot_be_written_does_not_fail_the_transition(world: World) -> None:
    job = world.job()

    def refuse(key: str) -> bool:
        raise RuntimeError("S3 is down")

    world.blueprints.tag_final = refuse  # type: ignore[method-assign]
    assert world.service.cancel_job(job.job_id).job.status is JobStatus.CANCELLED


@pytest.mark.parametrize(
    ("days", "finished_after", "due_after"),
    [
        (1, 0, DAY_SECONDS - SWEEP_INTERVAL_SECONDS),
        (2, 3 * 3600, 3 * 3600 + 2 * DAY_SECONDS - SWEEP_INTERVAL_SECONDS),
        (7, 0, 7 * DAY_SECONDS - SWEEP_INTERVAL_SECONDS),
        (7, 2 * 3600, 7 * DAY_SECONDS),  # the job's own expiry comes first
        (30, 2 * DAY_SECONDS, 7 * DAY_SECONDS),
    ],
)
def test_the_due_date_is_the_earlier_of_retention_and_expiry(
    world: World, days: int, finished_after: int, due_after: int
) -> None:
    job = world.job()
    retention = BlueprintRetention(world.blueprints, world.blueprints, world.jobs_table, world.jobs_table, days)  # type: ignore[arg-type]
    created = job.expires_at - 7 * DAY_SECONDS
    assert retention.due(job, created + finished_after) == created + due_after


def test_retention_is_at_least_a_day(world: World) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        BlueprintRetention(world.blueprints, world.blueprints, world.jobs_table, world.jobs_table, 0)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ a marked job
def marked(world: World, status: JobStatus) -> Job:
    job = world.job(status).replace(erase_requested_at=int(world.now))
    world.jobs_table.jobs[job.job_id] = job
    return job


STEPS: dict[str, Callable[[JobService, str], object]] = {
    "get": lambda s, job_id: s.get_job(job_id),
    "start": lambda s, job_id: s.start_processing(job_id),
    "complete": lambda s, job_id: s.complete_job(job_id, RESULT),
    "fail": lambda s, job_id: s.fail_job(job_id, {"code": "X", "message": "x"}),
    "cancel": lambda s, job_id: s.cancel_job(job_id),
}


@pytest.mark.parametrize("step", STEPS)
def test_a_job_marked_for_erasure_is_absent_to_every_step(world: World, step: str) -> None:
    job = marked(world, JobStatus.PROCESSING if step in ("complete", "fail") else JobStatus.PENDING)
    writes = list(world.jobs_table.writes)
    with pytest.raises(JobNotFound):
        STEPS[step](world.service, job.job_id)
    assert world.jobs_table.writes == writes, "nothing written to a marked job"
    assert world.cache.objects == {}, "no result for it either"


def test_a_completion_that_loses_to_an_erasure_is_not_found_and_takes_its_result_back(world: World) -> None:
    job = world.job(JobStatus.PROCESSING)

    def erasure_marks_and_cancels(key: str) -> None:  # between the result's write and the transition
        world.cache.before_put_json = None
        current = world.jobs_table.jobs[job.job_id]
        world.jobs_table.jobs[job.job_id] = current.replace(
            status=JobStatus.CANCELLED, version=current.version + 1, erase_requested_at=int(world.now)
        )

    world.cache.before_put_json = erasure_marks_and_cancels
    with pytest.raises(JobNotFound):
        world.service.complete_job(job.job_id, RESULT)
    assert world.cache.objects == {}
    assert world.preview_cache.entries == {}
