"""Webhooks, locally: the time from a state change to its signed delivery at a receiver (p50, p95).

One child process, as `make run` is: emulated AWS provisioned from ``template.yaml``, the stream's poller
running the real consumer, the two queue pollers running the real fan-out and delivery worker (the path
EventBridge -> webhook events queue -> fan-out -> deliveries queue -> delivery worker of the deployed
stack), and a receiver on loopback (``http.server``) registered as a webhook through ``lambda_handler``.
Each sample is one job created through ``lambda_handler``, timed from the moment the handler returned
(the write is done) to the moment the receiver holds the ``job.created`` delivery with that job's id;
one change at a time. The baseline, interleaved in the same run: the same event put straight on the bus,
timed to a subscriber's queue (the job events benchmark's figure), so the difference is what the webhook
queues, workers and the HTTP POST add. The queue pollers long-poll (1 s waits, answered as soon as a
message arrives). Deployed, Lambda's SQS pollers add their own hops: a floor, not a forecast.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import NullWriter, child_env, percentile, quiet_stdout, report, run_child, use_src
from bench.events import _Subscriber
from bench.report import Row, Section, method_of

API_KEY = "ldk_bench_webhooks_key"
#: The issue's promise for make run: an event reaches a receiver on loopback within 2 s.
TARGET_P95_MS = 2000.0


def run(src: Path, samples: int) -> Section:
    started = time.perf_counter()
    env = child_env(src, {"WEBHOOK_ALLOW_LOOPBACK": "true"})
    result = run_child("bench.webhooks", ["--child", "--src", str(src), "--samples", str(samples)], env)
    delivered, direct = result["delivered_ms"], result["direct_ms"]
    rows = [
        Row("state change -> receiver, p50", percentile(delivered, 50), "PutEvents -> subscriber, p50",
            percentile(direct, 50), "ms"),
        Row("state change -> receiver, p95", percentile(delivered, 95), "PutEvents -> subscriber, p95",
            percentile(direct, 95), "ms", limit=TARGET_P95_MS, on_ratio=False),
    ]  # fmt: skip
    notes = [
        f"{len(delivered)} changes and {len(direct)} direct puts, interleaved; max {max(delivered):.1f} ms; "
        f"every delivery verified by the standardwebhooks reference library: {result['verified']}.",
    ]
    return Section(
        "Webhooks: state change to receiver (local)", method_of(__doc__), rows, notes, time.perf_counter() - started
    )


# ------------------------------------------------------------------------------------------ the child
class _Receiver:
    """A loopback HTTP server that notes when each delivery arrived, by the job id in its body."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.bodies: list[tuple[bytes, dict[str, str]]] = []
        self._event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.perf_counter()
                self.send_response(204)
                self.end_headers()
                with receiver._event:
                    receiver.arrived[json.loads(body)["data"]["job"]["job_id"]] = now
                    receiver.bodies.append((body, {k.lower(): v for k, v in self.headers.items()}))
                    receiver._event.notify_all()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def wait_for(self, job_id: str, timeout: float = 10.0) -> float:
        with self._event:
            if not self._event.wait_for(lambda: job_id in self.arrived, timeout):
                raise RuntimeError(f"the delivery of {job_id} never arrived")
            return self.arrived[job_id]


def _child(src: Path, samples: int) -> dict[str, Any]:
    use_src(src)
    os.environ["DEV_API_KEYS"] = API_KEY
    # Dozens of creates in a row: the rate limits (make run honours these) are not what this times.
    os.environ["RATE_LIMIT_PER_MINUTE"], os.environ["RATE_LIMIT_BURST"] = "100000", "10000"
    from local_api.event_poller import start_poller
    from local_api.queue_poller import start_queue_pollers
    from local_api.server import LambdaContext, build_event, prepare_environment
    from tests.samples import png  # a valid PNG (the API checks IHDR's CRC), unique by a tEXt chunk

    stack, moto_server = prepare_environment()
    pollers = [start_poller(stack), *start_queue_pollers(stack)]
    from api.rest_api import lambda_handler

    context = LambdaContext("location-detection-dev-api", 25)

    def call(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        headers = [("X-API-Key", API_KEY), ("Content-Type", "application/json")]
        answer: dict[str, Any] = json.loads(
            lambda_handler(build_event("POST", path, headers, json.dumps(payload).encode()), context)["body"]
        )
        return answer

    receiver, subscriber = _Receiver(), _Subscriber()
    secret = call("/api/v1/webhooks", {"url": receiver.url, "events": ["job.created"]})["data"]["secret"]
    delivered_ms: list[float] = []
    direct_ms: list[float] = []
    try:
        for n in range(samples + 3):  # the first few warm the clients, workers and KMS cache: not counted
            content = base64.b64encode(png(extra=f"{n} {uuid.uuid4().hex}".encode())).decode()
            job_id = call("/api/v1/jobs", {"blueprint": {"file": content, "format": "png"}})["data"]["job_id"]
            changed = time.perf_counter()
            arrived = receiver.wait_for(job_id)
            sent, direct_arrived = subscriber.put_direct()
            if n >= 3:
                delivered_ms.append((arrived - changed) * 1000)
                direct_ms.append((direct_arrived - sent) * 1000)
        verified = _verify_all(secret, receiver.bodies)
    finally:
        for poller in pollers:
            poller.stop()
        receiver.server.shutdown()
        if moto_server is not None:
            moto_server.stop()
    return {"delivered_ms": delivered_ms, "direct_ms": direct_ms, "verified": verified}


def _verify_all(secret: str, bodies: list[tuple[bytes, dict[str, str]]]) -> int:
    """How many deliveries the reference library verified (it raises on the first it would not)."""
    from standardwebhooks import Webhook

    for body, headers in bodies:
        Webhook(secret).verify(body, headers)
    return len(bodies)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks")
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args()
    with quiet_stdout(NullWriter()):
        result = _child(args.src, args.samples)
    report(result)


if __name__ == "__main__":
    main()
