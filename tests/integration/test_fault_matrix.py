"""The fault matrix: every AWS call on the create, finalise, cancel, complete and erase paths, failed in turn.

Each path's AWS calls are declared below, in order (``test_each_path_makes_the_declared_calls`` records a
clean run and compares, so the declaration cannot rot). Then every call is failed, at its step, by every
kind of fault — throttling, a 5xx, a connection that could not be made, and a connection dropped after the
request landed (its response lost) — once (the retry must succeed) and for good (retries run out). Each
case asserts:

- the answer: 201/200 after the retry, or 503 ``SERVICE_UNAVAILABLE`` with ``Retry-After`` in the contract's
  envelope (the pipeline's ``complete_job`` raises ``ServiceUnavailable``), except where the path does
  without the call (a preview cache read or write; the rate limiter's spend, which fails open) or the
  storage layer reads back a write whose responses were lost and finds it landed;
- time: retries slept (on a fake clock: free) only within the Lambda's remaining time, keeping the
  handler's reserve to answer;
- storage afterwards: no blueprint object without its job record, no record without its object, every job
  in a state the contract allows and the one the answer implies (a failed cancel leaves the job pending, a
  failed completion leaves it processing with no result object and no ``result_url``), no upload claim
  without its job; an erasure leaves nothing unreachable (its record gone means no version of any of its
  objects is left; objects left mean its record is there, marked, for a retry or the sweep to find, or
  unmarked and whole); and a request that failed succeeds once AWS recovers (an upload can be finalised
  again, an erasure resumed).

One emulated account serves the whole module (provisioning per case would cost more than the cases) and is
emptied after each case; ``create_json`` runs in a cold container (its calls include the API keys secret
and Parameter Store), the other paths in a warm one, as most invocations are.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from api import dependencies, rest_api
from local_api import moto_atomic
from local_api.cfn_template import Stack
from local_api.provision import provision, provision_api_keys
from local_api.server import build_event
from models.job import JobStatus
from services.job_service import COMPLETION_LOCK_SECONDS, JobService
from tests import samples
from tests.conftest import _FAKE_AWS, API_KEY, TEST_KEYS, Reply, create_body, invoke, to_reply
from tests.faults import FAULT_KINDS, CallLog, FaultKind, StepFault
from tests.integration.conftest import FakeClock
from tests.integration.test_jobs_api import assert_error
from tests.integration.test_uploads import uploaded
from utils import aws as aws_clients
from utils import retry, secrets
from utils.errors import ServiceUnavailable

JOBS = "location-detection-dev-jobs"
PREVIEWS = "location-detection-dev-preview_cache"
BLUEPRINTS = "location-detection-dev-blueprints-123456789012-us-east-1"
CACHE = "location-detection-dev-cache-123456789012-us-east-1"
SERVICES = ("dynamodb", "s3", "ssm", "secretsmanager")
RESULT: dict[str, Any] = {
    "rooms": [{"id": "r1", "label": "kitchen", "bounding_box": [0, 0, 10, 10]}],
    "model_version": "m",
}
_deserializer = TypeDeserializer()


# ------------------------------------------------------------------------------------- the account
@dataclass(frozen=True)
class Account:
    stack: Stack
    #: Healthy clients of each service, configured as ``utils.aws`` configures the Lambda's (retries off).
    clients: dict[str, Any]

    @property
    def s3(self) -> Any:
        return self.clients["s3"]

    @property
    def dynamodb(self) -> Any:
        return self.clients["dynamodb"]


@pytest.fixture(scope="module")
def account(stack: Stack, boto_session: Any) -> Iterator[Account]:
    """One emulated account, built from the template, for every case of the module."""
    moto_atomic.install()
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for key, value in _FAKE_AWS.items():
            env.setenv(key, value)
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"):
            env.delenv(key, raising=False)
        provision(stack, boto_session)
        provision_api_keys(stack, TEST_KEYS, boto_session)
        for key, value in stack.function_environment().items():
            env.setenv(key, value)
        clients = {
            service: boto_session.client(
                service,
                config=aws_clients.client_config(**({"signature_version": "s3v4"} if service == "s3" else {})),
            )
            for service in SERVICES
        }
        cold_container()
        yield Account(stack, clients)
        aws_clients.reset_clients()
        cold_container()


def cold_container() -> None:
    """Forget what a container keeps between invocations: settings, configuration, secrets."""
    dependencies.reset()
    secrets._store = None


def healthy(account: Account) -> None:
    """The Lambda's clients are healthy ones again (building clients per case would cost more than the case)."""
    for service, client in account.clients.items():
        aws_clients.set_client(service, client)


#: What a case saw last, left here by its final statement: teardown removes just that. A case that stopped
#: early (failed) leaves nothing here and gets the full sweep.
_final_storage: list[Storage] = []


@pytest.fixture
def clock(account: Account, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """Healthy clients and empty storage for each case; retries sleep on a fake clock."""
    fake = FakeClock()
    monkeypatch.setattr(retry, "sleeper", fake.sleep)
    monkeypatch.setattr(retry, "now", fake)
    healthy(account)
    _final_storage.clear()
    yield fake
    healthy(account)
    if _final_storage:
        remove(account, _final_storage.pop())
    else:
        remove(account, read_storage(account))


def remove(account: Account, stored: Storage) -> None:
    """Delete what ``stored`` lists (preview entries stay: their hashes are unique to their case)."""
    keys = [{"job_id": {"S": key}} for key in [*stored.jobs, *stored.claims, *stored.rate_limits]]
    for start in range(0, len(keys), 25):
        batch = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
        account.dynamodb.batch_write_item(RequestItems={JOBS: batch})
    for bucket, objects in ((BLUEPRINTS, [*stored.blueprints, *stored.uploads]), (CACHE, list(stored.results))):
        if objects:
            account.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in objects]})


class SimulatedContext:
    """A Lambda context whose remaining time counts down on the fake clock (that is, by the retries' sleeps)."""

    aws_request_id = "fault-matrix"

    def __init__(self, clock: FakeClock, timeout_seconds: int) -> None:
        self._clock = clock
        self._deadline = clock() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))


def install(log: CallLog, account: Account) -> None:
    """Route every client the code creates through ``log`` (the real clients are moto's)."""
    for service, real in account.clients.items():
        aws_clients.set_client(service, log.wrap(service, real))


def call_api(context: SimulatedContext, method: str, path: str, *, json_body: Any = None, **raw: Any) -> Reply:
    headers = [("x-api-key", API_KEY), ("host", "api.example.test")]
    body = b""
    if json_body is not None:
        headers.append(("content-type", "application/json"))
        body = json.dumps(json_body).encode()
    if "body" in raw:
        headers.append(("content-type", raw["content_type"]))
        body = raw["body"]
    return to_reply(rest_api.lambda_handler(build_event(method, path, headers, body), context))


def unique_png() -> bytes:
    return samples.png(extra=uuid.uuid4().hex.encode())


# ------------------------------------------------------------------------------------------- storage
@dataclass
class Storage:
    """Everything in the account, as plain values."""

    jobs: dict[str, dict[str, Any]]
    claims: dict[str, dict[str, Any]]
    blueprints: dict[str, dict[str, str]]
    uploads: list[str]
    results: dict[str, Any]
    #: Keys of the rate-limit states (removed after each case: every case starts with an idle client).
    rate_limits: list[str] = field(default_factory=list)


def read_storage(account: Account) -> Storage:
    items = [
        {k: _deserializer.deserialize(v) for k, v in item.items()}
        for item in account.dynamodb.scan(TableName=JOBS, ConsistentRead=True)["Items"]
    ]
    blueprints: dict[str, dict[str, str]] = {}
    uploads: list[str] = []
    for obj in account.s3.list_objects_v2(Bucket=BLUEPRINTS).get("Contents", []):
        if obj["Key"].startswith("uploads/"):
            uploads.append(obj["Key"])
        else:
            blueprints[obj["Key"]] = account.s3.head_object(Bucket=BLUEPRINTS, Key=obj["Key"])["Metadata"]
    results = {
        obj["Key"]: json.loads(account.s3.get_object(Bucket=CACHE, Key=obj["Key"])["Body"].read())
        for obj in account.s3.list_objects_v2(Bucket=CACHE, Prefix="cache/results/").get("Contents", [])
    }
    return Storage(
        jobs={i["job_id"]: i for i in items if i["job_id"].startswith("job_")},
        claims={i["job_id"]: i for i in items if i["job_id"].startswith("claim#")},
        blueprints=blueprints,
        uploads=uploads,
        results=results,
        rate_limits=[i["job_id"] for i in items if i["job_id"].startswith("rate#")],
    )


def assert_consistent(account: Account) -> Storage:
    """The invariants no fault may break, whatever the answer was."""
    stored = read_storage(account)
    for key in stored.blueprints:
        job = stored.jobs.get(key.split("/")[1])
        assert job is not None, f"blueprint object without its job: {key}"
        assert job["blueprint_s3_key"] == key
    for job_id, job in stored.jobs.items():
        assert job["status"] in {s.value for s in JobStatus}, job
        if "erase_requested_at" in job:
            continue  # marked for erasure: its objects may be gone already (the erase paths check the rest)
        metadata = stored.blueprints.get(job["blueprint_s3_key"])
        assert metadata is not None, f"job record without its blueprint object: {job_id}"
        assert metadata.get("sha256") == job["blueprint_hash"], "the object is the job's file"
        result = stored.results.get(f"cache/results/{job_id}/result.json")
        if job["status"] == JobStatus.COMPLETED:
            assert job.get("result_s3_key"), "a completed job has its result"
            assert result == RESULT, "all of it"
        else:
            assert result is None, f"a {job['status']} job with a result object"
            assert "result_s3_key" not in job
        if job["status"] == JobStatus.PROCESSING and "completing_until" in job:
            assert job["completing_until"] <= time.time() + COMPLETION_LOCK_SECONDS + 5, "a lock that lapses"
    for claim in stored.claims.values():
        assert claim["claimed_by"] in stored.jobs, "a claim without its job holds the upload until it lapses"
    return stored


def assert_answered(stored: Storage, job: dict[str, Any], status: str) -> None:
    """The job a success answered with is the one job stored, in ``status``."""
    assert list(stored.jobs) == [job["job_id"]], "exactly one job"
    record = stored.jobs[job["job_id"]]
    assert job["status"] == record["status"] == status
    for name in ("blueprint_s3_key", "blueprint_hash", "blueprint_size", "created_at", "updated_at"):
        assert job[name] == record[name], name


def api_job(job_id: str) -> dict[str, Any]:
    """The job as its client sees it (plain clients: the faults are over)."""
    reply = invoke("GET", f"/api/v1/jobs/{job_id}")
    assert reply.status == 200, reply.body
    return dict(reply.data)


# --------------------------------------------------------------------------------------------- paths
@dataclass(frozen=True)
class Step:
    #: ``service.operation(resource)``, as ``tests.faults.AwsCall`` prints it.
    call: str
    #: The path succeeds without this call (a cache: the preview read or write, the upload's removal; the
    #: rate limiter's spend, which lets the request through unmetered when it fails).
    optional: bool = False
    #: A write the storage layer reads back when every response was lost, so a landed write is a success.
    read_back: bool = False

    @property
    def label(self) -> str:
        return self.call.split("(")[0]


@dataclass
class Attempt:
    """What one run of a path gave: an HTTP reply, or the pipeline's return value or exception."""

    reply: Reply | None = None
    error: BaseException | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        if self.reply is not None:
            return self.reply.status < 300
        return self.error is None


class Path:
    name: str
    steps: tuple[Step, ...]
    #: Run in a cold container (the API keys secret and the configuration are read by the path itself).
    cold = False

    def prepare(self) -> dict[str, Any]:
        """What must exist before the path runs (made with healthy AWS; it warms the container)."""
        raise NotImplementedError

    def run(self, given: dict[str, Any], context: SimulatedContext) -> Attempt:
        raise NotImplementedError

    def check(self, stored: Storage, given: dict[str, Any], attempt: Attempt, step: Step) -> None:
        """Storage (as ``assert_consistent`` found it) and the API agree with the answer."""
        raise NotImplementedError

    def assert_failed(self, attempt: Attempt) -> None:
        assert attempt.reply is not None
        error = assert_error(attempt.reply, 503, "SERVICE_UNAVAILABLE")
        assert int(attempt.reply.headers["Retry-After"]) >= 1
        assert "injected" not in attempt.reply.raw["body"], "no library error text reaches the client"
        assert "location-detection" not in attempt.reply.raw["body"], "no resource names either"
        assert error["message"]


class CreateJson(Path):
    name = "create_json"
    cold = True
    steps = (
        Step("secretsmanager.get_secret_value(api-keys)"),
        Step("ssm.get_parameters_by_path(parameters)"),
        Step("dynamodb.update_item(jobs)", optional=True),  # the client's rate limit (an idle client: one spend)
        Step("s3.put_object(blueprints)", read_back=True),
        Step("dynamodb.put_item(jobs)", read_back=True),
        Step("dynamodb.get_item(preview_cache)", optional=True),
    )

    def prepare(self) -> dict[str, Any]:
        return {"content": unique_png()}

    def run(self, given: dict[str, Any], context: SimulatedContext) -> Attempt:
        return Attempt(call_api(context, "POST", "/api/v1/jobs", json_body=create_body(given["content"])))

    def check(self, stored: Storage, given: dict[str, Any], attempt: Attempt, step: Step) -> None:
        if not attempt.succeeded:
            assert stored.jobs == {}, "a failed create leaves no job"
            assert stored.blueprints == {}, "and no file"
            return
        assert attempt.reply is not None
        assert attempt.reply.status == 201
        assert_answered(stored, attempt.reply.data, "pending")


class CreateRaw(CreateJson):
    name = "create_raw"
    cold = False
    steps = CreateJson.steps[2:]

    def prepare(self) -> dict[str, Any]:
        warm = dependencies.get()
        warm.config()
        warm.api_keys_secret()
        return {"content": unique_png()}

    def run(self, given: dict[str, Any], context: SimulatedContext) -> Attempt:
        return Attempt(
            call_api(context, "POST", "/api/v1/jobs?filename=raw.png", body=given["content"], content_type="image/png")
        )


class Finalise(Path):
    name = "finalise"
    steps = (
        Step("dynamodb.update_item(jobs)", optional=True),  # the rate limit
        Step("s3.list_objects_v2(blueprints)"),
        Step("s3.head_object(blueprints)"),
        Step("s3.get_object(blueprints)"),  # the first bytes: the format
        Step("dynamodb.put_item(jobs)", read_back=True),  # the upload's claim
        Step("s3.get_object(blueprints)"),  # the whole file: its hash
        Step("s3.head_object(blueprints)"),  # nothing at the blueprint key yet
        Step("s3.copy_object(blueprints)", read_back=True),
        Step("dynamodb.put_item(jobs)", read_back=True),  # the job record
        Step("dynamodb.get_item(preview_cache)", optional=True),
        Step("s3.delete_object(blueprints)", optional=True),  # the upload, now a job
    )

    def prepare(self) -> dict[str, Any]:
        content = samples.pdf(extra=uuid.uuid4().hex.encode())
        upload = uploaded("pdf", content, "floor.pdf")
        return {"upload_id": upload["upload_id"], "key": upload["fields"]["key"]}

    def run(self, given: dict[str, Any], context: SimulatedContext) -> Attempt:
        body = {"blueprint": {"upload_id": given["upload_id"]}}
        return Attempt(call_api(context, "POST", "/api/v1/jobs", json_body=body))

    def check(self, stored: Storage, given: dict[str, Any], attempt: Attempt, step: Step) -> None:
        if not attempt.succeeded:
            assert stored.jobs == {}, "a failed finalisation makes no job"
            assert stored.blueprints == {}, "copies no file"
            assert stored.claims == {}, "and keeps no claim on the upload"
            assert stored.uploads == [given["key"]], "the upload stays, to be finalised again"
            return
        assert attempt.reply is not None
        job = attempt.reply.data
        assert_answered(stored, job, "pending")
        assert [c["claimed_by"] for c in stored.claims.values()] == [job["job_id"]]
        if step.call == "s3.delete_object(blueprints)" and stored.uploads:
            # Its removal failed: the upload is left for the bucket's one-day rule, but used it is.
            again = invoke("POST", "/api/v1/jobs", json_body={"blueprint": {"upload_id": given["upload_id"]}})
            assert_error(again, 404, "UPLOAD_NOT_FOUND")
        else:
            assert stored.uploads == [], "the upload became the job"


class Cancel(Path):
    name = "cancel"
    steps = (
        Step("dynamodb.get_item(jobs)"),
        Step("dynamodb.update_item(jobs)", read_back=True),
        Step("s3.put_object_tagging(blueprints)", optional=True),  # for the lifecycle rule: the sweep is sure
    )

    def prepare(self) -> dict[str, Any]:
        reply = invoke("POST", "/api/v1/jobs", json_body=create_body(unique_png()))
        assert reply.status == 201, reply.body
        return {"job_id": reply.data["job_id"]}

    def run(self, given: dict[str, Any], context: SimulatedContext) -> Attempt:
        return Attempt(call_api(context, "DELETE", f"/api/v1/jobs/{given['job_id']}"))

    def check(self, stored: Storage, given: dict[str, Any], attempt: Attempt, step: Step) -> None:
        if attempt.succeeded:
            assert attempt.reply is not None
            assert_answered(stored, attempt.reply.data, "cancelled")
        else:
            assert stored.jobs[given["job_id"]]["status"] == "pending", "a failed cancel leaves the job as it was"


class Complete(Path):
    """``job_service.complete_job``, called as the processing pipeline calls it (no HTTP)."""

    name = "complete"
    steps = (
        Step("dynamodb.get_item(jobs)"),
        Step("dynamodb.update_item(jobs)", read_back=True),  # the completion lock
        Step("s3.put_object(cache)"),  # the result
        Step("dynamodb.update_item(jobs)", read_back=True),  # processing -> completed
        Step("s3.put_object_tagging(blueprints)", optional=True),
        Step("dynamodb.transact_write_items(jobs+preview_cache)", optional=True),  # the preview, if the job is live
    )

    def prepare(self) -> dict[str, Any]:
        reply = invoke("POST", "/api/v1/jobs", json_body=create_body(unique_png()))
        assert reply.status == 201, reply.body
        service = dependencies.get().job_service()
        service.start_processing(reply.data["job_id"])
        return {"job_id": reply.data["job_id"], "service": service}

    def run(self, given: dict[str, Any], context: SimulatedContext) -> Attempt:
        seconds = context.get_remaining_time_in_millis() / 1000 - rest_api.RESPONSE_RESERVE_SECONDS
        with retry.deadline(seconds):
            try:
                job = given["service"].complete_job(given["job_id"], RESULT)
            except Exception as exc:
                return Attempt(error=exc)
        return Attempt(extra={"job": job})

    def assert_failed(self, attempt: Attempt) -> None:
        assert isinstance(attempt.error, ServiceUnavailable), repr(attempt.error)

    def check(self, stored: Storage, given: dict[str, Any], attempt: Attempt, step: Step) -> None:
        job_id = given["job_id"]
        seen = api_job(job_id)
        if attempt.succeeded:
            assert stored.jobs[job_id]["status"] == seen["status"] == "completed"
            assert attempt.extra["job"].status is JobStatus.COMPLETED
            result = requests.get(seen["result_url"], timeout=10)
            assert result.status_code == 200
            assert result.json() == RESULT
        else:
            assert stored.jobs[job_id]["status"] == seen["status"] == "processing", "a failed completion"
            assert "result_url" not in seen, "no half-written result"
            assert seen["result_s3_key"] is None


def versions(bucket: str, prefix: str) -> list[str]:
    page = aws_clients.get_client("s3").list_object_versions(Bucket=bucket, Prefix=prefix)
    return [v["VersionId"] for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]]


def item(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    found = aws_clients.get_client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    return dict(found) if found else None


class EraseCompleted(Path):
    """A completed job with feedback, made under an Idempotency-Key, erased by its client."""

    name = "erase_completed"
    steps = (
        Step("dynamodb.get_item(jobs)"),
        Step("dynamodb.update_item(jobs)", read_back=True),  # the mark
        Step("s3.list_object_versions(blueprints)"),
        Step("s3.delete_objects(blueprints)", read_back=True),
        Step("s3.list_object_versions(cache)"),  # the result
        Step("s3.delete_objects(cache)", read_back=True),
        Step("s3.list_object_versions(cache)"),  # the feedback
        Step("s3.delete_objects(cache)", read_back=True),
        Step("dynamodb.delete_item(preview_cache)", read_back=True),
        Step("dynamodb.delete_item(jobs)", read_back=True),  # the idempotency record naming it
        Step("dynamodb.delete_item(jobs)", read_back=True),  # the job's record, last
    )
    #: What the job's objects number before the erasure (blueprint, result, feedback).
    objects = 3

    def prepare(self) -> dict[str, Any]:
        key = {"Idempotency-Key": uuid.uuid4().hex}
        reply = invoke("POST", "/api/v1/jobs", json_body=create_body(unique_png()), headers=key)
        assert reply.status == 201, reply.body
        job = dict(reply.data)
        service = dependencies.get().job_service()
        service.start_processing(job["job_id"])
        service.complete_job(job["job_id"], RESULT)
        assert invoke("POST", f"/api/v1/jobs/{job['job_id']}/feedback", json_body={"rating": 3}).status == 201
        record = item(JOBS, {"job_id": {"S": job["job_id"]}})
        assert record is not None
        given = {"job": api_job(job["job_id"]), "idempotency_record": record["idempotency_record"]["S"]}
        return {**given, "upload_id": None}

    def run(self, given: dict[str, Any], context: SimulatedContext) -> Attempt:
        return Attempt(call_api(context, "POST", f"/api/v1/jobs/{given['job']['job_id']}/erase"))

    def left(self, given: dict[str, Any]) -> dict[str, Any]:
        """Everything still stored for the job, anywhere."""
        job_id, upload_id, record_key = given["job"]["job_id"], given["upload_id"], given["idempotency_record"]
        prefixes = [
            (BLUEPRINTS, f"blueprints/{job_id}/"),
            (CACHE, f"cache/results/{job_id}/"),
            (CACHE, f"feedback/{job_id}/"),
        ]
        if upload_id:
            prefixes.append((BLUEPRINTS, f"uploads/{upload_id}/"))
        preview = item(PREVIEWS, {"blueprint_hash": {"S": given["job"]["blueprint_hash"]}})
        return {
            "objects": [v for bucket, prefix in prefixes for v in versions(bucket, prefix)],
            "record": item(JOBS, {"job_id": {"S": job_id}}),
            "preview": preview if preview and preview["job_id"]["S"] == job_id else None,
            "idempotency": item(JOBS, {"job_id": {"S": record_key}}) if record_key else None,
            "claim": item(JOBS, {"job_id": {"S": f"claim#{upload_id}"}}) if upload_id else None,
        }

    def check(self, stored: Storage, given: dict[str, Any], attempt: Attempt, step: Step) -> None:
        job_id = given["job"]["job_id"]
        left = self.left(given)
        if attempt.succeeded:
            assert attempt.reply is not None
            assert set(attempt.reply.data) == {"job_id", "erased_at", "objects_deleted"}
            assert attempt.reply.data["job_id"] == job_id
            assert not any(left.values()), f"an erasure that answered 200 left {left}"
            assert job_id not in stored.jobs
            return
        assert left["record"] is not None, f"the record went before the rest: {left}"
        if "erase_requested_at" in left["record"]:
            # Cut short after the mark: absent to its client, found again by a retry or by the sweep.
            assert_error(invoke("GET", f"/api/v1/jobs/{job_id}"), 404, "JOB_NOT_FOUND")
            assert left["record"]["lookup_key"]["S"] == "sweep#erase"
        else:
            seen = {k: v for k, v in api_job(job_id).items() if k != "result_url"}  # presigned anew each time
            assert seen == {k: v for k, v in given["job"].items() if k != "result_url"}, "a failed mark changed it"
            assert len(left["objects"]) >= self.objects, "nothing was deleted before the mark"


class ErasePendingUpload(EraseCompleted):
    """A pending job made from an upload, erased: cancelled by the mark; the upload and its claim go too."""

    name = "erase_pending_upload"
    steps = (
        Step("dynamodb.get_item(jobs)"),
        Step("dynamodb.update_item(jobs)", read_back=True),  # cancelled and marked in one write
        Step("s3.list_object_versions(blueprints)"),
        Step("s3.delete_objects(blueprints)", read_back=True),
        Step("s3.list_object_versions(blueprints)"),  # the upload: its version and delete marker
        Step("s3.delete_objects(blueprints)", read_back=True),
        Step("s3.list_object_versions(cache)"),  # no result
        Step("s3.list_object_versions(cache)"),  # no feedback
        Step("dynamodb.delete_item(jobs)", read_back=True),  # the upload's claim
        Step("dynamodb.delete_item(jobs)", read_back=True),  # the job's record
    )
    objects = 3  # the blueprint, the upload's version and its delete marker

    def prepare(self) -> dict[str, Any]:
        upload = uploaded("png", unique_png(), "plan.png")
        reply = invoke("POST", "/api/v1/jobs", json_body={"blueprint": {"upload_id": upload["upload_id"]}})
        assert reply.status == 201, reply.body
        return {"job": api_job(reply.data["job_id"]), "idempotency_record": None, "upload_id": upload["upload_id"]}


PATHS: tuple[Path, ...] = (
    CreateJson(),
    CreateRaw(),
    Finalise(),
    Cancel(),
    Complete(),
    EraseCompleted(),
    ErasePendingUpload(),
)

TIMEOUT_SECONDS = 25  # the function's Timeout in template.yaml (checked below)


def retry_after_recovery(account: Account, path: Path, given: dict[str, Any]) -> Attempt:
    """The same request again, AWS healthy (a completion after its lock would have lapsed)."""
    healthy(account)
    if isinstance(path, Complete):
        deps = dependencies.get()
        later = JobService(
            deps.stores.jobs_table,
            deps.stores.cache,
            deps.previews,
            given["service"].config,
            retention=deps.retention,
            clock=lambda: time.time() + COMPLETION_LOCK_SECONDS + 1,
        )
        return path.run({**given, "service": later}, SimulatedContext(FakeClock(), TIMEOUT_SECONDS))
    return path.run(given, SimulatedContext(FakeClock(), TIMEOUT_SECONDS))


# --------------------------------------------------------------------------------------------- tests
def test_the_lambda_timeout_is_the_templates(account: Account) -> None:
    assert account.stack.function_timeout() == TIMEOUT_SECONDS


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_each_path_makes_the_declared_calls(account: Account, clock: FakeClock, path: Path) -> None:
    given = path.prepare()
    if path.cold:
        cold_container()
    log = CallLog()
    install(log, account)

    attempt = path.run(given, SimulatedContext(clock, TIMEOUT_SECONDS))

    assert attempt.succeeded, attempt.reply.body if attempt.reply else attempt.error
    assert [str(call) for call in log.calls] == [step.call for step in path.steps]
    assert clock.sleeps == []
    healthy(account)
    stored = assert_consistent(account)
    path.check(stored, given, attempt, path.steps[-1])
    _final_storage.append(stored)


def _cases() -> Iterator[Any]:
    for path in PATHS:
        for index, step in enumerate(path.steps):
            for kind in FAULT_KINDS:
                for persistent in (False, True):
                    mode = "always" if persistent else "once"
                    yield pytest.param(
                        path, index, kind, persistent, id=f"{path.name}-{index}-{step.label}-{kind.name}-{mode}"
                    )


def expected_to_succeed(step: Step, kind: FaultKind, persistent: bool) -> bool:
    return not persistent or step.optional or (kind.lands and step.read_back)


@pytest.mark.parametrize(("path", "index", "kind", "persistent"), list(_cases()))
def test_fault_matrix(
    account: Account, clock: FakeClock, path: Path, index: int, kind: FaultKind, persistent: bool
) -> None:
    step = path.steps[index]
    given = path.prepare()
    if path.cold:
        cold_container()
    log = CallLog(StepFault(index, kind, persistent))
    install(log, account)
    context = SimulatedContext(clock, TIMEOUT_SECONDS)

    attempt = path.run(given, context)

    # The fault hit the declared call; once means once.
    assert str(log.faulted) == step.call, f"step {index} was {log.faulted}, not {step.call}"
    assert log.injected >= 2 if persistent else log.injected == 1
    # The answer.
    if expected_to_succeed(step, kind, persistent):
        assert attempt.succeeded, attempt.reply.body if attempt.reply else repr(attempt.error)
    else:
        path.assert_failed(attempt)
    if not persistent:
        assert len(clock.sleeps) == 1, "one retry, and it worked"
    # Time: every retry slept within the Lambda's remaining time, leaving the reserve to answer.
    assert context.get_remaining_time_in_millis() >= rest_api.RESPONSE_RESERVE_SECONDS * 1000
    assert sum(clock.sleeps) <= TIMEOUT_SECONDS - rest_api.RESPONSE_RESERVE_SECONDS
    # Storage.
    healthy(account)
    stored = assert_consistent(account)
    path.check(stored, given, attempt, step)
    if not attempt.succeeded:  # AWS recovers: the same request now works
        again = retry_after_recovery(account, path, given)
        assert again.succeeded, again.reply.body if again.reply else repr(again.error)
        stored = assert_consistent(account)
        path.check(stored, given, again, step)
    _final_storage.append(stored)
