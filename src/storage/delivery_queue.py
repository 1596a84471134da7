"""The webhook queues' SQS calls the workers make: queueing deliveries, and putting a message off.

``send`` queues messages ten to a ``SendMessageBatch`` (SQS's limit); entries SQS refuses for a reason
worth retrying are sent again alone by the retry layer (``utils.retry.PartlyFailed``), as the event
bus's are. ``put_off`` hides a received message for a while (``ChangeMessageVisibility``): how a failed
delivery waits for its next attempt, the queue's redrive policy counting the attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from storage.base import ResourceBound
from utils import retry
from utils.errors import ServiceUnavailable
from utils.logging import get_logger

logger = get_logger("storage")
#: SendMessageBatch's limit on entries per call.
MAX_ENTRIES = 10


class QueueUnavailable(Exception):
    """The queue did not take the messages (after bounded retries, or it refused them)."""


class DeliveryQueue(ResourceBound):
    service: ClassVar[str] = "sqs"

    @property
    def queue_url(self) -> str:
        return self._name

    def send(self, bodies: Sequence[str]) -> None:
        """Queue every body, or raise ``QueueUnavailable`` (some may have been queued: the caller's retry
        queues them again, and the delivery ledger keeps a copy from being delivered twice)."""
        for start in range(0, len(bodies), MAX_ENTRIES):
            self._send_batch(bodies[start : start + MAX_ENTRIES])

    def _send_batch(self, bodies: Sequence[str]) -> None:
        entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)]
        pending = entries
        refused: list[str] = []

        def attempt() -> None:
            nonlocal pending
            response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=pending)
            failed = {f["Id"]: f for f in response.get("Failed", [])}
            refused.extend(f["Code"] for f in failed.values() if f.get("SenderFault"))
            pending = [e for e in pending if e["Id"] in failed and not failed[e["Id"]].get("SenderFault")]
            if pending:
                raise retry.PartlyFailed("sqs.send_message_batch", str(failed[pending[0]["Id"]].get("Code")))

        try:
            retry.call("sqs.send_message_batch", attempt)
        except (ServiceUnavailable, ClientError, BotoCoreError) as exc:
            raise QueueUnavailable(type(exc).__name__) from exc
        if refused:
            logger.error("the queue refused deliveries", extra={"error_codes": sorted(set(refused))})
            raise QueueUnavailable("refused")

    def put_off(self, receipt_handle: str, seconds: int) -> bool:
        """Hide a received message for ``seconds``; False when SQS would not (it then comes back after the
        queue's own visibility timeout instead: later, never lost)."""
        try:
            retry.call(
                "sqs.change_message_visibility",
                lambda: self.client.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
                ),
            )
        except (ServiceUnavailable, ClientError, BotoCoreError):
            logger.warning("could not put a delivery off; it returns after the queue's visibility timeout")
            return False
        return True
