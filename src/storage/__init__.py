"""Storage layer: every boto3 call to the tables and buckets, and their error translation.

``Stores`` is what the dependency setup (``api.dependencies``) builds once per container; services are
given the stores they use, one by one.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from storage.blueprint_store import BlueprintStore
from storage.cache_store import CacheStore
from storage.job_erasure import JobErasure
from storage.jobs_table import JobsTable
from storage.preview_cache import PreviewCache
from storage.upload_store import UploadStore

if TYPE_CHECKING:
    from storage.idempotency_store import IdempotencyStore
    from storage.lookups import Lookups
    from storage.rate_limits import RateLimitStore
    from storage.upload_claims import UploadClaims
    from storage.webhook_store import WebhookStore


class Stores:
    """The API's tables and buckets (clients inside are created lazily). The jobs table holds five kinds
    of item, each with its own store bound to the same table: job records (``jobs_table``, and their
    erasure marks: ``marks``), upload claims, idempotency records, rate-limit states, clients' webhooks (and
    the workers' delivery ledger); and its lookup index (``lookups``). The blueprints bucket holds job
    blueprints and uploads."""

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
        self._table, self._dynamodb = jobs_table, dynamodb
        self.jobs_table = JobsTable(jobs_table, dynamodb)
        self.marks = JobErasure(jobs_table, dynamodb)
        self.previews = PreviewCache(preview_table, dynamodb, jobs_table=jobs_table)
        self.blueprints = BlueprintStore(blueprints_bucket, s3)
        self.uploads = UploadStore(blueprints_bucket, s3)
        self.cache = CacheStore(cache_bucket, s3)

    # The stores only the POST routes, the webhook routes, the workers and erasure use: built (and their
    # modules imported) on first use, so a container whose first request is a GET does not import them at
    # its cold start.
    @functools.cached_property
    def lookups(self) -> Lookups:
        from storage.lookups import Lookups  # noqa: PLC0415 - see above

        return Lookups(self._table, self._dynamodb)

    @functools.cached_property
    def claims(self) -> UploadClaims:
        from storage.upload_claims import UploadClaims  # noqa: PLC0415 - see above

        return UploadClaims(self._table, self._dynamodb)

    @functools.cached_property
    def idempotency(self) -> IdempotencyStore:
        from storage.idempotency_store import IdempotencyStore  # noqa: PLC0415 - see above

        return IdempotencyStore(self._table, self._dynamodb)

    @functools.cached_property
    def rate_limits(self) -> RateLimitStore:
        from storage.rate_limits import RateLimitStore  # noqa: PLC0415 - see above

        return RateLimitStore(self._table, self._dynamodb)

    @functools.cached_property
    def webhooks(self) -> WebhookStore:
        from storage.webhook_store import WebhookStore  # noqa: PLC0415 - see above

        return WebhookStore(self._table, self._dynamodb)
