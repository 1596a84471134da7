"""What every storage class shares: the resource it is bound to, its lazily created client, error codes,
and the one way a conditional write is sent (``conditional_write``).

A connection that drops after AWS applied a write, or a response that times out, looks exactly like a
write that never arrived: ``utils.retry`` sends it again, and a conditional write's retry then fails its
condition on the first attempt's own effect. Reporting an outage or a conflict for a write that landed
would leave storage half-done (a job record whose blueprint the caller then deletes, a claim nobody
holds, a cancel the client was told failed). So every conditional write names its own effect, and both
when retries run out and when a retry's condition fails, the store looks for it before answering.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, ClassVar, TypeVar

from botocore.exceptions import ClientError

from utils import aws, retry
from utils.errors import ServiceUnavailable
from utils.logging import get_logger

T = TypeVar("T")
logger = get_logger("storage")

#: DynamoDB's "the condition did not hold".
CONDITIONAL_CHECK_FAILED = ("ConditionalCheckFailedException",)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: ClientError) -> bool:
    return error_code(exc) in ("404", "NoSuchKey", "NotFound")


class Refusal:
    """A conditional write refused: ``error`` is AWS's answer. ``retried``: the refusal came to a retry,
    so the condition may be failing on the write's own first attempt (which landed, its answer lost)."""

    __slots__ = ("error", "retried")

    def __init__(self, error: ClientError, retried: bool) -> None:
        self.error = error
        self.retried = retried


def conditional_write(
    operation: str,
    write: Callable[[], Any],
    *,
    done: Callable[[Any], T],
    refused: Callable[[Refusal], T],
    landed: Callable[[], T | None] | None = None,
    refusals: Collection[str] = CONDITIONAL_CHECK_FAILED,
    policy: retry.RetryPolicy = retry.DEFAULT_POLICY,
) -> T:
    """Send ``write`` through the retry layer and say what came of it, in one of three ways:

    - it succeeded: ``done(response)``;
    - AWS refused it with one of ``refusals`` (error codes): ``refused(refusal)``, which looks for the
      write's own effect where that can be there, and otherwise raises the store's own signal;
    - retries ran out (``ServiceUnavailable``): ``landed()`` looks once for the write's effect and returns
      the answer if it is there (None: it is not); without ``landed``, or when the write is not there or
      the look fails too, the outage stands.

    Any other AWS error is raised unchanged. ``policy``: how hard to retry (a store on the request's hot
    path whose failure the service tolerates, like the rate limiter, gives up sooner).
    """
    attempts = 0

    def attempt() -> Any:
        nonlocal attempts
        attempts += 1
        return write()

    try:
        response = retry.call(operation, attempt, policy=policy)
    except ServiceUnavailable as outage:
        if landed is None:
            raise
        return _landed_anyway(outage, operation, landed)
    except ClientError as exc:
        if error_code(exc) not in refusals:
            raise
        return refused(Refusal(exc, retried=attempts > 1))
    return done(response)


def _landed_anyway(outage: ServiceUnavailable, operation: str, effect: Callable[[], T | None]) -> T:
    """After a write failed for good (``outage``), look once, with what retry time is left, for its
    effect: found, the write succeeded; not found, or the read failing too, the outage stands (the caller
    rolls back what it can)."""
    try:
        found = effect()
    except Exception:
        logger.warning("could not tell whether a failed write landed", extra={"operation": operation})
        raise outage from outage.__cause__
    if found is None:
        raise outage from outage.__cause__
    logger.warning("a write reported as failed had landed; carrying on", extra={"operation": operation})
    return found


def ignore(_: object) -> None:
    """For ``done`` or ``refused``: nothing to answer."""


class _Bound:
    """A table or bucket, and the container's client for its service (or the one a test passed)."""

    service: ClassVar[str]

    def __init__(self, name: str, client: Any | None = None) -> None:
        self._name = name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.get_client(self.service)


class ResourceBound(_Bound):
    """Any other named resource (a stream, an event bus, a queue): subclasses name their ``service``."""


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

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's ``HeadObject`` answer; None if there is no object at ``key``."""
        try:
            return dict(retry.call("s3.head_object", lambda: self.client.head_object(Bucket=self.bucket, Key=key)))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise

    def ping(self) -> None:
        """``HeadBucket``: proves the bucket answers and we may list it; raises if not (no retries: a health
        probe must be quick, and its caller times it out)."""
        self.client.head_bucket(Bucket=self.bucket)

    def stored_sha256(self, key: str) -> str | None:
        """The ``sha256`` metadata our writes record on an object (None: no object, or no digest): how a
        write whose answer was lost is recognised by its effect, without reading the object."""
        head = self.head(key)
        value = None if head is None else head.get("Metadata", {}).get("sha256")
        return str(value) if value is not None else None

    def delete(self, key: str) -> None:
        retry.call("s3.delete_object", lambda: self.client.delete_object(Bucket=self.bucket, Key=key))
