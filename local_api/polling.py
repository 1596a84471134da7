"""The background thread the local API's pollers share (the stream's and the queues'): call ``step``
until stopped, at once again while it finds work, else after ``idle`` seconds. A failing step (emulated
AWS going away at shutdown, a transient error) is logged and waited out, never the end of the thread.
Dev-only, never imported by ``src/``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from logging import Logger


class PollingThread:
    def __init__(
        self, name: str, step: Callable[[], int], *, idle: float, logger: Logger, what: str, error_wait: float = 0.5
    ) -> None:
        """``step`` returns how much it handled (0: nothing, so wait ``idle``: 0 for a step that long-polls
        itself); after a failed step, wait ``error_wait``; ``what`` names it in logs."""
        self.name, self.step, self.idle, self.logger, self.what = name, step, idle, logger, what
        self.error_wait = error_wait
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = 0.0 if self.step() > 0 else self.idle
            except Exception:  # emulated AWS going away at shutdown, a transient error: try again
                self.logger.warning("polling %s failed; retrying", self.what, exc_info=True)
                wait = self.error_wait
            if wait:
                self._stop.wait(wait)
