"""The jobs table's DynamoDB stream: its records decoded, and (for the local poller and the operator's
replay) read back by shard and sequence number.

A stream record reaches us two ways with one shape: inside a Lambda event (the event source mapping;
``ApproximateCreationDateTime`` in epoch seconds) or from ``GetRecords`` (boto3 gives a ``datetime``).
``decode`` turns either into a ``StreamChange``: the item's key, its old and new images as plain records
(``storage.items``), and whether DynamoDB itself made the change (a TTL deletion).

Stream records live 24 hours; sequence numbers are decimal strings that grow within a shard.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar

from storage.base import ResourceBound
from storage.items import from_item
from utils import retry

#: Who DynamoDB says made a TTL deletion (``userIdentity`` of the REMOVE record).
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
#: Records ``GetRecords`` returns at most per call.
MAX_RECORDS = 1000
#: ``GetRecords`` may answer nothing before a shard's later records: empty reads tried before giving up.
EMPTY_READS = 5


class StreamChange:
    """One change to one item of the table, as its stream record tells it."""

    __slots__ = ("at", "by_service", "event_name", "key", "new", "old", "sequence_number")

    def __init__(
        self,
        *,
        sequence_number: str,
        event_name: str,
        key: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        at: float,
        by_service: bool,
    ) -> None:
        self.sequence_number = sequence_number
        #: ``INSERT``, ``MODIFY`` or ``REMOVE``.
        self.event_name = event_name
        #: The item's ``job_id`` attribute: a job id, or a typed item's key (``idem#...``, ``claim#...``).
        self.key = key
        self.old = old
        self.new = new
        #: Epoch seconds.
        self.at = at
        #: DynamoDB made the change itself: a TTL deletion.
        self.by_service = by_service


def decode(record: Mapping[str, Any]) -> StreamChange:
    """A stream record (Lambda's or ``GetRecords``') as a ``StreamChange``; ``KeyError``/``ValueError``
    for a record that is not one (the caller treats it as poison)."""
    data = record["dynamodb"]
    created = data.get("ApproximateCreationDateTime", 0)
    at = created.timestamp() if isinstance(created, datetime) else float(created)
    old, new = data.get("OldImage"), data.get("NewImage")
    identity = record.get("userIdentity") or {}
    return StreamChange(
        sequence_number=str(data["SequenceNumber"]),
        event_name=str(record["eventName"]),
        key=str(data["Keys"]["job_id"]["S"]),
        old=from_item(old) if old else None,
        new=from_item(new) if new else None,
        at=at,
        by_service=all(identity.get(k) == v for k, v in TTL_IDENTITY.items()),
    )


class JobStream(ResourceBound):
    """The stream of one table, read with the container's ``dynamodbstreams`` client (or one given)."""

    service: ClassVar[str] = "dynamodbstreams"

    @property
    def stream_arn(self) -> str:
        return self._name

    def shards(self) -> list[str]:
        """The stream's shard ids, oldest first (closed shards included while their records live)."""
        shards: list[str] = []
        start: dict[str, str] = {}
        while True:
            page = retry.call(
                "dynamodbstreams.describe_stream",
                functools.partial(self.client.describe_stream, StreamArn=self.stream_arn, **start),
            )["StreamDescription"]
            shards.extend(str(s["ShardId"]) for s in page.get("Shards", []))
            last = page.get("LastEvaluatedShardId")
            if not last:
                return shards
            start = {"ExclusiveStartShardId": last}

    def iterator(self, shard_id: str, *, after: str | None = None, at: str | None = None, oldest: bool = False) -> str:
        """An iterator of ``shard_id``: after or at a sequence number, at its oldest record, else at its
        newest end."""
        position: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON" if oldest else "LATEST"}
        if after is not None:
            position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
        elif at is not None:
            position = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": at}
        response = retry.call(
            "dynamodbstreams.get_shard_iterator",
            lambda: self.client.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id, **position),
        )
        return str(response["ShardIterator"])

    def read(self, iterator: str, limit: int = MAX_RECORDS) -> tuple[list[dict[str, Any]], str | None]:
        """The records at ``iterator`` and the iterator after them (None: the shard is closed and read)."""
        response = retry.call(
            "dynamodbstreams.get_records", lambda: self.client.get_records(ShardIterator=iterator, Limit=limit)
        )
        return list(response.get("Records", [])), response.get("NextShardIterator")

    def records_between(self, shard_id: str, first: str, last: str) -> Iterator[dict[str, Any]]:
        """The records of ``shard_id`` from sequence number ``first`` to ``last`` (both included), while the
        stream still holds them (``TrimmedDataAccessException`` from DynamoDB once they are older than 24 h)."""
        iterator: str | None = self.iterator(shard_id, at=first)
        empty = 0
        while iterator is not None and empty < EMPTY_READS:
            records, iterator = self.read(iterator)
            empty = 0 if records else empty + 1
            for record in records:
                if int(record["dynamodb"]["SequenceNumber"]) > int(last):
                    return
                yield record
