"""Rate-limit state: one typed item per client and route group in the jobs table, written by at most two
conditional updates and never read on the way (GCRA; the arithmetic is ``services.rate_limits``').

Key ``rate#{sha256(client)}#{group}``: never a job id (the job-events stream consumer only handles keys
starting with ``job_``), no ``owner_id`` (no list or GSI sees it), the client's id not stored in clear.
Attributes: ``tat`` (the theoretical arrival time, integer microseconds since the epoch), ``last_spend``
(a random token per spend), ``expires_at`` (the table's TTL, a minute after ``tat``: by then the item
means exactly what no item means, so DynamoDB may delete it whenever it likes), ``item_type``. About
120 bytes: one write unit per update.

A spend whose answer was lost (the connection dropped after DynamoDB applied it) is told by its token:
the retry's condition refuses a second increment by the same spend (``last_spend <> :token``) and the
refusal's old values (``ReturnValuesOnConditionCheckFailure``) show the token, so the spend counts once.
When retries run out the store does not look for the write's effect: the service lets the request
through either way (fail-open), and a read would only add load to a table that is failing.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from storage.base import Refusal, TableBound, conditional_write
from utils import retry
from utils.errors import ServiceUnavailable

#: The limiter is on every create's path and the request goes through without it: retry once, briefly.
LIMITER_RETRY = retry.RetryPolicy(max_retries=1, base_delay=0.05, max_delay=0.05)
#: How long an item outlives its ``tat`` (a margin over clock differences between containers).
EXPIRY_MARGIN_SECONDS = 60
_ITEM_TYPE = "rate_limit"


class LimiterUnavailable(Exception):
    """The rate-limit state could not be read or written (after the bounded retry, or any AWS error)."""


class Spend:
    """What a spend found. ``allowed``: it counted, and ``tat`` is the new one; else it was refused and
    ``tat`` is the stored one (None: no item, which only a refusal racing a TTL deletion can see)."""

    __slots__ = ("allowed", "tat")

    def __init__(self, allowed: bool, tat: int | None) -> None:
        self.allowed = allowed
        self.tat = tat


def limit_key(client_id: str, group: str) -> str:
    return f"rate#{hashlib.sha256(client_id.encode()).hexdigest()}#{group}"


def _number(item: dict[str, Any] | None, name: str) -> int | None:
    value = (item or {}).get(name, {}).get("N")
    return int(value) if value is not None else None


def _token(item: dict[str, Any] | None) -> str | None:
    value = (item or {}).get("last_spend", {}).get("S")
    return str(value) if value is not None else None


class RateLimitStore(TableBound):
    """The limiter's items, kept in the jobs table (``JobsTable``: the same table name)."""

    def spend(self, key: str, *, now: int, interval: int, tolerance: int) -> Spend:
        """One request's spend at ``now`` (all in microseconds): allowed if the stored ``tat`` is at most
        ``now + tolerance``; the new ``tat`` is ``max(tat, now) + interval``."""
        token = secrets.token_hex(8)
        try:
            fresh = self._update(key, token, now=now, interval=interval, tolerance=tolerance, fresh=True)
            if fresh.allowed or fresh.tat is None or fresh.tat > now + tolerance:
                return fresh  # a refusal's old tat already says "over budget": no second update
            return self._update(key, token, now=now, interval=interval, tolerance=tolerance, fresh=False)
        except (ServiceUnavailable, ClientError, BotoCoreError) as exc:
            raise LimiterUnavailable(type(exc).__name__) from exc

    def _update(self, key: str, token: str, *, now: int, interval: int, tolerance: int, fresh: bool) -> Spend:
        """``fresh``: the client is idle (no ``tat``, or one in the past): ``tat = now + interval``. Else
        within its tolerance: ``tat = tat + interval``."""
        expires_at = math.ceil((now + tolerance + interval) / 1_000_000) + EXPIRY_MARGIN_SECONDS
        values = {
            ":now": {"N": str(now)},
            ":token": {"S": token},
            ":expires": {"N": str(expires_at)},
            ":type": {"S": _ITEM_TYPE},
        }
        if fresh:
            update = "SET tat = :next"
            condition = "attribute_not_exists(tat) OR tat < :now"
            values[":next"] = {"N": str(now + interval)}
        else:
            update = "SET tat = tat + :interval"
            condition = "tat BETWEEN :now AND :limit AND (attribute_not_exists(last_spend) OR last_spend <> :token)"
            values[":interval"] = {"N": str(interval)}
            values[":limit"] = {"N": str(now + tolerance)}
        return conditional_write(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": key}},
                UpdateExpression=f"{update}, last_spend = :token, expires_at = :expires, item_type = :type",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
            done=lambda response: Spend(True, _number(response.get("Attributes"), "tat")),
            refused=lambda refusal: _refused(refusal, token),
            policy=LIMITER_RETRY,
        )

    def peek(self, key: str) -> int | None:
        """The stored ``tat`` (None: no item), read without spending (eventually consistent: a hint)."""
        try:
            response = retry.call(
                "dynamodb.get_item",
                lambda: self.client.get_item(
                    TableName=self.table_name, Key={"job_id": {"S": key}}, ProjectionExpression="tat"
                ),
                policy=LIMITER_RETRY,
            )
        except (ServiceUnavailable, ClientError, BotoCoreError) as exc:
            raise LimiterUnavailable(type(exc).__name__) from exc
        return _number(response.get("Item"), "tat")

    def forget(self, key: str) -> bool:
        """Delete the item (a client's erasure); True if there was one. Errors are the caller's: an
        operator's erasure must fail loudly, unlike a request's spend."""
        response = retry.call(
            "dynamodb.delete_item",
            lambda: self.client.delete_item(
                TableName=self.table_name, Key={"job_id": {"S": key}}, ReturnValues="ALL_OLD"
            ),
        )
        return "Attributes" in response


def _refused(refusal: Refusal, token: str) -> Spend:
    """The condition failed: on the stored values, or on this very spend, which landed on an attempt whose
    answer was lost (its token is there: it counted, and the stored ``tat`` is the one it wrote)."""
    answer: dict[str, Any] = dict(refusal.error.response)
    item = answer.get("Item")
    return Spend(_token(item) == token, _number(item, "tat"))
