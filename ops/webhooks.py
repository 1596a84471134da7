"""``python -m ops webhooks dead-letters`` and ``python -m ops webhooks replay``: what the webhook dead-letter
queue holds, and sending it back to be delivered (docs/runbook.md#webhook-dead-letters).

``location-detection-{env}-webhook-dead-letters`` receives three kinds of message: a delivery after its
last attempt (the deliveries queue's redrive policy), a job event the fan-out gave up on (the events
queue's), and a job event EventBridge could not put on the events queue for 24 h (the rule's dead-letter
config). Each is told by its shape: a delivery goes back to the deliveries queue (its attempts start
again; the webhook is read then, so a webhook deleted since is dropped), an event to the events queue
(fanned out to the owner's webhooks as they are now). Anything else is reported and left where it is.
A message is deleted from the dead-letter queue only once it is on its way again.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from local_api.cfn_template import Stack, load_template
from models.events import from_bus_event
from models.webhooks import Delivery
from services.webhooks import WebhookService
from storage.webhook_store import WebhookStore

if TYPE_CHECKING:
    from api.dependencies import Dependencies

#: Messages received per call, and how long they stay hidden from another command while this one works.
BATCH, VISIBILITY_SECONDS = 10, 300
QUEUES = {"dead-letters": "WebhookDeadLetterQueue", "event": "WebhookEventsQueue", "delivery": "WebhookDeliveriesQueue"}


def add_commands(groups: Any) -> None:
    webhooks = groups.add_parser("webhooks", help="webhook deliveries that gave up: list and replay them")
    commands = webhooks.add_subparsers(dest="command", required=True, metavar="{dead-letters,replay}")
    listing = commands.add_parser("dead-letters", help="what the webhook dead-letter queue holds, one entry each")
    listing.add_argument("--max-messages", type=int, default=100, help="messages to show at most (default 100)")
    replay_ = commands.add_parser("replay", help="send the dead letters back to be delivered")
    replay_.add_argument("--dry-run", action="store_true", help="say what would be sent where; change nothing")
    replay_.add_argument("--max-messages", type=int, default=100, help="messages to handle at most (default 100)")


def run(args: argparse.Namespace, sqs: Any) -> dict[str, Any]:
    stack = Stack(load_template(), {"Environment": os.environ["ENVIRONMENT"]})
    names = {kind: stack.properties(logical_id)["QueueName"] for kind, logical_id in QUEUES.items()}
    urls = {kind: sqs.get_queue_url(QueueName=name)["QueueUrl"] for kind, name in names.items()}
    if args.command == "dead-letters":
        return dead_letters(sqs, urls["dead-letters"], limit=args.max_messages)
    return replay(sqs, urls, dry_run=args.dry_run, limit=args.max_messages)


def describe(message: dict[str, Any]) -> dict[str, Any]:
    """What a dead letter is: its kind, the event (and webhook) it is about, when it was first sent."""
    attributes = message.get("Attributes", {})
    sent = int(attributes.get("SentTimestamp", "0")) / 1000
    entry: dict[str, Any] = {
        "message_id": message["MessageId"],
        "sent_at": datetime.fromtimestamp(sent, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "receive_count": int(attributes.get("ApproximateReceiveCount", "0")),
    }
    try:
        delivery = Delivery.from_message(message["Body"])
    except (KeyError, TypeError, ValueError):
        pass
    else:
        entry.update(kind="delivery", event_id=delivery.event_id, event_type=delivery.event_type)
        entry.update(webhook_id=delivery.webhook_id, owner_id=delivery.owner_id)
        return entry
    try:
        event = from_bus_event(json.loads(message["Body"]))
    except (KeyError, TypeError, ValueError):
        return {**entry, "kind": "unknown"}
    return {**entry, "kind": "event", "event_id": event.id, "event_type": event.type, "owner_id": event.owner_id}


def _receive(sqs: Any, url: str, count: int, visibility: int) -> list[dict[str, Any]]:
    reply = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=count, VisibilityTimeout=visibility, MessageSystemAttributeNames=["All"]
    )
    return list(reply.get("Messages", []))


def dead_letters(sqs: Any, url: str, *, limit: int) -> dict[str, Any]:
    """Up to ``limit`` dead letters, described; they stay in the queue (visible again at once)."""
    seen: list[dict[str, Any]] = []
    while len(seen) < limit:
        batch = _receive(sqs, url, min(BATCH, limit - len(seen)), VISIBILITY_SECONDS)
        if not batch:
            break
        seen.extend(batch)
    for message in seen:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return {"dead_letters": [describe(m) for m in seen], "count": len(seen)}


def replay(sqs: Any, urls: dict[str, str], *, dry_run: bool, limit: int) -> dict[str, Any]:
    """Send up to ``limit`` dead letters back where they came from; ``ok`` false when some are left."""
    summary: dict[str, Any] = {"replayed": {"delivery": 0, "event": 0}, "left": [], "dry_run": dry_run}
    handled: list[dict[str, Any]] = []
    while len(handled) < limit:
        batch = _receive(sqs, urls["dead-letters"], min(BATCH, limit - len(handled)), VISIBILITY_SECONDS)
        if not batch:
            break
        handled.extend(batch)
        for message in batch:
            entry = describe(message)
            kind = entry["kind"]
            if kind == "unknown":
                summary["left"].append(entry["message_id"])
                continue
            summary["replayed"][kind] += 1
            if not dry_run:
                sqs.send_message(QueueUrl=urls[kind], MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=urls["dead-letters"], ReceiptHandle=message["ReceiptHandle"])
    for message in handled:  # what stays (a dry run's, the unknown) is visible again at once
        if dry_run or message["MessageId"] in summary["left"]:
            sqs.change_message_visibility(
                QueueUrl=urls["dead-letters"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
    summary["ok"] = not summary["left"]
    return summary


# ------------------------------------------------------------------------------ a client's erasure
class ClientWebhooks:
    """A client's webhooks and their sealed secrets: a ``ClientData`` part of ``services.client_erasure``
    (``ops clients erase``). Their pending deliveries are dropped at their next attempt (the webhook is
    gone); those already in the dead-letter queue are ``ClientDeadLetters``."""

    name = "webhooks"

    def __init__(self, service: WebhookService) -> None:
        self.service = service

    def ids_of(self, client_id: str) -> list[str]:
        return [str(hook["webhook_id"]) for hook in self.service.list(client_id)]

    def erase(self, client_id: str) -> int:
        return self.service.delete_all(client_id)


class ClientDeadLetters:
    """The webhook dead letters about a client (a delivery's or a job event's ``owner_id``): they hold its
    jobs as they were (file names included) for 14 days, so its erasure deletes them."""

    name = "webhook_dead_letters"

    def __init__(self, sqs: Any, url: str, *, limit: int = 10_000) -> None:
        self.sqs, self.url, self.limit = sqs, url, limit

    def _of(self, client_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every dead letter (received, hidden for the while), split into the client's and the others."""
        seen: list[dict[str, Any]] = []
        while len(seen) < self.limit:
            batch = _receive(self.sqs, self.url, BATCH, VISIBILITY_SECONDS)
            if not batch:
                break
            seen.extend(batch)
        mine = [m for m in seen if describe(m).get("owner_id") == client_id]
        return mine, [m for m in seen if m not in mine]

    def _release(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )

    def ids_of(self, client_id: str) -> list[str]:
        mine, others = self._of(client_id)
        self._release(mine + others)
        return [str(m["MessageId"]) for m in mine]

    def erase(self, client_id: str) -> int:
        mine, others = self._of(client_id)
        self._release(others)
        for message in mine:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return len(mine)


def client_parts(jobs_table: str, sqs: Any) -> tuple[ClientWebhooks, ClientDeadLetters]:
    """What ``ops clients erase`` takes of webhooks, for the environment ``ENVIRONMENT`` names."""
    stack = Stack(load_template(), {"Environment": os.environ["ENVIRONMENT"]})
    url = sqs.get_queue_url(QueueName=stack.properties(QUEUES["dead-letters"])["QueueName"])["QueueUrl"]
    service = WebhookService(WebhookStore(jobs_table), None, allow_loopback=False)
    return ClientWebhooks(service), ClientDeadLetters(sqs, url)


def client_webhooks(deps: Dependencies) -> ClientWebhooks:
    """``ops.clients.CLIENT_DATA``'s webhooks part: the client's webhooks and sealed secrets."""
    return ClientWebhooks(deps.webhooks)


def client_dead_letters(deps: Dependencies) -> ClientDeadLetters:
    """``ops.clients.CLIENT_DATA``'s dead-letters part (SQS with the operator's credentials)."""
    return client_parts(deps.settings.jobs_table, boto3.client("sqs"))[1]
