"""Storage layer: every boto3 call to the tables and buckets, and their error translation."""

from __future__ import annotations

from dataclasses import dataclass

from storage.blueprint_store import BlueprintStore
from storage.cache_store import CacheStore
from storage.idempotency_store import IdempotencyStore
from storage.jobs_table import JobsTable
from storage.preview_cache import PreviewCache
from storage.upload_store import UploadStore


@dataclass(frozen=True)
class Stores:
    """The API's tables and buckets, built once per container (clients inside are created lazily)."""

    jobs: JobsTable
    blueprints: BlueprintStore
    uploads: UploadStore
    cache: CacheStore
    previews: PreviewCache
    idempotency: IdempotencyStore

    @classmethod
    def from_names(cls, jobs_table: str, preview_table: str, blueprints_bucket: str, cache_bucket: str) -> Stores:
        return cls(
            jobs=JobsTable(jobs_table),
            blueprints=BlueprintStore(blueprints_bucket),
            uploads=UploadStore(blueprints_bucket),
            cache=CacheStore(cache_bucket),
            previews=PreviewCache(preview_table),
            idempotency=IdempotencyStore(jobs_table),
        )
