"""Every version of every object under a key prefix, deleted for good: how an erasure empties a job's
prefixes in the versioned buckets (a plain ``DeleteObject`` there only hides an object behind a delete
marker; the data stays in the noncurrent version).

One prefix at a time: list up to 1,000 versions and delete markers (``ListObjectVersions``), delete
exactly those (``DeleteObjects`` with each ``VersionId``), and list again while S3 says there are more.
Idempotent, so an interrupted erasure resumes by running it again: a version already deleted is not
listed again, and S3 answers a delete of a version that is gone as deleted. A ``DeleteObjects`` whose
answer was lost is recognised by its effect (none of its versions is listed any more).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from storage.base import BucketBound, conditional_write
from utils import retry

#: ``DeleteObjects`` takes at most this many keys, ``ListObjectVersions`` answers at most this many.
BATCH = 1000


def _listing(bucket: BucketBound, prefix: str) -> tuple[list[dict[str, str]], int, bool]:
    """The first page of versions under ``prefix``: ``(objects to delete, stored versions among them,
    more to come)``. Delete markers are deleted too (their key names the file) but hold no content."""
    page: dict[str, Any] = retry.call(
        "s3.list_object_versions",
        lambda: bucket.client.list_object_versions(Bucket=bucket.bucket, Prefix=prefix, MaxKeys=BATCH),
    )
    versions = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", [])]
    markers = [{"Key": m["Key"], "VersionId": m["VersionId"]} for m in page.get("DeleteMarkers", [])]
    return versions + markers, len(versions), bool(page.get("IsTruncated"))


def _refused_entries(response: dict[str, Any]) -> None:
    """``DeleteObjects`` answers 200 and lists what it could not delete: raise the first as an AWS error
    (a throttle or 5xx of one key is retried like the call's own, anything else is not)."""
    errors = response.get("Errors") or []
    if errors:
        code = str(errors[0].get("Code", "InternalError"))
        raise ClientError({"Error": {"Code": code, "Message": "an object was not deleted"}}, "DeleteObjects")


def _delete(bucket: BucketBound, prefix: str, objects: list[dict[str, str]]) -> None:
    def write() -> Any:
        response = bucket.client.delete_objects(Bucket=bucket.bucket, Delete={"Objects": objects, "Quiet": True})
        _refused_entries(response)
        return response

    def gone() -> bool | None:
        left, _, _ = _listing(bucket, prefix)
        named = {(o["Key"], o["VersionId"]) for o in objects}
        return True if not any((o["Key"], o["VersionId"]) in named for o in left) else None

    conditional_write("s3.delete_objects", write, done=lambda _: True, refused=lambda r: True, landed=gone, refusals=())


def erase_prefix(bucket: BucketBound, prefix: str) -> int:
    """Delete every version and delete marker under ``prefix``; returns how many stored versions (objects
    with content) were deleted. ``prefix`` must end in ``/``: ``blueprints/job_1/`` never matches
    ``blueprints/job_10/``."""
    if not prefix.endswith("/"):
        raise ValueError("an erasure prefix ends in '/'")
    deleted = 0
    while True:
        objects, stored, more = _listing(bucket, prefix)
        if not objects:
            return deleted
        _delete(bucket, prefix, objects)
        deleted += stored
        if not more:
            return deleted
