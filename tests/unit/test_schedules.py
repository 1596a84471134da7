"""``local_api.schedules``: which functions of the template ``make run`` invokes on a timer, at what rate, and
that a failing run neither stops the timer nor the local API."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from local_api.cfn_template import Stack, load_template
from local_api.schedules import Scheduled, Scheduler, rate_seconds, scheduled_functions, start_schedules


def with_function(events: dict[str, Any], name: str = "TimerFunction") -> Stack:
    template = load_template()
    template["Resources"][name] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "FunctionName": f"timer-{name}",
            "Handler": "workers.timer.lambda_handler",
            "Timeout": 30,
            "Events": events,
        },
    }
    return Stack(template, {"Environment": "dev"})


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 hour)", 3600), ("rate(5 minutes)", 300), ("rate(1 minute)", 60), ("rate(2 days)", 172800)],
)
def test_rates_are_read_as_eventbridge_writes_them(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["cron(0 12 * * ? *)", "rate(1 fortnight)", "rate(hour)", ""])
def test_anything_but_a_rate_is_not_run(expression: str) -> None:
    assert rate_seconds(expression) is None


def test_every_enabled_schedule_event_of_a_function_is_found() -> None:
    stack = with_function(
        {
            "Hourly": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}},
            "Paused": {"Type": "Schedule", "Properties": {"Schedule": "rate(5 minutes)", "Enabled": False}},
            "Nightly": {"Type": "Schedule", "Properties": {"Schedule": "cron(0 3 * * ? *)"}},
        }
    )
    found = [f for f in scheduled_functions(stack) if f.function_name == "timer-TimerFunction"]
    assert found == [Scheduled("timer-TimerFunction", "workers.timer.lambda_handler", 3600, 30, "rate(1 hour)")]


def test_the_templates_sweep_is_run_hourly_with_its_real_handler() -> None:
    scheduler = Scheduler(scheduled_functions(Stack(load_template(), {"Environment": "dev"})))
    assert [(f.function_name, f.handler, f.seconds) for f in scheduler.functions] == [
        ("location-detection-dev-sweep", "workers.sweep.lambda_handler", 3600)
    ]
    from workers.sweep import lambda_handler

    assert scheduler.resolve(scheduler.functions[0].handler) is lambda_handler


def test_a_run_gets_a_scheduled_event_and_a_failing_one_does_not_stop_the_timer() -> None:
    calls: list[tuple[dict[str, Any], str]] = []
    two_runs = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        calls.append((event, context.function_name))
        if len(calls) >= 2:
            two_runs.set()
        if len(calls) == 1:
            raise RuntimeError("a bad first run")
        return {"erased": 0}

    function = Scheduled("timer", "x.handler", 0.01, 30, "rate(1 minute)")
    scheduler = Scheduler([function], resolve=lambda _: handler)
    scheduler.start()
    try:
        assert two_runs.wait(10), "the run after the failed one came"
    finally:
        scheduler.stop()
    assert calls[0] == ({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, "timer")
    ran = scheduler.runs["timer"]
    assert ran >= 2
    threading.Event().wait(0.05)
    assert scheduler.runs["timer"] == ran, "stopped: no run after stop()"


def test_local_schedules_off_runs_nothing() -> None:
    stack = with_function({"Hourly": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}}})
    scheduler = start_schedules(stack, "off")
    scheduler.stop()
    assert scheduler.functions == []
