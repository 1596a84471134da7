"""The stack's own housekeeping, run on a schedule (``workers.sweep``, hourly): it finishes erasures whose
client never retried, and deletes blueprints whose retention ended (``services.retention``).

Both lists come from the jobs table's lookup index (``storage.lookups``), oldest first, never from a
Scan. One job failing (an outage, a throttle past its retries) is logged and left for the next run: its
entry stays in the index until its work is done. The run stops taking new jobs when the invocation's
time runs short.
"""

from __future__ import annotations

from collections.abc import Callable

from services.erasure import ErasureService
from services.retention import BlueprintRetention
from storage.lookups import ERASE, RETENTION, Lookups
from utils import metrics, retry
from utils.clock import WallClock, wall_time
from utils.logging import get_logger

logger = get_logger("sweep")

#: An erasure marked this recently may still be running in its request: the sweep leaves it alone.
ERASE_GRACE_SECONDS = 300
#: Jobs taken per list and run (a run that finds more leaves them for the next one, an hour later).
BATCH = 200
#: Seconds kept in hand when the run stops taking jobs (one job's erasure takes well under this).
RESERVE_SECONDS = 20.0


class Sweep:
    def __init__(
        self,
        lookups: Lookups,
        erasure: ErasureService,
        retention: BlueprintRetention,
        *,
        clock: WallClock = wall_time,
        time_left: Callable[[], float | None] = retry.seconds_left,
    ) -> None:
        self.lookups = lookups
        self.erasure = erasure
        self.retention = retention
        self._clock = clock
        self._time_left = time_left

    def run(self) -> dict[str, int]:
        """One run: what it finished, expired and failed, as counts (also its log line and metrics)."""
        now = self._clock()
        report = {"erasures_finished": 0, "blueprints_expired": 0, "objects_deleted": 0, "failures": 0}
        for job_id in self.lookups.due(ERASE, int(now - ERASE_GRACE_SECONDS), BATCH):
            if not self._step(report, job_id, lambda j: self._finish_erasure(j, report)):
                break
        for job_id in self.lookups.due(RETENTION, int(now), BATCH):
            if not self._step(report, job_id, lambda j: self._expire(j, now, report)):
                break
        logger.info("sweep done", extra=report)
        metrics.add("SweepFailures", report["failures"])
        return report

    def _step(self, report: dict[str, int], job_id: str, work: Callable[[str], None]) -> bool:
        """Run ``work`` for one job; False when the invocation has no time left for another."""
        left = self._time_left()
        if left is not None and left < RESERVE_SECONDS:
            logger.warning("sweep out of time; the rest waits for the next run", extra={"job_id": job_id})
            return False
        try:
            work(job_id)
        except Exception:
            report["failures"] += 1
            logger.warning("sweep could not finish a job; next run retries", exc_info=True, extra={"job_id": job_id})
        return True

    def _finish_erasure(self, job_id: str, report: dict[str, int]) -> None:
        receipt = self.erasure.finish_marked(job_id, actor="sweep")
        if receipt is not None:
            report["erasures_finished"] += 1
            report["objects_deleted"] += receipt.objects_deleted

    def _expire(self, job_id: str, now: float, report: dict[str, int]) -> None:
        deleted = self.retention.expire(job_id, now)
        if deleted is not None:
            report["blueprints_expired"] += 1
            report["objects_deleted"] += deleted
