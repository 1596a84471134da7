"""Locally, what EventBridge schedules do in AWS: each function of ``template.yaml`` with a ``Schedule`` event
(``rate(1 hour)``: the erasure and retention sweep) is invoked in this process, its real handler, at that rate.

Decision (README, Living with ``make run``): the first run is right after the start, once the saved state is
restored and the stream poller is running, then one per period. The state survives a restart but nothing
sweeps while the local API is stopped; the run at start catches up, as the deployed schedule would have
(blueprints whose retention ended are deleted, erasures nobody retried are finished; their events are new
changes and are published). ``LOCAL_SCHEDULES=off`` runs none (a test that wants a marked job to stay so).
Only ``rate(...)`` is read; a ``cron(...)`` schedule is reported and not run.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_api.cfn_template import Stack
from local_api.server import LambdaContext
from utils.logging import get_logger

logger = get_logger("local_api.schedules")

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Scheduled:
    """One function the template invokes on a schedule."""

    function_name: str
    handler: str
    seconds: float
    timeout_seconds: int
    rate: str


def rate_seconds(expression: str) -> float | None:
    """``rate(1 hour)`` -> 3600.0; None for anything else (``cron(...)``)."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _SECONDS[match.group(2).rstrip("s")]


def scheduled_functions(stack: Stack) -> list[Scheduled]:
    """Every enabled ``Schedule`` event of every function, in the template's order."""
    found = []
    for logical_id in stack.of_type("AWS::Serverless::Function"):
        props = stack.properties(logical_id)
        for event in (props.get("Events") or {}).values():
            schedule = event.get("Properties", {})
            if event.get("Type") != "Schedule" or schedule.get("Enabled") is False:
                continue
            seconds = rate_seconds(str(schedule.get("Schedule", "")))
            if seconds is None:
                logger.warning("schedule not run locally", extra={"function": logical_id})
                continue
            found.append(
                Scheduled(
                    str(props["FunctionName"]),
                    str(props["Handler"]),
                    seconds,
                    stack.function_timeout(logical_id),
                    str(schedule["Schedule"]),
                )
            )
    return found


class Scheduler:
    """Runs each scheduled function now and then every period, in one thread each, until ``stop``."""

    def __init__(self, functions: list[Scheduled], resolve: Callable[[str], Any] | None = None) -> None:
        self.functions = functions
        self.resolve = resolve or _handler
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.runs: dict[str, int] = {f.function_name: 0 for f in functions}

    def run_once(self, function: Scheduled) -> Any:
        """One invocation, with the scheduled event EventBridge would send (the sweep reads nothing of it)."""
        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        try:
            return self.resolve(function.handler)(
                event, LambdaContext(function.function_name, function.timeout_seconds)
            )
        except Exception:  # as a failed scheduled invocation: logged, and the next period tries again
            logger.exception("a scheduled function failed", extra={"function": function.function_name})
            return None
        finally:
            self.runs[function.function_name] += 1

    def start(self) -> None:
        for function in self.functions:
            thread = threading.Thread(target=self._loop, args=(function,), name=f"schedule-{function.function_name}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _loop(self, function: Scheduled) -> None:
        while not self._stop.is_set():
            self.run_once(function)
            if self._stop.wait(function.seconds):
                return


def _handler(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def start_schedules(stack: Stack, setting: str | None) -> Scheduler:
    """The local API's scheduler (``LOCAL_SCHEDULES``: ``off`` runs nothing), started."""
    functions = [] if (setting or "").strip().lower() in ("off", "0", "false", "no") else scheduled_functions(stack)
    scheduler = Scheduler(functions)
    scheduler.start()
    return scheduler
