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

from storage.base import BucketBound, Refusal, conditional_write, ignore, is_not_found
from storage.versions import erase_prefix
from utils import retry

#: The tag a blueprint gets when its job reaches a final state; the bucket's lifecycle rule
#: ``expire-final-blueprints`` (template.yaml) expires objects that carry it.
RETENTION_TAG = {"Key": "retention", "Value": "final"}


def blueprint_prefix(job_id: str) -> str:
    return f"blueprints/{job_id}/"


def blueprint_key(job_id: str, filename: str) -> str:
    return blueprint_prefix(job_id) + filename


class BlueprintKeyTaken(Exception):
    """An object already exists under the key (a new job id must be drawn)."""


class BlueprintStore(BucketBound):
    def put_new(self, key: str, body: bytes, content_type: str, sha256_digest: bytes) -> None:
        """Store ``body`` under ``key`` unless something is there already (``BlueprintKeyTaken``)."""
        checksum = base64.b64encode(sha256_digest).decode()
        sha256_hex = sha256_digest.hex()

        def refused(refusal: Refusal) -> None:
            # A retried put whose first attempt landed finds its own bytes: that is success.
            if self.stored_sha256(key) != sha256_hex:
                raise BlueprintKeyTaken(key) from refusal.error

        conditional_write(
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
            done=ignore,
            refused=refused,
            landed=lambda: self.stored_sha256(key) == sha256_hex or None,
            refusals=("PreconditionFailed", "ConditionalRequestConflict"),
        )

    def tag_final(self, key: str) -> bool:
        """Tag the blueprint for the final-state lifecycle rule; False if there is no object at ``key`` (a
        blueprint already deleted). Tagging adds no version: the tag set is the current version's."""
        tagging = {"TagSet": [RETENTION_TAG]}
        try:
            retry.call(
                "s3.put_object_tagging",
                lambda: self.client.put_object_tagging(Bucket=self.bucket, Key=key, Tagging=tagging),
            )
        except ClientError as exc:
            if is_not_found(exc):
                return False
            raise
        return True

    def erase_job(self, job_id: str) -> int:
        """Delete every version of the job's blueprint (``storage.versions``); how many were stored."""
        return erase_prefix(self, blueprint_prefix(job_id))

    def ping(self) -> None:
        """``HeadBucket``: proves the bucket answers and we may list it; raises if not."""
        self.client.head_bucket(Bucket=self.bucket)
