"""Local API: latency percentiles and throughput of ``GET /api/v1/jobs/{id}`` over HTTP with keep-alive.

8 client threads (``http.client``, one keep-alive connection each) send requests back to back to
``python -m local_api`` started as a process on a free port (its own embedded moto, ``DEV_API_KEYS``,
as ``make run`` does). The baseline is measured in the same run, interleaved with it (rounds, order
swapped every round), against a server that does the least that can answer the same question: a
``ThreadingHTTPServer`` with the same HTTP/1.1 keep-alive handler base and the same embedded moto
(in-process ``ThreadedMotoServer``, provisioned from ``template.yaml``), whose one route makes the one
``GetItem`` our GET makes and writes the item as JSON. So the ratio is what the local API adds per
request on top of the transport and the data access: the API Gateway event built and size-checked,
``lambda_handler`` (auth, routing, envelope, CORS, logs, metrics), the response turned back into HTTP.
A third server answers a fixed JSON body without touching AWS: it shows the floor of the transport
(``http.server`` + the client threads on this machine), in the notes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import ROOT, child_env, free_port, median, percentile, use_src
from bench.report import Row, Section, method_of

API_KEY = "ldk_bench_http_key"
CLIENT_ID = "dev-client-1"  # what local_api names the first of DEV_API_KEYS


#: Issue 21: GET job with 8 keep-alive clients on this machine.
TARGET_THROUGHPUT = 300.0
TARGET_P50_MS = 30.0


@dataclass
class Sample:
    latencies: list[float]
    seconds: float

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


# ------------------------------------------------------------------------------------------ the client
def load(port: int, path: str, threads: int, seconds: float) -> Sample:
    """``threads`` keep-alive clients GET ``path`` back to back for ``seconds``; every answer must be 200."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[str] = []
    barrier = threading.Barrier(threads + 1)
    stop = threading.Event()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"X-API-Key": API_KEY}
        mine = latencies[n]
        perf = time.perf_counter
        barrier.wait()
        try:
            while not stop.is_set():
                started = perf()
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                mine.append(perf() - started)
                if response.status != 200:
                    errors.append(f"{response.status}")
                    return
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
        finally:
            conn.close()

    workers = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"GET {path} on port {port} failed: {errors[:3]}")
    return Sample([x for xs in latencies for x in xs], elapsed)


def get(port: int, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited early:\n{log.read_text()[-3000:]}")
        try:
            if get(port, "/health")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not become healthy")


# ------------------------------------------------------------------------------------------ the parent
SERVERS = ("local-api", "bare", "static")


@contextmanager
def started_servers(src: Path, nodelay: bool) -> Iterator[dict[str, int]]:
    """The three servers, each a process on a free port (``--serve NAME``); stopped on the way out."""
    logs = Path(tempfile.mkdtemp(prefix="bench-http-"))
    env = child_env(
        src,
        {
            "DEV_API_KEYS": API_KEY,
            "PYTHONUNBUFFERED": "1",
            "LOCAL_API_STATE": str(logs / "local-api.json"),
            "BENCH_TCP_NODELAY": "1" if nodelay else "0",
        },
    )
    processes: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for name in SERVERS:
            port = free_port()
            command = [sys.executable, "-m", "bench.http_latency", "--serve", name, "--src", str(src)]
            with (logs / f"{name}.log").open("wb") as log:
                process = subprocess.Popen(
                    [*command, "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            processes[name] = (process, port)
        for name, (process, port) in processes.items():
            wait_healthy(port, process, logs / f"{name}.log")
        yield {name: port for name, (_, port) in processes.items()}
    finally:
        for process, _ in processes.values():
            process.terminate()
        for process, _ in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def seed_job(ports: dict[str, int]) -> str:
    """Create a job through the local API and give the baselines the same one; its path."""
    status, body = get(ports["local-api"], "/api/v1/jobs", "POST", _create_body())
    if status != 201:
        raise RuntimeError(f"could not create a job: {status} {body[:500]!r}")
    job = json.loads(body)["data"]
    for name in ("bare", "static"):  # the same job, as the local API answers it
        if get(ports[name], f"/seed/{job['job_id']}", "POST", json.dumps(job).encode())[0] != 200:
            raise RuntimeError(f"could not seed the {name} server")
    return f"/api/v1/jobs/{job['job_id']}"


def run(src: Path, threads: int, seconds: float, rounds: int, nodelay: bool = False) -> Section:
    started = time.perf_counter()
    samples: dict[str, list[Sample]] = {name: [] for name in SERVERS}
    with started_servers(src, nodelay) as ports:
        path = seed_job(ports)
        for name in SERVERS:  # warm-up: threads, connections, caches
            load(ports[name], path, threads, min(1.0, seconds))
        for round_number in range(rounds):
            for name in SERVERS if round_number % 2 == 0 else tuple(reversed(SERVERS)):
                samples[name].append(load(ports[name], path, threads, seconds))
    section = to_section(samples, threads, seconds, rounds)
    if nodelay:
        section.title += " (prototype: TCP_NODELAY on the local server)"
    section.seconds = time.perf_counter() - started
    return section


def to_section(samples: dict[str, list[Sample]], threads: int, seconds: float, rounds: int) -> Section:
    pooled = {name: [x * 1000 for s in runs for x in s.latencies] for name, runs in samples.items()}
    throughput = {
        name: sum(len(s.latencies) for s in runs) / sum(s.seconds for s in runs) for name, runs in samples.items()
    }
    ours, bare, static = pooled["local-api"], pooled["bare"], pooled["static"]
    rows = [
        Row(
            f"local API GET job p{p}",
            percentile(ours, p),
            f"bare server p{p}",
            percentile(bare, p),
            "ms",
            **({"limit": TARGET_P50_MS, "on_ratio": False} if p == 50 else {}),
        )
        for p in (50, 95, 99)
    ]
    rows.append(
        Row(
            "local API GET job throughput",
            throughput["local-api"],
            "bare server throughput",
            throughput["bare"],
            "req/s",
            limit=TARGET_THROUGHPUT,
            on_ratio=False,
            higher_is_better=True,
        )
    )
    notes = [
        f"{threads} client threads, {rounds} rounds of {seconds:g} s per server, "
        f"{len(ours)} / {len(bare)} / {len(static)} requests (local API / bare / static).",
        "",
        f"- Transport floor (static JSON, no AWS): p50 {percentile(static, 50):.2f} ms, p99 "
        f"{percentile(static, 99):.2f} ms, {throughput['static']:.0f} req/s. Bare over static "
        f"(the one emulated `GetItem`): {median(bare) / median(static):.2f}x at the median.",
        f"- Local API over bare, per request at the median: +{median(ours) - median(bare):.2f} ms.",
        *(
            [
                "- A transport floor of ~40 ms per keep-alive request is the local server's Nagle / delayed-ACK "
                "stall (Findings, 4); `python -m bench --only http --http-nodelay` prototypes the fix."
            ]
            if percentile(static, 50) > 20
            else []
        ),
        f"- Targets (issue 21): >= {TARGET_THROUGHPUT:g} req/s and p50 <= {TARGET_P50_MS:g} ms with {threads} "
        "clients. The local API answers the handler's boto3 calls in process from the embedded moto's own "
        "backends (`local_api/in_process.py`), its DynamoDB calls by moto's DynamoDB handler without moto's URL "
        "dispatch and generic serializer (`local_api/in_process_dynamodb.py`); the bare server still sends its "
        "`GetItem` over loopback HTTP to the same kind of embedded moto, so ours can beat it. Where the rest "
        "goes: Findings, 6.",
    ]
    return Section(
        title="Local API: GET job over HTTP, 8 keep-alive clients",
        method=method_of(__doc__),
        rows=rows,
        notes=notes,
    )


def _create_body() -> bytes:
    import base64

    from tests import samples

    return json.dumps(
        {"blueprint": {"file": base64.b64encode(samples.png()).decode(), "format": "png", "filename": "plan.png"}}
    ).encode()


# ------------------------------------------------------------------------------------------ the servers
def _prototype_nodelay() -> None:
    """``--http-nodelay``: the fix proposed for ``local_api/server.py`` (``_Handler`` answers with two
    writes, headers then body; with Nagle's algorithm on, the body waits for the client's delayed ACK of
    the headers, ~40 ms on Linux, on every keep-alive request). Applied to every server alike."""
    if os.environ.get("BENCH_TCP_NODELAY") == "1":
        from local_api.server import _Handler

        _Handler.disable_nagle_algorithm = True


def serve_local_api(src: Path, port: int) -> None:
    use_src(src)
    _prototype_nodelay()
    from local_api.__main__ import main

    sys.exit(main(["--port", str(port), "--quiet"]))


def baseline_handler(dynamodb: Any, table: str) -> type[Any]:
    """The baseline servers' request handler: the local API's own (same HTTP/1.1 keep-alive, timeouts
    and response writing), with ``lambda_handler`` and the event replaced by the least that answers
    ``GET /api/v1/jobs/{id}``: one ``GetItem``, the item as JSON. Without ``dynamodb``: a fixed body."""
    from boto3.dynamodb.types import TypeDeserializer

    from local_api.server import _Handler

    deserialize = TypeDeserializer().deserialize
    json_headers = [("Content-Type", "application/json")]
    static = {"body": b"{}"}

    class Baseline(_Handler):
        quiet = True

        def _dispatch(self) -> None:
            body = self._read_body() or b""
            if self.path == "/health":
                self._send(200, json_headers, b'{"status": "healthy"}')
            elif self.command == "POST":  # /seed/{job_id}: the same job as the local API's
                seed(self.path.rsplit("/", 1)[-1], body)
                self._send(200, json_headers, b"{}")
            elif dynamodb is None:
                self._send(200, json_headers, static["body"])
            else:
                job_id = self.path.rsplit("/", 1)[-1]
                item = dynamodb.get_item(TableName=table, Key={"job_id": {"S": job_id}}, ConsistentRead=True).get(
                    "Item"
                )
                if item is None:
                    self._send(404, json_headers, b'{"status": "error"}')
                    return
                job = {k: deserialize(v) for k, v in item.items()}
                self._send(200, json_headers, json.dumps(job, default=str).encode())

    def seed(job_id: str, body: bytes) -> None:
        job = json.loads(body)
        if dynamodb is None:
            static["body"] = json.dumps(job).encode()
            return
        from boto3.dynamodb.types import TypeSerializer

        serialize = TypeSerializer().serialize
        dynamodb.put_item(TableName=table, Item={k: serialize(v) for k, v in job.items() if v is not None})

    return Baseline


def serve_baseline(src: Path, port: int, with_aws: bool) -> None:
    use_src(src)
    _prototype_nodelay()
    dynamodb, table = None, ""
    if with_aws:
        import boto3

        from local_api.cfn_template import Stack, load_template
        from local_api.provision import provision
        from local_api.server import start_emulated_aws
        from utils.aws import client_config  # the Lambda's own client settings

        _moto, endpoint = start_emulated_aws()  # in-process, as the local API runs it
        stack = Stack(load_template(), {"Environment": "dev"})
        provision(stack, endpoint_url=endpoint)
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, config=client_config())
        table = stack.function_environment()["JOBS_TABLE"]
    server = ThreadingHTTPServer(("127.0.0.1", port), baseline_handler(dynamodb, table))
    server.daemon_threads = True
    print(f"listening on {port}", flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", choices=("local-api", "bare", "static"), required=True)
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.serve == "local-api":
        serve_local_api(args.src, args.port)
    else:
        serve_baseline(args.src, args.port, with_aws=args.serve == "bare")


if __name__ == "__main__":
    main()
