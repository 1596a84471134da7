"""docs/pipeline.md's example state machine agrees with the task function it calls: only its actions,
only error names it raises (or Step Functions' and Lambda's own), and every state reachable."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from workers.pipeline_task import ACTIONS, ERROR_CODES

DOC = Path(__file__).resolve().parents[2] / "docs" / "pipeline.md"
TASK_FUNCTION = "${PipelineTaskFunctionArn}"


def definition() -> dict[str, Any]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    (machine,) = [json.loads(b) for b in blocks if '"StartAt"' in b]
    return dict(machine)


def task_calls(states: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in states.values() if s.get("Parameters", {}).get("FunctionName") == TASK_FUNCTION]


def test_the_example_calls_the_task_function_with_its_actions_only() -> None:
    calls = task_calls(definition()["States"])
    actions = {call["Parameters"]["Payload"]["action"] for call in calls}
    assert actions == set(ACTIONS)
    for call in calls:
        assert "job_id.$" in call["Parameters"]["Payload"], call


def test_every_error_the_example_matches_is_one_the_function_raises_or_step_functions_own() -> None:
    names = {
        name
        for state in definition()["States"].values()
        for clause in [*state.get("Retry", []), *state.get("Catch", [])]
        for name in clause["ErrorEquals"]
    }
    ours = {n for n in names if not n.startswith(("States.", "Lambda."))}
    assert ours <= set(ERROR_CODES), ours - set(ERROR_CODES)
    assert {"JOB_NOT_PROCESSING", "ILLEGAL_TRANSITION", "SERVICE_UNAVAILABLE"} <= ours


def test_every_state_is_reachable_and_every_transition_names_a_state() -> None:
    machine = definition()
    states = machine["States"]
    targets = {machine["StartAt"]}
    for state in states.values():
        targets |= {state[k] for k in ("Next",) if k in state}
        targets |= {clause["Next"] for clause in state.get("Catch", [])}
    assert targets == set(states)
    for name, state in states.items():
        assert state.get("End") or "Next" in state or state["Type"] in ("Succeed", "Fail"), name


def test_the_documented_error_table_lists_every_name_the_function_raises() -> None:
    table = DOC.read_text(encoding="utf-8").split("**Errors**", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"`([A-Z_]+)`", table))
    assert documented == set(ERROR_CODES)
