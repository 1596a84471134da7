"""What ``make run`` installs and keeps, read from the Makefile and the requirement files (the fresh-clone
start time itself is measured by ``scripts/first-start.sh``, not by a test: a timing on a shared machine
would be a flaky test)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Development tools that make serving slow to install and are not needed to serve.
NOT_FOR_SERVING = ("aws-sam-cli", "checkov", "cfn-lint", "pytest", "mypy", "ruff", "schemathesis", "hypothesis")


def requirement_names(path: Path) -> list[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [re.split(r"[\[=<>]", line)[0].lower() for line in lines if line and not line.startswith("-r")]


def test_make_help_prints_the_values_make_will_use() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "help", "PORT=8123", "STATE_DIR=/tmp/kept"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "$(" not in shown, shown
    assert "http://127.0.0.1:8123" in shown
    assert "/tmp/kept/" in shown
    assert re.search(r"make reset +forget", shown)


def test_make_run_gets_an_environment_of_its_own_without_the_development_tools() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (prerequisites,) = re.findall(r"^run: ([^#]*)##", makefile, re.M)
    assert prerequisites.split() == ["$(RUN_STAMP)"], "make run does not install the whole toolchain"
    assert re.search(r"^RUN_VENV := \.venv-run$", makefile, re.M), "not the shared .venv of make test"
    serving = requirement_names(ROOT / "requirements-run.txt")
    assert not [name for name in serving if name in NOT_FOR_SERVING]
    assert "moto" in serving
    pinned = {re.split("==", line)[0].lower() for line in (ROOT / "constraints-dev.txt").read_text().splitlines()}
    assert set(serving) <= pinned, "every package make run installs is pinned"
    assert "-r requirements-run.txt" in (ROOT / "requirements-dev.txt").read_text(), "make test's .venv has it all"


def test_the_run_environment_and_the_kept_state_are_git_ignored() -> None:
    paths = [".venv-run/bin/python", ".local-state/state.json", ".local-state.lock", ".local-state.broken-1/x"]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    assert ignored == paths
