"""Settings read once per container from the environment the template gives the function.

Nothing else in ``src/`` reads ``os.environ``: code receives a ``Settings``. A missing required variable
fails at the first request of the container with a message naming it (``ConfigurationError``), which the
router reports as a 500 and logs, instead of a confusing boto3 error later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from utils.errors import ConfigurationError
from utils.metrics import DEFAULT_NAMESPACE, DEFAULT_SERVICE, is_valid_namespace

if TYPE_CHECKING:
    from utils.worker_settings import WorkerSettings

ENVIRONMENTS = ("dev", "prod")


class Settings(NamedTuple):
    """The function's environment, checked. (A ``NamedTuple``, not a dataclass: its class costs a
    fraction to build at each cold start; ``models.records`` says why.)"""

    environment: str
    jobs_table: str
    preview_cache_table: str
    blueprints_bucket: str
    cache_bucket: str
    config_path: str
    api_keys_secret_name: str
    region: str
    log_level: str = "INFO"
    #: Fallback for the ``cors-allowed-origins`` parameter when Parameter Store has none.
    cors_allowed_origins: tuple[str, ...] = ("*",)
    #: CloudWatch namespace of the EMF metrics (``utils.metrics``) and their ``Service`` dimension.
    metrics_namespace: str = DEFAULT_NAMESPACE
    metrics_service: str = DEFAULT_SERVICE
    #: The KMS key (an alias) webhook secrets are encrypted with; empty: webhooks cannot be created.
    webhook_secrets_key: str = ""
    #: ``http://`` loopback webhook URLs (``make run`` only; false by default and in every deployment).
    webhook_allow_loopback: bool = False
    #: Days a blueprint is kept after its job's final state (template parameter BlueprintRetentionDays).
    blueprint_retention_days: int = 7

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        missing = [name for name in _REQUIRED if not environ.get(name)]
        if missing:
            raise ConfigurationError(f"missing required environment variables: {', '.join(missing)}")
        environment = environ["ENVIRONMENT"]
        if environment not in ENVIRONMENTS:
            raise ConfigurationError(f"ENVIRONMENT must be one of {ENVIRONMENTS}, got {environment!r}")
        config_path = environ["CONFIG_PATH"]
        if not config_path.startswith("/"):
            raise ConfigurationError("CONFIG_PATH must start with '/'")
        namespace = environ.get("METRICS_NAMESPACE") or DEFAULT_NAMESPACE
        if not is_valid_namespace(namespace):
            raise ConfigurationError(
                "METRICS_NAMESPACE must be 1-255 letters, digits or . - _ / # : and spaces, not starting with AWS/"
            )
        service = (environ.get("METRICS_SERVICE") or DEFAULT_SERVICE).strip()
        origins = tuple(o.strip().rstrip("/") for o in environ.get("CORS_ALLOWED_ORIGINS", "*").split(",") if o.strip())
        return cls(
            environment=environment,
            jobs_table=environ["JOBS_TABLE"],
            preview_cache_table=environ["PREVIEW_CACHE_TABLE"],
            blueprints_bucket=environ["BLUEPRINTS_BUCKET"],
            cache_bucket=environ["CACHE_BUCKET"],
            config_path=config_path.rstrip("/") + "/",
            api_keys_secret_name=environ["API_KEYS_SECRET_NAME"],
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            log_level=environ.get("LOG_LEVEL", "INFO").upper(),
            cors_allowed_origins=origins or ("*",),
            metrics_namespace=namespace,
            metrics_service=service[:255] or DEFAULT_SERVICE,
            webhook_secrets_key=environ.get("WEBHOOK_SECRETS_KEY", ""),
            webhook_allow_loopback=parse_flag(environ, "WEBHOOK_ALLOW_LOOPBACK"),
            blueprint_retention_days=retention_days(environ),
        )


def parse_flag(environ: Mapping[str, str], name: str) -> bool:
    """``true``/``1``/``yes`` or ``false``/``0``/``no``/unset (any case); anything else is a mistake."""
    value = environ.get(name, "").strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("", "false", "0", "no"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {value!r}")


#: SQS's longest visibility timeout: no retry can be put off further in one step.
MAX_RETRY_DELAY_SECONDS = 43_200


def parse_retry_delays(text: str | None) -> tuple[int, ...] | None:
    """``WEBHOOK_RETRY_DELAYS``: comma-separated whole seconds (``1,2,4``) that replace the deployed
    retry schedule (None when unset: the schedule stands)."""
    if text is None or not text.strip():
        return None
    try:
        delays = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigurationError(f"WEBHOOK_RETRY_DELAYS must be comma-separated whole seconds, got {text!r}") from None
    if not all(0 <= delay <= MAX_RETRY_DELAY_SECONDS for delay in delays):
        raise ConfigurationError(f"each of WEBHOOK_RETRY_DELAYS must be 0..{MAX_RETRY_DELAY_SECONDS} seconds")
    return delays


def retention_days(environ: Mapping[str, str]) -> int:
    retention = environ.get("BLUEPRINT_RETENTION_DAYS") or "7"
    if not retention.isdigit() or not 1 <= int(retention) <= 3650:
        raise ConfigurationError("BLUEPRINT_RETENTION_DAYS must be a whole number of days, 1 to 3650")
    return int(retention)


_REQUIRED = (
    "ENVIRONMENT",
    "JOBS_TABLE",
    "PREVIEW_CACHE_TABLE",
    "BLUEPRINTS_BUCKET",
    "CACHE_BUCKET",
    "CONFIG_PATH",
    "API_KEYS_SECRET_NAME",
)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The container's settings, built on first use."""
    return Settings.from_environ(os.environ)


def get_worker_settings(required: tuple[str, ...]) -> WorkerSettings:
    """A worker's settings from the environment its function was given."""
    from utils.worker_settings import WorkerSettings  # noqa: PLC0415 - the API's cold start never needs it

    return WorkerSettings.from_environ(os.environ, required)
