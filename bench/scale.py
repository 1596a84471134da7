"""Cost against size: GET, create, cancel and list (first and 10th page) as the jobs table grows to 1k,
10k and 100k jobs and a client owns 10, 1k and 10k of them.

One child process runs ``lambda_handler`` against in-process emulated AWS (moto's ``mock_aws``,
provisioned from ``template.yaml``), as the warm benchmark does. The table is filled in three stages
(1k, 10k, 100k jobs; one client with 10 jobs from the first stage, one with 1k from the second, one with
10k from the third, the rest spread over 500 other clients, ``created_at`` one second apart). The fill
writes the jobs straight into moto's table with its stream switched off for the fill (going through the
API would take hours at 100k, and moto keeps every stream record for the life of the process); so the
measured writes are the only stream records. After each stage the emulator's objects are frozen out of
the garbage collector (``gc.freeze``): a collection walking 100k emulated items would otherwise land in
whichever request triggers it, ours or not; for the same reason the collector runs between requests and
is off during each (a Lambda's heap holds one request, not an emulated table).

Each request is timed whole and split at the boto3 boundary (as in the warm benchmark): **own** time is
ours (routing, auth, validation, (de)serialisation, logs), **in AWS** is botocore plus the emulator (wall
time). Own time is the thread's CPU time outside the calls: on a shared machine a preemption after a
multi-second emulated ``Query`` lands in the few milliseconds that follow it, and wall time would charge
the emulator's length to us.
Requests of one stage are interleaved (route after route, round after round); figures are medians. A
list also records the items its ``Query`` calls read (``ScannedCount``): O(page size) means that number
is the page size whatever the table or the client holds. Targets: own time at the largest table and
client within 1.5x of the smallest (the same client as the table grows from 1k to 100k jobs; one table as
the client's jobs grow from 10 to 10k), allowing for the noise of two shared cores (a real growth with
size would be 10x-100x); and a list page reads at most its page size.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import time
from pathlib import Path
from typing import Any

from bench.common import NullWriter, child_env, median, quiet_stdout, report, run_child, use_src
from bench.report import Row, Section, method_of

#: (jobs in the table, client, jobs it owns): the stages and the client each adds.
STAGES = ((1_000, "cli_own_10", 10), (10_000, "cli_own_1k", 1_000), (100_000, "cli_own_10k", 10_000))
FILLER_CLIENTS = 500
PAGE_SIZE = 20
ROUTES = ("get", "create", "cancel", "list-1", "list-10")
ROUTE_NAMES = {
    "get": "GET job",
    "create": "create (small PNG)",
    "cancel": "cancel",
    "list-1": "list, first page",
    "list-10": "list, 10th page",
}
TARGET_OWN_GROWTH = 1.5
#: Above this many jobs, moto's index scan makes each list take tens of seconds: lists are sampled once.
SLOW_LIST_SIZE = 10_000
EXPECTED = {"get": 200, "create": 201, "cancel": 200, "list-1": 200, "list-10": 200}


def run(src: Path, iterations: int, stages: int) -> Section:
    started = time.perf_counter()
    result = run_child(
        "bench.scale",
        ["--child", "--src", str(src), "--iterations", str(iterations), "--stages", str(stages)],
        child_env(src),
        timeout=3600,
    )
    section = to_section(result, iterations)
    section.seconds = time.perf_counter() - started
    return section


def to_section(result: dict[str, Any], iterations: int) -> Section:
    """``result["cells"]``: one per (table size, client, route) with the samples' own/in-AWS seconds and
    the items each list read."""
    cells = result["cells"]
    own = {(c["size"], c["owned"], c["route"]): median(c["own"]) * 1000 for c in cells}
    aws = {(c["size"], c["owned"], c["route"]): median(c["aws"]) * 1000 for c in cells}
    read = {(c["size"], c["owned"], c["route"]): max(c["read"], default=0) for c in cells}
    keys = sorted({(size, owned) for size, owned, _ in own})
    rows: list[Row] = []
    for route in ROUTES:
        present = [k for k in keys if (*k, route) in own]
        smallest_owner = min((owned for _, owned in present), default=0)
        growth = [k for k in present if k[1] == smallest_owner]  # the same client as the table grows
        largest = max((size for size, _ in present), default=0)
        ownership = [k for k in present if k[0] == largest]  # one table, clients owning more and more
        for cells_of, what in ((growth, "the table grows"), (ownership, "the client owns more")):
            if len(cells_of) < 2:
                continue
            small, large = cells_of[0], cells_of[-1]
            rows.append(
                Row(
                    f"{ROUTE_NAMES[route]}, {what}: own time at {large[0]:,} jobs / owns {large[1]:,}",
                    own[(*large, route)],
                    f"{small[0]:,} jobs / owns {small[1]:,}",
                    own[(*small, route)],
                    "ms",
                    limit=TARGET_OWN_GROWTH,
                )
            )
    for route in ("list-1", "list-10"):
        present = [k for k in keys if (*k, route) in read]
        if present:
            worst = max(present, key=lambda k: read[(*k, route)])
            rows.append(
                Row(
                    f"{ROUTE_NAMES[route]}: items read (most of any table/client)",
                    float(read[(*worst, route)]),
                    "page size",
                    float(PAGE_SIZE),
                    "items",
                    limit=float(PAGE_SIZE),
                    on_ratio=False,
                )
            )
    notes = [
        f"{iterations} requests per route, table size and client (medians; lists above "
        f"{SLOW_LIST_SIZE:,} jobs: one request, the 10th page left out, see below). Own time / time in AWS "
        "(botocore + the emulator), ms:",
        "",
        "| jobs in table | client owns | " + " | ".join(ROUTE_NAMES[r] for r in ROUTES) + " |",
        "|---:|---:|" + "---|" * len(ROUTES),
    ]
    for size, owned in keys:
        cells_text = []
        for route in ROUTES:
            key = (size, owned, route)
            cells_text.append(f"{own[key]:.2f} / {aws[key]:.1f}" if key in own else "-")
        notes.append(f"| {size:,} | {owned:,} | " + " | ".join(cells_text) + " |")
    notes += [
        "",
        f"Fill: {result['fill_seconds']:.0f} s for {max(k[0] for k in keys):,} jobs written straight into the "
        "emulator (stream off). The emulator's own time grows where moto scans: it answers a ``Query`` of a "
        "global secondary index by walking and sorting every item of the table (so the list's time in AWS "
        "grows with the table, ~0.4 ms per job on this machine, not with the page), and keeps every stream "
        "record in memory. DynamoDB answers the same "
        "``Query`` from the index's partition for the owner, reading only the page (the items-read rows). "
        "GetItem, PutItem and UpdateItem are dictionary look-ups in moto and key look-ups in DynamoDB: "
        "flat in both.",
    ]
    return Section(
        title="Cost against size: own time per request as the table and a client's jobs grow",
        method=method_of(__doc__),
        rows=rows,
        notes=notes,
    )


# ------------------------------------------------------------------------------------------- the child
class Meter:
    """Time inside boto3 per request, and the items a list's ``Query`` calls read (``ScannedCount``)."""

    def __init__(self, clients: list[Any]) -> None:
        self.seconds, self.cpu, self.read = 0.0, 0.0, 0
        for client in clients:
            original = client._make_api_call

            def timed(operation: str, params: dict[str, Any], original: Any = original) -> Any:
                started, cpu = time.perf_counter(), time.thread_time()
                try:
                    answer = original(operation, params)
                finally:
                    self.seconds += time.perf_counter() - started
                    self.cpu += time.thread_time() - cpu
                if operation == "Query":
                    self.read += int(answer.get("ScannedCount", 0))
                return answer

            client._make_api_call = timed

    def reset(self) -> None:
        self.seconds, self.cpu, self.read = 0.0, 0.0, 0


class ScaleBench:
    def __init__(self, env: dict[str, str], api_keys: dict[str, str]) -> None:
        from api import dependencies, rest_api
        from local_api.server import LambdaContext, build_event
        from tests import samples
        from utils import aws as aws_clients

        aws_clients.reset_clients()
        dependencies.reset()
        clients = [aws_clients.get_client(name) for name in ("dynamodb", "s3", "ssm", "secretsmanager")]
        self.meter = Meter(clients)
        self.handler, self.build_event, self.context = rest_api.lambda_handler, build_event, LambdaContext
        self.deps = dependencies.get()
        self.api_keys, self.env = api_keys, env
        png = samples.png()
        self.create_body = json.dumps(
            {"blueprint": {"file": base64.b64encode(png).decode(), "format": "png", "filename": "p.png"}}
        ).encode()
        self.png = png
        self.clock = time.time() - 200_000  # filled jobs are older than any the requests make
        self.filled = 0

    def fill(self, count: int, owner: str | None) -> None:
        """``count`` jobs straight into moto's table (``owner``'s, or spread over filler clients)."""

        from moto.dynamodb.models import dynamodb_backends

        from models.job import RequestInfo
        from storage.items import to_item
        from utils.clock import iso_utc

        table = dynamodb_backends["123456789012"][os.environ["AWS_DEFAULT_REGION"]].get_table(self.env["JOBS_TABLE"])
        shard, table.stream_shard = table.stream_shard, None  # the stream off for the fill
        creation = self.deps.job_creation()
        try:
            for _ in range(count):
                self.filled += 1
                client = owner or f"cli_filler_{self.filled % FILLER_CLIENTS}"
                job = creation.new_job(
                    creation.new_job_id(),
                    "png",
                    sha256_hex="0" * 64,
                    size=len(self.png),
                    filename="p.png",
                    request=RequestInfo("req_fill", "req_fill", client),
                )
                stamp = iso_utc(self.clock + self.filled)
                job = job.replace(created_at=stamp, updated_at=stamp)
                table.put_item(to_item(job.to_record()), overwrite=True)
        finally:
            table.stream_shard = shard

    def headers(self, client: str) -> list[tuple[str, str]]:
        return [("Host", "api.example.test"), ("X-API-Key", self.api_keys[client]), ("User-Agent", "bench")]

    def invoke(self, method: str, target: str, client: str, body: bytes = b"") -> dict[str, Any]:
        headers = self.headers(client) + ([("Content-Type", "application/json")] if body else [])
        return self.handler(self.build_event(method, target, headers, body), self.context("bench-scale", 29))

    def one_of(self, client: str) -> str:
        """A pending job of the client (made through the API, untimed)."""
        answer = self.invoke("POST", "/api/v1/jobs", client, self.create_body)
        return str(json.loads(answer["body"])["data"]["job_id"])

    def cursor_before_page(self, client: str, page: int) -> str:
        target = f"/api/v1/jobs?limit={PAGE_SIZE}"
        cursor = ""
        for _ in range(page - 1):
            data = json.loads(self.invoke("GET", target + (f"&cursor={cursor}" if cursor else ""), client)["body"])
            cursor = data["data"]["next_cursor"]
        return cursor

    def request_for(self, route: str, client: str, fixtures: dict[str, str]) -> tuple[str, str, bytes]:
        if route == "get":
            return "GET", f"/api/v1/jobs/{fixtures['read']}", b""
        if route == "create":
            return "POST", "/api/v1/jobs", self.create_body
        if route == "cancel":
            return "DELETE", f"/api/v1/jobs/{self.one_of(client)}", b""
        if route == "list-1":
            return "GET", f"/api/v1/jobs?limit={PAGE_SIZE}", b""
        return "GET", f"/api/v1/jobs?limit={PAGE_SIZE}&cursor={fixtures['page10']}", b""

    def measure(self, size: int, client: str, owned: int, iterations: int) -> list[dict[str, Any]]:
        # moto answers an index Query by sorting the whole table (~0.4 ms per job here): at 100k jobs a
        # list takes ~40 s in the emulator, so there the lists are sampled once and the 10th page (nine
        # pages to walk first) is left out. Our own time is what is judged; the emulator's is reported.
        slow = size > SLOW_LIST_SIZE
        routes = [r for r in ROUTES if r != "list-10" or (owned >= 10 * PAGE_SIZE and not slow)]
        fixtures = {"read": self.one_of(client)}
        if "list-10" in routes:
            fixtures["page10"] = self.cursor_before_page(client, 10)
        samples: dict[str, dict[str, list[float]]] = {
            r: {"own": [], "own_wall": [], "aws": [], "read": []} for r in routes
        }
        for n in range(iterations + 1):  # the first round warms up each path at this size
            for route in routes[n % len(routes) :] + routes[: n % len(routes)]:
                if slow and route.startswith("list") and n > 1:
                    continue
                method, target, body = self.request_for(route, client, fixtures)
                gc.collect()  # untimed: the emulator's garbage from the setup is not the request's
                gc.disable()
                self.meter.reset()
                started, cpu = time.perf_counter(), time.thread_time()
                answer = self.invoke(method, target, client, body)
                elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
                gc.enable()
                if answer["statusCode"] != EXPECTED[route]:
                    raise RuntimeError(f"{route} at {size}: {answer['statusCode']} {answer['body'][:300]}")
                if n:  # own: CPU time (a busy machine's preemptions land in wall time, mostly after long calls)
                    samples[route]["own"].append(cpu - self.meter.cpu)
                    samples[route]["own_wall"].append(elapsed - self.meter.seconds)
                    samples[route]["aws"].append(self.meter.seconds)
                    samples[route]["read"].append(self.meter.read)
        return [{"size": size, "owned": owned, "route": r, **samples[r]} for r in routes]


def _child(src: Path, iterations: int, stages: int) -> None:
    use_src(src)
    from moto import mock_aws

    from local_api.cfn_template import Stack, load_template
    from local_api.provision import provision, provision_api_keys

    stack = Stack(load_template(), {"Environment": "dev"})
    env = stack.function_environment()
    for name in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]
    os.environ.update(env)
    keys = {client: f"ldk_bench_scale_{client}" for _, client, _ in STAGES}
    null = NullWriter()
    cells: list[dict[str, Any]] = []
    fill_seconds = 0.0
    with mock_aws():
        import boto3

        session = boto3.session.Session(region_name=stack.region)
        provision(stack, session)
        provision_api_keys(stack, {key: (client, "bench") for client, key in keys.items()}, session)
        ssm = session.client("ssm")
        for name, value in (("rate-limit-per-minute", "100000"), ("rate-limit-burst", "10000")):  # none refused
            ssm.put_parameter(Name=env["CONFIG_PATH"] + name, Value=value, Type="String", Overwrite=True)
        with quiet_stdout(null):
            bench = ScaleBench(env, keys)
            present: list[tuple[str, int]] = []
            for size, client, owned in STAGES[:stages]:
                gc.unfreeze()
                started = time.perf_counter()
                bench.fill(owned, client)
                bench.fill(size - bench.filled, None)
                fill_seconds += time.perf_counter() - started
                gc.collect()
                gc.freeze()  # the emulator's items out of every later collection
                present.append((client, owned))
                for who, count in present:
                    cells += bench.measure(size, who, count, iterations)
    report({"cells": cells, "fill_seconds": fill_seconds})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=9)
    parser.add_argument("--stages", type=int, default=len(STAGES))
    args = parser.parse_args()
    _child(args.src, args.iterations, args.stages)


if __name__ == "__main__":
    main()
