"""Idempotency records: typed items in the jobs table, behind conditional writes.

Key ``idem#{sha256(client, Idempotency-Key)}`` (never a job id; no ``owner_id``, so no list of jobs sees
them; the lookup index lists a client's records under ``client#{client_id}``, for erasing a client). An
item is ``in_progress`` with a lock that lapses when the first attempt's Lambda would have timed out,
then ``done`` with the stored response until ``expires_at`` (the table's TTL, chosen by
``services.idempotency``; a begin treats an item past it as absent). Each ``begin`` marks its item with a
random ``attempt`` token, so a begin whose write landed but whose response was lost recognises its own
record (on its retry, or after retries ran out) instead of answering its own request with "in progress".
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from storage.base import TableBound, conditional_write, ignore
from storage.lookups import client_lookup
from utils import retry


def record_key(client_id: str, idempotency_key: str) -> str:
    digest = hashlib.sha256(f"{client_id}\n{idempotency_key}".encode()).hexdigest()
    return f"idem#{digest}"


class Existing:
    """What a request found instead of starting: a record of the same key."""

    __slots__ = ("fingerprint", "response", "state")

    def __init__(self, *, fingerprint: str, state: str, response: dict[str, Any] | None) -> None:
        self.fingerprint = fingerprint
        self.state = state
        self.response = response


#: ``begin``'s own record (this caller runs the request), told apart from a record in the way.
_STARTED = Existing(fingerprint="", state="started", response=None)


def _attempt_of(item: dict[str, Any]) -> str | None:
    value = item.get("attempt", {}).get("S")
    return str(value) if value is not None else None


class IdempotencyStore(TableBound):
    """The idempotency records, kept in the jobs table (``JobsTable``: the same table name)."""

    def begin(
        self, key: str, fingerprint: str, *, client_id: str, now: int, lock_until: int, expires_at: int
    ) -> Existing | None:
        """Start a request under ``key``: None if this caller now runs it, else the record in the way."""
        attempt = secrets.token_hex(8)
        item = {
            "job_id": {"S": key},
            "item_type": {"S": "idempotency"},
            "lookup_key": {"S": client_lookup(client_id)},
            "lookup_at": {"N": str(now)},
            "fingerprint": {"S": fingerprint},
            "state": {"S": "in_progress"},
            "attempt": {"S": attempt},
            "lock_until": {"N": str(lock_until)},
            "expires_at": {"N": str(expires_at)},
        }
        found = conditional_write(
            "dynamodb.put_item",
            lambda: self.client.put_item(
                TableName=self.table_name,
                Item=item,
                # Free, expired, or held by an attempt whose Lambda is long gone.
                ConditionExpression="attribute_not_exists(job_id) OR expires_at < :now "
                "OR (#state = :in_progress AND lock_until < :now)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":in_progress": {"S": "in_progress"}},
            ),
            done=lambda _: _STARTED,
            refused=lambda _: self._in_the_way(key, fingerprint, attempt),
            landed=lambda: _STARTED if _attempt_of(self._read(key)) == attempt else None,
        )
        return None if found is _STARTED else found

    def _in_the_way(self, key: str, fingerprint: str, attempt: str) -> Existing:
        found = self._read(key)
        if not found:  # it expired and was deleted in between: a retry will start cleanly
            return Existing(fingerprint=fingerprint, state="in_progress", response=None)
        if _attempt_of(found) == attempt:  # this very begin, retried after its write landed
            return _STARTED
        response = found.get("response", {}).get("S")
        return Existing(
            fingerprint=found["fingerprint"]["S"],
            state=found["state"]["S"],
            response=json.loads(response) if response else None,
        )

    def _read(self, key: str) -> dict[str, Any]:
        response = retry.call(
            "dynamodb.get_item",
            lambda: self.client.get_item(TableName=self.table_name, Key={"job_id": {"S": key}}, ConsistentRead=True),
        )
        return dict(response.get("Item") or {})

    def finish(self, key: str, response: dict[str, Any], *, expires_at: int) -> None:
        """Keep the response for replays until ``expires_at``."""
        retry.call(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": key}},
                UpdateExpression="SET #state = :done, #response = :response, expires_at = :expires REMOVE lock_until",
                ExpressionAttributeNames={"#state": "state", "#response": "response"},
                ExpressionAttributeValues={
                    ":done": {"S": "done"},
                    ":response": {"S": json.dumps(response, separators=(",", ":"))},
                    ":expires": {"N": str(expires_at)},
                },
            ),
        )

    def abandon(self, key: str) -> None:
        """Forget the key (the request failed in a way a retry may fix: it must run again)."""
        retry.call(
            "dynamodb.delete_item",
            lambda: self.client.delete_item(TableName=self.table_name, Key={"job_id": {"S": key}}),
        )

    def delete_naming(self, key: str, job_id: str) -> None:
        """Delete the record ``key`` if its kept answer names ``job_id`` (the create that made the job); a
        record the key was reused for since, or one still in progress, stays."""
        conditional_write(
            "dynamodb.delete_item",
            lambda: self.client.delete_item(
                TableName=self.table_name,
                Key={"job_id": {"S": key}},
                ConditionExpression="contains(#response, :job_id)",
                ExpressionAttributeNames={"#response": "response"},
                ExpressionAttributeValues={":job_id": {"S": job_id}},
            ),
            done=ignore,
            refused=ignore,  # gone (this delete's lost first attempt, its TTL), or not the job's
            landed=lambda: True if job_id not in self._read(key).get("response", {}).get("S", "") else None,
        )
