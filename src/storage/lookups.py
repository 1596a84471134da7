"""The jobs table's lookup index: what the stack must find again later, without a Scan.

``lookup-index`` (template.yaml) is a sparse, keys-only GSI: hash ``lookup_key``, range ``lookup_at``
(epoch seconds). Only items that carry both attributes are in it; each kind of entry is one hash key:

- ``sweep#retention``: every job, by when its blueprint is due for deletion (its expiry at creation,
  brought forward at its final transition: ``services.retention``);
- ``sweep#erase``: jobs marked for erasure, by when the mark was made (the sweep finishes an erasure whose
  client never retried: ``services.sweep``);
- ``client#{client_id}``: a client's idempotency records, by when they were begun (erasing a whole client:
  ``services.client_erasure``).

A client's jobs themselves are in the owner index (``jobs_of``: every one, expired and marked included).

One hash key per kind puts each kind in one partition of the index (about 1,000 writes a second): far
above the stage's throttle (docs/erasure.md).
"""

from __future__ import annotations

import functools
from typing import Any

from storage.base import TableBound
from storage.jobs_table import OWNER_INDEX
from utils import retry

LOOKUP_INDEX = "lookup-index"
RETENTION = "sweep#retention"
ERASE = "sweep#erase"


def client_lookup(client_id: str) -> str:
    return f"client#{client_id}"


def lookup_entry(key: str, at: int) -> dict[str, Any]:
    """The attributes that put an item in the index under ``key`` at ``at``."""
    return {"lookup_key": key, "lookup_at": at}


class Lookups(TableBound):
    """Reads of the lookup index (the writes are part of each item's own writes)."""

    def due(self, key: str, up_to: int, limit: int) -> list[str]:
        """The keys (``job_id`` attribute) of up to ``limit`` items under ``key`` with ``lookup_at <= up_to``,
        oldest first."""
        return self._query(key, limit, "lookup_key = :key AND lookup_at <= :up_to", {":up_to": {"N": str(up_to)}})

    def every(self, key: str, limit: int = 10_000) -> list[str]:
        """The keys of (up to ``limit``) items under ``key``, oldest first."""
        return self._query(key, limit, "lookup_key = :key", {})

    def jobs_of(self, owner_id: str, limit: int = 100_000) -> list[str]:
        """The ids of every job of ``owner_id`` still stored (expired or marked for erasure too), oldest first."""
        return self._query(owner_id, limit, "owner_id = :key", {}, index=OWNER_INDEX)

    def _query(
        self, key: str, limit: int, condition: str, values: dict[str, Any], index: str = LOOKUP_INDEX
    ) -> list[str]:
        found: list[str] = []
        start: dict[str, Any] | None = None
        while len(found) < limit:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": index,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": {":key": {"S": key}, **values},
                "ProjectionExpression": "job_id",
                "Limit": min(1000, limit - len(found)),
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page: dict[str, Any] = retry.call("dynamodb.query", functools.partial(self.client.query, **kwargs))
            found.extend(item["job_id"]["S"] for item in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return found
