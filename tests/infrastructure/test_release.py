""".ci/release, the one release procedure (workflow and manual deploys), run offline against fake CLIs.

`aws` and `sam` are stand-ins (fake_cli.py) that log every call and answer from a state file, so each
test sees exactly what the script asks AWS to do: build once and precompile before packaging, package
under the commit, make a change set from that package (never rebuilding) through the CloudFormation
execution role, refuse prod for a commit that has not passed dev, execute only the change set it is
given and fail unless the stack ends complete, roll back to the commit that ran before.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "111122223333", "us-east-1"
COMMIT, PREVIOUS = "a" * 40, "b" * 40
BUCKET = f"location-detection-artifacts-{ACCOUNT}-{REGION}"


class Release:
    def __init__(self, tmp_path: Path) -> None:
        self.repo = tmp_path / "repo"
        (self.repo / ".ci").mkdir(parents=True)
        shutil.copy(ROOT / ".ci" / "release", self.repo / ".ci" / "release")
        shutil.copy(ROOT / "samconfig.toml", self.repo / "samconfig.toml")
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for tool in ("aws", "sam"):
            shim = self.bin / tool
            fake = Path(__file__).with_name("fake_cli.py")
            shim.write_text(f'#!/bin/sh\nFAKE_TOOL={tool} exec "{sys.executable}" "{fake}" "$@"\n')
            shim.chmod(0o755)
        self.log, self.state_file = tmp_path / "calls.log", tmp_path / "state.json"
        self.summary, self.outputs = tmp_path / "summary.md", tmp_path / "outputs"
        self.state: dict[str, Any] = {"account": ACCOUNT, "objects": [], "change_sets": {}}
        self.stack({"statuses": ["UPDATE_COMPLETE"], "release_commit": PREVIOUS})

    def stack(self, stack: dict[str, Any] | None) -> None:
        self.state["stack"] = stack
        self.save()

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state))

    def packaged(self, commit: str = COMMIT, passed_dev: bool = False) -> None:
        self.state["objects"].append(f"location-detection/{commit}/packaged.yaml")
        if passed_dev:
            self.state["objects"].append(f"location-detection/{commit}/passed-dev")
        self.save()

    def run(self, *argv: str, environment: str = "dev", **env: str) -> subprocess.CompletedProcess[str]:
        self.save()
        result = subprocess.run(
            ["bash", str(self.repo / ".ci" / "release"), *argv],
            cwd=self.repo,
            env={
                "PATH": f"{self.bin}:/usr/bin:/bin",
                "HOME": str(self.repo),
                "DEPLOY_ENV": environment,
                "COMMIT": COMMIT,
                "PYTHON_BIN": sys.executable,
                "SAM_BIN": str(self.bin / "sam"),
                "POLL_SECONDS": "0",
                "GITHUB_STEP_SUMMARY": str(self.summary),
                "GITHUB_OUTPUT": str(self.outputs),
                "GITHUB_RUN_ID": "42",
                "GITHUB_RUN_ATTEMPT": "1",
                "FAKE_LOG": str(self.log),
                "FAKE_STATE": str(self.state_file),
                **env,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.state = json.loads(self.state_file.read_text())
        return result

    def calls(self, tool: str | None = None) -> list[list[str]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [call for call in map(json.loads, lines) if tool is None or call[0] == tool]

    def cloudformation(self, command: str) -> list[list[str]]:
        return [c for c in self.calls("aws") if c[1:3] == ["cloudformation", command]]

    def output(self) -> dict[str, str]:
        lines = self.outputs.read_text().splitlines() if self.outputs.exists() else []
        return dict(line.split("=", 1) for line in lines)


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def parameters(call: list[str]) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in json.loads(option(call, "--parameters"))}


@pytest.fixture
def release(tmp_path: Path) -> Release:
    return Release(tmp_path)


# ------------------------------------------------------------------------------------------ package
def test_package_builds_precompiles_and_uploads_under_the_commit(release: Release) -> None:
    result = release.run("package")

    assert result.returncode == 0, result.stderr
    sam = release.calls("sam")
    assert [c[1] for c in sam] == ["build", "package"]
    assert option(sam[1], "--s3-bucket") == BUCKET
    assert option(sam[1], "--s3-prefix") == f"location-detection/{COMMIT}"
    assert release.state["compiled_before_package"] is True, "bytecode in the zip: no compiling at cold start"
    assert f"location-detection/{COMMIT}/packaged.yaml" in release.state["objects"]


def test_a_commit_is_built_once(release: Release) -> None:
    release.packaged()
    result = release.run("package")

    assert result.returncode == 0, result.stderr
    assert release.calls("sam") == []
    assert "built once" in result.stdout


# --------------------------------------------------------------------------------------- change sets
def test_prod_refuses_a_commit_that_has_not_passed_dev(release: Release) -> None:
    release.packaged(passed_dev=False)
    result = release.run("change-set", environment="prod")

    assert result.returncode == 1
    assert "has not passed dev's smoke test" in result.stderr
    assert release.cloudformation("create-change-set") == []


def test_a_commit_with_no_package_cannot_be_deployed(release: Release) -> None:
    result = release.run("change-set", environment="dev")

    assert result.returncode == 1
    assert "no package for" in result.stderr


def test_the_prod_change_set_is_made_from_the_tested_package_through_the_execution_role(release: Release) -> None:
    release.packaged(passed_dev=True)
    result = release.run("change-set", environment="prod")

    assert result.returncode == 0, result.stderr
    assert release.calls("sam") == [], "promote the package; never rebuild"
    (create,) = release.cloudformation("create-change-set")
    assert option(create, "--stack-name") == "location-detection-prod"
    assert option(create, "--change-set-type") == "UPDATE"
    assert option(create, "--template-url") == (
        f"https://{BUCKET}.s3.{REGION}.amazonaws.com/location-detection/{COMMIT}/packaged.yaml"
    )
    assert option(create, "--role-arn") == f"arn:aws:iam::{ACCOUNT}:role/location-detection-cloudformation-prod"
    given = parameters(create)
    assert (given["Environment"], given["ApiThrottlingRateLimit"], given["ReleaseCommit"]) == ("prod", "1000", COMMIT)
    assert {"Key": "environment", "Value": "prod"} in json.loads(option(create, "--tags"))
    assert release.cloudformation("execute-change-set") == [], "a change set, not executed"
    arn = release.output()["change-set"]
    assert arn.startswith("arn:aws:cloudformation:")
    assert f"release-{COMMIT[:12]}-42-1" in arn
    summary = release.summary.read_text()
    assert "### Change set for `location-detection-prod` (prod)" in summary
    assert "| Modify | `ApiFunction` | AWS::Lambda::Function | False |" in summary


def test_the_first_deploy_creates_the_stack(release: Release) -> None:
    release.stack(None)
    release.packaged()
    release.run("change-set")

    (create,) = release.cloudformation("create-change-set")
    assert option(create, "--change-set-type") == "CREATE"


def test_a_change_set_without_changes_is_dropped_and_nothing_is_executed(release: Release) -> None:
    release.packaged(passed_dev=True)
    release.state["change_set_reason"] = "The submitted information didn't contain changes."
    result = release.run("change-set", environment="prod")

    assert result.returncode == 0, result.stderr
    assert release.output()["change-set"] == ""
    assert len(release.cloudformation("delete-change-set")) == 1


def test_a_failed_change_set_fails_the_step(release: Release) -> None:
    release.packaged()
    release.state["change_set_reason"] = "Template format error: Unrecognized parameter type"
    result = release.run("change-set")

    assert result.returncode == 1
    assert "Template format error" in result.stderr


# ------------------------------------------------------------------------------------------ execute
def test_execute_runs_exactly_the_given_change_set_and_waits_for_the_stack(release: Release) -> None:
    release.packaged(passed_dev=True)
    release.run("change-set", environment="prod")
    arn = release.output()["change-set"]
    release.stack({"statuses": ["UPDATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE"]})
    result = release.run("execute", arn, environment="prod")

    assert result.returncode == 0, result.stderr
    assert release.state["execute-change-set"] == [arn]
    assert "location-detection-prod: UPDATE_COMPLETE" in result.stdout


def test_execute_refuses_a_change_set_of_another_stack(release: Release) -> None:
    result = release.run("execute", "arn:aws:cloudformation:us-east-1:1:changeSet/other/1", environment="prod")

    assert result.returncode == 1
    assert "is not a change set of location-detection-prod" in result.stderr
    assert "execute-change-set" not in release.state


@pytest.mark.parametrize("status", ["UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "ROLLBACK_COMPLETE"])
def test_a_stack_that_rolled_back_fails_the_deploy(release: Release, status: str) -> None:
    """A canary alarm makes CodeDeploy roll the alias back and CloudFormation the stack: the job fails."""
    release.packaged()
    release.stack({"statuses": ["UPDATE_IN_PROGRESS", status]})
    result = release.run("deploy")

    assert result.returncode == 1
    assert f"ended {status}" in result.stderr
    assert "Access denied" in result.stderr, "the failed resources' reasons are printed"


def test_dev_deploys_the_package_through_a_change_set_at_once(release: Release) -> None:
    release.packaged()
    result = release.run("deploy")

    assert result.returncode == 0, result.stderr
    assert release.calls("sam") == []
    (create,) = release.cloudformation("create-change-set")
    assert option(create, "--role-arn") == f"arn:aws:iam::{ACCOUNT}:role/location-detection-cloudformation-dev"
    assert len(release.state["execute-change-set"]) == 1


# ------------------------------------------------------------------------------- passed and rollback
def test_a_commit_that_passed_dev_is_marked(release: Release) -> None:
    assert release.run("mark-passed").returncode == 0
    assert f"location-detection/{COMMIT}/passed-dev" in release.state["objects"]


def test_previous_is_the_commit_the_stack_runs(release: Release) -> None:
    result = release.run("previous", environment="prod")

    assert result.stdout.strip() == PREVIOUS
    assert release.output() == {"commit": PREVIOUS}


def test_a_failed_smoke_test_rolls_back_to_the_previous_commits_package(release: Release) -> None:
    release.packaged(PREVIOUS)  # what prod ran before: it passed there (no dev mark needed again)
    result = release.run("rollback", environment="prod", PREVIOUS_COMMIT=PREVIOUS)

    assert result.returncode == 0, result.stderr
    (create,) = release.cloudformation("create-change-set")
    assert parameters(create)["ReleaseCommit"] == PREVIOUS
    assert option(create, "--template-url").endswith(f"/location-detection/{PREVIOUS}/packaged.yaml")
    assert len(release.state["execute-change-set"]) == 1


@pytest.mark.parametrize("previous", ["", COMMIT])
def test_no_rollback_without_a_previous_release(release: Release, previous: str) -> None:
    result = release.run("rollback", environment="prod", PREVIOUS_COMMIT=previous)

    assert result.returncode == 1
    assert "nothing to roll back to" in result.stderr
    assert release.cloudformation("create-change-set") == []


# ------------------------------------------------------------------------------------------- the rest
def test_the_api_url_is_checked_and_published(release: Release) -> None:
    url = "https://abc123defg.execute-api.us-east-1.amazonaws.com"
    release.stack({"statuses": ["UPDATE_COMPLETE"], "api_url": url})
    assert release.run("api-url").returncode == 0
    assert release.output() == {"api-url": url}

    release.stack({"statuses": ["UPDATE_COMPLETE"], "api_url": "None"})
    result = release.run("api-url")
    assert result.returncode == 1
    assert "no usable ApiUrl" in result.stderr


def test_another_accounts_artifacts_bucket_can_be_named(release: Release) -> None:
    release.state["objects"] = [f"location-detection/{COMMIT}/packaged.yaml", f"location-detection/{COMMIT}/passed-dev"]
    release.run(
        "change-set", environment="prod", ARTIFACTS_BUCKET="location-detection-artifacts-999988887777-us-east-1"
    )

    (create,) = release.cloudformation("create-change-set")
    assert "location-detection-artifacts-999988887777-us-east-1.s3." in option(create, "--template-url")


@pytest.mark.parametrize(("environment", "commit"), [("staging", COMMIT), ("dev", "main"), ("dev", "abc")])
def test_bad_arguments_are_refused_before_any_call(release: Release, environment: str, commit: str) -> None:
    result = release.run("deploy", environment=environment, COMMIT=commit)

    assert result.returncode == 1
    assert release.calls() == []


def test_every_samconfig_override_reaches_the_change_set_even_one_with_commas(release: Release) -> None:
    samconfig = (release.repo / "samconfig.toml").read_text()
    several = "CorsAllowedOrigins=https://a.example,https://b.example"
    (release.repo / "samconfig.toml").write_text(
        samconfig.replace("CorsAllowedOrigins=https://app.example.com", several)
    )
    release.packaged(passed_dev=True)
    release.run("change-set", environment="prod")

    (create,) = release.cloudformation("create-change-set")
    given = parameters(create)
    assert given["CorsAllowedOrigins"] == "https://a.example,https://b.example"
    assert set(given) == {
        "Environment",
        "CorsAllowedOrigins",
        "LogLevel",
        "ApiThrottlingRateLimit",
        "ApiThrottlingBurstLimit",
        "ReservedConcurrency",
        "ReleaseCommit",
    }
