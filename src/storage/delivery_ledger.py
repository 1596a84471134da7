"""Which webhook deliveries are done: one typed item per (webhook, event) in the jobs table.

SQS delivers a message at least once, Lambda hands a crashed batch over again whole, and the fan-out may
queue an event's deliveries twice (its own retry after a lost answer). This ledger makes each attempt
reach a healthy endpoint once: before sending, a worker takes a short lease on the delivery (one
conditional update); after a 2xx it marks it delivered. A second copy of the message then finds the
delivery done (dropped) or leased by a live attempt (dropped: that attempt owns the retries); a crash
leaves a lease that lapses before the message comes back (the queue's visibility timeout is longer).

Key ``delivery#{sha256(webhook_id|event_id)}``: not a job id, no ``owner_id``; ``expires_at`` (TTL)
outlives the retries and the dead-letter queue's retention, after which nothing can bring it back.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from storage.base import Refusal, TableBound, conditional_write, ignore

_ITEM_TYPE = "webhook_delivery"


class Claim(StrEnum):
    CLAIMED = "claimed"
    DELIVERED = "delivered"
    BUSY = "busy"


def delivery_key(webhook_id: str, event_id: str) -> str:
    return f"delivery#{hashlib.sha256(f'{webhook_id}|{event_id}'.encode()).hexdigest()}"


class DeliveryLedger(TableBound):
    def claim(self, key: str, token: str, *, now: int, lease_seconds: int, keep_seconds: int) -> Claim:
        """Lease the delivery for this attempt (``token``) until ``now + lease_seconds``."""

        def refused(refusal: Refusal) -> Claim:
            answer: dict[str, Any] = dict(refusal.error.response)
            old: dict[str, Any] = answer.get("Item") or {}
            if "delivered_at" in old:
                return Claim.DELIVERED
            if old.get("lease", {}).get("S") == token:
                return Claim.CLAIMED  # this claim, landed on an attempt whose answer was lost
            return Claim.BUSY

        return conditional_write(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": key}},
                UpdateExpression="SET lease = :token, lease_until = :until, expires_at = :expires, item_type = :type",
                ConditionExpression="attribute_not_exists(delivered_at) AND "
                "(attribute_not_exists(lease_until) OR lease_until < :now OR lease = :token)",
                ExpressionAttributeValues={
                    ":token": {"S": token},
                    ":until": {"N": str(now + lease_seconds)},
                    ":now": {"N": str(now)},
                    ":expires": {"N": str(now + keep_seconds)},
                    ":type": {"S": _ITEM_TYPE},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
            done=lambda _: Claim.CLAIMED,
            refused=refused,
        )

    def delivered(self, key: str, *, now: int) -> None:
        """The endpoint answered 2xx: done for good (whoever holds the lease now)."""
        conditional_write(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": key}},
                UpdateExpression="SET delivered_at = :now REMOVE lease, lease_until",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            ),
            done=ignore,
            refused=ignore,
        )

    def release(self, key: str, token: str) -> None:
        """The attempt failed: give the lease back so that the retry need not wait for it to lapse."""
        conditional_write(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": key}},
                UpdateExpression="REMOVE lease, lease_until",
                ConditionExpression="lease = :token",
                ExpressionAttributeValues={":token": {"S": token}},
            ),
            done=ignore,
            refused=ignore,
        )
