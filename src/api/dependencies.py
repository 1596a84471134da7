"""The dependency setup: what a request needs, built once per container. The one api module that knows
the storage layer: it builds the stores and hands each service the ones it uses.

Stores, the runtime configuration's store, authentication and health are built with the container
(clients inside are created lazily, on first use). The services that apply the runtime configuration
are built per request from one reading of it, so every rule in a request sees the same
configuration even when it refreshes (``utils.config``: every 60 s) in the middle of one.

The services only some routes use (create, uploads, list, feedback, erasure, Idempotency-Key, rate limits,
webhooks)
are imported where they are built, on first use: a container whose first request is a GET does not
import them during its cold start (``bench/first_request.py``; each costs its module's import once, on
the first request that needs it, about a millisecond).
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

from services.auth import Authenticator, CursorKeyMissing, has_cursor_key
from services.health import HealthService, Probe, cached, optional, reachable
from services.job_service import JobService
from services.previews import PreviewService
from services.retention import BlueprintRetention
from services.runtime_config import RuntimeConfig, config_store
from storage import Stores
from utils import aws, metrics, secrets
from utils import logging as log
from utils.settings import Settings, get_settings

if TYPE_CHECKING:
    from services.erasure import ErasureService
    from services.feedback_service import FeedbackService
    from services.idempotency import IdempotencyService
    from services.job_creation import JobCreation
    from services.job_listing import JobListing
    from services.rate_limits import RateLimiter
    from services.upload_service import UploadService
    from services.webhooks import WebhookService


class Dependencies:
    def __init__(self, settings: Settings, stores: Stores | None = None) -> None:
        """The container's dependencies for ``settings`` (``stores``: a caller's own, on its own clients)."""
        metrics.configure(
            namespace=settings.metrics_namespace, service=settings.metrics_service, environment=settings.environment
        )
        self.settings = settings
        self.stores = stores or Stores(
            settings.jobs_table, settings.preview_cache_table, settings.blueprints_bucket, settings.cache_bucket
        )
        self._config = config_store(settings)
        # prod never signs cursors with a key derived from public names: without the secret's key it fails.
        fallback = None if settings.environment == "prod" else f"{settings.environment}:{settings.api_keys_secret_name}"
        self.auth = Authenticator(self.api_keys_secret, cursor_fallback=fallback)
        self.health = HealthService(self._health_probes(), prepare=_create_clients)
        self.previews = PreviewService(self.stores.previews)
        s = self.stores
        self.retention = BlueprintRetention(
            s.blueprints, s.uploads, s.jobs_table, s.marks, settings.blueprint_retention_days
        )

    def _health_probes(self) -> dict[str, Probe]:
        """What every request needs (the jobs table, both buckets, the secret, the parameters) and the
        preview cache, which requests do without."""
        s = self.stores
        return {
            "jobs_table": reachable(s.jobs_table.ping),
            "blueprints_bucket": reachable(s.blueprints.ping),
            "cache_bucket": reachable(s.cache.ping),
            "preview_cache": optional(s.previews.ping),
            "secret": self._secret_probe,
            "parameters": cached(self._config.probe),
        }

    def _secret_probe(self) -> str:
        """The secret answers (or its cached keys still serve) and, in prod, holds a cursor-signing key."""
        status = cached(lambda: secrets.get_store().probe(self.settings.api_keys_secret_name))()
        if self.auth.cursor_fallback is None and not has_cursor_key(self.api_keys_secret()):
            raise CursorKeyMissing
        return status

    @functools.cached_property
    def idempotency(self) -> IdempotencyService:
        """The Idempotency-Key service, built on first use (only the POST routes have one)."""
        from services.idempotency import IdempotencyService  # noqa: PLC0415 - see the module docstring

        return IdempotencyService(self.stores.idempotency)

    @functools.cached_property
    def webhooks(self) -> WebhookService:
        """The webhook registrations, built on first use (only the webhook routes have them)."""
        from services.webhooks import WebhookService  # noqa: PLC0415 - see the module docstring
        from storage.secret_box import SecretBox  # noqa: PLC0415 - see the module docstring

        settings = self.settings
        box = SecretBox(settings.webhook_secrets_key) if settings.webhook_secrets_key else None
        return WebhookService(self.stores.webhooks, box, allow_loopback=settings.webhook_allow_loopback)

    def config(self) -> RuntimeConfig:
        """The runtime configuration (Parameter Store, cached)."""
        return self._config.get()

    def api_keys_secret(self) -> dict[str, object]:
        """The API keys secret (Secrets Manager, cached; looked up each time: tests replace the store)."""
        return secrets.get_store().get_json(self.settings.api_keys_secret_name)

    # --------------------------------------------------------------- services bound to one configuration
    def job_service(self, config: RuntimeConfig | None = None) -> JobService:
        s = self.stores
        return JobService(s.jobs_table, s.cache, self.previews, config or self.config(), retention=self.retention)

    def job_creation(self, config: RuntimeConfig | None = None) -> JobCreation:
        from services.job_creation import JobCreation  # noqa: PLC0415 - see the module docstring

        s = self.stores
        return JobCreation(s.jobs_table, s.blueprints, self.previews, config or self.config())

    def upload_service(self, config: RuntimeConfig | None = None) -> UploadService:
        from services.upload_service import UploadService  # noqa: PLC0415 - see the module docstring

        config = config or self.config()
        return UploadService(self.job_creation(config), self.stores.uploads, self.stores.claims, config)

    def feedback_service(self, config: RuntimeConfig | None = None) -> FeedbackService:
        from services.feedback_service import FeedbackService  # noqa: PLC0415 - see the module docstring

        return FeedbackService(self.job_service(config), self.stores.jobs_table, self.stores.cache)

    def job_listing(self, config: RuntimeConfig | None = None) -> JobListing:
        from services.job_listing import JobListing  # noqa: PLC0415 - see the module docstring

        return JobListing(self.stores.jobs_table, self.job_service(config), self.auth.cursor_key)

    def rate_limiter(self, config: RuntimeConfig | None = None) -> RateLimiter:
        from services.rate_limits import RateLimiter  # noqa: PLC0415 - see the module docstring

        return RateLimiter(self.stores.rate_limits, config or self.config())

    def erasure(self) -> ErasureService:
        from services.erasure import ErasureService  # noqa: PLC0415 - see the module docstring

        s = self.stores
        return ErasureService(
            s.jobs_table,
            s.marks,
            blueprints=s.blueprints,
            uploads=s.uploads,
            cache=s.cache,
            previews=self.previews,
            idempotency=s.idempotency,
            claims=s.claims,
        )


def _create_clients() -> None:
    """The AWS clients the health probes use, created before their timeouts start: loading a service
    model is a cold start's cost (hundreds of milliseconds under load), not the dependency's latency."""
    for service in ("dynamodb", "s3", "secretsmanager", "ssm"):
        aws.get_client(service)


_dependencies: Dependencies | None = None
_lock = threading.Lock()
#: True until the container's first invocation takes it (the ColdStart metric, ``cold_start`` in the log).
_cold_start = True


def get() -> Dependencies:
    """The container's dependencies, built on first use."""
    global _dependencies
    if _dependencies is None:
        with _lock:
            if _dependencies is None:
                settings = get_settings()
                log.set_level(settings.log_level)
                _dependencies = Dependencies(settings)
    return _dependencies


def reset() -> None:
    """Forget the container's state (tests and the local server use this after changing settings); the
    next invocation is a cold start again."""
    global _dependencies, _cold_start
    with _lock:
        _dependencies = None
        _cold_start = True
    get_settings.cache_clear()
    metrics.reset()


def take_cold_start() -> bool:
    """True for the container's first invocation only (once, even when two requests race for it)."""
    global _cold_start
    with _lock:
        cold, _cold_start = _cold_start, False
    return cold
