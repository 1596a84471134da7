"""The CI workflow: runs `make test` on Python 3.11 for pull requests and pushes, read-only, actions pinned."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")


def load_workflow(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the bare key `on` as the boolean True.
    if True in document:
        document["on"] = document.pop(True)
    return dict(document)


def steps(workflow: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in workflow["jobs"].values():
        yield from job.get("steps", [])


def step_using(workflow: dict[str, Any], action: str) -> dict[str, Any]:
    (found,) = [step for step in steps(workflow) if step.get("uses", "").startswith(f"{action}@")]
    return found


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return load_workflow(ROOT / ".github" / "workflows" / "ci.yml")


def test_ci_runs_on_pull_requests_and_pushes_to_main(ci: dict[str, Any]) -> None:
    assert "pull_request" in ci["on"]
    assert ci["on"]["push"]["branches"] == ["main"]


def test_ci_token_can_only_read_the_repository(ci: dict[str, Any]) -> None:
    assert ci["permissions"] == {"contents": "read"}
    for name, job in ci["jobs"].items():
        assert job.get("permissions", {"contents": "read"}) == {"contents": "read"}, name


def test_ci_uses_python_3_11_with_a_pip_cache_keyed_on_the_pins(ci: dict[str, Any]) -> None:
    setup = step_using(ci, "actions/setup-python")["with"]

    assert str(setup["python-version"]) == "3.11"
    assert setup["cache"] == "pip"
    assert set(setup["cache-dependency-path"].split()) == {"requirements*.txt", "constraints-dev.txt"}


def test_ci_runs_make_test(ci: dict[str, Any]) -> None:
    commands = [step["run"] for step in steps(ci) if "run" in step]
    assert any(re.match(r"make test\b", command.strip()) for command in commands), commands


def test_checkout_does_not_keep_the_token(ci: dict[str, Any]) -> None:
    assert step_using(ci, "actions/checkout")["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_action_is_pinned_to_a_commit_sha(path: Path) -> None:
    workflow = load_workflow(path)
    used = [step["uses"] for step in steps(workflow) if "uses" in step]
    used += [job["uses"] for job in workflow["jobs"].values() if "uses" in job]

    assert used
    for action in used:
        assert action.startswith("./") or PINNED.fullmatch(action), f"{action} is not pinned to a full commit SHA"


def test_pinned_actions_say_which_version_they_are(ci: dict[str, Any]) -> None:
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    for step in steps(ci):
        if "uses" in step:
            assert re.search(re.escape(step["uses"]) + r" # v\d+\.\d+\.\d+", text), step["uses"]
