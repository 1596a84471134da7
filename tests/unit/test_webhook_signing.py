"""Standard Webhooks signatures, checked with the reference library (``standardwebhooks``), not with our own
code; the retry schedule; the delivery's shape; the webhook settings."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook as ReferenceWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from models.events import EVENT_TYPES, JobEvent, from_bus_event
from models.webhooks import Delivery, delivery_body, normalise_events, validate_webhook_id
from services.webhook_delivery import DEFAULT_RETRY_DELAYS, MAX_DELAY_SECONDS, RetrySchedule, sign
from services.webhooks import secret_text
from utils.errors import ConfigurationError
from utils.settings import parse_flag, parse_retry_delays
from utils.worker_settings import WorkerSettings

RAW = bytes(range(32))
SECRET = secret_text(RAW)
BODY = delivery_body("job.completed", "2026-11-21T23:15:00Z", {"job_id": "job_20261121T231500_9f2c4e7a1b3d5f60"})
EVENT_ID = "job_20261121T231500_9f2c4e7a1b3d5f60:4"


def headers(timestamp: int, signature: str) -> dict[str, str]:
    return {"webhook-id": EVENT_ID, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_our_signature_verifies_with_the_reference_library() -> None:
    now = int(time.time())
    verified = ReferenceWebhook(SECRET).verify(BODY, headers(now, sign(RAW, EVENT_ID, now, BODY)))
    assert verified == {
        "type": "job.completed",
        "timestamp": "2026-11-21T23:15:00Z",
        "data": {"job": json.loads(BODY)["data"]["job"]},
    }
    assert SECRET.startswith("whsec_")
    assert len(base64.b64decode(SECRET.removeprefix("whsec_"))) == 32


@pytest.mark.parametrize("tamper", ["body", "id", "timestamp", "secret", "stale"])
def test_the_reference_library_refuses_anything_changed(tamper: str) -> None:
    now = int(time.time())
    body, ts, secret, event_id = BODY, now, SECRET, EVENT_ID
    signature = sign(RAW, EVENT_ID, now, BODY)
    if tamper == "body":
        body = BODY.replace("completed", "failed")
    elif tamper == "id":
        event_id = EVENT_ID.replace(":4", ":5")
    elif tamper == "timestamp":
        ts = now + 1
    elif tamper == "secret":
        secret = secret_text(bytes(32))
    else:  # signed correctly, but six minutes ago: the library's tolerance is five
        ts = now - 360
        signature = sign(RAW, EVENT_ID, ts, BODY)
    sent = {**headers(ts, signature), "webhook-id": event_id}
    with pytest.raises(WebhookVerificationError):
        ReferenceWebhook(secret).verify(body, sent)


def test_the_deployed_schedule_retries_for_over_a_day_in_at_least_eight_attempts_with_jitter() -> None:
    low = RetrySchedule.of(None)
    low._rand = lambda: 0.0  # the most jitter can take off
    high = RetrySchedule.of(None)
    high._rand = lambda: 1.0 - 1e-12
    assert low.attempts == len(DEFAULT_RETRY_DELAYS) + 1 >= 8
    shortest = sum(low.delay_after(n) for n in range(1, low.attempts))
    longest = sum(high.delay_after(n) for n in range(1, high.attempts))
    assert shortest >= 24 * 3600, shortest
    assert longest <= 32 * 3600, longest
    assert all(0 < high.delay_after(n) <= MAX_DELAY_SECONDS for n in range(1, high.attempts))
    assert list(DEFAULT_RETRY_DELAYS) == sorted(DEFAULT_RETRY_DELAYS), "backs off, never forward"
    assert low.delay_after(1) != high.delay_after(1), "jittered"
    assert low.delay_after(low.attempts) == 0, "after the last attempt: straight to the redrive policy"


def test_a_local_schedule_replaces_the_delays_exactly() -> None:
    schedule = RetrySchedule.of((1, 2, 4))
    assert schedule.attempts == 4
    assert [schedule.delay_after(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 0]
    assert schedule.delay_after(9) == 4, "past the redrive count (misconfigured): the slowest delay, no busy loop"


def test_a_delivery_survives_the_queue_unchanged_and_refuses_other_messages() -> None:
    delivery = Delivery("wh_20261121T231500_4b1d2c3e5f607182", "cli_alice", EVENT_ID, "job.completed", BODY)
    assert Delivery.from_message(delivery.to_message()) == delivery
    for text in ('{"detail-type": "Job Status Changed"}', '{"kind": "webhook-delivery", "webhook_id": 1}', "[]"):
        with pytest.raises(ValueError, match=r"delivery|Expecting"):
            Delivery.from_message(text)


@pytest.mark.parametrize(
    ("event_id", "chain", "version"),
    [
        ("job_20261121T231500_4b1d2c3e5f607182:12", ("wh_1", "job_20261121T231500_4b1d2c3e5f607182"), 12),
        ("job_x:2:3", ("wh_1", "job_x:2"), 3),
        ("job_x:v3", ("wh_1", "job_x"), 0),
        ("no-version", ("wh_1", ""), 0),
    ],
)
def test_a_deliverys_chain_is_its_webhook_and_job_and_its_place_the_version(
    event_id: str, chain: tuple[str, str], version: int
) -> None:
    delivery = Delivery("wh_1", "cli_alice", event_id, "job.completed", BODY)
    assert (delivery.chain, delivery.version) == (chain, version)


def test_a_bus_event_becomes_the_job_event_it_carries() -> None:
    detail = {
        "id": EVENT_ID,
        "type": "job.completed",
        "job": {"job_id": "job_1"},
        "owner_id": "cli_alice",
        "previous_status": "processing",
    }
    event = {
        "source": "location-detection.jobs",
        "detail-type": "Job Status Changed",
        "time": "2026-11-21T23:15:00Z",
        "detail": detail,
    }
    assert from_bus_event(event) == JobEvent(
        EVENT_ID,
        "job.completed",
        {"job_id": "job_1"},
        "cli_alice",
        "processing",
        datetime(2026, 11, 21, 23, 15, tzinfo=UTC).timestamp(),
    )
    for wrong in (
        {**event, "source": "else"},
        {**event, "detail": {**detail, "type": "job.unknown"}},
        {"detail": detail},
    ):
        with pytest.raises(ValueError, match="job event"):
            from_bus_event(wrong)


def test_event_types_default_to_all_in_the_contracts_order_and_ids_are_checked() -> None:
    assert normalise_events(None) == normalise_events([]) == EVENT_TYPES
    assert normalise_events(["job.failed", "job.created", "job.failed"]) == ("job.created", "job.failed")
    with pytest.raises(ValueError, match=r"job\.done"):
        normalise_events(["job.done"])
    assert validate_webhook_id("wh_20261121T231500_4b1d2c3e5f607182")
    for bad in ("wh_1", "job_20261121T231500_9f2c4e7a1b3d5f60", "wh_20261121T231500_4B1D2C3E5F607182", ""):
        with pytest.raises(Exception, match="Webhook not found"):
            validate_webhook_id(bad)


# --------------------------------------------------------------------------------------------- settings
def test_flags_and_delays_parse_strictly() -> None:
    assert parse_flag({"X": "TRUE"}, "X")
    assert parse_flag({"X": "1"}, "X")
    assert not parse_flag({}, "X")
    assert not parse_flag({"X": "false"}, "X")
    with pytest.raises(ConfigurationError, match="X must be true or false"):
        parse_flag({"X": "maybe"}, "X")
    assert parse_retry_delays(None) is None
    assert parse_retry_delays(" ") is None
    assert parse_retry_delays("1, 2,4") == (1, 2, 4)
    for bad in ("1,,2", "1.5", "-1", "43201", "a"):
        with pytest.raises(ConfigurationError, match="WEBHOOK_RETRY_DELAYS"):
            parse_retry_delays(bad)


def test_the_workers_read_the_webhook_settings() -> None:
    environ = {
        "ENVIRONMENT": "dev",
        "JOBS_TABLE": "t",
        "WEBHOOK_DELIVERIES_QUEUE_URL": "https://sqs/q",
        "WEBHOOK_SECRETS_KEY": "alias/k",
        "WEBHOOK_ALLOW_LOOPBACK": "false",
        "WEBHOOK_RETRY_DELAYS": "1,2",
    }
    settings = WorkerSettings.from_environ(environ, ("JOBS_TABLE", "WEBHOOK_DELIVERIES_QUEUE_URL"))
    assert (settings.webhook_deliveries_queue_url, settings.webhook_secrets_key) == ("https://sqs/q", "alias/k")
    assert (settings.webhook_allow_loopback, settings.webhook_retry_delays) == (False, (1, 2))
