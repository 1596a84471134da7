"""What every storage class shares: the resource it is bound to, its lazily created client, error codes."""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.exceptions import ClientError

from utils import aws


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_conditional_failure(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


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
