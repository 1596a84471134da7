"""Runtime configuration from Parameter Store, under ``/location-detection/{env}/``.

One ``GetParametersByPath`` call loads every parameter; the result is cached for ``CONFIG_TTL_SECONDS``
per container (a change in Parameter Store takes effect within that time). An absent parameter takes its
default. An invalid one is reported with a clear error naming the parameter and why (logged at ERROR as
``ConfigurationError``) and its default is used: a typo in Parameter Store must never take the API down.

| parameter | type | default |
|---|---|---|
| ``max-upload-bytes`` | integer, 1..52428800 | 52428800 (50 MB) |
| ``allowed-formats`` | comma list of png, jpg, pdf | ``png,jpg,pdf`` |
| ``cors-allowed-origins`` | comma list of origins, or ``*`` | the ``CORS_ALLOWED_ORIGINS`` variable |
| ``presign-expiry-seconds`` | integer, 60..3600 | 900 |
| ``default-page-size`` | integer, 1..100 | 20 |
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from utils import aws, retry
from utils.cache import TtlCache
from utils.clock import MonotonicClock, monotonic
from utils.errors import ConfigurationError
from utils.logging import get_logger
from utils.settings import Settings

logger = get_logger("config")

CONFIG_TTL_SECONDS = 60.0
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
SUPPORTED_FORMATS = ("png", "jpg", "pdf")
#: SSM is cheap to retry once; beyond that the stale value (or a 503) is the better answer.
_SSM_RETRY = retry.RetryPolicy(max_retries=1, base_delay=0.2, max_delay=0.2)


@dataclass(frozen=True)
class RuntimeConfig:
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    allowed_formats: tuple[str, ...] = SUPPORTED_FORMATS
    cors_allowed_origins: tuple[str, ...] = ("*",)
    presign_expiry_seconds: int = 900
    default_page_size: int = 20


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _formats(raw: str) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(v.strip().lower() for v in raw.split(",") if v.strip()))
    unknown = [v for v in values if v not in SUPPORTED_FORMATS]
    if not values or unknown:
        raise ValueError(f"must be a comma-separated subset of {', '.join(SUPPORTED_FORMATS)}, got {raw!r}")
    return values


def _origins(raw: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    bad = [v for v in values if v != "*" and not v.startswith(("https://", "http://"))]
    if not values or bad:
        raise ValueError(f"must be '*' or comma-separated http(s) origins, got {raw!r}")
    return tuple(v.rstrip("/") for v in values)


#: parameter name (relative to the path) -> (RuntimeConfig field, parser)
PARAMETERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "max-upload-bytes": ("max_upload_bytes", _int_in(1, MAX_UPLOAD_BYTES)),
    "allowed-formats": ("allowed_formats", _formats),
    "cors-allowed-origins": ("cors_allowed_origins", _origins),
    "presign-expiry-seconds": ("presign_expiry_seconds", _int_in(60, 3600)),
    "default-page-size": ("default_page_size", _int_in(1, 100)),
}


def parse_parameters(raw: Mapping[str, str], defaults: RuntimeConfig) -> tuple[RuntimeConfig, list[str]]:
    """Build the config from ``{relative name: value}``; return it with one message per invalid value."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, (field, parse) in PARAMETERS.items():
        if name not in raw:
            continue
        try:
            values[field] = parse(raw[name])
        except ValueError as exc:
            problems.append(f"parameter {name!r} {exc}; using the default")
    return replace(defaults, **values), problems


class ConfigStore:
    def __init__(
        self,
        path: str,
        defaults: RuntimeConfig,
        *,
        fetch: Callable[[str], dict[str, str]] | None = None,
        ttl_seconds: float = CONFIG_TTL_SECONDS,
        clock: MonotonicClock = monotonic,
    ) -> None:
        self.path = path.rstrip("/") + "/"
        self.defaults = defaults
        self._fetch = fetch or fetch_parameters
        self._cache: TtlCache[RuntimeConfig] = TtlCache(ttl_seconds, clock=clock, name="config")

    def get(self) -> RuntimeConfig:
        return self._cache.get(self.path, self._load)

    def _load(self) -> RuntimeConfig:
        config, problems = parse_parameters(self._fetch(self.path), self.defaults)
        for problem in problems:
            logger.error(str(ConfigurationError(problem)), extra={"config_path": self.path})
        return config

    def invalidate(self) -> None:
        self._cache.invalidate()


def fetch_parameters(path: str) -> dict[str, str]:
    """Every parameter directly under ``path`` as ``{relative name: value}`` (SecureStrings decrypted)."""
    ssm = aws.get_client("ssm")
    values: dict[str, str] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Path": path, "Recursive": False, "WithDecryption": True}
        if token:
            kwargs["NextToken"] = token
        page: dict[str, Any] = retry.call(
            "ssm.get_parameters_by_path", functools.partial(ssm.get_parameters_by_path, **kwargs), policy=_SSM_RETRY
        )
        for parameter in page.get("Parameters", []):
            values[parameter["Name"][len(path) :]] = parameter["Value"]
        token = page.get("NextToken")
        if not token:
            return values


_store: ConfigStore | None = None
_store_lock = threading.Lock()


def get_config(settings: Settings) -> RuntimeConfig:
    """The container's runtime configuration (cached)."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = ConfigStore(
                    settings.config_path, RuntimeConfig(cors_allowed_origins=settings.cors_allowed_origins)
                )
    return _store.get()


def reset() -> None:
    global _store
    with _store_lock:
        _store = None
