"""The workers' dependency setup: what each worker function needs, built once per container. The one
module of ``workers`` that knows the storage layer (as ``api.dependencies`` is for the API).

Each worker reads only the settings it uses (``utils.worker_settings.WorkerSettings``), so its function is given
only those names by template.yaml, and its role only those resources.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from services.erasure import ErasureService
from services.job_events import JobEvents
from services.job_service import JobService
from services.previews import PreviewService
from services.retention import BlueprintRetention
from services.runtime_config import RuntimeConfig
from services.sweep import Sweep
from services.webhook_delivery import RetrySchedule, SecretCache, WebhookDelivery
from services.webhook_fanout import WebhookFanout
from storage import Stores
from storage.delivery_ledger import DeliveryLedger
from storage.delivery_queue import DeliveryQueue
from storage.event_bus import EventBus
from storage.secret_box import SecretBox
from storage.webhook_store import WebhookStore
from utils import logging as log
from utils import metrics
from utils.settings import get_worker_settings
from utils.worker_settings import WorkerSettings

T = TypeVar("T")
_built: dict[str, object] = {}
_lock = threading.Lock()
#: What the pipeline and the sweep read: the jobs table, the preview cache, both buckets, the retention.
_JOB_DATA = ("JOBS_TABLE", "PREVIEW_CACHE_TABLE", "BLUEPRINTS_BUCKET", "CACHE_BUCKET", "BLUEPRINT_RETENTION_DAYS")


def _configure(settings: WorkerSettings) -> None:
    log.set_level(settings.log_level)
    metrics.configure(
        namespace=settings.metrics_namespace, service=settings.metrics_service, environment=settings.environment
    )


def _stores(settings: WorkerSettings) -> Stores:
    return Stores(settings.jobs_table, settings.preview_cache_table, settings.blueprints_bucket, settings.cache_bucket)


def _retention(stores: Stores, settings: WorkerSettings) -> BlueprintRetention:
    s = stores
    return BlueprintRetention(s.blueprints, s.uploads, s.jobs_table, s.marks, settings.blueprint_retention_days)


def job_events(settings: WorkerSettings) -> JobEvents:
    """The stream consumer's service: job events onto the bus."""
    return JobEvents(EventBus(settings.event_bus_name))


def job_service(settings: WorkerSettings) -> JobService:
    """The pipeline's job service: the jobs table, the result's bucket, the preview cache, and the
    blueprint's retention (a final transition brings its deletion forward and tags it). The runtime
    configuration (Parameter Store) only shapes what clients see (presigned URLs' lifetime), so the
    pipeline runs on its defaults and is not given Parameter Store."""
    s = _stores(settings)
    previews = PreviewService(s.previews)
    return JobService(s.jobs_table, s.cache, previews, RuntimeConfig(), retention=_retention(s, settings))


def sweep(settings: WorkerSettings) -> Sweep:
    """The hourly sweep's service: erasures nobody finished, blueprints whose retention ended."""
    s = _stores(settings)
    erasure = ErasureService(
        s.jobs_table,
        s.marks,
        blueprints=s.blueprints,
        uploads=s.uploads,
        cache=s.cache,
        previews=PreviewService(s.previews),
        idempotency=s.idempotency,
        claims=s.claims,
    )
    return Sweep(s.lookups, erasure, _retention(s, settings))


def webhook_fanout(settings: WorkerSettings) -> WebhookFanout:
    """The fan-out: the owner's webhooks (the jobs table), the deliveries queue."""
    return WebhookFanout(WebhookStore(settings.jobs_table), DeliveryQueue(settings.webhook_deliveries_queue_url))


def webhook_delivery(settings: WorkerSettings) -> WebhookDelivery:
    """The delivery worker: the webhooks and the delivery ledger (the jobs table), the secrets' key, the
    deliveries queue (to put a failed delivery off), the retry schedule."""
    return WebhookDelivery(
        WebhookStore(settings.jobs_table),
        DeliveryLedger(settings.jobs_table),
        SecretCache(SecretBox(settings.webhook_secrets_key)),
        DeliveryQueue(settings.webhook_deliveries_queue_url),
        RetrySchedule.of(settings.webhook_retry_delays),
        allow_loopback=settings.webhook_allow_loopback,
    )


#: What each worker needs from its function's environment, and how its service is built. (Optional
#: variables a worker reads, such as WEBHOOK_RETRY_DELAYS, are not listed: they have defaults.)
WORKERS: dict[str, tuple[tuple[str, ...], Callable[[WorkerSettings], object]]] = {
    "job_events": (("EVENT_BUS_NAME",), job_events),
    "job_service": (_JOB_DATA, job_service),
    "sweep": (_JOB_DATA, sweep),
    "webhook_fanout": (("JOBS_TABLE", "WEBHOOK_DELIVERIES_QUEUE_URL"), webhook_fanout),
    "webhook_delivery": (
        ("JOBS_TABLE", "WEBHOOK_DELIVERIES_QUEUE_URL", "WEBHOOK_SECRETS_KEY", "WEBHOOK_ALLOW_LOOPBACK"),
        webhook_delivery,
    ),
}


def get(name: str, kind: type[T]) -> T:
    """The container's ``name`` service (``job_events``, ``job_service``, ``sweep``), built on first use."""
    built = _built.get(name)
    if built is None:
        with _lock:
            built = _built.get(name)
            if built is None:
                required, build = WORKERS[name]
                settings = get_worker_settings(required)
                _configure(settings)
                built = _built[name] = build(settings)
    if not isinstance(built, kind):
        raise TypeError(f"{name} is a {type(built).__name__}, not a {kind.__name__}")
    return built


def reset() -> None:
    """Forget what was built (tests and the local poller use this after changing the environment)."""
    with _lock:
        _built.clear()
    metrics.reset()
