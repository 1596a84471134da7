"""Fault injection: wrap a real (moto) boto3 client so chosen operations fail, in order, then recover."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError


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
    ``calls`` counts calls per operation, so tests can assert how often the code under test retried.
    """

    def __init__(
        self,
        real: Any,
        faults: dict[str, list[BaseException]] | None = None,
        always: dict[str, Callable[[], BaseException]] | None = None,
        after: dict[str, int] | None = None,
    ) -> None:
        self._real = real
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
            return attr(*args, **kwargs)

        return call
