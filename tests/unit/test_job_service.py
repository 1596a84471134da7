"""JobService and JobCreation against in-memory stores (tests/fakes.py): the state machine, races, the
completion's unwinding and creation's roll-backs, without AWS (the same paths with moto and injected
faults: tests/integration/test_lifecycle.py, test_faults.py, test_fault_matrix.py)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from models.errors import (
    Conflict,
    FileTooLarge,
    IllegalTransition,
    InvalidFileFormat,
    InvalidJobId,
    JobAlreadyCompleted,
    JobNotFound,
)
from models.job import Job, JobStatus, JobView, RequestInfo
from services import job_service as job_service_module
from services.job_creation import BlueprintFile, JobCreation
from services.job_service import JobService
from services.previews import PREVIEW_TTL_SECONDS, PreviewService
from services.retention import BlueprintRetention
from services.runtime_config import RuntimeConfig
from storage.cache_store import result_key
from tests import samples
from tests.fakes import FakeBucket, FakeJobsTable, FakePreviewCache
from utils.errors import InvalidRequest, ServiceUnavailable

NOW = 1_795_302_900.0  # 2026-11-21T23:15:00Z
CONFIG = RuntimeConfig(max_upload_bytes=1024 * 1024, presign_expiry_seconds=300)
ALICE = RequestInfo("req_1", "corr_1", "cli_alice")
RETENTION_DAYS = 2
RESULT = {"rooms": [{"id": "room_1", "bounding_box": [0, 0, 10, 10]}], "model_version": "m-1"}


class World:
    """A JobService and a JobCreation sharing fake stores and a clock that stands still unless moved."""

    def __init__(self) -> None:
        self.now = NOW
        self.jobs_table = FakeJobsTable()
        self.blueprints = FakeBucket()
        self.cache = FakeBucket()
        self.preview_cache = FakePreviewCache()
        previews = PreviewService(self.preview_cache)  # type: ignore[arg-type]
        self.hex = iter(f"{n:016x}" for n in range(1, 1000))
        self.retention = BlueprintRetention(
            self.blueprints,  # type: ignore[arg-type]
            self.blueprints,  # type: ignore[arg-type]
            self.jobs_table,  # type: ignore[arg-type]
            self.jobs_table,  # type: ignore[arg-type]
            RETENTION_DAYS,
        )
        self.service = JobService(
            self.jobs_table,  # type: ignore[arg-type]
            self.cache,  # type: ignore[arg-type]
            previews,
            CONFIG,
            retention=self.retention,
            clock=lambda: self.now,
        )
        self.creation = JobCreation(
            self.jobs_table,  # type: ignore[arg-type]
            self.blueprints,  # type: ignore[arg-type]
            previews,
            CONFIG,
            clock=lambda: self.now,
            random_hex=lambda: next(self.hex),
        )

    def job(self, status: JobStatus = JobStatus.PENDING, owner: str | None = "cli_alice") -> Job:
        """A stored job in ``status`` (written directly, as if it had got there)."""
        view = self.creation.create_job(BlueprintFile(samples.png(extra=next(self.hex).encode())), ALICE)
        job = view.job.replace(status=status, owner_id=owner)
        self.jobs_table.jobs[job.job_id] = job
        return job


@pytest.fixture
def world() -> World:
    return World()


# ---------------------------------------------------------------------------------------------- reads
def test_get_job_refuses_a_malformed_id_before_reading(world: World) -> None:
    with pytest.raises(InvalidJobId):
        world.service.get_job("job_nope")


@pytest.mark.parametrize("case", ["absent", "expired", "another client's"])
def test_get_job_answers_not_found_alike_for_absent_expired_and_foreign_jobs(world: World, case: str) -> None:
    job = world.job()
    job_id = job.job_id
    if case == "absent":
        job_id = job_id[:-1] + ("0" if job_id[-1] != "0" else "1")
    elif case == "expired":
        world.now = job.expires_at
    with pytest.raises(JobNotFound) as caught:
        world.service.get_job(job_id, "cli_bob" if case == "another client's" else "cli_alice")
    assert caught.value.details == {"job_id": job_id}


def test_a_completed_jobs_view_has_a_fresh_result_url(world: World) -> None:
    job = world.job(JobStatus.COMPLETED).replace(result_s3_key=result_key("job_x"))
    world.jobs_table.jobs[job.job_id] = job
    view = world.service.get_job_view(job.job_id, "cli_alice")
    assert view.result_url == "https://cache.example.test/cache/results/job_x/result.json?expires=300"
    assert view.to_public()["result_url"] == view.result_url


# --------------------------------------------------------------------------------------------- cancel
def test_cancel_moves_a_pending_job_and_answers_with_its_view(world: World) -> None:
    job = world.job()
    view = world.service.cancel_job(job.job_id, "cli_alice")
    assert isinstance(view, JobView)
    assert view.job.status is JobStatus.CANCELLED
    assert view.job.version == job.version + 1
    assert world.jobs_table.jobs[job.job_id].status is JobStatus.CANCELLED
    assert "result_url" not in view.to_public()


def test_cancel_is_idempotent_and_writes_once(world: World) -> None:
    job = world.job()
    world.service.cancel_job(job.job_id)
    again = world.service.cancel_job(job.job_id)
    assert again.job.status is JobStatus.CANCELLED
    assert world.jobs_table.writes.count(("cancelled", job.job_id)) == 1


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED])
def test_cancel_of_a_finished_job_is_job_already_completed(world: World, status: JobStatus) -> None:
    job = world.job(status)
    with pytest.raises(JobAlreadyCompleted) as caught:
        world.service.cancel_job(job.job_id)
    assert caught.value.details == {"job_id": job.job_id, "status": status.value}


def test_a_transition_that_loses_a_race_decides_again_on_what_the_winner_wrote(world: World) -> None:
    job = world.job()

    def pipeline_starts_first(job_id: str) -> None:
        world.jobs_table.before_write = None
        world.service.start_processing(job_id)

    world.jobs_table.before_write = pipeline_starts_first
    view = world.service.cancel_job(job.job_id)
    assert view.job.status is JobStatus.CANCELLED
    assert view.job.version == job.version + 2
    assert world.jobs_table.writes[-2:] == [("processing", job.job_id), ("cancelled", job.job_id)]


def test_a_transition_that_keeps_losing_is_a_conflict(world: World) -> None:
    job = world.job()

    def someone_else_writes(job_id: str) -> None:
        current = world.jobs_table.jobs[job_id]
        world.jobs_table.jobs[job_id] = current.replace(version=current.version + 1)

    world.jobs_table.before_write = someone_else_writes
    with pytest.raises(Conflict):
        world.service.cancel_job(job.job_id)
    assert world.jobs_table.jobs[job.job_id].status is JobStatus.PENDING


# ----------------------------------------------------------------------------------------- pipeline
def test_start_processing_a_cancelled_job_is_an_illegal_transition(world: World) -> None:
    job = world.job(JobStatus.CANCELLED)
    with pytest.raises(IllegalTransition) as caught:
        world.service.start_processing(job.job_id)
    assert (caught.value.current, caught.value.target) == ("cancelled", "processing")


def test_complete_job_stores_the_result_and_offers_the_preview(world: World) -> None:
    job = world.job(JobStatus.PROCESSING)
    completed = world.service.complete_job(job.job_id, RESULT)
    assert completed.status is JobStatus.COMPLETED
    assert completed.result_s3_key == result_key(job.job_id)
    assert world.cache.objects[result_key(job.job_id)] == RESULT
    entry = world.preview_cache.entries[("cli_alice", job.blueprint_hash)]
    assert (entry["rooms"], entry["model_version"], entry["job_id"]) == (RESULT["rooms"], "m-1", job.job_id)
    assert entry["expires_at"] == int(NOW) + PREVIEW_TTL_SECONDS
    assert [w for w, _ in world.jobs_table.writes[-2:]] == ["lock", "completed"]


def test_a_completion_that_loses_to_a_cancel_deletes_its_result_and_gives_the_lock_back(world: World) -> None:
    job = world.job(JobStatus.PROCESSING)

    def client_cancels(key: str) -> None:
        world.cache.before_put_json = None
        world.service.cancel_job(job.job_id)

    world.cache.before_put_json = client_cancels
    with pytest.raises(IllegalTransition) as caught:
        world.service.complete_job(job.job_id, RESULT)
    assert caught.value.current == "cancelled"
    assert result_key(job.job_id) not in world.cache.objects
    assert world.cache.deleted == [result_key(job.job_id)]
    assert world.jobs_table.jobs[job.job_id].status is JobStatus.CANCELLED
    assert world.preview_cache.entries == {}


def test_a_completion_whose_result_cannot_be_written_unlocks_and_raises(world: World) -> None:
    job = world.job(JobStatus.PROCESSING)
    world.cache.fail_put_json = ServiceUnavailable()
    with pytest.raises(ServiceUnavailable):
        world.service.complete_job(job.job_id, RESULT)
    stored = world.jobs_table.jobs[job.job_id]
    assert stored.status is JobStatus.PROCESSING
    assert "completing_by" not in stored.extra
    assert ("unlock", job.job_id) in world.jobs_table.writes


def test_a_second_completion_waits_for_the_live_lock_then_gives_up(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_service_module, "COMPLETION_WAIT_SECONDS", 0.1)
    job = world.job(JobStatus.PROCESSING)
    world.jobs_table.jobs[job.job_id] = job.replace(extra={"completing_by": "other", "completing_until": int(NOW) + 30})
    with pytest.raises(Conflict, match="Another completion"):
        world.service.complete_job(job.job_id, RESULT)
    assert result_key(job.job_id) not in world.cache.objects


@pytest.mark.parametrize(
    "result",
    [[], {"rooms": {}, "model_version": "m"}, {"rooms": [], "model_version": ""}, {"rooms": []}],
    ids=["not-an-object", "rooms-not-a-list", "empty-model-version", "no-model-version"],
)
def test_a_bad_result_is_refused_before_anything_is_written(world: World, result: Any) -> None:
    job = world.job(JobStatus.PROCESSING)
    writes = list(world.jobs_table.writes)
    with pytest.raises(ValueError, match="result"):
        world.service.complete_job(job.job_id, result)
    assert world.jobs_table.writes == writes


def test_fail_job_records_the_error_and_refuses_a_bad_one(world: World) -> None:
    job = world.job(JobStatus.PROCESSING)
    with pytest.raises(ValueError, match="code"):
        world.service.fail_job(job.job_id, {"code": "", "message": "x"})
    failed = world.service.fail_job(job.job_id, {"code": "MODEL_ERROR", "message": "m" * 2000})
    assert failed.status is JobStatus.FAILED
    assert failed.error == {"code": "MODEL_ERROR", "message": "m" * 1000}


# ----------------------------------------------------------------------------------------- creation
def test_create_stores_the_file_then_the_record_and_offers_a_live_preview(world: World) -> None:
    content = samples.png(extra=b"create")
    digest = hashlib.sha256(content).hexdigest()
    preview = {"rooms": [1], "model_version": "m-0", "expires_at": int(NOW) + 10}
    world.preview_cache.entries[("cli_alice", digest)] = preview
    view = world.creation.create_job(BlueprintFile(content, "PNG", "../plan"), ALICE)
    job = view.job
    assert (job.status, job.blueprint_format, job.blueprint_hash, job.owner_id) == (
        "pending",
        "png",
        digest,
        "cli_alice",
    )
    assert job.job_id == "job_20261121T231500_0000000000000001"
    assert job.blueprint_s3_key == f"blueprints/{job.job_id}/plan.png"
    assert world.blueprints.objects[job.blueprint_s3_key] == content
    assert world.jobs_table.jobs[job.job_id] == job
    assert view.preview == {"rooms": [1], "model_version": "m-0", "cached": True}


def test_create_offers_no_preview_made_from_another_clients_job(world: World) -> None:
    content = samples.png(extra=b"someone else's")
    digest = hashlib.sha256(content).hexdigest()
    world.preview_cache.entries[("cli_bob", digest)] = {"rooms": [1], "model_version": "m", "expires_at": int(NOW) + 9}
    assert world.creation.create_job(BlueprintFile(content, "png"), ALICE).preview is None


def test_a_job_without_an_owner_makes_no_preview(world: World) -> None:
    job = world.job(JobStatus.PROCESSING, owner=None)
    world.service.complete_job(job.job_id, RESULT)
    assert world.preview_cache.entries == {}


def test_a_taken_key_or_id_draws_a_new_id_and_leaves_nothing_behind(world: World) -> None:
    first_id, second_id = "job_20261121T231500_0000000000000001", "job_20261121T231500_0000000000000002"
    world.blueprints.taken_once.add(f"blueprints/{first_id}/blueprint.png")
    world.jobs_table.jobs[second_id] = world.creation.new_job(
        second_id, "png", sha256_hex="0" * 64, size=1, filename="x.png", request=ALICE
    )
    view = world.creation.create_job(BlueprintFile(samples.png()), ALICE)
    assert view.job.job_id == "job_20261121T231500_0000000000000003"
    assert world.blueprints.deleted == [f"blueprints/{second_id}/blueprint.png"]
    assert list(world.blueprints.objects) == [view.job.blueprint_s3_key]


def test_ids_taken_every_time_are_a_conflict(world: World) -> None:
    world.creation._random_hex = lambda: "0" * 16  # every draw is the same id
    world.jobs_table.jobs["job_20261121T231500_0000000000000000"] = world.job()
    with pytest.raises(Conflict, match="allocate"):
        world.creation.create_job(BlueprintFile(samples.png(extra=b"again")), ALICE)
    assert world.blueprints.objects.keys() == {
        world.jobs_table.jobs["job_20261121T231500_0000000000000000"].blueprint_s3_key
    }


def test_a_record_that_cannot_be_written_takes_its_file_with_it(world: World) -> None:
    world.jobs_table.fail_put = ServiceUnavailable()
    with pytest.raises(ServiceUnavailable):
        world.creation.create_job(BlueprintFile(samples.png()), ALICE)
    assert world.blueprints.objects == {}
    assert world.jobs_table.jobs == {}


@pytest.mark.parametrize(
    ("blueprint", "error"),
    [
        (BlueprintFile(b""), InvalidRequest),
        (BlueprintFile(b"\x89PNG" + b"\0" * CONFIG.max_upload_bytes), FileTooLarge),
        (BlueprintFile(samples.png(), "pdf"), InvalidFileFormat),
        (BlueprintFile(samples.GIF), InvalidFileFormat),
    ],
    ids=["empty", "too-large", "declared-pdf-is-png", "gif"],
)
def test_a_file_that_cannot_be_a_job_is_refused_before_anything_is_stored(
    world: World, blueprint: BlueprintFile, error: type[Exception]
) -> None:
    with pytest.raises(error):
        world.creation.create_job(blueprint, ALICE)
    assert world.blueprints.objects == {}
    assert world.jobs_table.jobs == {}
