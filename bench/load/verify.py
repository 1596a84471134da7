"""After the run: every check that nothing was lost, doubled or left behind, through the API and in storage."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from bench.load.connection import Connection
from bench.load.ledger import Ledger, Tracked
from bench.load.pipeline import Resources
from bench.load.stats import Stats
from models.ids import JOB_ID


@dataclass
class Verification:
    lines: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)


def _scan_table(ddb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page.get("Items", []))
    return items


def _list_bucket(s3: Any, bucket: str) -> dict[str, int]:
    objects: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objects.update({o["Key"]: int(o["Size"]) for o in page.get("Contents", [])})
    return objects


def _attr(item: dict[str, Any], name: str) -> str:
    value = item.get(name, {})
    return str(value.get("S") or value.get("N") or "") if isinstance(value, dict) else ""


class _Pool:
    """Per-thread keep-alive connections (one per API key) for the verification's parallel reads."""

    def __init__(self, api: tuple[str, int], stats: Stats) -> None:
        self.api, self.stats = api, stats
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    def get(self, api_key: str) -> Connection:
        conns: dict[str, Connection] = self._local.__dict__.setdefault("conns", {})
        if api_key not in conns:
            conns[api_key] = Connection(self.api[0], self.api[1], self.stats, api_key)
            with self._lock:
                self._all.append(conns[api_key])
        return conns[api_key]

    def close(self) -> None:
        for conn in self._all:
            conn.close()


class Verifier:
    """Every check after the run; problems go to ``stats``, figures and one line per check to ``out``."""

    def __init__(
        self, api: tuple[str, int], keys: list[str], resources: Resources, ledger: Ledger, stats: Stats
    ) -> None:
        self.keys, self.resources, self.ledger, self.stats = keys, resources, ledger, stats
        self.jobs = dict(ledger.jobs)
        self.pool = _Pool(api, stats)
        self.out = Verification()
        self.s3 = resources.client("s3")
        self.records: dict[str, dict[str, Any]] = {}

    def run(self) -> Verification:
        try:
            self.through_the_api()
            self.jobs_table()
            self.blueprints_bucket()
            self.cache_bucket()
            self.full_lists()
        finally:
            self.pool.close()
        return self.out

    def problem(self, message: str) -> None:
        self.stats.problem(message)

    # 1. every 201 job through the API: 200, the hash and size sent, the expected status and feedback count
    def _check_job(self, job: Tracked) -> bool:
        reply = self.pool.get(job.api_key).call("verify_get", "GET", f"/api/v1/jobs/{job.job_id}")
        if reply is None or reply.status != 200 or not isinstance(reply.data, dict):
            self.problem(f"lost: job {job.job_id} ({job.kind}) answered {reply.outcome if reply else 'nothing'}")
            return False
        data, expected = reply.data, job.expected_status()
        checks = (
            (
                data.get("blueprint_hash") == job.sha256,
                f"blueprint_hash {data.get('blueprint_hash')} != sent {job.sha256}",
            ),
            (data.get("blueprint_size") == job.size, f"blueprint_size {data.get('blueprint_size')} != sent {job.size}"),
            (data.get("status") == expected, f"status {data.get('status')} != expected {expected}"),
            (
                int(data.get("feedback_count") or 0) == job.feedback,
                f"feedback_count {data.get('feedback_count')} != {job.feedback} feedback 201s",
            ),
            (
                not (job.cancelled and job.pipeline in ("completed", "failed")),
                f"both a cancel and a {job.pipeline} won",
            ),
            (
                not job.cancel_refused or job.pipeline in ("completed", "failed"),
                f"a cancel was refused as already completed, but the pipeline left it {job.pipeline or 'unprocessed'}",
            ),
            (not (job.pipeline or "").startswith("unexpected"), f"the pipeline met {job.pipeline}"),
        )
        wrong = [message for ok, message in checks if not ok]
        for message in wrong:
            self.problem(f"job {job.job_id} ({job.kind}): {message}")
        return not wrong

    def through_the_api(self) -> None:
        jobs = self.jobs
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="verify") as executor:
            good = sum(executor.map(self._check_job, jobs.values()))
        kinds = Counter(job.kind for job in jobs.values())
        statuses = Counter(job.expected_status() for job in jobs.values())
        self.out.figures.update(jobs_created=len(jobs), jobs_verified=good)
        self.out.lines.append(
            f"jobs acknowledged with 201: {len(jobs)} ("
            + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
            + f"); retrievable with the sent hash and size, the expected status and feedback count: {good}/{len(jobs)}"
        )
        self.out.lines.append("  expected statuses: " + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())))

    # 2. the jobs table, scanned through the moto endpoint: exactly the acknowledged jobs
    def jobs_table(self) -> None:
        other_items: Counter[str] = Counter()
        for item in _scan_table(self.resources.client("dynamodb"), self.resources.jobs_table):
            key = _attr(item, "job_id")
            if "item_type" not in item and JOB_ID.matches(key):
                self.records[key] = item
            else:
                other_items[_attr(item, "item_type") or key.split("#", 1)[0]] += 1
        phantoms = sorted(set(self.records) - set(self.jobs))
        missing = sorted(set(self.jobs) - set(self.records))
        for job_id in phantoms:
            self.problem(f"phantom: the table holds job {job_id}, which no client got a 201 for")
        for job_id in missing:
            self.problem(f"lost: no table record for job {job_id}")
        self.out.figures.update(table_job_records=len(self.records), phantoms=len(phantoms), missing=len(missing))
        others = ", ".join(f"{kind} {n}" for kind, n in sorted(other_items.items())) or "none"
        self.out.lines.append(
            f"jobs table: {len(self.records)} job records ({len(phantoms)} unacknowledged, {len(missing)} missing); "
            f"other items: {others}"
        )

    # 3. the blueprints bucket: one object per record, at its key, with the bytes sent; no orphans
    def _stored_bytes_ok(self, job: Tracked) -> bool:
        key = _attr(self.records[job.job_id], "blueprint_s3_key")
        try:
            body = self.s3.get_object(Bucket=self.resources.blueprints_bucket, Key=key)
        except ClientError as exc:  # a missing object is reported with the listing
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return False
            raise
        if hashlib.sha256(body["Body"].read()).hexdigest() != job.sha256:
            self.problem(f"job {job.job_id}: the stored bytes differ from the bytes sent")
            return False
        return True

    def blueprints_bucket(self) -> None:
        objects = _list_bucket(self.s3, self.resources.blueprints_bucket)
        blueprints: dict[str, list[str]] = {}
        uploads_left: list[str] = []
        for key in objects:
            parts = key.split("/")
            if parts[0] == "blueprints" and len(parts) == 3:
                blueprints.setdefault(parts[1], []).append(key)
            elif parts[0] == "uploads":
                uploads_left.append(key)
            else:
                self.problem(f"unexpected object in the blueprints bucket: {key}")
        orphans = sorted(job_id for job_id in blueprints if job_id not in self.records)
        for job_id in orphans:
            self.problem(f"orphan: blueprint object(s) {blueprints[job_id]} without a job record")
        without_object = 0
        for job_id, record in self.records.items():
            found, expected_key = blueprints.get(job_id, []), _attr(record, "blueprint_s3_key")
            if found != [expected_key]:
                without_object += not found
                self.problem(f"job {job_id}: blueprint objects {found}, its record says {expected_key}")
            elif objects[expected_key] != int(_attr(record, "blueprint_size") or -1):
                self.problem(
                    f"job {job_id}: object of {objects[expected_key]} bytes, record {_attr(record, 'blueprint_size')}"
                )
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="verify-s3") as executor:
            stored = [job for job in self.jobs.values() if job.job_id in self.records]
            bytes_ok = sum(executor.map(self._stored_bytes_ok, stored))
        finalised = {job.upload_id for job in self.jobs.values() if job.upload_id}
        left_by_finalised = [key for key in uploads_left if key.split("/")[1] in finalised]
        for key in left_by_finalised:
            self.problem(f"upload object {key} left behind after its job was created")
        n_objects = sum(len(keys) for keys in blueprints.values())
        self.out.figures.update(
            blueprint_objects=n_objects,
            orphans=len(orphans),
            records_without_object=without_object,
            stored_bytes_ok=bytes_ok,
        )
        self.out.lines.append(
            f"blueprints bucket: {n_objects} blueprint objects for {len(self.records)} job records; orphans "
            f"{len(orphans)}, records without an object {without_object}; stored bytes = sent bytes: "
            f"{bytes_ok}/{len(self.jobs)}"
        )
        self.out.lines.append(
            f"  uploads/ objects left: {len(uploads_left)} ({len(left_by_finalised)} of uploads that became jobs)"
        )

    # 4. the cache bucket: results for exactly the completed jobs, one document per feedback 201
    def cache_bucket(self) -> None:
        cache = _list_bucket(self.s3, self.resources.cache_bucket)
        results = {key.split("/")[2] for key in cache if key.startswith("cache/results/")}
        documents = Counter(key.split("/")[1] for key in cache if key.startswith("feedback/"))
        completed = {job.job_id for job in self.jobs.values() if job.expected_status() == "completed"}
        for job_id in sorted(results - completed):
            self.problem(f"job {job_id}: a result object, but the job did not complete")
        for job_id in sorted(completed - results):
            self.problem(f"job {job_id}: completed without its result object")
        for job in self.jobs.values():
            if documents.get(job.job_id, 0) != job.feedback:
                self.problem(
                    f"job {job.job_id}: {documents.get(job.job_id, 0)} feedback documents, {job.feedback} 201s"
                )
        feedback = sum(job.feedback for job in self.jobs.values())
        self.out.figures.update(results=len(results), completed=len(completed), feedback=feedback)
        self.out.lines.append(
            f"cache bucket: {len(results)} results for {len(completed)} completed jobs; "
            f"{sum(documents.values())} feedback documents for {feedback} feedback 201s"
        )

    # 5. each client's complete list, paged with cursors, is exactly its own jobs
    def full_lists(self) -> None:
        lists_ok = 0
        for number, api_key in enumerate(self.keys, start=1):
            conn = self.pool.get(api_key)
            seen: list[str] = []
            cursor: str | None = None
            for _ in range(len(self.jobs) // 100 + 5):
                path = "/api/v1/jobs?limit=100" + (f"&cursor={quote(cursor)}" if cursor else "")
                reply = conn.call("verify_list", "GET", path)
                if reply is None or reply.status != 200 or not isinstance(reply.data, dict):
                    break
                seen.extend(str(job.get("job_id")) for job in reply.data.get("jobs") or [])
                cursor = reply.data.get("next_cursor")
                if not cursor:
                    break
            own, distinct = self.ledger.of_key(api_key), set(seen)
            if len(seen) != len(distinct) or distinct != own:
                self.problem(
                    f"client {number}'s full list: {len(seen)} entries ({len(distinct)} distinct), "
                    f"{len(distinct - own)} not its own, {len(own - distinct)} of its {len(own)} jobs missing"
                )
            else:
                lists_ok += 1
        self.out.figures.update(full_lists_ok=lists_ok)
        self.out.lines.append(
            f"lists: {lists_ok}/{len(self.keys)} clients' full paged lists are exactly their own jobs"
        )
