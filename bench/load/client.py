"""A client thread: its connections, its seeded share of the mix, and requests raced on two connections."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from bench.load.connection import Connection, Reply
from bench.load.ledger import Ledger
from bench.load.plan import MIX, REQUEST_TIMEOUT_SECONDS
from bench.load.stats import Stats


class Client(threading.Thread):
    """One client: a keep-alive connection to the API (and one to emulated S3 for presigned uploads)."""

    def __init__(
        self,
        *,
        index: int,
        api: tuple[str, int],
        api_key: str,
        ledger: Ledger,
        stats: Stats,
        until: float,
        stop: threading.Event,
        seed: int,
        samples: dict[str, bytes],
    ) -> None:
        super().__init__(name=f"load-client-{index}", daemon=True)
        self.index = index
        self.api_key = api_key
        self.conn = Connection(api[0], api[1], stats, api_key)
        #: A second connection, for requests that race the first one's (same client, same moment).
        self.racer = Connection(api[0], api[1], stats, api_key)
        self.s3: Connection | None = None
        self.ledger, self.stats, self.until, self.stop = ledger, stats, until, stop
        self.rng = random.Random(seed * 1000 + index)  # noqa: S311 - a load mix, not cryptography
        self.samples = samples
        self.creates = 0
        ops = list(MIX)
        self._ops, self._weights = ops, [MIX[o] for o in ops]

    def run(self) -> None:
        try:
            while not self.stop.is_set() and time.monotonic() < self.until:
                op = self.rng.choices(self._ops, self._weights)[0]
                getattr(self, op)()
        except Exception as exc:  # a bug in the load tool itself must fail the run, not vanish
            self.stats.problem(f"{self.name} crashed: {type(exc).__name__}: {exc}")
        finally:
            self.conn.close()
            self.racer.close()
            if self.s3 is not None:
                self.s3.close()

    def _race(
        self, first: Callable[[Connection], Reply | None], second: Callable[[Connection], Reply | None]
    ) -> list[Reply]:
        """``first`` on the main connection and ``second`` on the racer, at the same moment; the replies."""
        replies: list[Reply | None] = [None, None]

        def run_second() -> None:
            replies[1] = second(self.racer)

        helper = threading.Thread(target=run_second, name=f"{self.name}-racer", daemon=True)
        helper.start()
        replies[0] = first(self.conn)
        helper.join(REQUEST_TIMEOUT_SECONDS + 5)
        return [reply for reply in replies if reply is not None]
