"""Locally, what Lambda's event source mapping does in AWS: read the jobs table's stream and hand each batch
to the same consumer (``workers.stream_consumer.lambda_handler``), which publishes to the emulated bus.

Faithful where it matters for the events: records in the Lambda event's shape, in order, per shard; a
batch's reported failure (``batchItemFailures``) or a crash is delivered again from the first failed record,
at most ``MaximumRetryAttempts`` times (the template's ``JobEventsMapping``), after which the batch's
metadata goes to the failure queue in the shape Lambda sends (``DDBStreamBatchInfo``), and the poller moves
on. ``FilterCriteria`` is applied as Lambda applies it (moto's EventBridge pattern matcher: Lambda's filter
syntax is EventBridge's): a record no filter matches is never handed over, and its position is passed.
Not emulated: bisection, ``MaximumRecordAgeInSeconds``.

Where it reads from is explicit: ``position`` (shard id -> the last sequence number handed over for good).
A poller started without one starts at each shard's newest end (``LATEST``), before the local API takes
requests, so nothing written before it (a restore of saved state) is published again; one started with a
saved position resumes right after it.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from moto.events.models import EventPattern

from local_api.cfn_template import Stack
from local_api.polling import PollingThread
from local_api.server import LambdaContext
from storage.job_stream import JobStream
from utils.logging import get_logger

logger = get_logger("local_api.event_poller")

Handler = Callable[[dict[str, Any], Any], Any]
#: The mapping's settings the poller follows (template.yaml ``JobEventsMapping``).
MAPPING_ID = "JobEventsMapping"


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A ``GetRecords`` record as Lambda hands it to the function (epoch seconds, the stream's ARN)."""
    data = dict(record["dynamodb"])
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = created.timestamp()
    shaped = {k: v for k, v in record.items() if k != "dynamodb"}
    shaped.update({"dynamodb": data, "eventSourceARN": stream_arn})
    return shaped


class StreamPoller:
    """Polls one stream; ``poll_once`` hands over at most one batch per shard (tests step it by hand)."""

    def __init__(
        self,
        stream: JobStream,
        handler: Handler,
        *,
        function_name: str,
        timeout_seconds: int,
        failure_queue_url: str,
        sqs: Any,
        batch_size: int = 100,
        max_retries: int = 10,
        interval: float = 0.05,
        position: Mapping[str, str] | None = None,
        filters: list[str] | None = None,
    ) -> None:
        self.stream = stream
        self.handler = handler
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self.failure_queue_url = failure_queue_url
        self.sqs = sqs
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.interval = interval
        self._position: dict[str, str] = dict(position or {})
        self._filters = [EventPattern.load(pattern) for pattern in filters or []]
        self._iterators: dict[str, str | None] = {}
        self._attempts: dict[str, int] = {}
        self._thread = PollingThread(
            "job-events-poller",
            self.poll_once,
            idle=interval,
            logger=logger,
            what="the jobs stream",
            error_wait=interval,
        )
        self._lock = threading.Lock()

    @property
    def position(self) -> dict[str, str]:
        """Shard id -> the last sequence number handed over for good (what to persist to resume)."""
        with self._lock:
            return dict(self._position)

    def prime(self) -> None:
        """Take each shard's starting point now: after the saved position, else the newest end."""
        for shard in self.stream.shards():
            after = self._position.get(shard)
            self._iterators[shard] = self.stream.iterator(shard, after=after)

    def poll_once(self) -> int:
        """Hand over one batch per shard; returns how many records were handed over (retries included)."""
        handed = 0
        for shard in self.stream.shards():
            if shard not in self._iterators:  # a shard opened since: all of its records are new
                self._iterators[shard] = self.stream.iterator(shard, oldest=True)
            iterator = self._iterators[shard]
            if iterator is None:
                continue
            records, following = self.stream.read(iterator, self.batch_size)
            wanted = [r for r in records if self._passes(r)]
            if wanted:
                handed += len(wanted)
                self._deliver(shard, wanted, following)
            elif records:  # all filtered out: Lambda moves past them without invoking the function
                self._advance(shard, records[-1], following)
            else:
                self._iterators[shard] = following
        return handed

    def _passes(self, record: Mapping[str, Any]) -> bool:
        # Lambda filters the record as JSON (binary attributes base64): an item with a B value must not stop
        # the poller (moto's matcher cannot serialise bytes).
        shaped = json.loads(json.dumps(lambda_record(record, self.stream.stream_arn), default=_as_json))
        return not self._filters or any(pattern.matches_event(shaped) for pattern in self._filters)

    def _deliver(self, shard: str, records: list[dict[str, Any]], following: str | None) -> None:
        event = {"Records": [lambda_record(r, self.stream.stream_arn) for r in records]}
        failed_at, error = self._invoke(event)
        if failed_at is None:
            self._advance(shard, records[-1], following)
            return
        attempts = self._attempts.get(shard, 0) + 1
        index = next((i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == failed_at), 0)
        if attempts > self.max_retries:
            self._give_up(shard, records[index:], attempts, error)
            self._advance(shard, records[-1], following)
            return
        self._attempts[shard] = attempts
        if index:
            with self._lock:
                self._position[shard] = records[index - 1]["dynamodb"]["SequenceNumber"]
        self._iterators[shard] = self.stream.iterator(shard, at=records[index]["dynamodb"]["SequenceNumber"])

    def _advance(self, shard: str, last: dict[str, Any], following: str | None) -> None:
        with self._lock:
            self._position[shard] = last["dynamodb"]["SequenceNumber"]
        self._attempts[shard] = 0
        self._iterators[shard] = following

    def _invoke(self, event: dict[str, Any]) -> tuple[str | None, str | None]:
        """The sequence number to deliver again from (None: the batch is done), and the function error."""
        context = LambdaContext(self.function_name, self.timeout_seconds, memory_mb=256)
        try:
            result = self.handler(event, context)
        except Exception as exc:  # the function crashed: Lambda retries the whole batch
            logger.warning("the stream consumer raised", extra={"error_type": type(exc).__name__})
            return event["Records"][0]["dynamodb"]["SequenceNumber"], "Unhandled"
        failures = [f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures", [])]
        if not failures:
            return None, None
        numbers = [str(f) for f in failures if f]
        if len(numbers) < len(failures):  # an empty identifier fails the whole batch (Lambda's rule)
            return event["Records"][0]["dynamodb"]["SequenceNumber"], None
        return min(numbers, key=int), None

    def _give_up(self, shard: str, records: list[dict[str, Any]], attempts: int, error: str | None) -> None:
        """What Lambda sends the on-failure destination: the batch's place in the stream, not the records."""
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": error or ""},
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
                "batchSize": len(records),
                "streamArn": self.stream.stream_arn,
            },
        }
        self.sqs.send_message(QueueUrl=self.failure_queue_url, MessageBody=json.dumps(message))
        logger.error("gave up on a batch of job events: in the failure queue", extra={"records": len(records)})

    # ----------------------------------------------------------------------------------- the thread
    def start(self) -> None:
        self.prime()
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()


def _as_json(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def poller_for(stack: Stack, handler: Handler, dynamodb: Any, streams: Any, sqs: Any, **options: Any) -> StreamPoller:
    """The poller of the jobs table's stream, set up as the template's mapping says."""
    mapping = stack.properties(MAPPING_ID)
    function_id = next(i for i in stack.of_type("AWS::Serverless::Function") if stack.ref(i) == mapping["FunctionName"])
    (table_id,) = [
        i for i in stack.of_type("AWS::DynamoDB::Table") if "StreamSpecification" in stack.resources[i]["Properties"]
    ]
    table = dynamodb.describe_table(TableName=stack.physical_name(table_id))["Table"]
    queue_name = mapping["DestinationConfig"]["OnFailure"]["Destination"].rsplit(":", 1)[1]
    return StreamPoller(
        JobStream(table["LatestStreamArn"], streams),
        handler,
        function_name=mapping["FunctionName"],
        timeout_seconds=stack.function_timeout(function_id),
        failure_queue_url=sqs.get_queue_url(QueueName=queue_name)["QueueUrl"],
        sqs=sqs,
        batch_size=int(mapping["BatchSize"]),
        max_retries=int(mapping["MaximumRetryAttempts"]),
        filters=[f["Pattern"] for f in mapping.get("FilterCriteria", {}).get("Filters", [])],
        **options,
    )


def start_poller(stack: Stack, interval: float | None = None) -> StreamPoller:
    """The local API's poller: the real consumer, on the emulated account ``AWS_ENDPOINT_URL`` names,
    started now (``LOCAL_EVENTS_POLL_SECONDS`` sets how often an idle stream is read; default 0.05)."""
    import boto3

    from workers.stream_consumer import lambda_handler

    session = boto3.session.Session(region_name=stack.region)
    streams, sqs = session.client("dynamodbstreams"), session.client("sqs")
    seconds = float(os.environ.get("LOCAL_EVENTS_POLL_SECONDS") or 0.05) if interval is None else interval
    poller = poller_for(stack, lambda_handler, session.client("dynamodb"), streams, sqs, interval=seconds)
    poller.start()
    return poller
