"""CORS in template.yaml: at the HTTP API (so that API Gateway's own responses are readable too), with the
function's values and the template parameter's origins; on both buckets for what browsers fetch from
them; and the one parameter checked as API Gateway and S3 will take it (no spaces, no paths)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api import cors as function_cors
from local_api.cfn_template import Stack, load_template

LIST = "https://app.example.com,https://admin.example.com:8443"


def header_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",")]


@pytest.fixture(params=["*", LIST])
def origins_stack(request: pytest.FixtureRequest) -> Stack:
    return Stack(load_template(), {"Environment": "prod", "CorsAllowedOrigins": request.param})


def api_cors(stack: Stack) -> dict[str, Any]:
    (api,) = stack.of_type("AWS::ApiGatewayV2::Api")
    return dict(stack.properties(api)["CorsConfiguration"])


def test_the_http_api_has_cors_with_the_parameters_origins(origins_stack: Stack) -> None:
    cors = api_cors(origins_stack)
    assert cors["AllowOrigins"] == origins_stack.parameters["CorsAllowedOrigins"].split(",")
    assert "AllowCredentials" not in cors, "API keys travel in a header, never in cookies"


def test_the_http_apis_cors_says_what_the_function_says() -> None:
    """API Gateway ignores the function's CORS headers and sends these instead: they must be the same, so
    that a response reads the same through API Gateway, the local API or ``sam local``."""
    cors = api_cors(Stack(load_template(), {"Environment": "dev"}))
    assert cors["AllowMethods"] == header_list(function_cors.CORS_ALLOW_METHODS)
    assert cors["AllowHeaders"] == header_list(function_cors.CORS_ALLOW_HEADERS)
    assert cors["ExposeHeaders"] == header_list(function_cors.CORS_EXPOSE_HEADERS)
    assert cors["MaxAge"] == int(function_cors.CORS_MAX_AGE_SECONDS)


def test_the_function_gets_the_same_origins_through_parameter_store(origins_stack: Stack) -> None:
    (parameter,) = [
        origins_stack.properties(logical_id)
        for logical_id in origins_stack.of_type("AWS::SSM::Parameter")
        if origins_stack.properties(logical_id)["Name"].endswith("/cors-allowed-origins")
    ]
    assert parameter["Value"] == origins_stack.parameters["CorsAllowedOrigins"]


@pytest.mark.parametrize(
    ("bucket", "methods"), [("BlueprintsBucket", ["POST"]), ("CacheBucket", ["GET", "HEAD"])], ids=["posts", "gets"]
)
def test_each_bucket_lets_the_allowed_origins_do_what_browsers_do_with_it(
    origins_stack: Stack, bucket: str, methods: list[str]
) -> None:
    """Presigned POSTs of large blueprints go to the blueprints bucket; a completed job's ``result_url`` (a
    presigned GET) is fetched from the cache bucket."""
    (rule,) = origins_stack.properties(bucket)["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedMethods"] == methods
    assert rule["AllowedOrigins"] == origins_stack.parameters["CorsAllowedOrigins"].split(",")


def origins_pattern() -> re.Pattern[str]:
    return re.compile(load_template()["Parameters"]["CorsAllowedOrigins"]["AllowedPattern"])


@pytest.mark.parametrize(
    "value", ["*", "https://app.example.com", LIST, "http://localhost:5173", "http://127.0.0.1:8080"]
)
def test_the_origins_parameter_takes_star_or_a_list_of_origins(value: str) -> None:
    assert origins_pattern().fullmatch(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "https://a.example, https://b.example",  # a space would become part of the second origin
        "https://a.example/app",  # an origin has no path
        "https://a.example/",
        "a.example",  # no scheme
        "*,https://a.example",
        "https://a.example,",
    ],
)
def test_the_origins_parameter_refuses_what_api_gateway_would_take_literally(value: str) -> None:
    assert not origins_pattern().fullmatch(value)


def test_every_environment_in_samconfig_passes_the_pattern() -> None:
    from tests.infrastructure.rehearsal import samconfig

    checked = []
    for environment, config in samconfig().items():
        if not isinstance(config, dict) or "deploy" not in config:
            continue
        overrides = config["deploy"]["parameters"]["parameter_overrides"]
        (origins,) = re.findall(r"CorsAllowedOrigins=(\S+)", overrides)
        assert origins_pattern().fullmatch(origins), environment
        checked.append(environment)
    assert {"dev", "prod"} <= set(checked)
