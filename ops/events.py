"""``python -m ops events replay``: publish again what the job events failure queue points at; and
``python -m ops events watch``: print the events the bus delivers (a temporary subscriber).

Each message of ``location-detection-{env}-job-events-failed`` is what Lambda's event source mapping sends
when it gives up on a batch: the batch's shard and sequence range (``DDBStreamBatchInfo``), not its
records. For each message: read the range back from the jobs table's stream and publish its events (the
same ids as the first time: subscribers drop duplicates); records that cannot be read are reported and
skipped. When the stream no longer holds the range (records live 24 h), say so, and publish the current
state of every job updated in the batch's time window instead (``JobEvents.republish``): the states in
between cannot be recovered. A message is deleted once its events are all on the bus.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from services.job_events import JobEvents, Replayed
from storage.job_stream import JobStream
from storage.jobs_scan import JobsScan

#: Stream errors that mean "those records are gone" (trimmed after 24 h, the stream or table replaced).
GONE = ("TrimmedDataAccessException", "ResourceNotFoundException", "ExpiredIteratorException")
#: How far around a batch's arrival times to look for jobs it changed (the writer's and the stream's clocks).
WINDOW_MARGIN = timedelta(seconds=60)
#: Messages received per call, and how long they stay hidden from another replay while this one works.
BATCH, VISIBILITY_SECONDS = 10, 300


def replay(
    sqs: Any, queue_url: str, streams: Any, events: JobEvents, scan: JobsScan, *, dry_run: bool, limit: int
) -> dict[str, Any]:
    """Replay up to ``limit`` messages; the summary printed as JSON (``ok`` false: some are left)."""
    summary: dict[str, Any] = {"messages": 0, "events": 0, "published": 0, "from_current_state": 0}
    summary.update({"poison": [], "left": 0, "dry_run": dry_run})
    left: list[str] = []
    while summary["messages"] < limit:
        reply = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(BATCH, limit - summary["messages"]),
            VisibilityTimeout=0 if dry_run else VISIBILITY_SECONDS,
        )
        messages = reply.get("Messages", [])
        if not messages:
            break
        for message in messages:
            summary["messages"] += 1
            outcome, from_state = _replay_one(json.loads(message["Body"]), streams, events, scan, dry_run)
            summary["events"] += outcome.events
            summary["published"] += outcome.published
            summary["from_current_state"] += from_state
            summary["poison"] += outcome.poison
            if not outcome.complete:
                left.append(message["ReceiptHandle"])
            elif not dry_run:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if dry_run:
            break  # the messages stay visible: receiving again would count them twice
    for handle in left:  # visible again at once, for the next replay
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    summary["left"] = len(left)
    summary["ok"] = not left
    return summary


def _replay_one(
    message: dict[str, Any], streams: Any, events: JobEvents, scan: JobsScan, dry_run: bool
) -> tuple[Replayed, int]:
    """One failure message: its records' events, or (records gone) the current state of its window's jobs."""
    batch = message["DDBStreamBatchInfo"]
    stream = JobStream(batch["streamArn"], streams)
    try:
        records = list(
            stream.records_between(batch["shardId"], batch["startSequenceNumber"], batch["endSequenceNumber"])
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in GONE:
            raise
        records = []
    starts_at_its_first = bool(records) and records[0]["dynamodb"]["SequenceNumber"] == batch["startSequenceNumber"]
    outcome = events.replay(records, dry_run=dry_run)
    if starts_at_its_first:
        return outcome, 0
    first, last = _window(batch)
    _say(
        f"records gone from the stream (shard {batch['shardId']}, {batch['startSequenceNumber']}.."
        f"{batch['endSequenceNumber']}): publishing the current state of the jobs updated {first}..{last}; "
        "the states in between are lost"
    )
    current = events.republish(scan.updated_between(first, last), dry_run=dry_run)
    merged = Replayed(outcome.events + current.events, outcome.published + current.published, outcome.poison)
    return merged, current.events


def _window(batch: dict[str, Any]) -> tuple[str, str]:
    """The batch's arrival times, widened by ``WINDOW_MARGIN``, as the jobs' ``updated_at`` format."""
    first = _parse(batch.get("approximateArrivalOfFirstRecord")) - WINDOW_MARGIN
    last = _parse(batch.get("approximateArrivalOfLastRecord")) + WINDOW_MARGIN
    return first.strftime("%Y-%m-%dT%H:%M:%SZ"), last.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _say(line: str) -> None:
    print(f"python -m ops: {line}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- watch
def watch(events: Any, sqs: Any, bus: str, *, count: int | None, seconds: float | None) -> dict[str, Any]:
    """Print every job event the bus delivers from now on, one JSON line each, through a queue and a rule
    made for this watch (and removed after it): until ``count`` events, ``seconds``, or Ctrl-C."""
    name = f"ops-watch-{uuid.uuid4().hex[:12]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["location-detection.jobs"], "detail-type": ["Job Status Changed"]}
    received, deadline = 0, None if seconds is None else time.monotonic() + seconds
    try:
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "watch", "Arn": arn}])
        _say(f"watching {bus} (Ctrl-C stops)")
        while (count is None or received < count) and (deadline is None or time.monotonic() < deadline):
            reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in reply.get("Messages", []):
                print(json.dumps(json.loads(message["Body"]), ensure_ascii=False), flush=True)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                received += 1
    except KeyboardInterrupt:
        pass
    finally:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=["watch"])
        events.delete_rule(Name=name, EventBusName=bus)
        sqs.delete_queue(QueueUrl=url)
    return {"received": received}
