"""The workers' dependency setup, built once per container: the one workers module that knows the storage
layer (as ``api.dependencies`` is for the api)."""

from __future__ import annotations

import threading

from services.erasure import ErasureService
from services.previews import PreviewService
from services.retention import BlueprintRetention
from services.sweep import Sweep
from storage import Stores
from utils import logging as log
from utils import metrics
from utils.settings import Settings, get_settings


class WorkerDependencies:
    def __init__(self, settings: Settings, stores: Stores | None = None) -> None:
        metrics.configure(
            namespace=settings.metrics_namespace, service=settings.metrics_service, environment=settings.environment
        )
        self.settings = settings
        self.stores = s = stores or Stores(
            settings.jobs_table, settings.preview_cache_table, settings.blueprints_bucket, settings.cache_bucket
        )
        days = settings.blueprint_retention_days
        self.retention = BlueprintRetention(s.blueprints, s.uploads, s.jobs_table, s.marks, days)
        self.erasure = ErasureService(
            s.jobs_table,
            s.marks,
            blueprints=s.blueprints,
            uploads=s.uploads,
            cache=s.cache,
            previews=PreviewService(s.previews),
            idempotency=s.idempotency,
            claims=s.claims,
        )

    def sweep(self) -> Sweep:
        return Sweep(self.stores.lookups, self.erasure, self.retention)


_dependencies: WorkerDependencies | None = None
_lock = threading.Lock()


def get() -> WorkerDependencies:
    """The container's dependencies, built on first use."""
    global _dependencies
    if _dependencies is None:
        with _lock:
            if _dependencies is None:
                settings = get_settings()
                log.set_level(settings.log_level)
                _dependencies = WorkerDependencies(settings)
    return _dependencies


def reset() -> None:
    """Forget the container's state (tests, after changing settings)."""
    global _dependencies
    with _lock:
        _dependencies = None
    get_settings.cache_clear()
    metrics.reset()
