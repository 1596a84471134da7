"""Webhooks in-process (inside the ``aws`` fixture): register through ``lambda_handler``, and run the whole
delivery path as AWS would, step by step: the stream's poller (the job events consumer), moto's
EventBridge putting each event on the webhook events queue, and the two queues' pollers running the
fan-out and the delivery worker (``local_api.queue_poller``, the same code ``make run`` uses)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from standardwebhooks import Webhook as ReferenceWebhook

from local_api.cfn_template import Stack
from local_api.event_poller import StreamPoller, poller_for
from local_api.queue_poller import QueuePoller, pollers_for
from tests.conftest import API_KEY, Reply, invoke
from tests.receivers import Received
from utils import addresses
from workers import stream_consumer

REGION = "us-east-1"
QUEUE_NAMES = {
    "events": "location-detection-dev-webhook-events",
    "deliveries": "location-detection-dev-webhook-deliveries",
    "dead-letters": "location-detection-dev-webhook-dead-letters",
}


def configure(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """Set the functions' environment (``WEBHOOK_ALLOW_LOOPBACK``...) and start cold containers."""
    from api import dependencies
    from workers import dependencies as worker_dependencies

    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    dependencies.reset()
    worker_dependencies.reset()


def stand_in_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> dict[str, list[str]]:
    """DNS as ``answers`` says (change the dict to change DNS); address literals resolve to themselves."""

    def resolve(host: str, port: int) -> list[str]:
        if host in answers:
            return answers[host]
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise OSError("Name or service not known") from None

    monkeypatch.setattr(addresses, "resolver", resolve)
    return answers


def register(url: str, *, events: list[str] | None = None, api_key: str = API_KEY, **extra: Any) -> Reply:
    body: dict[str, Any] = {"url": url, **extra}
    if events is not None:
        body["events"] = events
    return invoke("POST", "/api/v1/webhooks", json_body=body, api_key=api_key)


def verified(secret: str, received: Received) -> dict[str, Any]:
    """The delivery's event, verified by the Standard Webhooks reference library (raises if it is not)."""
    event: dict[str, Any] = ReferenceWebhook(secret).verify(received.body, received.headers)
    return event


def version_of(event_id: str) -> int:
    """The job version in an event's id (``{job_id}:{version}``, the ``webhook-id`` header)."""
    return int(event_id.rsplit(":", 1)[1])


def in_version_order(received: list[Received]) -> list[Received]:
    """Deliveries sorted by the job version in their ``webhook-id``: the README's rule for receivers,
    since a standard queue may hand two of a job's events to the endpoint either way."""
    return sorted(received, key=lambda r: version_of(r.headers["webhook-id"]))


class Pipeline:
    """Every step from a job's write to a receiver, run by hand (``run`` until nothing moves)."""

    def __init__(self, stack: Stack) -> None:
        session = boto3.session.Session(region_name=REGION)
        self.sqs = session.client("sqs")
        self.stream: StreamPoller = poller_for(
            stack,
            stream_consumer.lambda_handler,
            session.client("dynamodb"),
            session.client("dynamodbstreams"),
            self.sqs,
        )
        self.stream.prime()
        fanout, delivery = pollers_for(stack, self.sqs, wait_seconds=0)
        self.fanout: QueuePoller = fanout
        self.delivery: QueuePoller = delivery
        self.urls = {kind: self.sqs.get_queue_url(QueueName=name)["QueueUrl"] for kind, name in QUEUE_NAMES.items()}

    def run(self, rounds: int = 20) -> None:
        """Hand over what is there, step after step, until a round moves nothing (at most ``rounds``)."""
        for _ in range(rounds):
            moved = self.stream.poll_once() + self.fanout.poll_once(0) + self.delivery.poll_once(0)
            if not moved:
                return

    def run_for(self, seconds: float) -> None:
        """Keep running for a while (what a put-off delivery's next attempt waits for)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.run()
            time.sleep(0.05)

    def run_until(self, done: Callable[[], bool], seconds: float = 30.0) -> None:
        """Keep running until ``done()`` (a receiver has what it waits for) or ``seconds`` pass: on a
        loaded machine a delivery can time out once and wait for its retry."""
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            self.run()
            time.sleep(0.05)

    def waiting(self, kind: str) -> int:
        """Messages in one of the webhook queues, visible or not."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.urls[kind],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def set_queue(self, kind: str, **attributes: str) -> None:
        self.sqs.set_queue_attributes(QueueUrl=self.urls[kind], Attributes=attributes)
