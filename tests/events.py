"""A subscriber of the job events bus, as a consumer of ours would be: an SQS queue and a rule on the bus
that targets it (EventBridge delivers each matching event, whole, as one message). Used in-process
(mock_aws) and against the local API's emulated AWS."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

BUS = "location-detection-dev"
#: Every job event (a subscriber may narrow it, as the pipeline's rule does to ``job.created``).
ALL_JOB_EVENTS = {"source": ["location-detection.jobs"], "detail-type": ["Job Status Changed"]}


class Subscriber:
    """A queue subscribed to the bus with ``pattern``; ``take`` drains what it received."""

    def __init__(self, events: Any, sqs: Any, pattern: dict[str, Any] | None = None, bus: str = BUS) -> None:
        self.events, self.sqs, self.bus = events, sqs, bus
        self.name = f"subscriber-{uuid.uuid4().hex[:12]}"
        self.queue_url = sqs.create_queue(QueueName=self.name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=self.name, EventBusName=bus, EventPattern=json.dumps(pattern or ALL_JOB_EVENTS))
        events.put_targets(Rule=self.name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])

    def take(self, expected: int = 0, timeout: float = 0.0) -> list[dict[str, Any]]:
        """The events received so far (deleted from the queue), waiting up to ``timeout`` seconds for at
        least ``expected`` of them."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            wait = 1 if len(found) < expected and time.monotonic() < deadline else 0
            reply = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
            messages = reply.get("Messages", [])
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if not messages and (len(found) >= expected or time.monotonic() >= deadline):
                return found

    def close(self) -> None:
        self.events.remove_targets(Rule=self.name, EventBusName=self.bus, Ids=["queue"])
        self.events.delete_rule(Name=self.name, EventBusName=self.bus)
        self.sqs.delete_queue(QueueUrl=self.queue_url)


def kinds(events: list[dict[str, Any]], job_id: str | None = None) -> list[tuple[str, str]]:
    """``(detail.id, detail.type)`` of each event (of one job, if given), ordered by the job's version."""
    pairs = [(e["detail"]["id"], e["detail"]["type"]) for e in events]
    if job_id is not None:
        pairs = [p for p in pairs if p[0].startswith(f"{job_id}:")]
    return sorted(pairs, key=lambda p: (p[0].rsplit(":", 1)[0], int(p[0].rsplit(":", 1)[1])))
