"""The DynamoDB ``preview_cache`` table: a client's last result for a blueprint, by owner and SHA-256.

The key attribute keeps its name, ``blueprint_hash``; its value is ``{owner_id}#{sha256 hex}``
(``preview_key``), so an entry is only ever found by the client whose job made it, and the entry also
names its ``owner_id``, which ``get`` checks again. Each entry carries its ``expires_at`` (the table's TTL
attribute; ``services.previews`` decides how long an entry lives). DynamoDB deletes expired items late,
so ``get`` treats an entry past it as absent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from storage.base import TableBound
from storage.items import from_item, to_item
from utils import retry


def preview_key(owner_id: str, blueprint_hash: str) -> str:
    """The key value of ``owner_id``'s entry for a blueprint. Unambiguous: the hash is the last 64
    characters, whatever an owner id (a JWT subject, say) contains."""
    return f"{owner_id}#{blueprint_hash}"


class PreviewCache(TableBound):
    def get(self, owner_id: str, blueprint_hash: str, now_epoch: float) -> dict[str, Any] | None:
        """``owner_id``'s live entry for the blueprint, or None."""
        key = {"blueprint_hash": {"S": preview_key(owner_id, blueprint_hash)}}
        response = retry.call("dynamodb.get_item", lambda: self.client.get_item(TableName=self.table_name, Key=key))
        item = response.get("Item")
        if not item:
            return None
        entry = {k: _from_dynamodb(v) for k, v in from_item(item).items()}
        if entry.get("owner_id") != owner_id or int(entry.get("expires_at", 0)) <= now_epoch:
            return None
        return entry

    def ping(self) -> None:
        """One cheap read of a key no entry has: proves the table answers; raises if it does not."""
        self.client.get_item(TableName=self.table_name, Key={"blueprint_hash": {"S": "__health_probe__"}})

    def put(self, owner_id: str, blueprint_hash: str, entry: dict[str, Any]) -> None:
        """Store ``entry`` as ``owner_id``'s for the blueprint (replacing their earlier one)."""
        scoped = {**entry, "blueprint_hash": preview_key(owner_id, blueprint_hash), "owner_id": owner_id}
        # DynamoDB numbers are Decimals: a JSON round trip turns every float of the rooms into one.
        item = to_item(json.loads(json.dumps(scoped), parse_float=Decimal))
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
