"""Where the API is and which key to use: flags, then the environment, then a config file.

- ``LD_API_URL`` / ``LD_API_KEY`` in the environment;
- a TOML file with ``api_url`` and ``api_key``: ``--config PATH``, else ``LD_CONFIG``, else
  ``$XDG_CONFIG_HOME/ldclient/config.toml`` (``~/.config/ldclient/config.toml``);
- the URL defaults to ``make run``'s ``http://127.0.0.1:3000``; a key is always needed.
"""

from __future__ import annotations

import os
import stat
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_API_URL = "http://127.0.0.1:3000"


class ConfigError(Exception):
    """The configuration is missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class Config:
    api_url: str
    api_key: str
    source: str


def default_path(environ: Mapping[str, str]) -> Path:
    if environ.get("LD_CONFIG"):
        return Path(environ["LD_CONFIG"])
    base = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "ldclient" / "config.toml"


def _read_file(path: Path, explicit: bool) -> dict[str, str]:
    if not path.is_file():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    values = {k: v for k, v in data.items() if k in ("api_url", "api_key") and isinstance(v, str)}
    if "api_key" in values and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"ldclient: warning: {path} holds an API key and others may read it (chmod 600)", file=sys.stderr)
    return values


def load(api_url: str | None, config_path: str | None, environ: Mapping[str, str] = os.environ) -> Config:
    path = Path(config_path) if config_path else default_path(environ)
    from_file = _read_file(path, explicit=bool(config_path or environ.get("LD_CONFIG")))
    url = api_url or environ.get("LD_API_URL") or from_file.get("api_url") or DEFAULT_API_URL
    key = environ.get("LD_API_KEY") or from_file.get("api_key")
    if not key:
        raise ConfigError(f"no API key: set LD_API_KEY, or api_key in {path}")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the API URL must start with http:// or https://, not {url!r}")
    return Config(url.rstrip("/"), key, str(path) if from_file else "environment")
