"""The DynamoDB ``jobs`` table: every call to it, its conditional expressions and error translation.

Every status write is a conditional update on the status *and* the version counter the writer read, so
two racing writers can never both win: the loser gets ``StaleJob`` carrying what the winner wrote.

A write whose response was lost (the connection dropped after DynamoDB applied it) is recognised by its
own effect, both when a retry of it fails its condition and when retries run out
(``storage.base.conditional_write``): it counts as done, once, instead of as a conflict or an outage.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.exceptions import ClientError

from models.job import Job, JobStatus
from storage.base import Refusal, TableBound, conditional_write, ignore
from storage.items import from_item, to_item
from utils import retry

#: The GSI of a client's jobs, newest first (``owner_id`` hash, ``created_at`` range); see template.yaml.
OWNER_INDEX = "owner-created-index"
#: Pages DynamoDB may read to fill one list page when a filter drops items (bounded work per request).
MAX_QUERY_PAGES = 10

#: A key no job can have (job ids match ``job_...``): reading it is the cheapest reachability probe.
HEALTH_PROBE_KEY = "__health_probe__"


class JobIdTaken(Exception):
    """A put found a record with the same id (a new id must be drawn)."""


class StaleJob(Exception):
    """A conditional status write lost: the job changed since it was read."""

    def __init__(self, current: Job | None) -> None:
        self.current = current
        super().__init__("the job changed since it was read")


def _job(item: dict[str, Any]) -> Job:
    return Job.from_record(from_item(item))


def _item_in_the_way(exc: ClientError) -> Job | None:
    """The job a conditional write failed on (``ReturnValuesOnConditionCheckFailure=ALL_OLD``)."""
    old: Any = exc.response.get("Item")
    return _job(old) if old else None


def _shows_write(current: Job | None, read: Job, sets: dict[str, Any]) -> Job | None:
    """``current`` if it is exactly what one write of ``sets`` over ``read`` leaves (the next version, every
    value set), else None."""
    if current is None or current.version != read.version + 1:
        return None
    record = current.to_record()
    return current if all(record.get(name) == value for name, value in sets.items()) else None


def _landed_or_stale(refusal: Refusal, read: Job, sets: dict[str, Any]) -> Job:
    """A refused versioned write: its own effect when a retry was refused by its first attempt, else
    ``StaleJob`` with what the winner left."""
    in_the_way = _item_in_the_way(refusal.error)
    landed = _shows_write(in_the_way, read, sets) if refusal.retried else None
    if landed is None:
        raise StaleJob(in_the_way) from refusal.error
    return landed


class JobsTable(TableBound):
    """The job records of the jobs table (idempotency records and upload claims share the table, each
    through its own store bound to the same table name)."""

    def put_new(self, job: Job) -> None:
        """Write a new job; ``JobIdTaken`` if a record with its id exists (and is not this very job)."""
        item = to_item(job.to_record())

        def refused(refusal: Refusal) -> None:
            # A retried put whose first attempt landed finds its own record: that is success.
            if self._own_record(job) is None:
                raise JobIdTaken(job.job_id) from refusal.error

        conditional_write(
            "dynamodb.put_item",
            lambda: self.client.put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(job_id)"
            ),
            done=ignore,
            refused=refused,
            landed=lambda: self._own_record(job),
        )

    def _own_record(self, job: Job) -> Job | None:
        """The stored record of ``job`` if it is the one this request wrote (not another with its id)."""
        existing = self.get(job.job_id)
        if existing is not None and existing.request_id == job.request_id and existing.version == job.version:
            return existing
        return None

    def get(self, job_id: str) -> Job | None:
        response = retry.call(
            "dynamodb.get_item",
            lambda: self.client.get_item(TableName=self.table_name, Key={"job_id": {"S": job_id}}, ConsistentRead=True),
        )
        item = response.get("Item")
        return _job(item) if item else None

    def transition(self, job: Job, target: JobStatus, updated_at: str, fields: dict[str, Any] | None = None) -> Job:
        """Move ``job`` (as read) to ``target``; ``StaleJob`` if anyone wrote it since it was read."""
        return self._versioned_set(job, {"status": target.value, "updated_at": updated_at, **(fields or {})})

    def report_progress(self, job: Job, progress: int, stage: str | None, updated_at: str) -> Job:
        """The pipeline's progress on ``job`` (as read); ``StaleJob`` if anyone wrote it since. Bumps the
        version: a state change of its own (``job.progress``), with a new event id ``{job_id}:{version}``."""
        sets: dict[str, Any] = {"progress": progress, "updated_at": updated_at}
        if stage is not None:
            sets["stage"] = stage
        return self._versioned_set(job, sets)

    def _versioned_set(self, job: Job, sets: dict[str, Any]) -> Job:
        """SET ``sets`` on ``job``, conditional on the status and version read, bumping the version."""
        names = {f"#f{i}": name for i, name in enumerate(sets)}
        values = {f":v{i}": value for i, value in enumerate(sets.values())}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(sets)))
        names.update({"#status": "status", "#version": "version"})
        values.update({":expected_status": job.status.value, ":expected_version": job.version, ":one": 1})
        return self._versioned_update(
            job,
            sets,
            UpdateExpression=f"SET {assignments}, #version = #version + :one",
            ConditionExpression="#status = :expected_status AND #version = :expected_version",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values),
        )

    def lock_completion(self, job: Job, attempt_id: str, now: int, until: int) -> Job:
        """Make ``attempt_id`` the one writer of this processing job's result until ``until``.

        Conditional on the status and version read, and on no other live lock; bumps the version, so a
        cancel racing the completion still wins or loses cleanly. ``StaleJob`` if the lock is not taken.
        """
        return self._versioned_update(
            job,
            {"completing_by": attempt_id, "completing_until": until},
            UpdateExpression="SET completing_by = :attempt, completing_until = :until, #version = #version + :one",
            ConditionExpression="#status = :processing AND #version = :version AND "
            "(attribute_not_exists(completing_until) OR completing_until < :now)",
            ExpressionAttributeNames={"#status": "status", "#version": "version"},
            ExpressionAttributeValues=to_item(
                {
                    ":attempt": attempt_id,
                    ":until": until,
                    ":one": 1,
                    ":processing": JobStatus.PROCESSING.value,
                    ":version": job.version,
                    ":now": now,
                }
            ),
        )

    def _versioned_update(self, job: Job, sets: dict[str, Any], **update: Any) -> Job:
        """One conditional update of ``job`` as read that sets ``sets`` and bumps the version: the job as
        written, or ``StaleJob``. A write whose answer was lost is recognised by the record showing it."""
        return conditional_write(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": job.job_id}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **update,
            ),
            done=lambda response: _job(response["Attributes"]),
            refused=lambda refusal: _landed_or_stale(refusal, job, sets),
            landed=lambda: _shows_write(self.get(job.job_id), job, sets),
        )

    def unlock_completion(self, job_id: str, attempt_id: str) -> None:
        """Release ``attempt_id``'s completion lock (no-op if it no longer holds it)."""
        conditional_write(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="REMOVE completing_by, completing_until",
                ConditionExpression="completing_by = :attempt",
                ExpressionAttributeValues={":attempt": {"S": attempt_id}},
            ),
            done=ignore,
            refused=ignore,
        )

    def count_feedback(self, job_id: str, feedback_id: str, status: JobStatus) -> Job:
        """Count one piece of feedback on a job that still has ``status``; ``StaleJob`` otherwise.

        The feedback id joins a set in the same write, so a retried write whose first attempt landed
        counts once.
        """

        def refused(refusal: Refusal) -> Job:
            current = self.get(job_id)
            if current is not None and feedback_id in current.extra.get("feedback_ids", set()):
                return current
            raise StaleJob(current) from refusal.error

        return conditional_write(
            "dynamodb.update_item",
            lambda: self.client.update_item(
                TableName=self.table_name,
                Key={"job_id": {"S": job_id}},
                UpdateExpression="ADD feedback_count :one, feedback_ids :ids",
                # Never on a job marked for erasure: its feedback prefix is being (or has been) emptied.
                ConditionExpression="#status = :status AND attribute_not_exists(erase_requested_at) AND "
                "(attribute_not_exists(feedback_ids) OR NOT contains(feedback_ids, :id))",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":ids": {"SS": [feedback_id]},
                    ":id": {"S": feedback_id},
                    ":status": {"S": status.value},
                },
                ReturnValues="ALL_NEW",
            ),
            done=lambda response: _job(response["Attributes"]),
            refused=refused,
        )

    def query_owner(
        self,
        owner_id: str,
        limit: int,
        start_key: dict[str, str] | None,
        now: int,
        *,
        status: str | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> tuple[list[Job], dict[str, str] | None]:
        """Up to ``limit`` of the owner's live jobs, newest first, from ``start_key`` on.

        Returns the jobs and the key to continue from (None at the end). The key is that of the last job
        returned, not DynamoDB's last evaluated key, so a page cut short by ``limit`` skips nothing.
        """
        query = self._owner_query(owner_id, now, status, after, before)
        jobs: list[Job] = []
        exclusive = start_key
        for _ in range(MAX_QUERY_PAGES):
            kwargs: dict[str, Any] = {**query, "Limit": limit - len(jobs)}
            if exclusive:
                kwargs["ExclusiveStartKey"] = to_item(exclusive)
            page: dict[str, Any] = retry.call("dynamodb.query", functools.partial(self.client.query, **kwargs))
            jobs.extend(_job(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return jobs, None
            exclusive = {k: str(v) for k, v in from_item(last).items()}
            if len(jobs) >= limit:
                newest_last = jobs[-1]
                return jobs, {"job_id": newest_last.job_id, "owner_id": owner_id, "created_at": newest_last.created_at}
        return jobs, exclusive

    def _owner_query(
        self, owner_id: str, now: int, status: str | None, after: str | None, before: str | None
    ) -> dict[str, Any]:
        """The ``Query`` of the owner index for these filters (``created_at`` bounds are inclusive)."""
        condition = "owner_id = :owner"
        values: dict[str, Any] = {":owner": owner_id, ":now": now}
        if after and before:
            condition += " AND created_at BETWEEN :after AND :before"
            values.update({":after": after, ":before": before})
        elif after:
            condition += " AND created_at >= :after"
            values[":after"] = after
        elif before:
            condition += " AND created_at <= :before"
            values[":before"] = before
        filters = "expires_at > :now AND attribute_not_exists(erase_requested_at)"
        names: dict[str, str] = {}
        if status:
            filters += " AND #status = :status"
            values[":status"] = status
            names["#status"] = "status"
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": condition,
            "FilterExpression": filters,
            "ExpressionAttributeValues": to_item(values),
            "ScanIndexForward": False,
        }
        if names:
            query["ExpressionAttributeNames"] = names
        return query

    def ping(self) -> None:
        """One cheap read (half a read unit) that proves the table answers; raises if it does not."""
        self.client.get_item(TableName=self.table_name, Key={"job_id": {"S": HEALTH_PROBE_KEY}})
