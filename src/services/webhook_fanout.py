"""From one job event to one queued delivery per webhook of its owner that wants its type.

The fan-out reads the owner's webhooks (one item: ``storage.webhook_store``) and queues, in one
``SendMessageBatch`` per ten, a ``Delivery`` for each: the body already rendered, so every attempt sends
the same bytes. An event no webhook wants costs that one read. A failure to read or to queue fails the
event, which the events queue hands over again (its copies already queued are dropped by the delivery
ledger when delivered twice).
"""

from __future__ import annotations

from models.events import JobEvent
from models.webhooks import Delivery, delivery_body
from storage.delivery_queue import DeliveryQueue
from storage.webhook_store import WebhookStore
from utils import metrics
from utils.clock import iso_utc


class WebhookFanout:
    def __init__(self, store: WebhookStore, queue: DeliveryQueue) -> None:
        self.store = store
        self.queue = queue

    def deliveries_of(self, event: JobEvent) -> list[Delivery]:
        """What ``event`` is to deliver: one per webhook of its owner that wants its type."""
        if not event.owner_id:
            return []
        hooks = [hook for hook in self.store.list(event.owner_id) if hook.wants(event.type)]
        if not hooks:
            return []
        body = delivery_body(event.type, iso_utc(event.time), event.job)
        return [Delivery(hook.webhook_id, event.owner_id, event.id, event.type, body) for hook in hooks]

    def fan_out(self, event: JobEvent) -> int:
        """Queue the event's deliveries; returns how many. Raises when they could not all be queued."""
        deliveries = self.deliveries_of(event)
        if deliveries:
            self.queue.send([delivery.to_message() for delivery in deliveries])
        metrics.add("WebhookDeliveriesQueued", len(deliveries))
        return len(deliveries)
