"""Locally, what Lambda's SQS event source mappings do in AWS: receive a queue's messages in batches and hand
each batch to the function's handler (the webhook fan-out, the webhook delivery worker), on emulated SQS.

Faithful where it matters for the webhooks: records in the Lambda event's shape (``messageId``,
``receiptHandle``, ``body``, ``attributes.ApproximateReceiveCount``...); partial batch responses
(``ReportBatchItemFailures``): the messages the handler names stay in the queue, with whatever visibility
it gave them (a failed delivery puts its message off until its next attempt), the rest are deleted; a
handler that raises leaves the whole batch to come back after the queue's visibility timeout; the
queue's redrive policy moves a message to its dead-letter queue after ``maxReceiveCount`` receives (moto
implements it). Not emulated: batching windows, scaling, the mapping's own retries of a throttled call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from local_api.cfn_template import Stack
from local_api.polling import PollingThread
from local_api.server import LambdaContext
from utils.logging import get_logger

logger = get_logger("local_api.queue_poller")

Handler = Callable[[dict[str, Any], Any], Any]
#: DeleteMessageBatch's limit.
_DELETE_BATCH = 10


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A ``ReceiveMessage`` message as Lambda hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": dict(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class QueuePoller:
    """Polls one queue for one function; ``poll_once`` hands over at most one batch (tests step it)."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        function_name: str,
        timeout_seconds: int,
        batch_size: int = 10,
        wait_seconds: int = 1,
        region: str = "us-east-1",
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.region = region
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn = str(attributes["QueueArn"])
        # The receive long-polls itself (``wait_seconds``): no wait of its own between empty ones.
        self._thread = PollingThread(f"poller-{function_name}", self.poll_once, idle=0, logger=logger, what="a queue")

    def poll_once(self, wait_seconds: int | None = None) -> int:
        """Receive one batch and hand it over; returns how many messages it held."""
        reply = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = reply.get("Messages", [])
        if messages:
            self._deliver(messages)
        return len(messages)

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_record(m, self.queue_arn, self.region) for m in messages]}
        try:
            result = self.handler(event, LambdaContext(self.function_name, self.timeout_seconds, memory_mb=256))
        except Exception as exc:  # the function crashed: Lambda leaves the whole batch in the queue
            logger.warning("a queue's function raised", extra={"error_type": type(exc).__name__})
            return
        failures = [f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures", [])]
        if not all(failures):  # an empty identifier fails the whole batch (Lambda's rule)
            return
        done = [m for m in messages if m["MessageId"] not in set(failures)]
        for start in range(0, len(done), _DELETE_BATCH):
            batch = done[start : start + _DELETE_BATCH]
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)

    # ----------------------------------------------------------------------------------- the thread
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()


def pollers_for(stack: Stack, sqs: Any, **options: Any) -> list[QueuePoller]:
    """One poller per SQS event source mapping of the template, each running its function's handler."""
    pollers = []
    for mapping_id in stack.of_type("AWS::Lambda::EventSourceMapping"):
        mapping = stack.properties(mapping_id)
        source = str(mapping["EventSourceArn"])
        if not source.startswith("arn:aws:sqs:"):
            continue
        function_id = next(
            i for i in stack.of_type("AWS::Serverless::Function") if stack.ref(i) == mapping["FunctionName"]
        )
        module, name = str(stack.properties(function_id)["Handler"]).rsplit(".", 1)
        handler = getattr(importlib.import_module(module), name)
        queue_url = sqs.get_queue_url(QueueName=source.rsplit(":", 1)[1])["QueueUrl"]
        pollers.append(
            QueuePoller(
                sqs,
                queue_url,
                handler,
                function_name=str(mapping["FunctionName"]),
                timeout_seconds=stack.function_timeout(function_id),
                batch_size=int(mapping.get("BatchSize", 10)),
                region=stack.region,
                **options,
            )
        )
    return pollers


def start_queue_pollers(stack: Stack) -> list[QueuePoller]:
    """The local API's pollers, on the emulated account ``AWS_ENDPOINT_URL`` names, started now."""
    import boto3

    sqs = boto3.session.Session(region_name=stack.region).client("sqs")
    pollers = pollers_for(stack, sqs)
    for poller in pollers:
        poller.start()
    return pollers
