"""The DynamoDB ``preview_cache`` table: the last result's rooms for a blueprint, by its SHA-256.

Each entry carries its ``expires_at`` (the table's TTL attribute; ``services.previews`` decides how long
an entry lives). DynamoDB deletes expired items late, so ``get`` treats an entry past it as absent.
An entry names the job it was made from (``job_id``): it is written only while that job is live and not
marked for erasure (one transaction with a check of the job's record in the jobs table), and an erasure
deletes it only while it still names that job.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from storage.base import TableBound, conditional_write, ignore
from storage.items import from_item, to_item
from utils import retry


class PreviewCache(TableBound):
    def __init__(self, name: str, client: Any | None = None, *, jobs_table: str = "") -> None:
        """The entries of table ``name``; ``jobs_table``: where the jobs they are made from live."""
        super().__init__(name, client)
        self.jobs_table = jobs_table

    def get(self, blueprint_hash: str, now_epoch: float) -> dict[str, Any] | None:
        response = retry.call(
            "dynamodb.get_item",
            lambda: self.client.get_item(TableName=self.table_name, Key={"blueprint_hash": {"S": blueprint_hash}}),
        )
        item = response.get("Item")
        if not item:
            return None
        entry = {k: _from_dynamodb(v) for k, v in from_item(item).items()}
        if int(entry.get("expires_at", 0)) <= now_epoch:
            return None
        return entry

    def put_for_live_job(self, entry: dict[str, Any]) -> bool:
        """Write ``entry`` if the job it names (``entry["job_id"]``) exists and is not marked for erasure:
        a completion that finishes after an erasure began never leaves a preview behind. False if not."""
        # DynamoDB numbers are Decimals: a JSON round trip turns every float of the rooms into one.
        item = to_item(json.loads(json.dumps(entry), parse_float=Decimal))
        check = {
            "TableName": self.jobs_table,
            "Key": {"job_id": {"S": entry["job_id"]}},
            "ConditionExpression": "attribute_exists(job_id) AND attribute_not_exists(erase_requested_at)",
        }
        return conditional_write(
            "dynamodb.transact_write_items",
            lambda: self.client.transact_write_items(
                TransactItems=[{"ConditionCheck": check}, {"Put": {"TableName": self.table_name, "Item": item}}]
            ),
            done=lambda _: True,
            refused=lambda _: False,
            refusals=("TransactionCanceledException",),
        )

    def delete_if_from(self, blueprint_hash: str, job_id: str) -> None:
        """Delete the entry of ``blueprint_hash`` if it was made from ``job_id`` (a later job's stays)."""
        conditional_write(
            "dynamodb.delete_item",
            lambda: self.client.delete_item(
                TableName=self.table_name,
                Key={"blueprint_hash": {"S": blueprint_hash}},
                ConditionExpression="job_id = :job_id",
                ExpressionAttributeValues={":job_id": {"S": job_id}},
            ),
            done=ignore,
            refused=ignore,  # none, or another job's (or this delete's lost first attempt took it)
            landed=lambda: True if self._names(blueprint_hash) != job_id else None,
        )

    def _names(self, blueprint_hash: str) -> str | None:
        response = retry.call(
            "dynamodb.get_item",
            lambda: self.client.get_item(
                TableName=self.table_name, Key={"blueprint_hash": {"S": blueprint_hash}}, ConsistentRead=True
            ),
        )
        value = (response.get("Item") or {}).get("job_id", {}).get("S")
        return str(value) if value is not None else None


def _from_dynamodb(value: Any) -> Any:
    """Numbers as ``int`` where they are whole, else ``float`` (rooms hold coordinates and confidences)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamodb(v) for v in value]
    return value
