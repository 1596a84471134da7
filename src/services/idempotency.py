"""``Idempotency-Key``, with the semantics of the IETF draft and Stripe: the rules, not the HTTP.

Scoped to the client. The first request with a key runs and what it answered is kept for 24 hours; the
same key with the same request (its fingerprint, which the api layer computes) replays that answer; with
a different request it is 422 ``IDEMPOTENCY_KEY_REUSED``; while the first is still running, 409
``IDEMPOTENCY_IN_PROGRESS``. A first request that fails in a way a retry may fix does not pin the key,
and the in-progress lock lapses when that request's Lambda would have timed out, so a crashed attempt
never blocks the key for a day.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from storage.idempotency_store import IdempotencyStore, record_key
from utils import retry
from utils.clock import WallClock, wall_time
from utils.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidRequest

#: 1 to 255 visible ASCII characters (the draft leaves the syntax to us; Stripe takes 255).
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
#: How long an answer is kept for replays.
RECORD_TTL_SECONDS = 24 * 3600
#: The in-progress lock outside any Lambda deadline (the ops CLI, tests).
DEFAULT_LOCK_SECONDS = 30.0


class Attempt:
    """A request under its key: either this caller runs it (``replay`` is None), or it answered before and
    ``replay`` is what it answered."""

    __slots__ = ("record_key", "replay", "started_at")

    def __init__(self, record_key: str, started_at: int, replay: dict[str, Any] | None = None) -> None:
        self.record_key = record_key
        self.started_at = started_at
        self.replay = replay


class IdempotencyService:
    def __init__(self, store: IdempotencyStore, *, clock: WallClock = wall_time) -> None:
        self.store = store
        self._clock = clock

    def begin(self, client_id: str, key: str, fingerprint: Callable[[], str]) -> Attempt:
        """Start the client's request under ``key``; ``fingerprint`` (what makes two requests "the same")
        is computed only for a valid key."""
        if not _KEY.fullmatch(key):
            raise InvalidRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters", details={"field": "Idempotency-Key"}
            )
        now = self._clock()
        seconds_left = retry.seconds_left()
        lock_until = math.ceil(now + (seconds_left if seconds_left is not None else DEFAULT_LOCK_SECONDS))
        attempt = Attempt(record_key(client_id, key), int(now))
        request_fingerprint = fingerprint()
        existing = self.store.begin(
            attempt.record_key,
            request_fingerprint,
            client_id=client_id,
            now=attempt.started_at,
            lock_until=lock_until,
            expires_at=attempt.started_at + RECORD_TTL_SECONDS,
        )
        if existing is None:
            return attempt
        if existing.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused(details={"field": "Idempotency-Key"})
        if existing.state != "done" or existing.response is None:
            raise IdempotencyInProgress(retry_after=1)
        attempt.replay = existing.response
        return attempt

    def keep(self, attempt: Attempt, answer: dict[str, Any]) -> None:
        """Keep what the request answered, for replays."""
        self.store.finish(attempt.record_key, answer, expires_at=attempt.started_at + RECORD_TTL_SECONDS)

    def forget(self, attempt: Attempt) -> None:
        """The request failed in a way a retry may fix: the key is free again."""
        self.store.abandon(attempt.record_key)
