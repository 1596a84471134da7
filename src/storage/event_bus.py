"""The EventBridge bus job events go to (``location-detection-{env}``): every PutEvents call.

Each event becomes one entry: ``source`` ``location-detection.jobs``, ``detail-type`` ``Job Status
Changed``, the contract's ``detail`` as JSON, ``time`` the change's. PutEvents takes at most 10 entries
and may refuse some of them while accepting the rest (``FailedEntryCount``); the refused ones are sent
again, alone, by the retry layer when their error is one worth retrying (throttling, an internal
failure), so a call never publishes an entry twice on its own account.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from models.events import DETAIL_TYPE, SOURCE, JobEvent
from storage.base import ResourceBound, error_code
from utils import retry
from utils.errors import ServiceUnavailable
from utils.logging import get_logger

logger = get_logger("storage")

#: PutEvents' limit on entries per call.
MAX_ENTRIES = 10


def entry(event: JobEvent, bus_name: str) -> dict[str, Any]:
    """The PutEvents entry of ``event`` on ``bus_name``."""
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(event.detail(), separators=(",", ":"), ensure_ascii=False),
        "EventBusName": bus_name,
        "Time": datetime.fromtimestamp(event.time, UTC),
    }


class EventBus(ResourceBound):
    service: ClassVar[str] = "events"

    @property
    def bus_name(self) -> str:
        return self._name

    def publish(self, events: Sequence[JobEvent]) -> int:
        """Put ``events`` on the bus, in order, ten at a time. Returns how many of them, counted from the
        first, are published: ``len(events)`` when all are. The first one that is not (the bus refused
        it, or was unavailable after bounded retries) ends the run: events after it in the same call may
        have been published too, and will be again (consumers drop duplicates by the event's id)."""
        published = 0
        for start in range(0, len(events), MAX_ENTRIES):
            chunk = events[start : start + MAX_ENTRIES]
            done = self._put(chunk)
            published += done
            if done < len(chunk):
                break
        return published

    def _put(self, chunk: Sequence[JobEvent]) -> int:
        """How many of ``chunk``, from the first, one PutEvents call (and its retries) published."""
        entries = [entry(event, self.bus_name) for event in chunk]
        pending = list(range(len(entries)))
        refused: set[int] = set()

        def attempt() -> None:
            nonlocal pending
            response = self.client.put_events(Entries=[entries[i] for i in pending])
            failed = [
                (i, r["ErrorCode"]) for i, r in zip(pending, response["Entries"], strict=True) if "ErrorCode" in r
            ]
            refused.update(i for i, code in failed if code not in retry.RETRYABLE_ERROR_CODES)
            pending = [i for i, _ in failed if i not in refused]
            if pending:
                raise retry.PartlyFailed("events.put_events", failed[0][1])
            if refused:
                codes = sorted({code for _, code in failed})
                logger.error("the bus refused events", extra={"error_codes": codes, "refused": len(refused)})

        try:
            retry.call("events.put_events", attempt)
        except (ServiceUnavailable, ClientError) as exc:
            code = error_code(exc) if isinstance(exc, ClientError) else "ServiceUnavailable"
            logger.error("events not published", extra={"error_code": code, "unpublished": len(pending)})
        unpublished = refused | set(pending)
        return min(unpublished) if unpublished else len(chunk)
