"""Large uploads through S3: presigned POSTs to ``uploads/{upload_id}/{filename}`` and their finalisation.

A client posts the file straight to S3 with a presigned POST whose policy pins the key, the content type,
the owner metadata and the size range. Nothing about an upload is stored until the client finalises it:
the object itself (its key, size, content type, metadata and ETag) is the upload's record. Every read
and copy of the object is pinned to the ETag that was checked, so a file replaced mid-finalisation (the
presigned POST stays valid for minutes) can never slip in unchecked.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from storage.base import BucketBound, Refusal, conditional_write, error_code, ignore
from storage.versions import erase_prefix
from utils import retry

UPLOADS_PREFIX = "uploads/"
READ_CHUNK_BYTES = 1024 * 1024


def upload_prefix(upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/"


class UploadedObject:
    """What S3 says of an uploaded object (its key, size, content type, ETag and metadata)."""

    __slots__ = ("content_type", "etag", "key", "metadata", "size")

    def __init__(self, *, key: str, size: int, content_type: str | None, etag: str, metadata: dict[str, str]) -> None:
        self.key = key
        self.size = size
        self.content_type = content_type
        self.etag = etag
        self.metadata = metadata

    @property
    def filename(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def upload_id(self) -> str:
        return self.key[len(UPLOADS_PREFIX) :].split("/", 1)[0]


class ObjectChanged(Exception):
    """The object no longer matches the ETag it was checked with (it was replaced or removed)."""


class UploadStore(BucketBound):
    def presign_post(
        self, key: str, content_type: str, max_bytes: int, expires_in: int, metadata: dict[str, str]
    ) -> dict[str, Any]:
        """``{"url", "fields"}`` for a browser-style POST of one file of 1..max_bytes bytes to ``key``."""
        fields = {"Content-Type": content_type, **{f"x-amz-meta-{k}": v for k, v in metadata.items()}}
        conditions: list[Any] = [["content-length-range", 1, max_bytes]]
        conditions.extend({name: value} for name, value in fields.items())
        return dict(
            self.client.generate_presigned_post(
                self.bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
            )
        )

    def find(self, upload_id: str) -> UploadedObject | None:
        """The object posted for ``upload_id``, or None if there is none (never posted, expired, used)."""
        listing = retry.call(
            "s3.list_objects_v2",
            lambda: self.client.list_objects_v2(Bucket=self.bucket, Prefix=upload_prefix(upload_id), MaxKeys=2),
        )
        contents = listing.get("Contents", [])
        if len(contents) != 1:
            return None
        key = contents[0]["Key"]
        head = self.head(key)
        if head is None:
            return None
        return UploadedObject(
            key=key,
            size=int(head["ContentLength"]),
            content_type=head.get("ContentType"),
            etag=str(head["ETag"]),
            metadata={str(k).lower(): str(v) for k, v in head.get("Metadata", {}).items()},
        )

    def owned_by(self, client_id: str) -> list[str]:
        """The ids of the uploads ``client_id`` posted that are still stored, in any version (an operator's
        listing of all of ``uploads/``, bounded by its one-day lifecycle rule; the function never lists it).
        The owner is each object's ``owner`` metadata, pinned by the presigned POST's policy."""
        owned: dict[str, bool] = {}
        pages = self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=UPLOADS_PREFIX)
        for page in pages:
            for version in page.get("Versions", []):
                upload_id = version["Key"][len(UPLOADS_PREFIX) :].split("/", 1)[0]
                if owned.get(upload_id):
                    continue
                read = functools.partial(
                    self.client.head_object, Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"]
                )
                head = retry.call("s3.head_object", read)
                owned[upload_id] = {k.lower(): v for k, v in head.get("Metadata", {}).items()}.get("owner") == client_id
        return sorted(upload_id for upload_id, mine in owned.items() if mine)

    def erase_upload(self, upload_id: str) -> int:
        """Delete every version of the upload's object (``storage.versions``); how many were stored."""
        return erase_prefix(self, upload_prefix(upload_id))

    def read_head(self, upload: UploadedObject, length: int) -> bytes:
        """The object's first ``length`` bytes (a ranged GET pinned to the checked ETag)."""
        body = self._get(upload, Range=f"bytes=0-{length - 1}")
        try:
            return bytes(body.read())
        finally:
            body.close()

    def sha256(self, upload: UploadedObject, max_bytes: int) -> tuple[bytes, int]:
        """SHA-256 and length of the object, streamed in 1 MB chunks (constant memory).

        Stops with ``ObjectChanged`` as soon as more than ``max_bytes`` arrive: the size was checked, but
        we never trust one check.
        """
        digest = hashlib.sha256()
        size = 0
        for chunk in self._chunks(upload):
            size += len(chunk)
            if size > max_bytes:
                raise ObjectChanged(upload.key)
            digest.update(chunk)
        return digest.digest(), size

    def _chunks(self, upload: UploadedObject) -> Iterator[bytes]:
        body = self._get(upload)
        try:
            yield from body.iter_chunks(READ_CHUNK_BYTES)
        finally:
            body.close()

    def _get(self, upload: UploadedObject, **extra: Any) -> Any:
        try:
            response = retry.call(
                "s3.get_object",
                lambda: self.client.get_object(Bucket=self.bucket, Key=upload.key, IfMatch=upload.etag, **extra),
            )
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "NoSuchKey", "404", "412"):
                raise ObjectChanged(upload.key) from exc
            raise
        return response["Body"]

    def copy(self, upload: UploadedObject, target_key: str, content_type: str, sha256_hex: str) -> None:
        """Server-side copy of the checked object (same ETag) to ``target_key``, with our metadata.

        ``ObjectChanged`` if the source changed or the target exists. The target is looked at first as well
        as guarded by ``If-None-Match``: emulators ignore that header on copies, and another job's
        blueprint must never be overwritten (and then deleted by our roll-back). A copy whose response was
        lost is found by its effect: the target carrying this very digest (its retry failing a
        precondition, or retries running out) means the copy is done.
        """
        if self.head(target_key) is not None:
            raise ObjectChanged(target_key)

        def refused(refusal: Refusal) -> None:
            if self.stored_sha256(target_key) != sha256_hex:  # else: an earlier attempt of this copy landed
                # Either precondition: the source changed, or the target exists. Both mean "retry".
                raise ObjectChanged(upload.key) from refusal.error

        conditional_write(
            "s3.copy_object",
            lambda: self.client.copy_object(
                Bucket=self.bucket,
                Key=target_key,
                CopySource={"Bucket": self.bucket, "Key": upload.key},
                CopySourceIfMatch=upload.etag,
                IfNoneMatch="*",  # never over another job's blueprint
                MetadataDirective="REPLACE",
                ContentType=content_type,
                Metadata={"sha256": sha256_hex},
            ),
            done=ignore,
            refused=refused,
            landed=lambda: self.stored_sha256(target_key) == sha256_hex or None,
            refusals=("PreconditionFailed", "NoSuchKey", "412"),
        )
