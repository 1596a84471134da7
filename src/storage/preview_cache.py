"""The DynamoDB ``preview_cache`` table: the last result's rooms for a blueprint, by its SHA-256.

Each entry carries its ``expires_at`` (the table's TTL attribute; ``services.previews`` decides how long
an entry lives). DynamoDB deletes expired items late, so ``get`` treats an entry past it as absent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from storage.base import TableBound
from storage.items import from_item, to_item
from utils import retry


class PreviewCache(TableBound):
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

    def put(self, entry: dict[str, Any]) -> None:
        # DynamoDB numbers are Decimals: a JSON round trip turns every float of the rooms into one.
        item = to_item(json.loads(json.dumps(entry), parse_float=Decimal))
        retry.call("dynamodb.put_item", lambda: self.client.put_item(TableName=self.table_name, Item=item))


def _from_dynamodb(value: Any) -> Any:
    """Numbers as ``int`` where they are whole, else ``float`` (rooms hold coordinates and confidences)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamodb(v) for v in value]
    return value
