"""The jobs table's writes of an erasure and of the sweep: the mark, the record's deletion, and the end of a
job's retention entry (``storage.lookups``).

The mark (``erase_requested_at``, and an entry under ``sweep#erase`` in the lookup index) is what makes an
erasure a state rather than a hope: from the write on every read treats the job as absent, every writer
of the job's objects is refused (``JobsTable.count_feedback``, the completion's transition, the preview's
``PreviewCache.put_for_live_job``), and an erasure cut short is found again by its client's retry or by the
sweep. A final job is marked by a write that changes none of its public fields and no version (nothing a
client sees changed: no state change is published); a pending or processing job is cancelled by the same
write (``JobsTable.transition`` with ``mark_fields``), a state change like any cancel. The record is deleted
last, only while it carries the mark: its removal is the erasure's end (``job.erased``).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from models.job import Job
from storage.base import Refusal, TableBound, conditional_write, ignore
from storage.items import from_item, to_item
from storage.lookups import ERASE, RETENTION, lookup_entry
from utils import retry


def mark_fields(now: int) -> dict[str, Any]:
    """What marks a job for erasure at ``now`` (epoch seconds), as attributes of the job's record."""
    return {"erase_requested_at": now, **lookup_entry(ERASE, now)}


def _marked(item: dict[str, Any] | None) -> Job | None:
    job = Job.from_record(from_item(item)) if item else None
    return job if job is not None and job.erasing else None


class MarkRefused(Exception):
    """The job changed since it was read (and is not marked): decide again on ``current``."""

    def __init__(self, current: Job | None) -> None:
        self.current = current
        super().__init__("the job changed since it was read")


class JobErasure(TableBound):
    """Bound to the jobs table, beside ``JobsTable`` (the same table name)."""

    def mark(self, job: Job, now: int) -> Job:
        """Mark a job in a final state (as read: same version) for erasure; the marked job. Marked already
        (by this write's lost first attempt or another erasure): that job. ``MarkRefused`` otherwise."""
        values = to_item({":version": job.version, **{f":{k}": v for k, v in mark_fields(now).items()}})

        def refused(refusal: Refusal) -> Job:
            old: Any = refusal.error.response.get("Item")
            found = _marked(old)
            if found is None:
                raise MarkRefused(Job.from_record(from_item(old)) if old else None) from refusal.error
            return found

        return conditional_write(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": job.job_id}},
                UpdateExpression="SET erase_requested_at = :erase_requested_at, lookup_key = :lookup_key, "
                "lookup_at = :lookup_at",
                ConditionExpression="#version = :version AND attribute_not_exists(erase_requested_at)",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
            done=lambda response: Job.from_record(from_item(response["Attributes"])),
            refused=refused,
            landed=lambda: _marked(self._item(job.job_id)),
        )

    def delete_record(self, job_id: str) -> None:
        """Delete the job's record, the erasure's last step: only while it carries the mark (no-op once gone)."""
        conditional_write(
            "dynamodb.delete_item",
            lambda: self.client.delete_item(
                TableName=self.table_name,
                Key={"job_id": {"S": job_id}},
                ConditionExpression="attribute_exists(erase_requested_at)",
            ),
            done=ignore,
            refused=ignore,  # gone already: this delete's lost first attempt, or another erasure's
            landed=lambda: True if self._item(job_id) is None else None,
        )

    def end_retention(self, job_id: str, now: int) -> bool:
        """After the sweep deleted a job's blueprint: take the job out of ``sweep#retention`` and note when
        (not a public field, no version: nothing a client sees changed). False if the job is gone, marked
        for erasure, or no longer under retention."""
        try:
            retry.call(
                "dynamodb.update_item",
                lambda: self.client.update_item(
                    TableName=self.table_name,
                    Key={"job_id": {"S": job_id}},
                    UpdateExpression="SET blueprint_deleted_at = :now REMOVE lookup_key, lookup_at",
                    ConditionExpression="lookup_key = :retention AND attribute_not_exists(erase_requested_at)",
                    ExpressionAttributeValues={":now": {"N": str(now)}, ":retention": {"S": RETENTION}},
                ),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _item(self, job_id: str) -> dict[str, Any] | None:
        response = retry.call(
            "dynamodb.get_item",
            lambda: self.client.get_item(TableName=self.table_name, Key={"job_id": {"S": job_id}}, ConsistentRead=True),
        )
        item = response.get("Item")
        return dict(item) if item else None
