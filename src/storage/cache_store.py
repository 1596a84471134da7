"""The S3 cache bucket: job results and client feedback, as JSON objects.

``cache/results/{job_id}/result.json`` holds a completed job's result (clients fetch it through a
short-lived presigned GET); ``feedback/{job_id}/{feedback_id}.json`` holds each piece of feedback.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from storage.base import BucketBound
from storage.versions import erase_prefix
from utils import retry


def result_key(job_id: str) -> str:
    return f"cache/results/{job_id}/result.json"


def feedback_key(job_id: str, feedback_id: str) -> str:
    return f"feedback/{job_id}/{feedback_id}.json"


def job_prefixes(job_id: str) -> tuple[str, str]:
    """Where a job's objects in this bucket live: its result, its feedback."""
    return f"cache/results/{job_id}/", f"feedback/{job_id}/"


class CacheStore(BucketBound):
    def put_json(self, key: str, document: Any) -> str | None:
        """Store ``document``; returns the version S3 gave it (None in an unversioned bucket), so a writer
        that must take it back deletes exactly its own write (``delete_version``)."""
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        response = retry.call(
            "s3.put_object",
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json; charset=utf-8"
            ),
        )
        version = response.get("VersionId")
        return str(version) if version else None

    def delete_version(self, key: str, version_id: str | None) -> None:
        """Delete one version for good (a plain delete without one: it leaves the data in the noncurrent
        version of a versioned bucket)."""
        if version_id is None:
            self.delete(key)
            return
        retry.call(
            "s3.delete_object",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version_id),
        )

    def feedback_of(self, job_id: str) -> list[Any]:
        """Every piece of feedback stored for the job (an export for its client; the function never lists)."""
        listing = retry.call(
            "s3.list_objects_v2",
            lambda: self.client.list_objects_v2(Bucket=self.bucket, Prefix=job_prefixes(job_id)[1]),
        )
        documents = []
        for entry in listing.get("Contents", []):
            read = functools.partial(self.client.get_object, Bucket=self.bucket, Key=entry["Key"])
            body = retry.call("s3.get_object", read)
            documents.append(json.loads(body["Body"].read()))
        return sorted(documents, key=lambda document: str(document.get("created_at", "")))

    def erase_job(self, job_id: str) -> int:
        """Delete every version of the job's result and feedback (``storage.versions``); how many."""
        return sum(erase_prefix(self, prefix) for prefix in job_prefixes(job_id))

    def presign_get(self, key: str, expires_in: int) -> str:
        """A URL anyone holding it can GET the object with, for ``expires_in`` seconds (signing is local)."""
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )
        )
