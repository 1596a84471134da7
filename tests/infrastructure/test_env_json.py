"""env.json: what `sam local start-api --env-vars env.json` gives the function, checked against the template.

The sam CLI's own resolver (``EnvironmentVariables``) decides what the function sees, so these tests ask it
rather than assuming: a file entry only reaches the function if the template declares the variable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from samcli.local.lambdafn.env_vars import EnvironmentVariables

from local_api.cfn_template import Stack

ROOT = Path(__file__).resolve().parents[2]
#: Entries that only make sense against a local emulator (moto server or LocalStack), never in AWS.
LOCAL_ONLY = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


@pytest.fixture(scope="module")
def env_file() -> dict[str, Any]:
    document = json.loads((ROOT / "env.json").read_text(encoding="utf-8"))
    assert set(document) == {"ApiFunction"}, "env.json is keyed by the function's logical id"
    return dict(document["ApiFunction"])


def sam_local_environment(stack: Stack, env_file: dict[str, Any]) -> dict[str, str]:
    """The variables sam local hands the ApiFunction container, given the template and env.json."""
    props = stack.resources["ApiFunction"]["Properties"]
    resolved: dict[str, str] = EnvironmentVariables(
        "ApiFunction",
        props["MemorySize"],
        props["Timeout"],
        props["Handler"],
        {},
        variables=stack.function_environment(),
        shell_env_values={},
        override_values=env_file,
        aws_creds={"region": "us-east-1", "key": "from-the-sam-session", "secret": "from-the-sam-session"},
    ).resolve()
    return resolved


def test_a_deployed_function_has_no_endpoint_override(stack: Stack) -> None:
    assert "AWS_ENDPOINT_URL" not in stack.function_environment()


def test_env_json_sets_every_variable_the_template_gives_the_function(stack: Stack, env_file: dict[str, Any]) -> None:
    template_variables = stack.function_environment()

    assert env_file.keys() >= template_variables.keys()
    for name, value in template_variables.items():
        if name not in LOCAL_ONLY:
            assert env_file[name] == value, f"env.json {name}={env_file[name]!r}, template (dev) gives {value!r}"


def test_env_json_adds_only_the_local_emulator_settings(stack: Stack, env_file: dict[str, Any]) -> None:
    extra = env_file.keys() - stack.function_environment().keys()

    assert extra <= LOCAL_ONLY
    assert env_file["AWS_ENDPOINT_URL"] == "http://host.docker.internal:5000"
    assert (env_file["AWS_ACCESS_KEY_ID"], env_file["AWS_SECRET_ACCESS_KEY"]) == ("testing", "testing")
    assert all(isinstance(value, str) for value in env_file.values()), "Lambda variables are strings"


def test_sam_local_gives_the_function_the_env_json_values(stack: Stack, env_file: dict[str, Any]) -> None:
    seen = sam_local_environment(stack, env_file)

    for name in stack.function_environment():
        assert seen[name] == env_file[name], name


def test_sam_local_points_the_function_at_the_emulator(env_file: dict[str, Any]) -> None:
    """``sam local start-api --parameter-overrides AwsEndpointUrl=...`` declares the variable, so env.json's
    value reaches the function; deployed stacks leave the parameter empty and the variable is absent."""
    from local_api.cfn_template import load_template

    local = Stack(load_template(), {"Environment": "dev", "AwsEndpointUrl": env_file["AWS_ENDPOINT_URL"]})
    seen = sam_local_environment(local, env_file)
    assert seen.get("AWS_ENDPOINT_URL") == env_file["AWS_ENDPOINT_URL"]
