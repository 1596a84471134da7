"""Make moto's DynamoDB writes atomic, as DynamoDB's are (and keep its streams' memory bounded).

moto evaluates a ``ConditionExpression`` and then writes, with no lock between the two, so two threads
racing conditional writes on one item can both "win" — something real DynamoDB never allows and our
state machine relies on. One lock around moto's write paths restores the guarantee for the local API
and the tests (the real service needs nothing of the sort). Dev-only: never imported by ``src/``.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_WRITE_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items", "get_item")
_lock = threading.RLock()
_installed = False


def install() -> None:
    """Idempotently wrap moto's DynamoDB backend write methods with one process-wide lock."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITE_METHODS:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    # moto's request handler deep-copies items it has read outside the backend methods: a concurrent write
    # to the same item then fails it ("dictionary changed size during iteration"). Hold the lock there too.
    from moto.dynamodb.responses import DynamoHandler

    original_call = DynamoHandler.call_action

    @functools.wraps(original_call)
    def locked_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            return original_call(self, *args, **kwargs)

    DynamoHandler.call_action = locked_call  # type: ignore[method-assign]
    _installed = True


def forget_used_stream_iterators() -> None:
    """moto keeps every DynamoDB Streams shard iterator it ever handed out (each ~600 bytes), and the local
    poller asks for a new one 20 times a second: drop an iterator once ``GetRecords`` has used it (the
    poller never reuses one; each answer carries the next)."""
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original = DynamoDBStreamsBackend.get_records
    if getattr(original, "_forgets", False):
        return

    @functools.wraps(original)
    def get_records(self: Any, iterator_arn: str, limit: int) -> Any:
        result = original(self, iterator_arn, limit)
        self.shard_iterators.pop(iterator_arn, None)
        return result

    get_records._forgets = True  # type: ignore[attr-defined]
    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]
