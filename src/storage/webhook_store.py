"""Webhooks: one typed item per client in the jobs table, holding all of the client's webhooks.

Key ``webhooks#{sha256(client)}``: never a job id (the stream's mapping filters on ``job_``, and the job
events consumer ignores other keys), no ``owner_id`` attribute (no job list or GSI sees it), the client's
id not stored in clear. Each webhook is one attribute named by its id (``wh_...``), a map of ``url``,
``events`` (a list, in the contract's order), ``description`` (absent for none), ``created_at`` and
``secret`` (the KMS ciphertext, bytes); ``hook_count`` counts them. So the fan-out reads one item per
event, and the contract's limit of ten is one conditional update: ``hook_count < 10``, counted in the
same write that adds the webhook. At most ten webhooks of about 3 KB: well under DynamoDB's 400 KB.

Lost answers (``storage.base``): an add recognises its own webhook by its ciphertext (random, unique); a
removal whose retry finds nothing to remove reports the webhook it read first, which is gone either way.
"""

from __future__ import annotations

import hashlib
from typing import Any

from models.errors import Conflict, WebhookNotFound
from models.webhooks import MAX_WEBHOOKS, WEBHOOK_ID, Webhook
from storage.base import Refusal, TableBound, conditional_write
from storage.items import to_item
from utils import retry

_ITEM_TYPE = "webhooks"


class WebhookLimitReached(Exception):
    """The client already has ``limit`` webhooks: nothing was added."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"at most {limit} webhooks")


def webhooks_key(owner_id: str) -> str:
    return f"webhooks#{hashlib.sha256(owner_id.encode()).hexdigest()}"


def _attribute(webhook_id: str) -> str:
    """A webhook's attribute is named by its id (``wh_...``: no other attribute of the item looks like one)."""
    return webhook_id


def _encode(webhook: Webhook) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "url": webhook.url,
        "events": list(webhook.events),
        "created_at": webhook.created_at,
        "secret": webhook.sealed_secret,
    }
    if webhook.description is not None:
        fields["description"] = webhook.description
    encoded: dict[str, Any] = to_item({"hook": fields})["hook"]
    return encoded


def _decode(owner_id: str, webhook_id: str, value: dict[str, Any]) -> Webhook:
    fields = value["M"]
    return Webhook(
        webhook_id=webhook_id,
        owner_id=owner_id,
        url=fields["url"]["S"],
        events=tuple(entry["S"] for entry in fields["events"]["L"]),
        description=fields["description"]["S"] if "description" in fields else None,
        created_at=fields["created_at"]["S"],
        sealed_secret=bytes(fields["secret"]["B"]),
    )


def _webhooks(owner_id: str, item: dict[str, Any] | None) -> list[Webhook]:
    found = (item or {}).items()
    hooks = [_decode(owner_id, name, value) for name, value in found if WEBHOOK_ID.matches(name)]
    return sorted(hooks, key=lambda hook: (hook.created_at, hook.webhook_id))


class WebhookStore(TableBound):
    """The clients' webhooks, kept in the jobs table (``JobsTable``: the same table name)."""

    def list(self, owner_id: str) -> list[Webhook]:
        """The client's webhooks, oldest first (a consistent read: a webhook just added or removed is
        seen as such, by the API and by the delivery worker alike)."""
        return _webhooks(owner_id, self._item(owner_id))

    def get(self, owner_id: str, webhook_id: str) -> Webhook | None:
        name = _attribute(webhook_id)
        item = self._item(owner_id, projection=name)
        return None if item is None or name not in item else _decode(owner_id, webhook_id, item[name])

    def _item(self, owner_id: str, projection: str | None = None) -> dict[str, Any] | None:
        kwargs: dict[str, Any] = {"TableName": self.table_name, "Key": {"job_id": {"S": webhooks_key(owner_id)}}}
        kwargs["ConsistentRead"] = True
        if projection is not None:
            kwargs.update(ProjectionExpression="#hook", ExpressionAttributeNames={"#hook": projection})
        response = retry.call("dynamodb.get_item", lambda: self.client.get_item(**kwargs))
        item = response.get("Item")
        return dict(item) if item else None

    def add(self, webhook: Webhook) -> None:
        """Add ``webhook`` to its owner's, unless they already have ``MAX_WEBHOOKS`` (``WebhookLimitReached``)."""

        def refused(refusal: Refusal) -> None:
            answer: dict[str, Any] = dict(refusal.error.response)
            old: dict[str, Any] = answer.get("Item") or {}
            name = _attribute(webhook.webhook_id)
            if name in old and _decode(webhook.owner_id, webhook.webhook_id, old[name]) == webhook:
                return  # this very add, landed on an attempt whose answer was lost
            if name in old:
                raise Conflict()  # an id minted twice: the client may simply retry
            raise WebhookLimitReached(MAX_WEBHOOKS)

        conditional_write(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": webhooks_key(webhook.owner_id)}},
                UpdateExpression="SET #hook = :hook, hook_count = if_not_exists(hook_count, :zero) + :one, "
                "item_type = :type",
                ConditionExpression="attribute_not_exists(#hook) AND "
                "(attribute_not_exists(hook_count) OR hook_count < :max)",
                ExpressionAttributeNames={"#hook": _attribute(webhook.webhook_id)},
                ExpressionAttributeValues={
                    ":hook": _encode(webhook),
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                    ":max": {"N": str(MAX_WEBHOOKS)},
                    ":type": {"S": _ITEM_TYPE},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
            done=lambda _: None,
            refused=refused,
            landed=lambda: True if self.get(webhook.owner_id, webhook.webhook_id) == webhook else None,
        )

    def remove(self, owner_id: str, webhook_id: str) -> Webhook:
        """Remove one webhook; returns it. ``WebhookNotFound`` when the client has no such webhook."""
        found = self.get(owner_id, webhook_id)
        if found is None:
            raise WebhookNotFound(details={"webhook_id": webhook_id})

        def refused(refusal: Refusal) -> Webhook:
            if refusal.retried:
                return found  # gone: this removal's first attempt, or a racing one, took it
            raise WebhookNotFound(details={"webhook_id": webhook_id})

        return conditional_write(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": webhooks_key(owner_id)}},
                UpdateExpression="REMOVE #hook SET hook_count = hook_count - :one",
                ConditionExpression="attribute_exists(#hook)",
                ExpressionAttributeNames={"#hook": _attribute(webhook_id)},
                ExpressionAttributeValues={":one": {"N": "1"}},
            ),
            done=lambda _: found,
            refused=refused,
            landed=lambda: found if self.get(owner_id, webhook_id) is None else None,
        )

    def remove_all(self, owner_id: str) -> int:
        """Remove every webhook of the client (erasure); returns how many there were. Idempotent."""
        response = retry.call(
            "dynamodb.delete_item",
            lambda: self.client.delete_item(
                TableName=self.table_name, Key={"job_id": {"S": webhooks_key(owner_id)}}, ReturnValues="ALL_OLD"
            ),
        )
        return len(_webhooks(owner_id, response.get("Attributes")))
