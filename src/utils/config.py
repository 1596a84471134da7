"""Runtime configuration from Parameter Store: the parameters under one path, cached, parsed by a schema.

One ``GetParametersByPath`` call loads every parameter under the path; the parsed result is cached for
``CONFIG_TTL_SECONDS`` per container (a change in Parameter Store takes effect within that time). What
the parameters mean is the schema's business (``services.runtime_config``): it turns the raw values into
a config object plus one message per invalid value, which is logged at ERROR as a ``ConfigurationError``
while the value's default is used: a typo in Parameter Store must never take the API down.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from utils import aws, retry
from utils.cache import TtlCache
from utils.clock import MonotonicClock, monotonic
from utils.errors import ConfigurationError
from utils.logging import get_logger

logger = get_logger("config")

C = TypeVar("C")
#: Raw values by parameter name (relative to the path) -> the config, and one message per invalid value.
Schema = Callable[[Mapping[str, str]], tuple[C, list[str]]]

CONFIG_TTL_SECONDS = 60.0
#: SSM is cheap to retry once; beyond that the stale value (or a 503) is the better answer.
_SSM_RETRY = retry.RetryPolicy(max_retries=1, base_delay=0.2, max_delay=0.2)


class ConfigStore(Generic[C]):
    def __init__(
        self,
        path: str,
        parse: Schema[C],
        *,
        fetch: Callable[[str], dict[str, str]] | None = None,
        ttl_seconds: float = CONFIG_TTL_SECONDS,
        clock: MonotonicClock = monotonic,
    ) -> None:
        self.path = path.rstrip("/") + "/"
        self._parse = parse
        self._fetch = fetch or fetch_parameters
        self._cache: TtlCache[C] = TtlCache(ttl_seconds, clock=clock, name="config")

    def get(self) -> C:
        return self._cache.get(self.path, self._load)

    def _load(self) -> C:
        config, problems = self._parse(self._fetch(self.path))
        for problem in problems:
            logger.error(str(ConfigurationError(problem)), extra={"config_path": self.path})
        return config

    def probe(self) -> bool:
        """Read the parameters now (``TtlCache.refresh``): True if they answered, False if only the cached
        configuration would serve; raises if nothing would."""
        return self._cache.refresh(self.path, self._load)

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
