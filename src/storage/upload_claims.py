"""Upload claims: what makes one upload create at most one job.

A claim is a typed item in the jobs table (key ``claim#{upload_id}``, never a job id, no owner, so no list
or GSI ever sees it) naming the job id its finaliser drew. A conditional put takes it; the finaliser gives
it back when it fails for a reason a retry may fix. A finaliser that cannot give it back (its Lambda timed
out or crashed, or the delete failed too) would leave the upload unusable until the claim's TTL; so a
claim whose job was never recorded lapses (after the time ``services.upload_service`` chooses), and the
next finalisation takes it over — in one transaction that checks the old job still does not exist.
"""

from __future__ import annotations

from typing import Any

from storage.base import Refusal, TableBound, conditional_write, ignore
from storage.items import to_item
from utils import retry
from utils.logging import get_logger

logger = get_logger("upload_claims")


def claim_key(upload_id: str) -> str:
    return f"claim#{upload_id}"


class UploadClaims(TableBound):
    """The claims, kept in the jobs table beside the job records (``JobsTable``: the same table name)."""

    def take(self, upload_id: str, job_id: str, *, now: int, expires_at: int, lapse_seconds: int) -> bool:
        """True if this caller now owns the upload's finalisation; False if another finalisation holds it
        (or made its job). A claim older than ``lapse_seconds`` whose job does not exist is taken over."""
        values = {
            "job_id": claim_key(upload_id),
            "item_type": "upload_claim",
            "claimed_by": job_id,
            "claimed_at": now,
            "expires_at": expires_at,
        }
        item = to_item(values)

        def refused(_: Refusal) -> bool:
            holder = self._claim(upload_id)
            if holder.get("claimed_by", {}).get("S") == job_id:
                return True  # a retried put whose first attempt landed finds its own claim
            claimed_at = holder.get("claimed_at", {}).get("N")
            if claimed_at is None or int(claimed_at) + lapse_seconds > now:
                return False
            return self._take_over(upload_id, job_id, holder["claimed_by"]["S"], item)

        return conditional_write(
            "dynamodb.put_item",
            lambda: self.client.put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(job_id)"
            ),
            done=lambda _: True,
            refused=refused,
            landed=lambda: self._claimant(upload_id) == job_id or None,
        )

    def _take_over(self, upload_id: str, job_id: str, holder: str, item: dict[str, Any]) -> bool:
        """Replace a lapsed claim, provided its job was never recorded (and nobody replaced it first)."""

        def taken(_: Any) -> bool:
            logger.warning("took over a lapsed upload claim", extra={"upload_id": upload_id, "lapsed_job_id": holder})
            return True

        return conditional_write(
            "dynamodb.transact_write_items",
            lambda: self.client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.table_name,
                            "Key": {"job_id": {"S": holder}},
                            "ConditionExpression": "attribute_not_exists(job_id)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": item,
                            "ConditionExpression": "claimed_by = :holder",
                            "ExpressionAttributeValues": {":holder": {"S": holder}},
                        }
                    },
                ]
            ),
            done=taken,
            # The old job exists, or another finaliser won (unless that was this very transaction).
            refused=lambda _: self._claimant(upload_id) == job_id,
            landed=lambda: self._claimant(upload_id) == job_id or None,
            refusals=("TransactionCanceledException",),
        )

    def _claim(self, upload_id: str) -> dict[str, Any]:
        response = retry.call(
            "dynamodb.get_item",
            lambda: self.client.get_item(
                TableName=self.table_name, Key={"job_id": {"S": claim_key(upload_id)}}, ConsistentRead=True
            ),
        )
        return dict(response.get("Item") or {})

    def _claimant(self, upload_id: str) -> str | None:
        """The job id that holds the upload's claim, if any."""
        claimant = self._claim(upload_id).get("claimed_by", {}).get("S")
        return str(claimant) if claimant is not None else None

    def release(self, upload_id: str, job_id: str) -> None:
        """Give the upload back (finalisation failed for a reason a retry may fix); a no-op if ``job_id``
        no longer holds it."""
        conditional_write(
            "dynamodb.delete_item",
            lambda: self.client.delete_item(
                TableName=self.table_name,
                Key={"job_id": {"S": claim_key(upload_id)}},
                ConditionExpression="claimed_by = :job_id",
                ExpressionAttributeValues={":job_id": {"S": job_id}},
            ),
            done=ignore,
            refused=ignore,
            landed=lambda: True if self._claimant(upload_id) != job_id else None,
        )
