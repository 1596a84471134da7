"""utils.cache, utils.config (with services.runtime_config, its schema) and utils.secrets with injected
fetch functions and a fake clock."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.runtime_config import MAX_UPLOAD_BYTES, SUPPORTED_FORMATS, RuntimeConfig, parse_parameters
from utils.cache import TtlCache
from utils.config import CONFIG_TTL_SECONDS, ConfigStore
from utils.errors import ConfigurationError, ServiceUnavailable
from utils.logging import JsonFormatter, get_logger
from utils.secrets import SECRET_TTL_SECONDS, SecretNotJson, SecretsStore


class FakeClock:
    def __init__(self, start: float = 500.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Loader:
    """A loader that returns (or raises) what it is told, and counts its calls."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def project_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record reaching the project's root logger (it does not propagate, so caplog alone misses them)."""
    records: list[logging.LogRecord] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = get_logger()
    handler = ListHandler(level=logging.DEBUG)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


# --- TtlCache ---------------------------------------------------------------------------------------


def test_fresh_value_is_served_from_the_cache() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(60, clock=clock)
    load = Loader("v1")
    assert cache.get("k", load) == "v1"
    clock.advance(59.9)
    assert cache.get("k", load) == "v1"
    assert load.calls == 1


def test_expired_value_is_reloaded() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(60, clock=clock)
    load = Loader("v1", "v2")
    assert cache.get("k", load) == "v1"
    clock.advance(60)
    assert cache.get("k", load) == "v2"
    assert load.calls == 2
    clock.advance(30)
    assert cache.get("k", load) == "v2"
    assert load.calls == 2


def test_keys_are_cached_separately() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(60, clock=clock)
    assert cache.get("a", Loader("A")) == "A"
    assert cache.get("b", Loader("B")) == "B"
    assert cache.get("a", Loader("other")) == "A"


def test_stale_value_is_served_when_the_reload_is_unavailable(project_logs: list[logging.LogRecord]) -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(60, clock=clock, stale_retry_seconds=30, name="things")
    load = Loader("old", ServiceUnavailable(), ServiceUnavailable(), "new")
    assert cache.get("k", load) == "old"
    clock.advance(61)
    assert cache.get("k", load) == "old"  # reload failed: the old value keeps serving
    assert load.calls == 2
    clock.advance(29)
    assert cache.get("k", load) == "old"  # within stale_retry_seconds: no new attempt
    assert load.calls == 2
    clock.advance(1)
    assert cache.get("k", load) == "old"  # tried again, still down
    assert load.calls == 3
    clock.advance(30)
    assert cache.get("k", load) == "new"  # recovered
    assert load.calls == 4
    warnings = [r for r in project_logs if r.levelno == logging.WARNING and r.name == "location_detection.cache"]
    assert len(warnings) == 2
    assert warnings[0].cache == "things"  # type: ignore[attr-defined]


def test_unavailable_with_nothing_cached_reaches_the_caller() -> None:
    cache: TtlCache[str] = TtlCache(60, clock=FakeClock())
    error = ServiceUnavailable()
    with pytest.raises(ServiceUnavailable) as caught:
        cache.get("k", Loader(error))
    assert caught.value is error


@pytest.mark.parametrize("error", [ValueError("bad"), ConfigurationError("broken"), KeyError("k")])
def test_other_errors_propagate_even_with_an_old_value(error: Exception) -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(60, clock=clock)
    assert cache.get("k", Loader("old")) == "old"
    clock.advance(61)
    with pytest.raises(type(error)) as caught:
        cache.get("k", Loader(error))
    assert caught.value is error


def test_refresh_loads_now_and_says_whether_a_cached_value_had_to_serve() -> None:
    """What the health check asks: can the value be read now, and if not, would the cache still serve?"""
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(60, clock=clock)
    with pytest.raises(ServiceUnavailable):
        cache.refresh("k", Loader(ServiceUnavailable()))  # down, nothing cached: requests would fail
    assert cache.refresh("k", Loader("v1")) is True
    assert cache.refresh("k", Loader(ServiceUnavailable())) is False  # down, but v1 serves
    assert cache.get("k", Loader("unused")) == "v1"
    assert cache.refresh("k", Loader("v2")) is True  # fresh or not, it reads now
    assert cache.get("k", Loader("unused")) == "v2"
    with pytest.raises(ConfigurationError):
        cache.refresh("k", Loader(ConfigurationError("broken")))  # not an outage: no cached excuse


def test_invalidate_forces_a_reload() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(60, clock=clock)
    load = Loader("v1", "v2", "v3")
    cache.get("a", load)
    cache.get("b", Loader("b"))
    cache.invalidate("a")
    assert cache.get("a", load) == "v2"
    cache.invalidate()
    assert cache.get("a", load) == "v3"
    assert cache.get("b", Loader("b2")) == "b2"


# --- parse_parameters -------------------------------------------------------------------------------

DEFAULTS = RuntimeConfig(cors_allowed_origins=("https://app.example.com",))
#: The runtime configuration's schema with these defaults, as ``services.runtime_config.config_store`` builds it.
SCHEMA = functools.partial(parse_parameters, defaults=DEFAULTS)


def test_defaults_when_no_parameter_is_set() -> None:
    config, problems = parse_parameters({}, DEFAULTS)
    assert config == DEFAULTS
    assert problems == []
    assert config.max_upload_bytes == MAX_UPLOAD_BYTES == 52_428_800
    assert config.allowed_formats == SUPPORTED_FORMATS == ("png", "jpg", "pdf")
    assert config.presign_expiry_seconds == 900
    assert config.default_page_size == 20


def test_unknown_parameters_are_ignored() -> None:
    config, problems = parse_parameters({"something-else": "x"}, DEFAULTS)
    assert config == DEFAULTS
    assert problems == []


@pytest.mark.parametrize(
    ("name", "raw", "field", "expected"),
    [
        ("max-upload-bytes", "1", "max_upload_bytes", 1),
        ("max-upload-bytes", "1048576", "max_upload_bytes", 1_048_576),
        ("max-upload-bytes", " 52428800 ", "max_upload_bytes", 52_428_800),
        ("allowed-formats", "png", "allowed_formats", ("png",)),
        ("allowed-formats", "PNG, pdf", "allowed_formats", ("png", "pdf")),
        ("allowed-formats", "pdf,png,pdf", "allowed_formats", ("pdf", "png")),
        ("allowed-formats", "png,jpg,pdf,", "allowed_formats", ("png", "jpg", "pdf")),
        ("cors-allowed-origins", "*", "cors_allowed_origins", ("*",)),
        (
            "cors-allowed-origins",
            "https://a.example.com, http://localhost:5173/",
            "cors_allowed_origins",
            ("https://a.example.com", "http://localhost:5173"),
        ),
        ("presign-expiry-seconds", "60", "presign_expiry_seconds", 60),
        ("presign-expiry-seconds", "3600", "presign_expiry_seconds", 3600),
        ("default-page-size", "1", "default_page_size", 1),
        ("default-page-size", "100", "default_page_size", 100),
    ],
)
def test_valid_parameter(name: str, raw: str, field: str, expected: Any) -> None:
    config, problems = parse_parameters({name: raw}, DEFAULTS)
    assert problems == []
    assert getattr(config, field) == expected


@pytest.mark.parametrize(
    ("name", "raw", "field"),
    [
        ("max-upload-bytes", "0", "max_upload_bytes"),
        ("max-upload-bytes", "-5", "max_upload_bytes"),
        ("max-upload-bytes", "52428801", "max_upload_bytes"),
        ("max-upload-bytes", "50MB", "max_upload_bytes"),
        ("max-upload-bytes", "1e6", "max_upload_bytes"),
        ("max-upload-bytes", "", "max_upload_bytes"),
        ("allowed-formats", "gif", "allowed_formats"),
        ("allowed-formats", "png,gif", "allowed_formats"),
        # The parameter takes canonical names only: the API's `jpeg` alias is not a format name here.
        ("allowed-formats", "png,jpeg", "allowed_formats"),
        ("allowed-formats", "", "allowed_formats"),
        ("allowed-formats", " , ", "allowed_formats"),
        ("cors-allowed-origins", "", "cors_allowed_origins"),
        ("cors-allowed-origins", "example.com", "cors_allowed_origins"),
        ("cors-allowed-origins", "https://a.example.com,ftp://b", "cors_allowed_origins"),
        ("presign-expiry-seconds", "59", "presign_expiry_seconds"),
        ("presign-expiry-seconds", "3601", "presign_expiry_seconds"),
        ("presign-expiry-seconds", "soon", "presign_expiry_seconds"),
        ("default-page-size", "0", "default_page_size"),
        ("default-page-size", "101", "default_page_size"),
        ("default-page-size", "2.5", "default_page_size"),
    ],
)
def test_invalid_parameter_keeps_the_default_and_names_the_parameter(name: str, raw: str, field: str) -> None:
    config, problems = parse_parameters({name: raw}, DEFAULTS)
    assert getattr(config, field) == getattr(DEFAULTS, field)
    assert config == DEFAULTS
    assert len(problems) == 1
    assert repr(name) in problems[0]
    assert "default" in problems[0]


def test_one_invalid_parameter_does_not_spoil_the_others() -> None:
    raw = {
        "max-upload-bytes": "1000",
        "allowed-formats": "png,jpeg",
        "default-page-size": "500",
        "presign-expiry-seconds": "120",
    }
    config, problems = parse_parameters(raw, DEFAULTS)
    assert config.max_upload_bytes == 1000
    assert config.presign_expiry_seconds == 120
    assert config.allowed_formats == DEFAULTS.allowed_formats
    assert config.default_page_size == DEFAULTS.default_page_size
    assert len(problems) == 2
    assert any("'allowed-formats'" in p for p in problems)
    assert any("'default-page-size'" in p for p in problems)


# --- ConfigStore ------------------------------------------------------------------------------------


class FakeParameterStore:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.paths: list[str] = []

    def fetch(self, path: str) -> dict[str, str]:
        self.paths.append(path)
        return dict(self.values)


def test_config_store_caches_within_the_ttl() -> None:
    clock = FakeClock()
    ssm = FakeParameterStore({"default-page-size": "50"})
    store = ConfigStore("/location-detection/dev", SCHEMA, fetch=ssm.fetch, clock=clock)
    assert store.get().default_page_size == 50
    clock.advance(CONFIG_TTL_SECONDS - 1)
    ssm.values["default-page-size"] = "10"
    assert store.get().default_page_size == 50
    assert ssm.paths == ["/location-detection/dev/"]


def test_config_store_reloads_after_the_ttl() -> None:
    clock = FakeClock()
    ssm = FakeParameterStore({"default-page-size": "50"})
    store = ConfigStore("/location-detection/dev/", SCHEMA, fetch=ssm.fetch, ttl_seconds=60, clock=clock)
    assert store.get().default_page_size == 50
    ssm.values["default-page-size"] = "10"
    clock.advance(60)
    assert store.get().default_page_size == 10
    assert len(ssm.paths) == 2


def test_config_store_invalidate() -> None:
    clock = FakeClock()
    ssm = FakeParameterStore({})
    store = ConfigStore("/p/", SCHEMA, fetch=ssm.fetch, clock=clock)
    store.get()
    store.invalidate()
    store.get()
    assert len(ssm.paths) == 2


def test_config_store_serves_the_old_config_while_ssm_is_down() -> None:
    clock = FakeClock()
    calls = 0

    def fetch(path: str) -> dict[str, str]:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ServiceUnavailable()
        return {"default-page-size": "42"}

    store = ConfigStore("/p/", SCHEMA, fetch=fetch, clock=clock)
    assert store.get().default_page_size == 42
    clock.advance(CONFIG_TTL_SECONDS + 1)
    assert store.get().default_page_size == 42
    assert calls == 2


def test_config_store_logs_invalid_values_at_error(caplog: pytest.LogCaptureFixture) -> None:
    # The project logger does not propagate to the root logger, so caplog must be attached to it.
    project = logging.getLogger("location_detection")
    old_level = project.level
    project.addHandler(caplog.handler)
    project.setLevel(logging.INFO)
    try:
        ssm = FakeParameterStore({"max-upload-bytes": "lots", "default-page-size": "30"})
        store = ConfigStore("/location-detection/prod/", SCHEMA, fetch=ssm.fetch, clock=FakeClock())
        config = store.get()
    finally:
        project.removeHandler(caplog.handler)
        project.setLevel(old_level)
    assert config.max_upload_bytes == DEFAULTS.max_upload_bytes
    assert config.default_page_size == 30
    errors = [r for r in caplog.records if r.name == "location_detection.config"]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR
    assert "'max-upload-bytes'" in errors[0].getMessage()
    assert "'lots'" in errors[0].getMessage()
    assert errors[0].config_path == "/location-detection/prod/"  # type: ignore[attr-defined]


# --- SecretsStore -----------------------------------------------------------------------------------

SECRET_VALUE = '{"keys": {"sha256-of-key": "client-1"}, "pepper": "s3cr3t-pepper-value"}'


class FakeSecretsManager:
    def __init__(self, values: dict[str, str | BaseException]) -> None:
        self.values = values
        self.calls: list[str] = []

    def fetch(self, name: str) -> str:
        self.calls.append(name)
        value = self.values[name]
        if isinstance(value, BaseException):
            raise value
        return value


def test_secret_is_cached_for_five_minutes() -> None:
    clock = FakeClock()
    sm = FakeSecretsManager({"api-keys": "first"})
    store = SecretsStore(fetch=sm.fetch, clock=clock)
    assert SECRET_TTL_SECONDS == 300
    assert store.get_string("api-keys") == "first"
    sm.values["api-keys"] = "rotated"
    clock.advance(299.9)
    assert store.get_string("api-keys") == "first"
    assert sm.calls == ["api-keys"]
    clock.advance(0.1)
    assert store.get_string("api-keys") == "rotated"
    assert sm.calls == ["api-keys", "api-keys"]


def test_secret_invalidate() -> None:
    clock = FakeClock()
    sm = FakeSecretsManager({"a": "1"})
    store = SecretsStore(fetch=sm.fetch, clock=clock)
    store.get_string("a")
    sm.values["a"] = "2"
    store.invalidate("a")
    assert store.get_string("a") == "2"


def test_get_json_parses_an_object() -> None:
    sm = FakeSecretsManager({"api-keys": SECRET_VALUE})
    store = SecretsStore(fetch=sm.fetch, clock=FakeClock())
    assert store.get_json("api-keys") == json.loads(SECRET_VALUE)
    assert store.get_json("api-keys")["pepper"] == "s3cr3t-pepper-value"
    assert len(sm.calls) == 1


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not json s3cr3t", id="not-json"),
        pytest.param("", id="empty"),
        pytest.param("{truncated s3cr3t", id="truncated"),
        pytest.param('["s3cr3t"]', id="array"),
        pytest.param('"s3cr3t"', id="string"),
        pytest.param("42", id="number"),
        pytest.param("null", id="null"),
    ],
)
def test_get_json_refuses_anything_but_an_object(value: str) -> None:
    sm = FakeSecretsManager({"api-keys": value})
    store = SecretsStore(fetch=sm.fetch, clock=FakeClock())
    with pytest.raises(SecretNotJson) as caught:
        store.get_json("api-keys")
    assert isinstance(caught.value, ConfigurationError)
    assert caught.value.secret_name == "api-keys"
    assert "api-keys" in str(caught.value)
    if value:
        assert value not in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    assert caught.value.__cause__ is None  # the parser's message (with a piece of the value) is not chained


def _all_log_text(records: list[logging.LogRecord]) -> str:
    formatter = JsonFormatter()
    return "\n".join(formatter.format(r) + repr(vars(r)) for r in records)


def test_secret_values_never_reach_the_logs(project_logs: list[logging.LogRecord]) -> None:
    clock = FakeClock()
    sm = FakeSecretsManager({"api-keys": SECRET_VALUE, "plain": "s3cr3t-pepper-value-2"})
    store = SecretsStore(fetch=sm.fetch, clock=clock)
    store.get_json("api-keys")
    store.get_string("plain")
    # A reload that fails while a value is cached logs a warning and serves the stale value.
    sm.values["api-keys"] = ServiceUnavailable()
    clock.advance(SECRET_TTL_SECONDS + 1)
    assert store.get_json("api-keys")["pepper"] == "s3cr3t-pepper-value"
    sm.values["bad"] = "not-json-s3cr3t"
    with pytest.raises(SecretNotJson):
        store.get_json("bad")
    assert project_logs, "the stale-serving path should have logged something"
    text = _all_log_text(project_logs)
    for secret in ("s3cr3t", "pepper", "sha256-of-key", "client-1"):
        assert secret not in text


def test_log_capture_would_see_a_leak(project_logs: list[logging.LogRecord]) -> None:
    # Guard for the test above: the capture really sees the project's records and extra fields.
    get_logger("secrets").warning("oops", extra={"value": "s3cr3t"})
    assert "s3cr3t" in _all_log_text(project_logs)


def test_unavailable_secret_with_nothing_cached_is_a_503() -> None:
    sm = FakeSecretsManager({"api-keys": ServiceUnavailable()})
    store = SecretsStore(fetch=sm.fetch, clock=FakeClock())
    with pytest.raises(ServiceUnavailable):
        store.get_string("api-keys")


# --- the boto3-facing loaders, with a plain stub in place of the client (no AWS, no moto) -------------


@pytest.fixture
def stub_clients() -> Iterator[Callable[[str, object], None]]:
    from utils import aws, secrets

    aws.reset_clients()
    secrets._store = None
    yield aws.set_client
    aws.reset_clients()
    secrets._store = None


class StubSsm:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.calls: list[dict[str, Any]] = []

    def get_parameters_by_path(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return self.pages[len(self.calls) - 1]


def test_fetch_parameters_follows_pages_and_strips_the_path(stub_clients: Callable[[str, object], None]) -> None:
    from utils.config import fetch_parameters

    path = "/location-detection/dev/"
    ssm = StubSsm(
        [
            {"Parameters": [{"Name": f"{path}max-upload-bytes", "Value": "1000"}], "NextToken": "t1"},
            {"Parameters": [{"Name": f"{path}default-page-size", "Value": "5"}]},
        ]
    )
    stub_clients("ssm", ssm)
    assert fetch_parameters(path) == {"max-upload-bytes": "1000", "default-page-size": "5"}
    assert ssm.calls == [
        {"Path": path, "Recursive": False, "WithDecryption": True},
        {"Path": path, "Recursive": False, "WithDecryption": True, "NextToken": "t1"},
    ]


def test_the_container_builds_one_config_store(stub_clients: Callable[[str, object], None]) -> None:
    from api.dependencies import Dependencies
    from tests.factories import make_settings
    from utils import metrics

    settings = make_settings(cors_allowed_origins=("https://app.example.com",))
    ssm = StubSsm([{"Parameters": [{"Name": "/location-detection/dev/default-page-size", "Value": "7"}]}])
    stub_clients("ssm", ssm)
    container = Dependencies(settings)
    try:
        first = container.config()
        assert first.default_page_size == 7
        assert first.cors_allowed_origins == ("https://app.example.com",)  # absent parameter: the setting
        assert container.config() is first
        assert len(ssm.calls) == 1
    finally:
        metrics.reset()


class StubSecretsManager:
    def __init__(self, response: dict[str, Any] | BaseException) -> None:
        self.response = response
        self.calls: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter name
        self.calls.append(SecretId)
        if isinstance(self.response, BaseException):
            raise self.response
        return self.response


def _client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


def test_fetch_secret_string(stub_clients: Callable[[str, object], None]) -> None:
    from utils.secrets import fetch_secret_string, get_store

    stub = StubSecretsManager({"SecretString": SECRET_VALUE})
    stub_clients("secretsmanager", stub)
    assert fetch_secret_string("location-detection/dev/api-keys") == SECRET_VALUE
    assert stub.calls == ["location-detection/dev/api-keys"]
    store = get_store()
    assert get_store() is store
    assert store.get_json("location-detection/dev/api-keys")["pepper"] == "s3cr3t-pepper-value"


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(_client_error("ResourceNotFoundException", 400), id="not-found"),
        pytest.param({"SecretBinary": b"x"}, id="no-secret-string"),
    ],
)
def test_missing_secret_is_secret_not_found(
    stub_clients: Callable[[str, object], None], response: dict[str, Any] | BaseException
) -> None:
    from utils.secrets import SecretNotFound, fetch_secret_string

    stub_clients("secretsmanager", StubSecretsManager(response))
    with pytest.raises(SecretNotFound) as caught:
        fetch_secret_string("location-detection/dev/api-keys")
    assert caught.value.secret_name == "location-detection/dev/api-keys"
    assert isinstance(caught.value, ConfigurationError)


def test_other_secret_errors_propagate(stub_clients: Callable[[str, object], None]) -> None:
    from botocore.exceptions import ClientError

    from utils.secrets import fetch_secret_string

    error = _client_error("AccessDeniedException", 400)
    stub_clients("secretsmanager", StubSecretsManager(error))
    with pytest.raises(ClientError) as caught:
        fetch_secret_string("x")
    assert caught.value is error
