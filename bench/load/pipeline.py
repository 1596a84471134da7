"""The processing pipeline's part of a run: jobs started, completed or failed through the Lambda's own
``JobService``, against the same emulated AWS."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import boto3

from bench.load.ledger import Ledger
from bench.load.plan import LOOPBACK_HOSTS, REGION
from bench.load.stats import Stats
from local_api.cfn_template import Stack, load_template
from models.errors import IllegalTransition
from services.job_service import JobService
from services.previews import PreviewService
from services.retention import BlueprintRetention
from services.runtime_config import RuntimeConfig
from storage import Stores
from utils import aws


@dataclass
class Resources:
    """The emulated AWS and the dev stack's names in it."""

    endpoint: str
    jobs_table: str
    preview_table: str
    blueprints_bucket: str
    cache_bucket: str

    def client(self, service: str) -> Any:
        host = urlsplit(self.endpoint).hostname
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"refusing a non-loopback AWS endpoint: {self.endpoint}")
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the emulator's dummy credentials
            config=aws.client_config(max_pool_connections=16),
        )


def dev_resources(endpoint: str) -> Resources:
    env = Stack(load_template(), {"Environment": "dev"}, region=REGION).function_environment("ApiFunction")
    return Resources(
        endpoint, env["JOBS_TABLE"], env["PREVIEW_CACHE_TABLE"], env["BLUEPRINTS_BUCKET"], env["CACHE_BUCKET"]
    )


class Pipeline(threading.Thread):
    """The processing pipeline's part: start and complete (or fail) jobs, through ``JobService``."""

    RESULT: ClassVar[dict[str, Any]] = {
        "rooms": [{"id": "room_1", "bounding_box": [0, 0, 10, 10]}],
        "model_version": "load-1",
    }

    def __init__(
        self, *, resources: Resources, ledger: Ledger, stats: Stats, until: float, stop: threading.Event, seed: int
    ) -> None:
        super().__init__(name="load-pipeline", daemon=True)
        stores = Stores(
            resources.jobs_table,
            resources.preview_table,
            resources.blueprints_bucket,
            resources.cache_bucket,
            dynamodb=resources.client("dynamodb"),
            s3=resources.client("s3"),
        )
        retention = BlueprintRetention(stores.blueprints, stores.uploads, stores.jobs_table, stores.marks, days=7)
        self.service = JobService(
            stores.jobs_table, stores.cache, PreviewService(stores.previews), RuntimeConfig(), retention=retention
        )
        self.ledger, self.stats, self.until, self.stop = ledger, stats, until, stop
        self.rng = random.Random(seed)  # noqa: S311 - a load mix, not cryptography
        self.outcomes: Counter[str] = Counter()

    def run(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self.until:
            job_id = self.ledger.claim_for_pipeline(self.rng)
            if job_id is None:
                time.sleep(0.05)
                continue
            try:
                self._process(job_id)
            except Exception as exc:
                self.outcomes["error"] += 1
                self.stats.problem(f"pipeline on {job_id}: {type(exc).__name__}: {exc}")
            self.stop.wait(self.rng.uniform(0.0, 0.05))

    def _set(self, job_id: str, state: str, final: bool = True) -> None:
        self.ledger.update(job_id, lambda job: setattr(job, "pipeline", state))
        if final:
            self.outcomes[state] += 1

    def _process(self, job_id: str) -> None:
        try:
            self.service.start_processing(job_id)
        except IllegalTransition as exc:
            self._set(job_id, "cancelled first" if exc.current == "cancelled" else f"unexpected {exc.current}")
            return
        self._set(job_id, "processing", final=False)
        self.stop.wait(self.rng.uniform(0.0, 0.02))  # a window for a racing cancel
        try:
            if self.rng.random() < 0.8:
                self.service.complete_job(job_id, self.RESULT)
                self._set(job_id, "completed")
            else:
                self.service.fail_job(job_id, {"code": "MODEL_ERROR", "message": "load test failure"})
                self._set(job_id, "failed")
        except IllegalTransition as exc:
            self._set(job_id, "cancelled first" if exc.current == "cancelled" else f"unexpected {exc.current}")
