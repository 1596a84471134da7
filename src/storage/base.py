"""What every storage class shares: the resource it is bound to, its lazily created client, error codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from botocore.exceptions import ClientError

from utils import aws
from utils.errors import ServiceUnavailable
from utils.logging import get_logger

T = TypeVar("T")
logger = get_logger("storage")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_conditional_failure(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def is_not_found(exc: ClientError) -> bool:
    return error_code(exc) in ("404", "NoSuchKey", "NotFound")


def landed_anyway(outage: ServiceUnavailable, operation: str, effect: Callable[[], T | None]) -> T:
    """After a write failed for good (``outage``), look once for its effect; return it if it is there.

    A connection that drops after AWS applied a write, or a response that times out, looks exactly like a
    write that never arrived, and every retry of a conditional write then fails its condition. Reporting
    an outage for a write that landed would leave storage half-done (a job record whose blueprint the
    caller then deletes, a claim nobody holds, a cancel the client was told failed). So one read, with
    what retry time is left, looks for the write's own effect: found, the write succeeded; not found,
    the outage stands; the read failing too, the outage stands (the caller rolls back what it can).
    """
    try:
        found = effect()
    except Exception:
        logger.warning("could not tell whether a failed write landed", extra={"operation": operation})
        raise outage from outage.__cause__
    if found is None:
        raise outage from outage.__cause__
    logger.warning("a write reported as failed had landed; carrying on", extra={"operation": operation})
    return found


class _Bound:
    """A table or bucket, and the container's client for its service (or the one a test passed)."""

    service: ClassVar[str]

    def __init__(self, name: str, client: Any | None = None) -> None:
        self._name = name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.get_client(self.service)


class TableBound(_Bound):
    service = "dynamodb"

    @property
    def table_name(self) -> str:
        return self._name


class BucketBound(_Bound):
    service = "s3"

    @property
    def bucket(self) -> str:
        return self._name
