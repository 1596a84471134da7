"""Stand-ins for the `aws` and `sam` CLIs, to run .ci/release offline (tests/infrastructure/test_release.py).

A shim named `aws` or `sam` on PATH runs this with FAKE_TOOL set to its name. Each call is appended to
the log (FAKE_LOG, one JSON array of arguments per line) and answered from a small state file
(FAKE_STATE, JSON) the test prepares and reads back: the account, the S3 objects, the stack (its status
sequence, its ReleaseCommit, its ApiUrl) and the change sets. Only the calls .ci/release makes are
understood; anything else exits 2, so a new call cannot go unnoticed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def aws(args: list[str], state: dict[str, Any]) -> int:
    service, command = args[0], args[1]
    if (service, command) == ("sts", "get-caller-identity"):
        print(state["account"])
    elif (service, command) == ("s3api", "head-object"):
        return 0 if option(args, "--key") in state["objects"] else 254
    elif (service, command) == ("s3api", "put-object"):
        state["objects"].append(option(args, "--key"))
    elif (service, command) == ("s3", "cp"):
        state["objects"].append(args[3].split("/", 3)[3])
    elif service == "cloudformation":
        return cloudformation(command, args, state)
    else:
        return 2
    return 0


def describe_stacks(args: list[str], state: dict[str, Any]) -> int:
    stack = state.get("stack")
    if stack is None:
        return 254
    query = option(args, "--query") if "--query" in args else ""
    if "StackStatus" in query:
        statuses = stack["statuses"]
        print(statuses.pop(0) if len(statuses) > 1 else statuses[0])
    elif "ReleaseCommit" in query:
        print(stack.get("release_commit", "None"))
    elif "ApiUrl" in query:
        print(stack.get("api_url", "None"))
    return 0


def create_change_set(args: list[str], state: dict[str, Any]) -> int:
    arn = f"arn:aws:cloudformation:us-east-1:{state['account']}:changeSet/{option(args, '--change-set-name')}/1"
    state["change_sets"][arn] = {"stack": option(args, "--stack-name"), "args": args}
    print(arn)
    return 0


def describe_change_set(args: list[str], state: dict[str, Any]) -> int:
    query, name = option(args, "--query"), option(args, "--change-set-name")
    if query == "StatusReason":
        print(state.get("change_set_reason", "None"))
    elif query == "StackName":
        print(state["change_sets"].get(name, {}).get("stack", "another-stack"))
    else:
        print("Add\tHttpApi\tAWS::ApiGatewayV2::Api\tNone\nModify\tApiFunction\tAWS::Lambda::Function\tFalse")
    return 0


def recorded(command: str) -> Any:
    def record(args: list[str], state: dict[str, Any]) -> int:
        state.setdefault(command, []).append(option(args, "--change-set-name"))
        return 0

    return record


def stack_events(args: list[str], state: dict[str, Any]) -> int:
    print('ApiFunction\tResource handler returned message: "Access denied"')
    return 0


CLOUDFORMATION = {
    "describe-stacks": describe_stacks,
    "create-change-set": create_change_set,
    "describe-change-set": describe_change_set,
    "execute-change-set": recorded("execute-change-set"),
    "delete-change-set": recorded("delete-change-set"),
    "describe-stack-events": stack_events,
    # wait change-set-create-complete: fails when the test gave the change set a failure reason
    "wait": lambda args, state: 255 if state.get("change_set_reason") else 0,
}


def cloudformation(command: str, args: list[str], state: dict[str, Any]) -> int:
    handler = CLOUDFORMATION.get(command)
    return handler(args, state) if handler else 2


def sam(args: list[str], state: dict[str, Any]) -> int:
    functions = {
        "ApiFunction": "api/rest_api.py",
        "JobEventsFunction": "workers/stream_consumer.py",
        "PipelineTaskFunction": "workers/pipeline_task.py",
        "SweepFunction": "workers/sweep.py",
    }
    if args[0] == "build":
        for function, handler in functions.items():
            module = Path(".aws-sam/build", function, handler)
            module.parent.mkdir(parents=True, exist_ok=True)
            module.write_text("def lambda_handler(event, context):\n    return {}\n")
        Path(".aws-sam/build/template.yaml").write_text("Transform: AWS::Serverless-2016-10-31\n")
    elif args[0] == "package":
        compiled = [list(Path(".aws-sam/build", function).rglob("*.pyc")) for function in functions]
        state["compiled_before_package"] = all(compiled)
        Path(option(args, "--output-template-file")).write_text("Transform: AWS::Serverless-2016-10-31\n")
    else:
        return 2
    return 0


def main() -> int:
    tool, args = os.environ["FAKE_TOOL"], sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps([tool, *args]) + "\n")
    state_file = Path(os.environ["FAKE_STATE"])
    state = json.loads(state_file.read_text(encoding="utf-8"))
    code = (aws if tool == "aws" else sam)(args, state)
    state_file.write_text(json.dumps(state), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
