"""What every benchmark shares: statistics, the code under test (``--src``), child processes, null output.

Each benchmark measures in child processes (fresh interpreters: no state leaks from one benchmark into
the next, and ``--src`` can point a run at a scratch copy of ``src/``). A child prints its result as one
JSON line prefixed with ``BENCH_RESULT`` (our handler logs JSON lines to stdout too, so the prefix is how
the parent finds it).
"""

from __future__ import annotations

import io
import json
import math
import os
import socket
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SRC = ROOT / "src"
RESULT_PREFIX = "BENCH_RESULT "

#: Fake credentials: no benchmark may ever reach real AWS.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


# ------------------------------------------------------------------------------------------ statistics
def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def paired_ratio(figures: list[float], baselines: list[float]) -> float:
    """The median over rounds of a round's figure over the same round's baseline (interleaved samples:
    the drift of a shared machine's speed cancels within a round)."""
    return median([f / b for f, b in zip(figures, baselines, strict=True)])


def ratio(figure: float, baseline: float) -> float:
    """``figure / baseline``; infinite when the baseline is zero (and the figure is not)."""
    if baseline == 0:
        return 1.0 if figure == 0 else math.inf
    return figure / baseline


# --------------------------------------------------------------------------------- the code under test
def child_env(src: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: fake AWS credentials, ``src`` and the repository importable,
    no endpoint override (each benchmark says where its emulated AWS is)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_AWS)
    env["PYTHONPATH"] = f"{src}{os.pathsep}{ROOT}"
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # cached bytecode, as a Lambda package has it
    env.update(extra or {})
    return env


def use_src(src: Path) -> None:
    """Make ``src`` the Lambda's code in this process (the ``local_api`` package puts the repository's
    own ``src/`` first on import; a scratch copy must come before it)."""
    import local_api  # noqa: F401 - its import edits sys.path; undo that below

    wanted = str(src.resolve())
    sys.path[:] = [p for p in sys.path if p not in (str(DEFAULT_SRC), wanted)]
    sys.path.insert(0, wanted)


def run_child(module: str, args: Sequence[str], env: dict[str, str], timeout: float = 600) -> dict[str, Any]:
    """Run ``python -m module args`` and return the JSON it reported."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return dict(json.loads(line[len(RESULT_PREFIX) :]))
    raise RuntimeError(f"{module} {' '.join(args)} reported nothing (exit {done.returncode}):\n{done.stderr[-4000:]}")


def report(result: dict[str, Any]) -> None:
    """What a child hands back to the parent (see ``run_child``)."""
    sys.__stdout__.write(RESULT_PREFIX + json.dumps(result) + "\n")  # type: ignore[union-attr]
    sys.__stdout__.flush()  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------- plumbing
class NullWriter(io.StringIO):
    """A text stream that drops everything: log lines cost their formatting, not a terminal's time."""

    def write(self, text: str) -> int:
        return len(text)


@contextmanager
def quiet_stdout(stream: io.StringIO) -> Iterator[None]:
    with redirect_stdout(stream):
        yield


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
