"""samconfig.toml: one deploy configuration per environment, with overrides the template accepts."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from samcli.cli.types import CfnParameterOverridesType

from local_api.cfn_template import Stack, load_template
from services.runtime_config import RuntimeConfig, parse_parameters

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "prod")


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with (ROOT / "samconfig.toml").open("rb") as handle:
        return tomllib.load(handle)


def deploy_config(samconfig: dict[str, Any], environment: str) -> dict[str, Any]:
    return dict(samconfig[environment]["deploy"]["parameters"])


def overrides(samconfig: dict[str, Any], environment: str) -> dict[str, str]:
    """``parameter_overrides`` parsed by the sam CLI's own parser (the one ``sam deploy`` uses)."""
    raw = deploy_config(samconfig, environment)["parameter_overrides"]
    parsed: dict[str, str] = CfnParameterOverridesType().convert(raw, None, None)
    # The parser skips what it cannot read instead of failing: every Key=Value must have come through.
    assert len(parsed) == len(raw.split()), f"unparsed overrides in {raw!r}: got {parsed}"
    return parsed


def test_samconfig_is_version_0_1(samconfig: dict[str, Any]) -> None:
    assert samconfig["version"] == 0.1


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_deploy_config_targets_its_environment(samconfig: dict[str, Any], environment: str) -> None:
    config = deploy_config(samconfig, environment)

    assert overrides(samconfig, environment)["Environment"] == environment
    assert config["stack_name"] == f"location-detection-{environment}"
    assert config["region"] == "us-east-1"
    assert config["capabilities"] == "CAPABILITY_IAM"
    # No SAM-managed bucket: .ci/release packages into the artifacts bucket, under the commit.
    assert not {"resolve_s3", "s3_bucket", "s3_prefix"} & set(config)


def test_dev_and_prod_deploy_to_different_stacks(samconfig: dict[str, Any]) -> None:
    names = {deploy_config(samconfig, environment)["stack_name"] for environment in ENVIRONMENTS}
    assert len(names) == len(ENVIRONMENTS)


def test_undecorated_sam_commands_default_to_dev(samconfig: dict[str, Any]) -> None:
    assert samconfig["default"]["global"]["parameters"]["stack_name"] == "location-detection-dev"
    assert samconfig["default"]["validate"]["parameters"]["lint"] is True


def test_only_prod_asks_for_confirmation_before_changing_the_stack(samconfig: dict[str, Any]) -> None:
    assert deploy_config(samconfig, "dev")["confirm_changeset"] is False
    assert deploy_config(samconfig, "prod")["confirm_changeset"] is True


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_builds_are_cached_and_parallel(samconfig: dict[str, Any], environment: str) -> None:
    build = samconfig[environment]["build"]["parameters"]
    assert (build["cached"], build["parallel"]) == (True, True)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_override_is_a_template_parameter_with_an_allowed_value(
    samconfig: dict[str, Any], environment: str
) -> None:
    parameters = load_template()["Parameters"]

    for key, value in overrides(samconfig, environment).items():
        assert key in parameters, f"{key} is not a parameter of template.yaml"
        spec = parameters[key]
        if "AllowedValues" in spec:
            assert value in [str(allowed) for allowed in spec["AllowedValues"]], f"{key}={value}"
        if spec["Type"] == "Number":
            assert float(value) >= spec.get("MinValue", float("-inf")), f"{key}={value}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_overridden_runtime_configuration_parses_without_problems(samconfig: dict[str, Any], environment: str) -> None:
    stack = Stack(load_template(), overrides(samconfig, environment))
    path = f"/location-detection/{environment}/"
    raw = {
        props["Name"][len(path) :]: str(props["Value"])
        for props in (stack.properties(logical_id) for logical_id in stack.of_type("AWS::SSM::Parameter"))
    }

    _, problems = parse_parameters(raw, RuntimeConfig())

    assert problems == []


def test_prod_lists_its_cors_origins(samconfig: dict[str, Any]) -> None:
    prod = overrides(samconfig, "prod")

    assert prod["CorsAllowedOrigins"] != "*"
    assert all(origin.startswith("https://") for origin in prod["CorsAllowedOrigins"].split(","))


def test_deployed_prod_keeps_its_logs_longer_than_dev(samconfig: dict[str, Any]) -> None:
    """Retention follows Environment, so it holds for the stacks samconfig.toml actually deploys."""
    retention = {
        environment: {
            logical_id: stack.properties(logical_id)["RetentionInDays"]
            for stack in [Stack(load_template(), overrides(samconfig, environment))]
            for logical_id in stack.of_type("AWS::Logs::LogGroup")
        }
        for environment in ENVIRONMENTS
    }

    assert retention["dev"].keys() == retention["prod"].keys() != set()
    for logical_id, prod_days in retention["prod"].items():
        assert prod_days >= 90 > retention["dev"][logical_id], logical_id


def test_dev_reserves_no_concurrency_and_prod_reserves_some(samconfig: dict[str, Any]) -> None:
    """A new account (often a quota of 10) cannot reserve any concurrency: dev, deployed first, reserves
    none; prod reserves a share and says so next to it (the quota to raise first)."""
    assert overrides(samconfig, "dev")["ReservedConcurrency"] == "0"
    assert int(overrides(samconfig, "prod")["ReservedConcurrency"]) >= 1
    prod_section = (ROOT / "samconfig.toml").read_text(encoding="utf-8").split("[prod.deploy.parameters]")[1]
    assert "Service Quotas" in prod_section


def test_throttling_is_sized_from_the_nfr_and_says_why(samconfig: dict[str, Any]) -> None:
    """1000 requests/s steady in prod (the NFR), a lower ceiling in dev; bursts above the steady rate;
    prod's reserved concurrency carries that rate at 100 ms per request with room to spare."""
    dev, prod = overrides(samconfig, "dev"), overrides(samconfig, "prod")
    text = (ROOT / "samconfig.toml").read_text(encoding="utf-8")

    assert int(prod["ApiThrottlingRateLimit"]) == 1000
    assert int(prod["ApiThrottlingBurstLimit"]) >= int(prod["ApiThrottlingRateLimit"])
    assert int(dev["ApiThrottlingRateLimit"]) < int(prod["ApiThrottlingRateLimit"])
    assert int(dev["ApiThrottlingBurstLimit"]) >= int(dev["ApiThrottlingRateLimit"])
    assert int(prod["ReservedConcurrency"]) >= int(prod["ApiThrottlingRateLimit"]) * 0.1
    for section in ("[dev.deploy.parameters]", "[prod.deploy.parameters]"):
        assert "requests/s" in text.split(section)[1].split("[")[0], f"{section}: say why next to the numbers"
