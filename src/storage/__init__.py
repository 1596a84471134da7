"""Storage layer: every boto3 call to the tables and buckets, and their error translation.

``Stores`` is what the dependency setup (``api.dependencies``) builds once per container; services are
given the stores they use, one by one.
"""

from __future__ import annotations

from typing import Any

from storage.blueprint_store import BlueprintStore
from storage.cache_store import CacheStore
from storage.idempotency_store import IdempotencyStore
from storage.job_erasure import JobErasure
from storage.jobs_table import JobsTable
from storage.lookups import Lookups
from storage.preview_cache import PreviewCache
from storage.rate_limits import RateLimitStore
from storage.upload_claims import UploadClaims
from storage.upload_store import UploadStore


class Stores:
    """The API's tables and buckets (clients inside are created lazily). The jobs table holds four kinds
    of item, each with its own store bound to the same table: job records (``jobs_table``, and their
    erasure marks: ``marks``), upload claims, idempotency records, rate-limit states; and its lookup index
    (``lookups``). The blueprints bucket holds job blueprints and uploads."""

    def __init__(
        self,
        jobs_table: str,
        preview_table: str,
        blueprints_bucket: str,
        cache_bucket: str,
        *,
        dynamodb: Any | None = None,
        s3: Any | None = None,
    ) -> None:
        """The stores of these tables and buckets, on the container's clients (or on ``dynamodb`` and
        ``s3``, when a caller brings its own)."""
        self.jobs_table = JobsTable(jobs_table, dynamodb)
        self.marks = JobErasure(jobs_table, dynamodb)
        self.lookups = Lookups(jobs_table, dynamodb)
        self.claims = UploadClaims(jobs_table, dynamodb)
        self.idempotency = IdempotencyStore(jobs_table, dynamodb)
        self.rate_limits = RateLimitStore(jobs_table, dynamodb)
        self.previews = PreviewCache(preview_table, dynamodb, jobs_table=jobs_table)
        self.blueprints = BlueprintStore(blueprints_bucket, s3)
        self.uploads = UploadStore(blueprints_bucket, s3)
        self.cache = CacheStore(cache_bucket, s3)
