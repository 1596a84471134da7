"""Make moto's DynamoDB writes atomic, as DynamoDB's are.

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
    _installed = True
