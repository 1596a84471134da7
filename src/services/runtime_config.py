"""What the runtime configuration holds: the parameters under ``/location-detection/{env}/``, their
defaults and their valid values (``utils.config`` loads and caches them).

An absent parameter takes its default. An invalid one is reported with a message naming the parameter
and why, and its default is used.

| parameter | type | default |
|---|---|---|
| ``max-upload-bytes`` | integer, 1..52428800 | 52428800 (50 MB) |
| ``allowed-formats`` | comma list of png, jpg, pdf | ``png,jpg,pdf`` |
| ``cors-allowed-origins`` | comma list of origins, or ``*`` | the ``CORS_ALLOWED_ORIGINS`` variable |
| ``presign-expiry-seconds`` | integer, 60..3600 | 900 |
| ``default-page-size`` | integer, 1..100 | 20 |
| ``rate-limit-per-minute`` | integer, 1..100000: each client's requests a minute, per route group | 60 |
| ``rate-limit-burst`` | integer, 1..10000: how many of them may come at once | 20 |

The rate limits apply to ``POST /api/v1/jobs`` and ``POST /api/v1/uploads``, a budget each
(``services.rate_limits``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from models.job import FORMATS
from utils.config import ConfigStore
from utils.settings import Settings

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
SUPPORTED_FORMATS = tuple(FORMATS)


class RuntimeConfig(NamedTuple):
    """The parameters an operator can change without a deploy. (A ``NamedTuple``, not a dataclass: its
    class costs a fraction to build at each cold start; ``models.records``.)"""

    max_upload_bytes: int = MAX_UPLOAD_BYTES
    allowed_formats: tuple[str, ...] = SUPPORTED_FORMATS
    cors_allowed_origins: tuple[str, ...] = ("*",)
    presign_expiry_seconds: int = 900
    default_page_size: int = 20
    rate_limit_per_minute: int = 60
    rate_limit_burst: int = 20


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
    # Up to 100000 a minute (an interval of 600 microseconds, rounded up by under 1 in 600) and bursts of
    # 10000: room for load tests; a 0 or a typo must not switch the limit off (the default applies).
    "rate-limit-per-minute": ("rate_limit_per_minute", _int_in(1, 100_000)),
    "rate-limit-burst": ("rate_limit_burst", _int_in(1, 10_000)),
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
    return defaults._replace(**values), problems


def config_store(settings: Settings) -> ConfigStore[RuntimeConfig]:
    """The runtime configuration of the deployment ``settings`` describe (an absent CORS parameter falls
    back to the ``CORS_ALLOWED_ORIGINS`` variable)."""
    defaults = RuntimeConfig(cors_allowed_origins=settings.cors_allowed_origins)
    return ConfigStore(settings.config_path, functools.partial(parse_parameters, defaults=defaults))
