"""models.job: status enum, the state machine table, job ids, public shape and DynamoDB records."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import pytest

from models.ids import JOB_ID, is_valid_job_id
from models.job import ALLOWED_TRANSITIONS, API_VERSION, PUBLIC_FIELDS, Job, JobStatus, can_transition

VALID_ID = "job_20261121T231500_9f2c4e7a1b3d5f60"

#: The contract's state machine, written out independently of the code under test.
CONTRACT_TRANSITIONS = {
    ("pending", "processing"),
    ("pending", "cancelled"),
    ("processing", "completed"),
    ("processing", "failed"),
    ("processing", "cancelled"),
}
ALL_PAIRS = list(itertools.product(list(JobStatus), repeat=2))
ALLOWED_PAIRS = [(a, b) for a, b in ALL_PAIRS if (a.value, b.value) in CONTRACT_TRANSITIONS]
FORBIDDEN_PAIRS = [(a, b) for a, b in ALL_PAIRS if (a.value, b.value) not in CONTRACT_TRANSITIONS]


FULLWIDTH_ZERO = 0xFF10
ARABIC_INDIC_ZERO = 0x0660


def unicode_digits(job_id: str, zero: int) -> str:
    """The job id with the digits of its time part written in another script's digits."""
    prefix, time_part, random_part = job_id.split("_")
    other = "".join(chr(zero + int(ch)) if ch.isdigit() else ch for ch in time_part)
    return f"{prefix}_{other}_{random_part}"


def make_job(**overrides: Any) -> Job:
    values: dict[str, Any] = {
        "job_id": VALID_ID,
        "status": JobStatus.PENDING,
        "created_at": "2026-11-21T23:15:00Z",
        "updated_at": "2026-11-21T23:15:00Z",
        "blueprint_s3_key": f"blueprints/{VALID_ID}/plan.png",
        "blueprint_format": "png",
        "blueprint_hash": "ab" * 32,
        "blueprint_size": 1234,
        "blueprint_filename": "plan.png",
        "request_id": "req_20261121T231500_k3j9x2",
        "correlation_id": "corr-1",
        "expires_at": 1_795_000_000,
    }
    values.update(overrides)
    return Job(**values)


# --- JobStatus and the transition table -------------------------------------------------------------


def test_status_values_are_the_contract_strings() -> None:
    assert [s.value for s in JobStatus] == ["pending", "processing", "completed", "failed", "cancelled"]
    assert JobStatus("pending") is JobStatus.PENDING
    assert str(JobStatus.CANCELLED) == "cancelled"  # StrEnum: serialises as the bare value


def test_unknown_status_string_is_rejected() -> None:
    with pytest.raises(ValueError, match="is not a valid JobStatus"):
        JobStatus("done")


def test_transition_table_covers_every_status() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(JobStatus)


@pytest.mark.parametrize(("current", "target"), ALLOWED_PAIRS, ids=lambda s: s.value)
def test_allowed_transition(current: JobStatus, target: JobStatus) -> None:
    assert target in ALLOWED_TRANSITIONS[current]
    assert can_transition(current, target) is True


@pytest.mark.parametrize(("current", "target"), FORBIDDEN_PAIRS, ids=lambda s: s.value)
def test_forbidden_transition(current: JobStatus, target: JobStatus) -> None:
    assert target not in ALLOWED_TRANSITIONS[current]
    assert can_transition(current, target) is False


def test_exactly_the_contract_transitions_are_allowed() -> None:
    table = {(a.value, b.value) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert table == CONTRACT_TRANSITIONS


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_final_states_have_no_way_out(status: JobStatus) -> None:
    assert ALLOWED_TRANSITIONS[status] == frozenset()


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.PROCESSING])
def test_live_states_are_not_final(status: JobStatus) -> None:
    assert ALLOWED_TRANSITIONS[status]


def test_cancelled_can_never_leave() -> None:
    for target in JobStatus:
        assert not can_transition(JobStatus.CANCELLED, target), target
    # ... and no status, not even pending, leads back out of it through another path.
    reachable = {JobStatus.CANCELLED}
    frontier = [JobStatus.CANCELLED]
    while frontier:
        for nxt in ALLOWED_TRANSITIONS[frontier.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == {JobStatus.CANCELLED}


def test_no_status_transitions_to_itself() -> None:
    for status in JobStatus:
        assert not can_transition(status, status)


# --- job ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "job_id",
    [
        VALID_ID,
        "job_20000101T000000_0000000000000000",
        "job_99991231T235959_ffffffffffffffff",
        "job_20261121T231500_0123456789abcdef",
    ],
)
def test_valid_job_ids(job_id: str) -> None:
    assert is_valid_job_id(job_id) is True


@pytest.mark.parametrize(
    "job_id",
    [
        pytest.param("", id="empty"),
        pytest.param("job_20261121T231500_9F2C4E7A1B3D5F60", id="uppercase-hex"),
        pytest.param("job_20261121T231500_9f2c4e7a1b3d5F60", id="one-uppercase-hex"),
        pytest.param("JOB_20261121T231500_9f2c4e7a1b3d5f60", id="uppercase-prefix"),
        pytest.param("job_20261121t231500_9f2c4e7a1b3d5f60", id="lowercase-t"),
        pytest.param("job_20261121T231500_9f2c4e7a1b3d5f6", id="hex-too-short"),
        pytest.param("job_20261121T231500_9f2c4e7a1b3d5f601", id="hex-too-long"),
        pytest.param("job_2026112T231500_9f2c4e7a1b3d5f60", id="date-too-short"),
        pytest.param("job_20261121T23150_9f2c4e7a1b3d5f60", id="time-too-short"),
        pytest.param("job_20261121T2315000_9f2c4e7a1b3d5f60", id="time-too-long"),
        pytest.param("job_20261121T231500", id="missing-random"),
        pytest.param("job__9f2c4e7a1b3d5f60", id="missing-time"),
        pytest.param("20261121T231500_9f2c4e7a1b3d5f60", id="missing-prefix"),
        pytest.param("job_20261121T231500-9f2c4e7a1b3d5f60", id="wrong-separator"),
        pytest.param("job_20261121 231500_9f2c4e7a1b3d5f60", id="space"),
        pytest.param("job_20261121T231500_9f2c4e7a1b3d5g60", id="non-hex"),
        pytest.param("../x", id="path-traversal"),
        pytest.param("job_..", id="dots"),
        pytest.param(f"../{VALID_ID}", id="traversal-prefix"),
        pytest.param(f"{VALID_ID}/../x", id="traversal-suffix"),
        pytest.param(f"{VALID_ID}%2F..", id="encoded-traversal"),
        pytest.param(f"{VALID_ID}\n", id="trailing-newline"),
        pytest.param(f"\n{VALID_ID}", id="leading-newline"),
        pytest.param(f" {VALID_ID}", id="leading-space"),
        pytest.param(f"{VALID_ID} ", id="trailing-space"),
        pytest.param(f"{VALID_ID}\x00", id="trailing-nul"),
        pytest.param(VALID_ID * 2, id="doubled"),
        pytest.param(VALID_ID + "0" * 10_000, id="very-long"),
        pytest.param("job_" + "1" * 100_000, id="very-long-digits"),
        pytest.param("' OR '1'='1", id="sql-or"),
        pytest.param(f"{VALID_ID}' OR '1'='1", id="sql-suffix"),
        pytest.param(f"{VALID_ID}; DROP TABLE jobs;--", id="sql-drop"),
        pytest.param("*", id="wildcard"),
        # Unicode digits are digits to `\d` in a str pattern, but never appear in a job id.
        pytest.param(unicode_digits(VALID_ID, FULLWIDTH_ZERO), id="fullwidth-digits"),
        pytest.param(unicode_digits(VALID_ID, ARABIC_INDIC_ZERO), id="arabic-indic-digits"),
        pytest.param(VALID_ID[:18] + "\u0660" + VALID_ID[19:], id="one-arabic-indic-digit"),
        pytest.param(VALID_ID[:20] + "\uff19" + VALID_ID[21:], id="fullwidth-hex-digit"),
    ],
)
def test_invalid_job_ids(job_id: str) -> None:
    assert is_valid_job_id(job_id) is False


def test_make_job_id_builds_the_contract_format() -> None:
    job_id = JOB_ID.make("20261121T231500", "9f2c4e7a1b3d5f60")
    assert job_id == VALID_ID
    assert JOB_ID.pattern.fullmatch(job_id)


@pytest.mark.parametrize(
    ("compact_time", "random_hex"),
    [
        ("20261121T231500", "9F2C4E7A1B3D5F60"),
        ("20261121T231500", "9f2c4e7a"),
        ("2026-11-21T23:15:00", "9f2c4e7a1b3d5f60"),
        ("20261121T231500", "../../etc/passwd"),
        ("", ""),
    ],
)
def test_make_job_id_refuses_bad_parts(compact_time: str, random_hex: str) -> None:
    with pytest.raises(ValueError, match="valid job id"):
        JOB_ID.make(compact_time, random_hex)


# --- public shape -----------------------------------------------------------------------------------

CONTRACT_PUBLIC_FIELDS = [
    "job_id",
    "status",
    "created_at",
    "updated_at",
    "blueprint_s3_key",
    "blueprint_format",
    "blueprint_hash",
    "blueprint_size",
    "blueprint_filename",
    "result_s3_key",
    "error",
    # The contract's "Timing and progress" (null until the pipeline sets them).
    "started_at",
    "finished_at",
    "progress",
    "stage",
    "request_id",
    "correlation_id",
    "api_version",
    # Beyond the contract's example (an addition, so compatible): feedback given on the job.
    "feedback_count",
]


def test_to_public_has_exactly_the_contract_fields_in_order() -> None:
    public = make_job().to_public()
    assert list(public) == CONTRACT_PUBLIC_FIELDS
    assert list(PUBLIC_FIELDS) == CONTRACT_PUBLIC_FIELDS


def test_to_public_hides_internal_fields() -> None:
    public = make_job(extra={"owner": "client-1"}).to_public()
    for internal in ("expires_at", "version", "extra", "owner"):
        assert internal not in public


def test_to_public_status_is_a_plain_string_and_nones_are_null() -> None:
    public = make_job(status=JobStatus.PROCESSING).to_public()
    assert public["status"] == "processing"
    assert type(public["status"]) is str
    assert public["result_s3_key"] is None
    assert public["error"] is None
    assert public["api_version"] == API_VERSION == "v1"
    text = json.dumps(public)
    assert '"result_s3_key": null' in text
    assert '"error": null' in text
    assert '"status": "processing"' in text


def test_to_public_values() -> None:
    job = make_job(
        status=JobStatus.FAILED,
        result_s3_key="cache/results/x/result.json",
        error={"code": "PROCESSING_FAILED", "message": "boom"},
    )
    public = job.to_public()
    assert public == {
        "job_id": VALID_ID,
        "status": "failed",
        "created_at": "2026-11-21T23:15:00Z",
        "updated_at": "2026-11-21T23:15:00Z",
        "blueprint_s3_key": f"blueprints/{VALID_ID}/plan.png",
        "blueprint_format": "png",
        "blueprint_hash": "ab" * 32,
        "blueprint_size": 1234,
        "blueprint_filename": "plan.png",
        "result_s3_key": "cache/results/x/result.json",
        "error": {"code": "PROCESSING_FAILED", "message": "boom"},
        "started_at": None,
        "finished_at": None,
        "progress": None,
        "stage": None,
        "request_id": "req_20261121T231500_k3j9x2",
        "correlation_id": "corr-1",
        "api_version": "v1",
        "feedback_count": 0,
    }


# --- DynamoDB records -------------------------------------------------------------------------------


def test_to_record_omits_none_and_stores_status_as_string() -> None:
    record = make_job().to_record()
    assert "result_s3_key" not in record
    assert "error" not in record
    assert "extra" not in record
    assert record["status"] == "pending"
    assert type(record["status"]) is str
    assert record["version"] == 1
    assert record["expires_at"] == 1_795_000_000
    assert None not in record.values()


def test_record_round_trip_with_decimals_as_dynamodb_returns_them() -> None:
    job = make_job(
        status=JobStatus.FAILED,
        version=3,
        result_s3_key="cache/results/x/result.json",
        error={"code": "PROCESSING_FAILED", "message": "model crashed"},
    )
    record = job.to_record()
    # boto3's resource/TypeDeserializer returns every number as Decimal, nested ones too.
    stored = {k: Decimal(v) if isinstance(v, int) else v for k, v in record.items()}
    stored["error"] = {"code": "PROCESSING_FAILED", "message": "model crashed"}
    back = Job.from_record(stored)
    assert back == job
    assert back.status is JobStatus.FAILED
    for name in ("blueprint_size", "expires_at", "version"):
        value = getattr(back, name)
        assert type(value) is int, name
    assert back.error == {"code": "PROCESSING_FAILED", "message": "model crashed"}
    assert back.to_record() == record


def test_from_record_without_optional_attributes_gives_none() -> None:
    record = make_job().to_record()
    back = Job.from_record(record)
    assert back.result_s3_key is None
    assert back.error is None
    assert back.extra == {}


def test_from_record_converts_nested_decimals() -> None:
    record = make_job().to_record()
    record["error"] = {"code": "X", "message": "m", "attempt": Decimal(2)}
    record["history"] = [Decimal(1), {"n": Decimal(5)}]
    back = Job.from_record(record)
    assert back.error == {"code": "X", "message": "m", "attempt": 2}
    assert type(back.error["attempt"]) is int  # type: ignore[index]
    assert back.extra["history"] == [1, {"n": 5}]
    assert type(back.extra["history"][0]) is int


def test_unknown_attributes_are_kept_in_extra_and_written_back() -> None:
    record = make_job().to_record()
    record["model_hint"] = "client-1"
    record["idempotency_key"] = "abc"
    record["attempts"] = Decimal(4)
    back = Job.from_record(record)
    assert back.extra == {"model_hint": "client-1", "idempotency_key": "abc", "attempts": 4}
    written = back.to_record()
    assert written["model_hint"] == "client-1"
    assert written["idempotency_key"] == "abc"
    assert written["attempts"] == 4
    assert set(written) == set(record)


def test_from_record_with_a_bad_status_fails_loudly() -> None:
    record = make_job().to_record()
    record["status"] = "exploded"
    with pytest.raises(ValueError, match="exploded"):
        Job.from_record(record)


# --- expiry -----------------------------------------------------------------------------------------


def test_is_expired_boundary() -> None:
    job = make_job(expires_at=1_000)
    assert job.is_expired(0) is False
    assert job.is_expired(999) is False
    assert job.is_expired(999.999) is False
    assert job.is_expired(1_000.001) is True
    assert job.is_expired(10_000) is True
    # At exactly expires_at the job counts as gone (the model's choice; the TTL has been reached).
    assert job.is_expired(1_000) is True
