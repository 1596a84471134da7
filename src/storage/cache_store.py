"""The S3 cache bucket: job results and client feedback, as JSON objects.

``cache/results/{job_id}/result.json`` holds a completed job's result (clients fetch it through a
short-lived presigned GET); ``feedback/{job_id}/{feedback_id}.json`` holds each piece of feedback.
"""

from __future__ import annotations

import json
from typing import Any

from storage.base import BucketBound
from utils import retry


def result_key(job_id: str) -> str:
    return f"cache/results/{job_id}/result.json"


def feedback_key(job_id: str, feedback_id: str) -> str:
    return f"feedback/{job_id}/{feedback_id}.json"


class CacheStore(BucketBound):
    def put_json(self, key: str, document: Any) -> None:
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        retry.call(
            "s3.put_object",
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json; charset=utf-8"
            ),
        )

    def presign_get(self, key: str, expires_in: int) -> str:
        """A URL anyone holding it can GET the object with, for ``expires_in`` seconds (signing is local)."""
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
            )
        )
