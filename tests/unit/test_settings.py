"""utils.settings: the typed settings built once from the function's environment."""

from __future__ import annotations

import pytest

from utils.errors import ConfigurationError
from utils.settings import Settings

REQUIRED = (
    "ENVIRONMENT",
    "JOBS_TABLE",
    "PREVIEW_CACHE_TABLE",
    "BLUEPRINTS_BUCKET",
    "CACHE_BUCKET",
    "CONFIG_PATH",
    "API_KEYS_SECRET_NAME",
)


def full_environ(**overrides: str) -> dict[str, str]:
    environ = {
        "ENVIRONMENT": "prod",
        "JOBS_TABLE": "location-detection-prod-jobs",
        "PREVIEW_CACHE_TABLE": "location-detection-prod-preview_cache",
        "BLUEPRINTS_BUCKET": "location-detection-prod-blueprints",
        "CACHE_BUCKET": "location-detection-prod-cache",
        "CONFIG_PATH": "/location-detection/prod",
        "API_KEYS_SECRET_NAME": "location-detection/prod/api-keys",
        "AWS_REGION": "eu-west-1",
        "LOG_LEVEL": "debug",
        "CORS_ALLOWED_ORIGINS": "https://app.example.com, https://admin.example.com",
    }
    environ.update(overrides)
    return environ


def test_full_mapping() -> None:
    settings = Settings.from_environ(full_environ())
    assert settings == Settings(
        environment="prod",
        jobs_table="location-detection-prod-jobs",
        preview_cache_table="location-detection-prod-preview_cache",
        blueprints_bucket="location-detection-prod-blueprints",
        cache_bucket="location-detection-prod-cache",
        config_path="/location-detection/prod/",
        api_keys_secret_name="location-detection/prod/api-keys",
        region="eu-west-1",
        log_level="DEBUG",
        cors_allowed_origins=("https://app.example.com", "https://admin.example.com"),
    )


def test_settings_are_frozen() -> None:
    settings = Settings.from_environ(full_environ())
    with pytest.raises(AttributeError):
        settings.jobs_table = "other"  # type: ignore[misc]


@pytest.mark.parametrize("name", REQUIRED)
def test_each_missing_required_variable_is_named(name: str) -> None:
    environ = full_environ()
    del environ[name]
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_environ(environ)
    assert name in str(caught.value)
    for other in REQUIRED:
        if other != name:
            assert other not in str(caught.value)


@pytest.mark.parametrize("name", REQUIRED)
def test_empty_required_variable_counts_as_missing(name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_environ(full_environ(**{name: ""}))


def test_all_missing_variables_are_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_environ({})
    for name in REQUIRED:
        assert name in str(caught.value)


@pytest.mark.parametrize("environment", ["staging", "Dev", "PROD", "production", " dev"])
def test_bad_environment(environment: str) -> None:
    with pytest.raises(ConfigurationError, match="ENVIRONMENT") as caught:
        Settings.from_environ(full_environ(ENVIRONMENT=environment))
    assert repr(environment) in str(caught.value)


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_good_environments(environment: str) -> None:
    assert Settings.from_environ(full_environ(ENVIRONMENT=environment)).environment == environment


@pytest.mark.parametrize("path", ["location-detection/prod", "location-detection/prod/", " /location-detection/prod"])
def test_config_path_must_start_with_a_slash(path: str) -> None:
    with pytest.raises(ConfigurationError, match="CONFIG_PATH"):
        Settings.from_environ(full_environ(CONFIG_PATH=path))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/location-detection/prod", "/location-detection/prod/"),
        ("/location-detection/prod/", "/location-detection/prod/"),
        ("/location-detection/prod//", "/location-detection/prod/"),
    ],
)
def test_config_path_ends_with_exactly_one_slash(path: str, expected: str) -> None:
    assert Settings.from_environ(full_environ(CONFIG_PATH=path)).config_path == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("*", ("*",)),
        ("https://a.example.com", ("https://a.example.com",)),
        ("https://a.example.com,https://b.example.com", ("https://a.example.com", "https://b.example.com")),
        (" https://a.example.com , ,https://b.example.com ,", ("https://a.example.com", "https://b.example.com")),
    ],
)
def test_cors_list_parsing(raw: str, expected: tuple[str, ...]) -> None:
    assert Settings.from_environ(full_environ(CORS_ALLOWED_ORIGINS=raw)).cors_allowed_origins == expected


def test_defaults() -> None:
    environ = {name: value for name, value in full_environ().items() if name in REQUIRED}
    settings = Settings.from_environ(environ)
    assert settings.region == "us-east-1"
    assert settings.log_level == "INFO"
    assert settings.cors_allowed_origins == ("*",)


def test_region_falls_back_to_aws_default_region() -> None:
    environ = full_environ(AWS_DEFAULT_REGION="ap-southeast-2")
    del environ["AWS_REGION"]
    assert Settings.from_environ(environ).region == "ap-southeast-2"
    assert Settings.from_environ(full_environ(AWS_DEFAULT_REGION="ap-southeast-2")).region == "eu-west-1"


def test_from_environ_does_not_read_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBS_TABLE", "from-os-environ")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    settings = Settings.from_environ(full_environ())
    assert settings.jobs_table == "location-detection-prod-jobs"
    assert settings.region == "eu-west-1"


def test_cors_origin_with_a_trailing_slash_still_matches_the_browser_origin() -> None:
    # Browsers send `Origin: https://app.example.com` (never a trailing slash). The Parameter Store copy of
    # the same template value is normalised (utils.config strips the slash); this fallback must match too.
    from api.cors import cors_headers

    settings = Settings.from_environ(full_environ(CORS_ALLOWED_ORIGINS="https://app.example.com/"))
    headers = cors_headers("https://app.example.com", settings.cors_allowed_origins)
    assert headers.get("Access-Control-Allow-Origin") == "https://app.example.com"


def test_get_settings_reads_the_process_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from utils.settings import get_settings

    for name, value in full_environ().items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        first = get_settings()
        monkeypatch.setenv("JOBS_TABLE", "changed-later")
        assert get_settings() is first
        assert first.jobs_table == "location-detection-prod-jobs"
    finally:
        get_settings.cache_clear()


# ---------------------------------------------------------------------------------------- the workers'
def test_a_worker_reads_only_what_it_requires_and_names_what_is_missing() -> None:
    from utils.worker_settings import WorkerSettings

    consumer = WorkerSettings.from_environ(
        {"ENVIRONMENT": "prod", "EVENT_BUS_NAME": "location-detection-prod", "AWS_REGION": "eu-west-1"},
        ("EVENT_BUS_NAME",),
    )
    assert (consumer.environment, consumer.event_bus_name, consumer.region) == (
        "prod",
        "location-detection-prod",
        "eu-west-1",
    )
    assert consumer.jobs_table == ""
    with pytest.raises(ConfigurationError, match="JOBS_TABLE, CACHE_BUCKET"):
        WorkerSettings.from_environ({"ENVIRONMENT": "dev"}, ("JOBS_TABLE", "CACHE_BUCKET"))
    with pytest.raises(ConfigurationError, match="ENVIRONMENT"):
        WorkerSettings.from_environ({"EVENT_BUS_NAME": "b"}, ("EVENT_BUS_NAME",))
    with pytest.raises(ConfigurationError, match="must be one of"):
        WorkerSettings.from_environ({"ENVIRONMENT": "staging", "EVENT_BUS_NAME": "b"}, ("EVENT_BUS_NAME",))
