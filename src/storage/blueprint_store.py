"""The S3 blueprints bucket: every call to it and its keys.

Objects are written with ``If-None-Match: *`` (never overwrite another job's file) and a SHA-256
checksum S3 verifies on arrival; the hex digest is also kept as ``x-amz-meta-sha256`` so that the
processing pipeline, and a retried write, can tell the object's content without reading it: a put whose
response was lost, found by its retry (``PreconditionFailed``) or after retries ran out, is a success when
the object there has our digest.
Encryption (SSE-S3) is the bucket's default, set in the template.
"""

from __future__ import annotations

import base64

from botocore.exceptions import ClientError

from storage.base import BucketBound, error_code, is_not_found, landed_anyway
from utils import retry
from utils.errors import ServiceUnavailable
from utils.logging import get_logger

logger = get_logger("blueprint_store")


def blueprint_key(job_id: str, filename: str) -> str:
    return f"blueprints/{job_id}/{filename}"


class BlueprintKeyTaken(Exception):
    """An object already exists under the key (a new job id must be drawn)."""


class BlueprintStore(BucketBound):
    def put_new(self, key: str, body: bytes, content_type: str, sha256_digest: bytes) -> None:
        """Store ``body`` under ``key`` unless something is there already (``BlueprintKeyTaken``)."""
        checksum = base64.b64encode(sha256_digest).decode()
        sha256_hex = sha256_digest.hex()
        try:
            retry.call(
                "s3.put_object",
                lambda: self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType=content_type,
                    ChecksumSHA256=checksum,
                    Metadata={"sha256": sha256_hex},
                    IfNoneMatch="*",
                ),
            )
        except ServiceUnavailable as outage:
            landed_anyway(outage, "s3.put_object", lambda: self._stored_sha256(key) == sha256_hex or None)
        except ClientError as exc:
            if error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
            # A retried put whose first attempt landed finds its own bytes: that is success.
            if self._stored_sha256(key) == sha256_hex:
                return
            raise BlueprintKeyTaken(key) from exc

    def _stored_sha256(self, key: str) -> str | None:
        """The digest recorded on the object at ``key``; None if there is no object (or no digest)."""
        try:
            head = retry.call("s3.head_object", lambda: self.client.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        value = head.get("Metadata", {}).get("sha256")
        return str(value) if value is not None else None

    def delete(self, key: str) -> None:
        retry.call("s3.delete_object", lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def ping(self) -> None:
        """``HeadBucket``: proves the bucket answers and we may list it; raises if not."""
        self.client.head_bucket(Bucket=self.bucket)
