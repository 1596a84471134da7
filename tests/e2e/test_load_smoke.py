"""``make load`` in miniature: the load tool against its own local API, a few seconds, everything verified."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_load_run_loses_nothing(tmp_path: Path) -> None:
    report = tmp_path / "load.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--clients",
            "2",
            "--seconds",
            "3",
            "--seed",
            "7",
            "--timeout",
            "150",
            "--json",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "RESULT: PASS" in run.stdout, output

    summary = json.loads(report.read_text())
    assert summary["passed"] is True
    assert (summary["server_errors"], summary["transport_errors"], summary["problems"]) == (0, 0, 0)
    assert summary["requests"] > 0
    assert summary["throughput_rps"] > 0
    creates = sum(op["count"] for name, op in summary["operations"].items() if name.startswith("create_"))
    assert creates > 0
    assert summary["operations"]["verify_get"]["p50_ms"] > 0

    figures = summary["verification"]
    assert figures["jobs_created"] > 0
    n = figures["jobs_created"]
    assert figures["jobs_verified"] == figures["table_job_records"] == figures["stored_bytes_ok"] == n
    assert figures["blueprint_objects"] == n
    assert (figures["orphans"], figures["records_without_object"], figures["phantoms"], figures["missing"]) == (
        0,
        0,
        0,
        0,
    )
    assert figures["full_lists_ok"] == 2
