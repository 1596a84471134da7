"""Test data built one way: the Lambda's settings and environment, the runtime configuration."""

from __future__ import annotations

from typing import Any

from utils.settings import Settings

#: What the template gives the function in the dev stack (``Stack.function_environment``), minus AWS's.
LAMBDA_ENVIRON = {
    "ENVIRONMENT": "dev",
    "JOBS_TABLE": "location-detection-dev-jobs",
    "PREVIEW_CACHE_TABLE": "location-detection-dev-preview_cache",
    "BLUEPRINTS_BUCKET": "location-detection-dev-blueprints",
    "CACHE_BUCKET": "location-detection-dev-cache",
    "CONFIG_PATH": "/location-detection/dev/",
    "API_KEYS_SECRET_NAME": "location-detection/dev/api-keys",
}


def lambda_environ(**overrides: str) -> dict[str, str]:
    """The function's environment variables, with ``overrides`` (variable name -> value)."""
    return {**LAMBDA_ENVIRON, **overrides}


def make_settings(**overrides: Any) -> Settings:
    """``Settings`` as the function builds them from its environment, with fields replaced."""
    return Settings.from_environ(lambda_environ())._replace(**overrides)
