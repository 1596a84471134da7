"""Settings of the functions beside the API (``src/workers``), read once per invocation's container from
the environment the template gives each one (``utils.settings.get_worker_settings``, the one reader of the
environment). A module apart from the API's settings, so the API's cold start does not build this class
too (``bench/first_request.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from utils.errors import ConfigurationError
from utils.metrics import DEFAULT_NAMESPACE, DEFAULT_SERVICE
from utils.settings import ENVIRONMENTS, parse_flag, parse_retry_delays, retention_days


@dataclass(frozen=True)
class WorkerSettings:
    """What a function beside the API (``src/workers``) is given: only the names it uses, each required
    by the worker that reads it (``WorkerSettings.from_environ(environ, required)``)."""

    environment: str
    region: str
    log_level: str = "INFO"
    jobs_table: str = ""
    preview_cache_table: str = ""
    blueprints_bucket: str = ""
    cache_bucket: str = ""
    #: Days a blueprint is kept after its job's final state (as ``Settings.blueprint_retention_days``).
    blueprint_retention_days: int = 7
    #: The bus job events go to (``location-detection-{env}``).
    event_bus_name: str = ""
    metrics_namespace: str = DEFAULT_NAMESPACE
    metrics_service: str = DEFAULT_SERVICE
    #: The queue the webhook fan-out sends deliveries to (its URL).
    webhook_deliveries_queue_url: str = ""
    webhook_secrets_key: str = ""
    webhook_allow_loopback: bool = False
    #: ``WEBHOOK_RETRY_DELAYS``, when set: the retry schedule (None: the deployed one).
    webhook_retry_delays: tuple[int, ...] | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], required: tuple[str, ...]) -> WorkerSettings:
        missing = [name for name in ("ENVIRONMENT", *required) if not environ.get(name)]
        if missing:
            raise ConfigurationError(f"missing required environment variables: {', '.join(missing)}")
        if environ["ENVIRONMENT"] not in ENVIRONMENTS:
            raise ConfigurationError(f"ENVIRONMENT must be one of {ENVIRONMENTS}, got {environ['ENVIRONMENT']!r}")
        return cls(
            environment=environ["ENVIRONMENT"],
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            log_level=environ.get("LOG_LEVEL", "INFO").upper(),
            jobs_table=environ.get("JOBS_TABLE", ""),
            preview_cache_table=environ.get("PREVIEW_CACHE_TABLE", ""),
            blueprints_bucket=environ.get("BLUEPRINTS_BUCKET", ""),
            cache_bucket=environ.get("CACHE_BUCKET", ""),
            blueprint_retention_days=retention_days(environ),
            event_bus_name=environ.get("EVENT_BUS_NAME", ""),
            metrics_namespace=environ.get("METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
            metrics_service=(environ.get("METRICS_SERVICE") or DEFAULT_SERVICE).strip()[:255] or DEFAULT_SERVICE,
            webhook_deliveries_queue_url=environ.get("WEBHOOK_DELIVERIES_QUEUE_URL", ""),
            webhook_secrets_key=environ.get("WEBHOOK_SECRETS_KEY", ""),
            webhook_allow_loopback=parse_flag(environ, "WEBHOOK_ALLOW_LOOPBACK"),
            webhook_retry_delays=parse_retry_delays(environ.get("WEBHOOK_RETRY_DELAYS")),
        )
