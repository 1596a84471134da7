"""The run's report: the table printed, the JSON summary, the verdict."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.load.ledger import Ledger
from bench.load.server import LocalApi
from bench.load.stats import Stats, percentile
from bench.load.verify import Verification


@dataclass
class LoadRun:
    stats: Stats
    ledger: Ledger
    elapsed: float
    pipeline: Counter[str]
    #: The machine's 1-minute load average at the end of the load phase (other processes count too).
    load_average: float = 0.0


def report_table(stats: Stats, elapsed: float) -> list[str]:
    lines = [f"{'operation':<26}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}  outcomes"]
    for op in sorted(stats.ops):
        s = stats.ops[op]
        values = sorted(s.latencies)
        figures = [percentile(values, q) * 1000 for q in (0.5, 0.95, 0.99)] + [(values[-1] if values else 0) * 1000]
        outcomes = ", ".join(f"{k}: {n}" for k, n in sorted(s.outcomes.items()))
        lines.append(f"{op:<26}{len(s.latencies):>7}" + "".join(f"{f:>9.1f}" for f in figures) + f"  {outcomes}")
    load_requests = stats.total_requests(lambda name: not name.startswith("verify"))
    lines.append(
        f"load phase: {load_requests} requests in {elapsed:.1f} s = {load_requests / max(elapsed, 1e-9):.1f} req/s; "
        f"5xx: {stats.server_errors}; transport errors: {stats.transport_errors}"
    )
    return lines


def summary(
    stats: Stats, elapsed: float, verification: Verification, pipeline: Counter[str], passed: bool
) -> dict[str, Any]:
    ops = {}
    for op, s in stats.ops.items():
        values = sorted(s.latencies)
        ops[op] = {
            "count": len(values),
            "outcomes": dict(s.outcomes),
            **{f"p{int(q * 100)}_ms": round(percentile(values, q) * 1000, 2) for q in (0.5, 0.95, 0.99)},
        }
    load_requests = stats.total_requests(lambda name: not name.startswith("verify"))
    return {
        "passed": passed,
        "seconds": round(elapsed, 2),
        "requests": load_requests,
        "throughput_rps": round(load_requests / max(elapsed, 1e-9), 1),
        "server_errors": stats.server_errors,
        "transport_errors": stats.transport_errors,
        "problems": stats.problem_count,
        "problem_examples": stats.problems,
        "operations": ops,
        "pipeline": dict(pipeline),
        "verification": verification.figures,
    }


def print_report(
    run: LoadRun, verification: Verification, verify_seconds: float, passed: bool, server: LocalApi
) -> None:
    stats = run.stats
    print()
    print("\n".join(report_table(stats, run.elapsed)))
    print(f"machine: {os.cpu_count()} CPUs, 1-minute load average {run.load_average:.1f} at the end of the load phase")
    outcomes = ", ".join(f"{k} {n}" for k, n in sorted(run.pipeline.items()) if n)
    print(f"pipeline (JobService in this process): {outcomes or 'off'}")
    print(f"verification ({verify_seconds:.1f} s):")
    print("\n".join(f"  {line}" for line in verification.lines))
    if stats.problem_count:
        print(f"problems ({stats.problem_count}):")
        print("\n".join(f"  - {p}" for p in stats.problems))
        if stats.problem_count > len(stats.problems):
            print(f"  ... and {stats.problem_count - len(stats.problems)} more")
        errors = server.error_lines()
        if errors:
            print("server errors (last lines of its log):")
            print("\n".join(f"  {line}" for line in errors))
    verdict = "nothing lost, no 5xx, every response expected" if passed else f"{stats.problem_count} problem(s)"
    print(f"RESULT: {'PASS' if passed else 'FAIL'}: {verdict}", flush=True)
