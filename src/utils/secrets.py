"""Secrets Manager values, cached for five minutes per container.

A rotated or revoked value therefore takes effect within ``SECRET_TTL_SECONDS``. JSON secrets are parsed;
a missing secret is a ``SecretNotFound`` naming the secret (never its value). Values are never logged:
only the secret's name appears in log lines and errors.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from utils import aws, retry
from utils.cache import TtlCache
from utils.clock import MonotonicClock, monotonic
from utils.errors import ConfigurationError

SECRET_TTL_SECONDS = 300.0
_SECRETS_RETRY = retry.RetryPolicy(max_retries=2, base_delay=0.2, max_delay=0.8)


class SecretNotFound(ConfigurationError):
    def __init__(self, name: str) -> None:
        self.secret_name = name
        super().__init__(f"secret {name!r} does not exist or has no value")


class SecretNotJson(ConfigurationError):
    def __init__(self, name: str) -> None:
        self.secret_name = name
        super().__init__(f"secret {name!r} is not a JSON object")


def fetch_secret_string(name: str) -> str:
    client = aws.get_client("secretsmanager")
    try:
        response = retry.call(
            "secretsmanager.get_secret_value", lambda: client.get_secret_value(SecretId=name), policy=_SECRETS_RETRY
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise SecretNotFound(name) from None
        raise
    value = response.get("SecretString")
    if value is None:
        raise SecretNotFound(name)
    return str(value)


class SecretsStore:
    def __init__(
        self,
        *,
        fetch: Callable[[str], str] = fetch_secret_string,
        ttl_seconds: float = SECRET_TTL_SECONDS,
        clock: MonotonicClock = monotonic,
    ) -> None:
        self._fetch = fetch
        self._cache: TtlCache[str] = TtlCache(ttl_seconds, clock=clock, name="secrets")

    def get_string(self, name: str) -> str:
        return self._cache.get(name, lambda: self._fetch(name))

    def get_json(self, name: str) -> dict[str, Any]:
        raw = self.get_string(name)
        try:
            value = json.loads(raw)
        except ValueError:
            raise SecretNotJson(name) from None
        if not isinstance(value, dict):
            raise SecretNotJson(name)
        return value

    def probe(self, name: str) -> bool:
        """Read the secret now (``TtlCache.refresh``): True if it answered, False if only the cached value
        would serve; raises if nothing would."""
        return self._cache.refresh(name, lambda: self._fetch(name))

    def invalidate(self, name: str | None = None) -> None:
        self._cache.invalidate(name)


_store: SecretsStore | None = None
_store_lock = threading.Lock()


def get_store() -> SecretsStore:
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = SecretsStore()
    return _store
