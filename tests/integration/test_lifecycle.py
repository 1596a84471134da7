"""A job's life after creation, as the processing pipeline drives it: start, complete, fail; results,
result URLs, the preview cache, and cancel racing complete."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import requests
from boto3.dynamodb.types import TypeDeserializer

from api.dependencies import get as get_dependencies
from local_api.cfn_template import Stack
from models.errors import Conflict, IllegalTransition, JobNotFound
from models.job import JobStatus
from services.job_service import JobService
from tests import samples
from tests.conftest import GENEROUS_RATE_LIMIT, Reply, invoke, set_rate_limit
from tests.faults import FaultyClient, server_error, throttled
from tests.integration.conftest import FakeClock
from tests.integration.test_faults import inject
from tests.integration.test_jobs_api import JOBS, assert_error, create
from tests.integration.test_uploads import finalise, uploaded
from utils import aws as aws_clients
from utils.errors import ServiceUnavailable

CACHE = "location-detection-dev-cache-123456789012-us-east-1"
PREVIEWS = "location-detection-dev-preview_cache"
ROOMS: list[dict[str, Any]] = [
    {
        "id": "room_1",
        "label": "kitchen",
        "bounding_box": [0.125, 10.5, 200.75, 310.0625],
        "polygon": [[0.125, 10.5], [200.75, 10.5], [200.75, 310.0625], [0.125, 310.0625]],
        "confidence": 0.9731,
    },
    {"id": "room_2", "label": "hall", "bounding_box": [201.5, 10.5, 400, 120.25], "confidence": 0.5},
]
RESULT: dict[str, Any] = {"rooms": ROOMS, "model_version": "m-1", "extra": 1}
_deserializer = TypeDeserializer()


# ------------------------------------------------------------------------------------------ helpers
def service() -> JobService:
    return get_dependencies().job_service()


_counter = iter(range(1_000_000))


def unique_png() -> bytes:
    return samples.png(extra=f"lifecycle {next(_counter)} {time.time_ns()}".encode())


def new_job(content: bytes | None = None) -> dict[str, Any]:
    reply = create(content if content is not None else unique_png())
    assert reply.status == 201, reply.body
    return dict(reply.data)


def processing_job(content: bytes | None = None) -> dict[str, Any]:
    job = new_job(content)
    service().start_processing(job["job_id"])
    return job


def completed_job(content: bytes | None = None, result: dict[str, Any] | None = None) -> dict[str, Any]:
    job = processing_job(content)
    service().complete_job(job["job_id"], result or RESULT)
    return job


def get(job_id: str) -> Reply:
    reply = invoke("GET", f"/api/v1/jobs/{job_id}")
    assert reply.status == 200, reply.body
    return reply


def result_keys(s3: Any, job_id: str = "") -> list[str]:
    prefix = f"cache/results/{job_id}/" if job_id else "cache/results/"
    return [o["Key"] for o in s3.list_objects_v2(Bucket=CACHE, Prefix=prefix).get("Contents", [])]


def stored_result(s3: Any, job_id: str) -> Any:
    return json.loads(s3.get_object(Bucket=CACHE, Key=f"cache/results/{job_id}/result.json")["Body"].read())


def raw_job(dynamodb: Any, job_id: str) -> dict[str, Any]:
    return dict(dynamodb.get_item(TableName=JOBS, Key={"job_id": {"S": job_id}}, ConsistentRead=True)["Item"])


def preview_item(dynamodb: Any, blueprint_hash: str) -> dict[str, Any] | None:
    item = dynamodb.get_item(TableName=PREVIEWS, Key={"blueprint_hash": {"S": blueprint_hash}}).get("Item")
    return {k: _deserializer.deserialize(v) for k, v in item.items()} if item else None


def as_dynamodb_numbers(value: Any) -> Any:
    return json.loads(json.dumps(value), parse_float=Decimal)


def snapshot(s3: Any, dynamodb: Any, job: dict[str, Any]) -> tuple[Any, ...]:
    """Everything a transition could touch: the record, the result object, the preview entry."""
    keys = result_keys(s3, job["job_id"])
    result = stored_result(s3, job["job_id"]) if keys else None
    return raw_job(dynamodb, job["job_id"]), keys, result, preview_item(dynamodb, job["blueprint_hash"])


# ------------------------------------------------------------------------------------------ complete
def test_complete_stores_the_result_and_a_result_url_downloads_it(s3: Any, dynamodb: Any) -> None:
    job = processing_job()
    job_id = job["job_id"]
    assert get(job_id).data["status"] == "processing"
    before = time.time()

    completed = service().complete_job(job_id, RESULT)

    assert completed.status is JobStatus.COMPLETED
    assert completed.result_s3_key == f"cache/results/{job_id}/result.json"
    data = get(job_id).data
    assert data["status"] == "completed"
    assert data["result_s3_key"] == f"cache/results/{job_id}/result.json"
    assert data["error"] is None
    assert data["updated_at"] >= data["created_at"]
    assert "preview" not in data

    assert result_keys(s3) == [data["result_s3_key"]]
    assert stored_result(s3, job_id) == RESULT, "the whole result is kept, extra keys included"
    url = data["result_url"]
    query = parse_qs(urlparse(url).query)
    assert query["X-Amz-Expires"] == ["900"]
    assert urlparse(url).path.endswith(f"/cache/results/{job_id}/result.json")
    download = requests.get(url, timeout=10)
    assert download.status_code == 200
    assert download.json() == RESULT == stored_result(s3, job_id)
    assert download.content == s3.get_object(Bucket=CACHE, Key=data["result_s3_key"])["Body"].read()

    preview = preview_item(dynamodb, job["blueprint_hash"])
    assert preview is not None
    assert preview["rooms"] == as_dynamodb_numbers(ROOMS)
    assert preview["model_version"] == "m-1"
    assert preview["job_id"] == job_id
    assert before + 3600 - 2 <= int(preview["expires_at"]) <= time.time() + 3600 + 1
    assert preview["timestamp"].endswith("Z")
    assert time.strptime(preview["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert "extra" not in preview, "only the preview fields are cached"


def test_each_get_presigns_a_fresh_working_url(s3: Any) -> None:
    job_id = completed_job()["job_id"]
    first, second = get(job_id).data["result_url"], get(job_id).data["result_url"]
    for url in (first, second):
        assert requests.get(url, timeout=10).json() == RESULT


def test_a_result_url_does_not_open_other_objects(s3: Any) -> None:
    job_id = completed_job()["job_id"]
    url = get(job_id).data["result_url"]
    tampered = url.replace("result.json", "other.json")
    assert requests.get(tampered, timeout=10).status_code in (403, 404)


def test_complete_through_the_full_life_keeps_one_version_per_write(dynamodb: Any) -> None:
    job_id = new_job()["job_id"]
    assert int(raw_job(dynamodb, job_id)["version"]["N"]) == 1
    service().start_processing(job_id)
    assert int(raw_job(dynamodb, job_id)["version"]["N"]) == 2
    service().complete_job(job_id, RESULT)
    # two writes: the completion lock, then the transition
    assert int(raw_job(dynamodb, job_id)["version"]["N"]) == 4


# ---------------------------------------------------------------------------------------------- fail
def test_fail_records_the_error_and_offers_no_result(s3: Any, dynamodb: Any) -> None:
    job = processing_job()
    job_id = job["job_id"]

    failed = service().fail_job(job_id, {"code": "MODEL_ERROR", "message": "The model could not read the plan"})

    assert failed.status is JobStatus.FAILED
    data = get(job_id).data
    assert data["status"] == "failed"
    assert data["error"] == {"code": "MODEL_ERROR", "message": "The model could not read the plan"}
    assert data["result_s3_key"] is None
    assert "result_url" not in data
    assert result_keys(s3, job_id) == []
    assert preview_item(dynamodb, job["blueprint_hash"]) is None


def test_fail_bounds_what_it_records(aws: Stack) -> None:
    job_id = processing_job()["job_id"]
    service().fail_job(job_id, {"code": "C" * 100, "message": "m" * 5000, "stack": "secret"})
    error = get(job_id).data["error"]
    assert error == {"code": "C" * 64, "message": "m" * 1000}


def test_a_failed_job_can_be_failed_from_pending_only_through_processing(aws: Stack) -> None:
    job_id = new_job()["job_id"]
    with pytest.raises(IllegalTransition) as raised:
        service().fail_job(job_id, {"code": "MODEL_ERROR", "message": "x"})
    assert raised.value.current == "pending"
    assert raised.value.target == "failed"


# ----------------------------------------------------------------------------------- illegal moves
def _cancel(job: dict[str, Any]) -> None:
    assert invoke("DELETE", f"/api/v1/jobs/{job['job_id']}").status == 200


def _start(job: dict[str, Any]) -> None:
    service().start_processing(job["job_id"])


def _complete(job: dict[str, Any]) -> None:
    service().complete_job(job["job_id"], RESULT)


def _fail(job: dict[str, Any]) -> None:
    service().fail_job(job["job_id"], {"code": "MODEL_ERROR", "message": "x"})


OTHER_RESULT = {"rooms": [{"id": "other", "bounding_box": [1.5, 2.5, 3.5, 4.5]}], "model_version": "m-2"}
ACTIONS: dict[str, Callable[[JobService, str], Any]] = {
    "start": lambda s, job_id: s.start_processing(job_id),
    "complete": lambda s, job_id: s.complete_job(job_id, OTHER_RESULT),
    "fail": lambda s, job_id: s.fail_job(job_id, {"code": "LATE", "message": "late"}),
}


@pytest.mark.parametrize(
    ("setup", "action", "current"),
    [
        ((), "complete", "pending"),
        ((_start,), "start", "processing"),
        ((_start, _complete), "start", "completed"),
        ((_start, _complete), "complete", "completed"),
        ((_start, _complete), "fail", "completed"),
        ((_start, _fail), "start", "failed"),
        ((_start, _fail), "complete", "failed"),
        ((_start, _fail), "fail", "failed"),
        ((_cancel,), "start", "cancelled"),
        ((_cancel,), "complete", "cancelled"),
        ((_cancel,), "fail", "cancelled"),
        ((_start, _cancel), "complete", "cancelled"),
        ((_start, _cancel), "fail", "cancelled"),
    ],
    ids=lambda v: v if isinstance(v, str) else "+".join(f.__name__.strip("_") for f in v) or "created",
)
def test_illegal_transitions_raise_and_change_nothing(
    s3: Any, dynamodb: Any, setup: tuple[Callable[[dict[str, Any]], None], ...], action: str, current: str
) -> None:
    job = new_job()
    for step in setup:
        step(job)
    before = snapshot(s3, dynamodb, job)

    with pytest.raises(IllegalTransition) as raised:
        ACTIONS[action](service(), job["job_id"])

    assert raised.value.current == current
    assert raised.value.job_id == job["job_id"]
    assert snapshot(s3, dynamodb, job) == before
    assert get(job["job_id"]).data["status"] == current


def test_a_refused_complete_writes_no_result(s3: Any, dynamodb: Any) -> None:
    pending = new_job()
    cancelled = processing_job()
    _cancel(cancelled)
    for job in (pending, cancelled):
        with pytest.raises(IllegalTransition):
            service().complete_job(job["job_id"], RESULT)
        assert result_keys(s3, job["job_id"]) == []
        assert preview_item(dynamodb, job["blueprint_hash"]) is None


def test_complete_of_an_unknown_job_is_job_not_found(s3: Any) -> None:
    with pytest.raises(JobNotFound):
        service().complete_job("job_20261121T231500_0000000000000000", RESULT)
    assert result_keys(s3) == []


@pytest.mark.parametrize(
    "result",
    [
        None,
        [],
        "rooms",
        {"model_version": "m-1"},
        {"rooms": None, "model_version": "m-1"},
        {"rooms": {"a": 1}, "model_version": "m-1"},
        {"rooms": "r", "model_version": "m-1"},
        {"rooms": []},
        {"rooms": [], "model_version": ""},
        {"rooms": [], "model_version": None},
        {"rooms": [], "model_version": 1},
    ],
)
def test_invalid_results_raise_value_error_and_change_nothing(s3: Any, dynamodb: Any, result: Any) -> None:
    job = processing_job()
    before = snapshot(s3, dynamodb, job)

    with pytest.raises(ValueError, match="result"):
        service().complete_job(job["job_id"], result)

    assert snapshot(s3, dynamodb, job) == before
    assert get(job["job_id"]).data["status"] == "processing"


@pytest.mark.parametrize(
    "error",
    [
        {},
        {"code": "", "message": "x"},
        {"code": 5, "message": "x"},
        {"code": None, "message": "x"},
        {"message": "x"},
        {"code": "MODEL_ERROR"},
        {"code": "MODEL_ERROR", "message": 5},
        {"code": "MODEL_ERROR", "message": None},
    ],
)
def test_fail_with_a_bad_error_raises_value_error_and_changes_nothing(
    s3: Any, dynamodb: Any, error: dict[str, Any]
) -> None:
    job = processing_job()
    before = snapshot(s3, dynamodb, job)

    with pytest.raises(ValueError, match="error"):
        service().fail_job(job["job_id"], error)

    assert snapshot(s3, dynamodb, job) == before


# ------------------------------------------------------------------------------- cancel vs complete
def race_cancel_and_complete(jobs_service: JobService, job_id: str, cancel_delay: float) -> tuple[Reply, Any]:
    """DELETE over HTTP and ``complete_job`` released together; the reply and the job (or the exception)."""
    start = threading.Barrier(2)
    outcome: dict[str, Any] = {}

    def cancel() -> None:
        start.wait()
        time.sleep(cancel_delay)
        outcome["cancel"] = invoke("DELETE", f"/api/v1/jobs/{job_id}")

    def complete() -> None:
        start.wait()
        try:
            outcome["complete"] = jobs_service.complete_job(job_id, RESULT)
        except BaseException as exc:
            outcome["complete"] = exc

    threads = [threading.Thread(target=cancel), threading.Thread(target=complete)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome["cancel"], outcome["complete"]


def test_cancel_racing_complete_has_exactly_one_winner_every_time(s3: Any, dynamodb: Any) -> None:
    set_rate_limit(*GENEROUS_RATE_LIMIT)  # a hundred creates at once: over any client's default burst
    rounds = 100
    jobs = [new_job() for _ in range(rounds)]
    jobs_service = service()
    for job in jobs:
        jobs_service.start_processing(job["job_id"])
    wins = {"cancelled": 0, "completed": 0}

    for number, job in enumerate(jobs):
        job_id = job["job_id"]
        # Stagger the cancel by 0..18 ms so that both orders (and the overlap between them) are exercised.
        cancel_reply, completion = race_cancel_and_complete(jobs_service, job_id, cancel_delay=(number % 10) * 0.002)

        final = get(job_id).data
        if final["status"] == "cancelled":
            assert cancel_reply.status == 200, cancel_reply.body
            assert cancel_reply.data["status"] == "cancelled"
            assert isinstance(completion, IllegalTransition), completion
            assert completion.current == "cancelled", "the pipeline learns the job was cancelled"
            assert completion.target == "completed"
            assert result_keys(s3, job_id) == [], "a cancelled job keeps no result"
            assert final["result_s3_key"] is None
            assert "result_url" not in final
            assert preview_item(dynamodb, job["blueprint_hash"]) is None
        else:
            assert final["status"] == "completed", final
            error = assert_error(cancel_reply, 409, "JOB_ALREADY_COMPLETED")
            assert error["details"]["status"] == "completed"
            assert not isinstance(completion, BaseException), completion
            assert completion.status is JobStatus.COMPLETED
            assert result_keys(s3, job_id) == [f"cache/results/{job_id}/result.json"]
            assert stored_result(s3, job_id) == RESULT
            assert final["result_url"]
        # the completion lock (when it was taken) plus exactly one winning status write
        assert int(raw_job(dynamodb, job_id)["version"]["N"]) in (3, 4)
        wins[final["status"]] += 1

    assert sum(wins.values()) == rounds


# ------------------------------------------------------------------------------------ preview cache
def test_a_job_for_the_same_bytes_gets_the_cached_preview(aws: Stack) -> None:
    content = unique_png()
    first = completed_job(content)

    again = new_job(content)

    assert again["job_id"] != first["job_id"]
    assert again["status"] == "pending"
    assert again["preview"] == {"rooms": ROOMS, "model_version": "m-1", "cached": True}
    assert "preview" not in get(again["job_id"]).data, "the preview comes with creation only"
    assert "preview" not in new_job(unique_png()), "another file has no preview"


def test_a_finalised_upload_of_the_same_bytes_gets_the_cached_preview(aws: Stack) -> None:
    content = unique_png()
    completed_job(content)
    upload = uploaded("png", content)

    reply = finalise(upload["upload_id"])

    assert reply.status == 201, reply.body
    assert reply.data["preview"] == {"rooms": ROOMS, "model_version": "m-1", "cached": True}


def test_the_latest_completion_is_the_preview(aws: Stack) -> None:
    content = unique_png()
    completed_job(content)
    completed_job(content, OTHER_RESULT)
    assert new_job(content)["preview"] == {"rooms": OTHER_RESULT["rooms"], "model_version": "m-2", "cached": True}


def test_a_failed_or_pending_job_offers_no_preview(aws: Stack) -> None:
    content = unique_png()
    job = processing_job(content)
    service().fail_job(job["job_id"], {"code": "MODEL_ERROR", "message": "x"})
    assert "preview" not in new_job(content)


def test_an_expired_preview_is_ignored(dynamodb: Any) -> None:
    content = unique_png()
    job = completed_job(content)
    dynamodb.update_item(
        TableName=PREVIEWS,
        Key={"blueprint_hash": {"S": job["blueprint_hash"]}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 5)}},
    )
    assert preview_item(dynamodb, job["blueprint_hash"]) is not None, "DynamoDB has not deleted it yet"

    again = new_job(content)

    assert "preview" not in again


class FailsPreviewTable(FaultyClient):
    """DynamoDB whose chosen operations fail for the preview table only; the jobs table works."""

    def __init__(self, real: Any, operation: str, fault: Callable[[], BaseException]) -> None:
        super().__init__(real)
        self.operation = operation
        self.fault = fault
        self.preview_calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name != self.operation:
            return attr

        def call(**kwargs: Any) -> Any:
            tables = {kwargs.get("TableName")} | {
                part.get("TableName") for item in kwargs.get("TransactItems", []) for part in item.values()
            }
            if PREVIEWS in tables:
                self.preview_calls += 1
                raise self.fault()
            return attr(**kwargs)

        return call


def test_a_failing_preview_read_still_creates_the_job(aws: Stack, clock: FakeClock) -> None:
    content = unique_png()
    completed_job(content)
    faulty = FailsPreviewTable(boto3.client("dynamodb", region_name="us-east-1"), "get_item", throttled)
    aws_clients.set_client("dynamodb", faulty)

    reply = create(content)

    assert reply.status == 201, reply.body
    assert "preview" not in reply.data
    assert faulty.preview_calls >= 2, "the preview read was tried (and retried)"
    assert get(reply.data["job_id"]).data["status"] == "pending"


def test_a_failing_preview_write_still_completes_the_job(s3: Any, dynamodb: Any, clock: FakeClock) -> None:
    job = processing_job()
    # The preview is written in one transaction with a check of the job's record (never for an erased job).
    faulty = FailsPreviewTable(boto3.client("dynamodb", region_name="us-east-1"), "transact_write_items", server_error)
    aws_clients.set_client("dynamodb", faulty)

    completed = service().complete_job(job["job_id"], RESULT)

    assert completed.status is JobStatus.COMPLETED
    assert faulty.preview_calls >= 1
    aws_clients.reset_clients()
    assert get(job["job_id"]).data["status"] == "completed"
    assert stored_result(s3, job["job_id"]) == RESULT
    assert preview_item(dynamodb, job["blueprint_hash"]) is None


# --------------------------------------------------------------------------------------- faults
def test_a_failing_result_write_leaves_the_job_processing(s3: Any, clock: FakeClock) -> None:
    job = processing_job()
    inject("s3", always={"put_object": server_error})

    with pytest.raises(ServiceUnavailable):
        service().complete_job(job["job_id"], RESULT)

    aws_clients.reset_clients()
    assert get(job["job_id"]).data["status"] == "processing"
    assert result_keys(s3, job["job_id"]) == []
    service().complete_job(job["job_id"], RESULT)
    assert get(job["job_id"]).data["status"] == "completed"


def test_a_failing_status_write_deletes_the_result_it_wrote(s3: Any, dynamodb: Any, clock: FakeClock) -> None:
    job = processing_job()
    inject("dynamodb", always={"update_item": throttled})

    with pytest.raises(ServiceUnavailable):
        service().complete_job(job["job_id"], RESULT)

    aws_clients.reset_clients()
    assert get(job["job_id"]).data["status"] == "processing"
    assert result_keys(s3, job["job_id"]) == [], "no result object without a completed job"
    assert preview_item(dynamodb, job["blueprint_hash"]) is None
    service().complete_job(job["job_id"], RESULT)
    assert stored_result(s3, job["job_id"]) == RESULT


def test_a_cancel_landing_between_result_write_and_status_write_wins_cleanly(s3: Any, dynamodb: Any) -> None:
    """The narrowest window of the race, made deterministic: the result object is written, then the
    job is cancelled, then complete_job's conditional write loses."""
    job = processing_job()
    real = boto3.client("s3", region_name="us-east-1")

    class CancelsAfterResultWrite(FaultyClient):
        def put_object(self, **kwargs: Any) -> Any:
            stored = real.put_object(**kwargs)
            if kwargs["Key"].startswith("cache/results/"):
                assert invoke("DELETE", f"/api/v1/jobs/{job['job_id']}").status == 200
            return stored

    aws_clients.set_client("s3", CancelsAfterResultWrite(real))

    with pytest.raises(IllegalTransition) as raised:
        service().complete_job(job["job_id"], RESULT)

    assert raised.value.current == "cancelled"
    aws_clients.reset_clients()
    assert get(job["job_id"]).data["status"] == "cancelled"
    assert result_keys(s3, job["job_id"]) == [], "the result written before the loss was deleted"
    assert preview_item(dynamodb, job["blueprint_hash"]) is None


# ------------------------------------------------------------------------------ complete vs complete
def test_a_second_pipeline_completing_the_same_job_waits_and_cannot_overwrite_the_result(
    s3: Any, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers complete one job (at-least-once delivery) with different results. The second arrives
    while the first is writing its result: the completion lock makes it wait, give up with CONFLICT, and
    write nothing; the stored result is the first worker's."""
    import services.job_service as job_service_module

    monkeypatch.setattr(job_service_module, "COMPLETION_WAIT_SECONDS", 0.2)
    job = processing_job()
    job_id = job["job_id"]
    real = boto3.client("s3", region_name="us-east-1")
    second: dict[str, Any] = {}

    class SecondWorkerArrivesMidWrite(FaultyClient):
        interleaved = False

        def put_object(self, **kwargs: Any) -> Any:
            if kwargs["Key"].startswith("cache/results/") and not self.interleaved:
                self.interleaved = True
                try:
                    service().complete_job(job_id, OTHER_RESULT)
                except Exception as exc:
                    second["error"] = exc
            return real.put_object(**kwargs)

    aws_clients.set_client("s3", SecondWorkerArrivesMidWrite(real))

    first = service().complete_job(job_id, RESULT)

    assert first.status is JobStatus.COMPLETED
    assert isinstance(second["error"], Conflict)
    aws_clients.reset_clients()
    data = get(job_id).data
    assert result_keys(s3, job_id) == [data["result_s3_key"]]
    assert stored_result(s3, job_id) == RESULT, "the result is the completed job's own"
    assert requests.get(data["result_url"], timeout=10).json() == RESULT
    with pytest.raises(IllegalTransition) as again:
        service().complete_job(job_id, OTHER_RESULT)
    assert again.value.current == "completed"
    assert stored_result(s3, job_id) == RESULT


def test_racing_completes_of_one_job_keep_one_consistent_result(s3: Any, dynamodb: Any) -> None:
    results = [RESULT, OTHER_RESULT]
    for _ in range(20):
        job = processing_job()
        job_id = job["job_id"]
        start = threading.Barrier(2)
        outcomes: list[Any] = [None, None]

        def complete(
            index: int, job_id: str = job_id, start: threading.Barrier = start, out: list[Any] = outcomes
        ) -> None:
            start.wait()
            try:
                out[index] = service().complete_job(job_id, results[index])
            except BaseException as exc:
                out[index] = exc

        threads = [threading.Thread(target=complete, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        won = [i for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
        assert len(won) == 1, outcomes
        lost = outcomes[1 - won[0]]
        assert isinstance(lost, IllegalTransition), lost
        assert lost.current == "completed"
        assert get(job_id).data["status"] == "completed"
        assert result_keys(s3, job_id) == [f"cache/results/{job_id}/result.json"], "the winner's result exists"
        assert stored_result(s3, job_id) == results[won[0]], "and it is the winner's"


def test_when_the_result_cleanup_also_fails_the_stray_result_is_logged(
    s3: Any, dynamodb: Any, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    job = processing_job()
    # the completion lock is taken, then every later update (the status write, the unlock) fails
    inject("dynamodb", faults={"update_item": []}, after={"update_item": 1}, always={"update_item": server_error})
    inject("s3", always={"delete_object": server_error})

    with pytest.raises(ServiceUnavailable):
        service().complete_job(job["job_id"], RESULT)

    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    stray = [
        line["s3_key"] for line in logs if line["message"] == "could not delete a result of a job that did not complete"
    ]
    assert stray == [f"cache/results/{job['job_id']}/result.json"]
    aws_clients.reset_clients()
    assert get(job["job_id"]).data["status"] == "processing"
