"""The job's timing and progress (``started_at``, ``finished_at``, ``progress``, ``stage``): stamped by the
job service on the writes that move a job, and reported by the pipeline (``report_progress``), against the
in-memory stores of tests/fakes.py (the same rules over moto: tests/integration/test_pipeline_task.py)."""

from __future__ import annotations

import pytest

from models.errors import Conflict, InvalidProgress, JobNotFound, JobNotProcessing, PipelineError, ProgressDecreased
from models.job import STAGE, JobStatus
from tests.unit.test_job_service import RESULT, World
from utils.clock import iso_utc


@pytest.fixture
def world() -> World:
    return World()


def test_a_new_job_shows_no_timing_and_no_progress(world: World) -> None:
    public = world.job().to_public()
    assert {k: public[k] for k in ("started_at", "finished_at", "progress", "stage")} == dict.fromkeys(
        ("started_at", "finished_at", "progress", "stage")
    )


def test_start_stamps_started_at_and_completion_finished_at_with_progress_100(world: World) -> None:
    job = world.job()
    started = world.service.start_processing(job.job_id)
    assert (started.started_at, started.finished_at, started.progress) == (iso_utc(world.now), None, None)

    world.now += 90
    completed = world.service.complete_job(job.job_id, RESULT)
    assert completed.started_at == started.started_at
    assert completed.finished_at == completed.updated_at == iso_utc(world.now)
    assert completed.progress == 100


@pytest.mark.parametrize("final", ["cancelled", "failed"])
def test_cancel_and_fail_stamp_finished_at_and_keep_the_progress_reached(world: World, final: str) -> None:
    job = world.job()
    world.service.start_processing(job.job_id)
    world.service.report_progress(job.job_id, 40, "preprocessing")
    world.now += 5
    if final == "cancelled":
        ended = world.service.cancel_job(job.job_id).job
    else:
        ended = world.service.fail_job(job.job_id, {"code": "MODEL_ERROR", "message": "no rooms"})
    assert ended.finished_at == iso_utc(world.now)
    assert (ended.progress, ended.stage) == (40, "preprocessing")


def test_cancelling_a_pending_job_finishes_it_without_starting_it(world: World) -> None:
    job = world.job()
    cancelled = world.service.cancel_job(job.job_id).job
    assert (cancelled.started_at, cancelled.finished_at) == (None, iso_utc(world.now))


def test_progress_is_recorded_with_a_new_version_and_the_stage(world: World) -> None:
    job = world.service.start_processing(world.job().job_id)
    world.now += 3
    reported = world.service.report_progress(job.job_id, 40, "room-detection")
    assert (reported.progress, reported.stage, reported.status) == (40, "room-detection", JobStatus.PROCESSING)
    assert reported.version == job.version + 1
    assert reported.updated_at == iso_utc(world.now)
    assert world.jobs_table.jobs[job.job_id] == reported


def test_progress_without_a_stage_keeps_the_stage_and_equal_progress_with_a_new_stage_is_written(
    world: World,
) -> None:
    job_id = world.service.start_processing(world.job().job_id).job_id
    world.service.report_progress(job_id, 10, "preprocessing")
    assert world.service.report_progress(job_id, 20).stage == "preprocessing"
    moved = world.service.report_progress(job_id, 20, "ocr_2")
    assert (moved.progress, moved.stage) == (20, "ocr_2")


def test_a_report_that_changes_nothing_writes_nothing(world: World) -> None:
    job_id = world.service.start_processing(world.job().job_id).job_id
    first = world.service.report_progress(job_id, 50, "ocr")
    writes = list(world.jobs_table.writes)
    assert world.service.report_progress(job_id, 50, "ocr") == first
    assert world.service.report_progress(job_id, 50) == first
    assert world.jobs_table.writes == writes, "no write, so no new version and no event"


def test_progress_never_goes_down(world: World) -> None:
    job_id = world.service.start_processing(world.job().job_id).job_id
    world.service.report_progress(job_id, 60)
    with pytest.raises(ProgressDecreased) as caught:
        world.service.report_progress(job_id, 59, "late")
    assert caught.value.code == "PROGRESS_DECREASED"
    assert caught.value.details == {"job_id": job_id, "progress": 60, "reported": 59}
    assert world.jobs_table.jobs[job_id].progress == 60


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.CANCELLED, JobStatus.COMPLETED, JobStatus.FAILED])
def test_progress_on_a_job_that_is_not_processing_is_refused(world: World, status: JobStatus) -> None:
    job = world.job(status)
    with pytest.raises(JobNotProcessing) as caught:
        world.service.report_progress(job.job_id, 10)
    assert (caught.value.code, caught.value.details["status"]) == ("JOB_NOT_PROCESSING", status.value)
    assert world.jobs_table.jobs[job.job_id] == job


def test_progress_on_an_unknown_job_is_job_not_found(world: World) -> None:
    with pytest.raises(JobNotFound):
        world.service.report_progress("job_20261121T231500_00000000000000ff", 10)


@pytest.mark.parametrize(
    ("progress", "stage", "field"),
    [
        (-1, None, "progress"),
        (101, None, "progress"),
        (True, None, "progress"),
        (40.5, None, "progress"),
        ("40", None, "progress"),
        (40, "", "stage"),
        (40, "Preprocessing", "stage"),
        (40, "room detection", "stage"),
        (40, "x" * 33, "stage"),
        (40, "1st", "stage"),
        (40, 7, "stage"),
    ],
)
def test_malformed_progress_or_stage_is_refused_before_any_read(
    world: World, progress: object, stage: object, field: str
) -> None:
    with pytest.raises(InvalidProgress) as caught:
        world.service.report_progress("not even a job id", progress, stage)  # type: ignore[arg-type]
    assert caught.value.details["field"] == field
    assert caught.value.code == "INVALID_PROGRESS"


def test_the_stage_pattern_takes_short_lowercase_names() -> None:
    for name in ("preprocessing", "room-detection", "ocr_2", "a", "x" * 32):
        assert STAGE.fullmatch(name), name


def test_a_progress_report_racing_a_cancel_sees_the_cancel(world: World) -> None:
    job_id = world.service.start_processing(world.job().job_id).job_id

    def client_cancels(racing: str) -> None:
        world.jobs_table.before_write = None
        world.service.cancel_job(racing)

    world.jobs_table.before_write = client_cancels
    with pytest.raises(JobNotProcessing) as caught:
        world.service.report_progress(job_id, 30)
    assert caught.value.current == "cancelled"


def test_a_progress_report_racing_a_higher_one_is_refused_as_a_decrease(world: World) -> None:
    job_id = world.service.start_processing(world.job().job_id).job_id

    def another_worker_reports(racing: str) -> None:
        world.jobs_table.before_write = None
        world.service.report_progress(racing, 80)

    world.jobs_table.before_write = another_worker_reports
    with pytest.raises(ProgressDecreased):
        world.service.report_progress(job_id, 30)
    assert world.jobs_table.jobs[job_id].progress == 80


def test_a_progress_report_that_keeps_losing_is_a_conflict(world: World) -> None:
    job_id = world.service.start_processing(world.job().job_id).job_id

    def someone_else_writes(racing: str) -> None:
        current = world.jobs_table.jobs[racing]
        world.jobs_table.jobs[racing] = current.replace(version=current.version + 1)

    world.jobs_table.before_write = someone_else_writes
    with pytest.raises(Conflict):
        world.service.report_progress(job_id, 30)


def test_the_pipelines_errors_are_one_family_outside_the_http_contract() -> None:
    for error in (JobNotProcessing("job_x", "pending"), ProgressDecreased("job_x", 2, 1), InvalidProgress()):
        assert isinstance(error, PipelineError)
