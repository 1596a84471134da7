"""A scan of the jobs table for job records updated in a time window: the operator's last resort when the
stream no longer holds records whose events were lost (``ops events replay``). Reads the whole table
(bounded by its 7-day TTL); never on a request's path.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from models.job import Job
from storage.base import TableBound
from storage.items import from_item, to_item
from utils import retry


class JobsScan(TableBound):
    def updated_between(self, first: str, last: str) -> Iterator[Job]:
        """Job records whose ``updated_at`` is within ``first``..``last`` (ISO timestamps, both included)."""
        scan: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "begins_with(job_id, :job) AND updated_at BETWEEN :first AND :last",
            "ExpressionAttributeValues": to_item({":job": "job_", ":first": first, ":last": last}),
            "ConsistentRead": True,
        }
        while True:
            page = retry.call("dynamodb.scan", functools.partial(self.client.scan, **scan))
            for item in page.get("Items", []):
                yield Job.from_record(from_item(item))
            if not page.get("LastEvaluatedKey"):
                return
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
