"""Fault injection: wrap real (moto) boto3 clients so that AWS calls fail.

``FaultyClient`` fails chosen operations of one client, in order, then recovers. ``CallLog`` wraps every
service's client at once, records the AWS calls in the order the code makes them, and fails the call at
one step of that sequence with one ``FaultKind`` — once, or for good (``StepFault``): the fault matrix
(``tests/integration/test_fault_matrix.py``) walks every step of every path with every kind.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError


def client_error(code: str, status: int, operation: str = "Operation") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"injected {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


def throttled(operation: str = "Operation") -> ClientError:
    return client_error("ThrottlingException", 400, operation)


def server_error(operation: str = "Operation") -> ClientError:
    return client_error("InternalServerError", 500, operation)


def connection_error() -> EndpointConnectionError:
    return EndpointConnectionError(endpoint_url="https://emulated.invalid")


class FaultyClient:
    """Delegates to ``real``; ``faults[operation]`` is a list of exceptions raised by successive calls.

    ``always`` makes an operation fail on every call (after the first ``after[operation]`` calls).
    ``landed[operation]`` lists exceptions raised *after* successive calls reached the real client: a write
    that landed but whose answer was lost. ``calls`` counts calls per operation, so tests can assert how
    often the code under test retried.
    """

    def __init__(
        self,
        real: Any,
        faults: dict[str, list[BaseException]] | None = None,
        always: dict[str, Callable[[], BaseException]] | None = None,
        after: dict[str, int] | None = None,
        landed: dict[str, list[BaseException]] | None = None,
    ) -> None:
        self._real = real
        self._landed = {k: list(v) for k, v in (landed or {}).items()}
        self._faults = {k: list(v) for k, v in (faults or {}).items()}
        self._always = always or {}
        self._after = after or {}
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if name in self._always and self.calls[name] > self._after.get(name, 0):
                raise self._always[name]()
            pending = self._faults.get(name)
            if pending:
                raise pending.pop(0)
            result = attr(*args, **kwargs)
            lost = self._landed.get(name)
            if lost:
                raise lost.pop(0)
            return result

        return call


# --- a fault at one step of a recorded sequence of AWS calls ------------------------------------------
#: How each service says "slow down" and "I failed" (code, HTTP status), as the real services do.
THROTTLING_CODES = {
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "s3": ("SlowDown", 503),
    "ssm": ("ThrottlingException", 400),
    "secretsmanager": ("ThrottlingException", 400),
}
SERVER_ERROR_CODES = {
    "dynamodb": ("InternalServerError", 500),
    "s3": ("ServiceUnavailable", 503),
    "ssm": ("InternalServerError", 500),
    "secretsmanager": ("InternalServiceError", 500),
}
#: The resource argument of each service's calls (recorded to tell two tables or buckets apart).
_RESOURCE_ARGUMENTS = ("TableName", "Bucket", "SecretId", "Path")
_ENVIRONMENT_PREFIXES = ("location-detection-dev-", "location-detection/dev/", "/location-detection/dev/")
#: What makes a bucket name global (``-{account}-{region}``): dropped from the label like the prefix.
_BUCKET_SUFFIX = re.compile(r"-\d{12}-[a-z]+(?:-[a-z]+)*-\d+$")


@dataclass(frozen=True)
class FaultKind:
    """One way an AWS call fails. ``lands``: the request reached AWS and took effect; only its response
    was lost (a connection dropped mid-response), so the caller cannot tell whether it worked."""

    name: str
    make: Callable[[str, str], BaseException]
    lands: bool = False

    def error(self, service: str, operation: str) -> BaseException:
        return self.make(service, operation)


def _api_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


THROTTLE = FaultKind("throttle", lambda svc, op: client_error(*THROTTLING_CODES[svc], _api_name(op)))
SERVER_ERROR = FaultKind("5xx", lambda svc, op: client_error(*SERVER_ERROR_CODES[svc], _api_name(op)))
#: Nothing was sent: the endpoint could not be reached.
CONNECT = FaultKind("connect", lambda svc, op: EndpointConnectionError(endpoint_url=f"https://{svc}.emulated.invalid"))
#: The request was sent and took effect, then the connection closed before the response arrived.
DROPPED = FaultKind(
    "dropped", lambda svc, op: ConnectionClosedError(endpoint_url=f"https://{svc}.emulated.invalid"), lands=True
)
FAULT_KINDS = (THROTTLE, SERVER_ERROR, CONNECT, DROPPED)


@dataclass(frozen=True)
class AwsCall:
    service: str
    operation: str
    #: The table, bucket, secret or parameter path, without the stack's ``location-detection-dev-`` prefix
    #: (and a bucket's ``-{account}-{region}`` suffix).
    resource: str

    @property
    def label(self) -> str:
        return f"{self.service}.{self.operation}"

    def __str__(self) -> str:
        return f"{self.label}({self.resource})"


@dataclass(frozen=True)
class StepFault:
    """Fail the ``step``-th AWS call (0-based, across every service). ``persistent``: that call and every
    later call of the same operation on the same resource fail (retries run out); else it fails once."""

    step: int
    kind: FaultKind
    persistent: bool


def _resource(kwargs: dict[str, Any]) -> str:
    if "TransactItems" in kwargs:  # a transaction: the tables it writes or checks, in its order
        tables = [part["TableName"] for item in kwargs["TransactItems"] for part in item.values()]
        return "+".join(dict.fromkeys(_resource({"TableName": table}) for table in tables))
    for name in _RESOURCE_ARGUMENTS:
        value = kwargs.get(name)
        if isinstance(value, str):
            for prefix in _ENVIRONMENT_PREFIXES:
                if value.startswith(prefix):
                    return _BUCKET_SUFFIX.sub("", value[len(prefix) :]) or "parameters"
            return value
    return ""


class CallLog:
    """Wraps real clients: records every AWS API call in order across services, and injects ``fault``.

    Only API operations go through the log (``meta.method_to_api_mapping``); local helpers such as
    ``generate_presigned_url`` pass straight to the real client.
    """

    def __init__(self, fault: StepFault | None = None) -> None:
        self.fault = fault
        self.calls: list[AwsCall] = []
        #: The call the fault hit first, and how many times it was raised.
        self.faulted: AwsCall | None = None
        self.injected = 0

    def wrap(self, service: str, real: Any) -> Any:
        return _LoggedClient(self, service, real)

    def on_call(self, call: AwsCall, run: Callable[[], Any]) -> Any:
        index = len(self.calls)
        self.calls.append(call)
        fault = self.fault
        hit = fault is not None and (
            index == fault.step or (fault.persistent and self.faulted is not None and call == self.faulted)
        )
        if not hit or fault is None:
            return run()
        if self.faulted is None:
            self.faulted = call
        self.injected += 1
        if fault.kind.lands:
            with contextlib.suppress(ClientError):  # whatever AWS answered is lost with the connection
                run()
        raise fault.kind.error(call.service, call.operation)


class _LoggedClient:
    def __init__(self, log: CallLog, service: str, real: Any) -> None:
        self._log = log
        self._service = service
        self._real = real
        self._operations = set(real.meta.method_to_api_mapping)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name not in self._operations:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._log.on_call(AwsCall(self._service, name, _resource(kwargs)), lambda: attr(*args, **kwargs))

        return call
