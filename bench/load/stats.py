"""What the clients saw: outcomes and latencies per operation, transport errors, problems."""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.load.plan import EXPECTED, MAX_PROBLEMS_SHOWN


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


class Stats:
    """Every response of the run, per operation; and every problem found, during the run or after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ops: dict[str, OpStats] = {}
        self.problems: list[str] = []
        self.problem_count = 0
        self.server_errors = 0
        self.transport_errors = 0

    def record(self, op: str, outcome: str, seconds: float, request_id: str = "") -> None:
        with self._lock:
            stats = self.ops.setdefault(op, OpStats())
            stats.latencies.append(seconds)
            stats.outcomes[outcome] += 1
            if outcome[:1] == "5":
                self.server_errors += 1
        if outcome not in EXPECTED.get(op, frozenset()):
            self.problem(f"{op}: unexpected {outcome} (request {request_id or '-'})")

    def transport_error(self, op: str, exc: BaseException) -> None:
        with self._lock:
            self.transport_errors += 1
            self.ops.setdefault(op, OpStats()).outcomes["transport error"] += 1
        self.problem(f"{op}: transport error {type(exc).__name__}: {exc}")

    def problem(self, message: str) -> None:
        with self._lock:
            self.problem_count += 1
            if len(self.problems) < MAX_PROBLEMS_SHOWN:
                self.problems.append(message)

    def total_requests(self, ops: Callable[[str], bool] = lambda _: True) -> int:
        with self._lock:
            return sum(len(s.latencies) for name, s in self.ops.items() if ops(name))
