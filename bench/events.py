"""Job events, locally: the time from a state change to its event on a subscriber's queue (p50, p95).

One child process, as `make run` is: emulated AWS (its embedded moto server, provisioned from
``template.yaml``), the local poller of the jobs table's stream running the real consumer
(``workers.stream_consumer``, every 50 ms when idle), and a subscriber: an SQS queue with a rule on the
bus, long-polled. Each sample is one state change through ``lambda_handler`` (a job created:
``job.created``), timed from the moment the handler returned (the write is done) to the moment the
subscriber holds the event with that job's id; one change at a time. The baseline is measured in the
same run, interleaved: one ``PutEvents`` of the same kind of event straight to the bus, timed to the same
queue, which is the bus's own hop. The difference is what the stream, the poller's interval and the
consumer add; the 50 ms poll interval bounds it from below (its mean wait is half of it).
Deployed, Lambda polls a DynamoDB stream about four times a second per shard and adds its own hops, so
the local figure is a floor, not a forecast.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import NullWriter, child_env, percentile, quiet_stdout, report, run_child, use_src
from bench.report import Row, Section, method_of

API_KEY = "ldk_bench_events_key"
#: The most a change may take to reach a subscriber locally (p95) before the target is missed.
TARGET_P95_MS = 500.0


def run(src: Path, samples: int) -> Section:
    started = time.perf_counter()
    result = run_child("bench.events", ["--child", "--src", str(src), "--samples", str(samples)], child_env(src))
    events, direct = result["events_ms"], result["direct_ms"]
    rows = [
        Row("state change -> subscriber, p50", percentile(events, 50), "PutEvents -> subscriber, p50",
            percentile(direct, 50), "ms"),
        Row("state change -> subscriber, p95", percentile(events, 95), "PutEvents -> subscriber, p95",
            percentile(direct, 95), "ms", limit=TARGET_P95_MS, on_ratio=False),
    ]  # fmt: skip
    notes = [
        f"{len(events)} changes and {len(direct)} direct puts, interleaved; max {max(events):.1f} ms "
        f"(direct: {max(direct):.1f} ms); poller interval {result['interval_ms']:.0f} ms.",
    ]
    return Section(
        "Job events: state change to subscriber (local)",
        method_of(__doc__),
        rows,
        notes,
        time.perf_counter() - started,
    )


# ------------------------------------------------------------------------------------------ the child
def _child(src: Path, samples: int) -> dict[str, Any]:
    use_src(src)
    os.environ["DEV_API_KEYS"] = API_KEY
    # Dozens of creates in a row: the rate limits (make run honours these) are not what this times.
    os.environ["RATE_LIMIT_PER_MINUTE"], os.environ["RATE_LIMIT_BURST"] = "100000", "10000"
    from local_api.event_poller import start_poller
    from local_api.server import LambdaContext, build_event, prepare_environment
    from tests.samples import png  # a valid PNG (the API checks IHDR's CRC), unique by a tEXt chunk

    stack, moto_server = prepare_environment()
    poller = start_poller(stack)
    from api.rest_api import lambda_handler

    subscriber = _Subscriber()
    context = LambdaContext("location-detection-dev-api", 25)
    events_ms: list[float] = []
    direct_ms: list[float] = []
    try:
        for n in range(samples + 3):  # the first few warm the clients and the consumer up: not counted
            content = base64.b64encode(png(extra=f"{n} {uuid.uuid4().hex}".encode())).decode()
            body = json.dumps({"blueprint": {"file": content, "format": "png"}}).encode()
            event = build_event(
                "POST", "/api/v1/jobs", [("X-API-Key", API_KEY), ("Content-Type", "application/json")], body
            )
            result = lambda_handler(event, context)
            changed = time.perf_counter()
            assert result["statusCode"] == 201, result["body"]
            job_id = json.loads(result["body"])["data"]["job_id"]
            arrived = subscriber.wait_for(job_id)
            sent, direct_arrived = subscriber.put_direct()
            if n >= 3:
                events_ms.append((arrived - changed) * 1000)
                direct_ms.append((direct_arrived - sent) * 1000)
    finally:
        poller.stop()
        if moto_server is not None:
            moto_server.stop()
    return {"events_ms": events_ms, "direct_ms": direct_ms, "interval_ms": poller.interval * 1000}


class _Subscriber:
    """A queue subscribed to every job event of the bus, and a clock for what arrives on it."""

    def __init__(self) -> None:
        import boto3

        session = boto3.session.Session(region_name="us-east-1")
        self.events, self.sqs = session.client("events"), session.client("sqs")
        self.bus = os.environ["EVENT_BUS_NAME"]
        name = f"bench-{uuid.uuid4().hex[:8]}"
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": ["location-detection.jobs"], "detail-type": ["Job Status Changed"]}
        self.events.put_rule(Name=name, EventBusName=self.bus, EventPattern=json.dumps(pattern))
        self.events.put_targets(Rule=name, EventBusName=self.bus, Targets=[{"Id": "q", "Arn": arn}])

    def wait_for(self, job_id: str, timeout: float = 10.0) -> float:
        """When the event of ``job_id`` arrived (perf_counter time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            now = time.perf_counter()
            for message in reply.get("Messages", []):
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
                if json.loads(message["Body"])["detail"]["job"]["job_id"] == job_id:
                    return now
        raise RuntimeError(f"the event of {job_id} never arrived")

    def put_direct(self) -> tuple[float, float]:
        """One event put on the bus by hand: (sent, arrived)."""
        marker = f"job_direct_{uuid.uuid4().hex}"
        detail = {"id": f"{marker}:1", "type": "job.created", "job": {"job_id": marker}, "owner_id": None}
        entry = {"Source": "location-detection.jobs", "DetailType": "Job Status Changed", "Detail": json.dumps(detail)}
        sent = time.perf_counter()
        self.events.put_events(Entries=[{**entry, "EventBusName": self.bus}])
        return sent, self.wait_for(marker)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events")
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args()
    with quiet_stdout(NullWriter()):
        result = _child(args.src, args.samples)
    report(result)


if __name__ == "__main__":
    main()
