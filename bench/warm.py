"""Warm overhead: per-request time of ``lambda_handler`` against the same boto3 calls made bare, and
against the same routes written with Powertools' ``APIGatewayHttpResolver``.

All three run in one process against one in-process emulated AWS (moto's ``mock_aws``, provisioned from
``template.yaml``), on the same boto3 clients, with the same API Gateway v2 events:

- **ours**: ``api.rest_api.lambda_handler`` — routing, auth (API key against the cached secret),
  validation, the service and storage layers, the retry layer, the envelope, CORS, JSON logs;
- **bare**: only the boto3 calls our code makes for the route, in the same order with the same
  parameters, plus what any handler must do to form them (decode the body, hash the file, (de)serialise
  the item, ``json.dumps`` the answer) — no routing, no validation, no logging. The floor;
- **powertools**: ``bench/powertools_app.py``, the same routes as a Powertools user would write them
  (resolver, ``Logger`` with injected context, CORS, minimal validation), the same boto3 calls.

Routes: ``GET /api/v1/jobs/{id}`` (one ``GetItem``: the API-key secret and the runtime config are cached
per container), ``POST /api/v1/jobs`` with a small PNG as JSON base64 (``PutObject``, ``PutItem``, the
preview ``GetItem``), ``DELETE /api/v1/jobs/{id}`` of a pending job (``GetItem``, ``UpdateItem``; each
cancel gets a fresh job made beforehand, untimed). In these three comparisons the create runs with the
per-client rate limiter switched off (the baselines have none); what the limiter adds is measured on its
own, as three more variants of ours in the same loop, each against **ours** (limiter off): **limited**, the
create as deployed for an idle client (one conditional ``UpdateItem`` first); **limited, mid-burst**, for
a client within its burst (the first update refused, the second spends: two); and **limited, in memory**,
the limiter on an in-memory store (``tests.fakes``; no AWS call), which isolates the limiter's own code
from what its calls cost, the emulator's garbage included. The budget is set high (no request is
refused); the client's limiter state is reset before each limited request, untimed. The
calls are recorded once per variant and route and compared (below the table). Each iteration runs the
variants back to back, in an order that rotates, so noise from the machine hits all of them alike. A
request's time is measured whole and split at the boto3 boundary (below the table): the figures are each
variant's median own time plus the median time inside the boto3 calls, which are the same calls for all
three.
Log output of both logging variants goes to one null stream (formatting is paid, no terminal is).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import NullWriter, child_env, median, quiet_stdout, ratio, report, run_child, use_src
from bench.report import Row, Section, method_of

TARGET_BARE = 1.2
TARGET_POWERTOOLS = 1.0
API_KEY = "ldk_bench_key_of_a_client"
CLIENT_ID = "cli_bench"
ROUTES = ("get", "create", "cancel")
VARIANTS = ("ours", "bare", "powertools")
#: Ours again on the create, with the rate limiter on: an idle client, and a client within its burst.
LIMITER_VARIANTS = ("limited", "limited-burst", "limited-memory")
LIMITER_NAMES = {"limited": "idle client", "limited-burst": "client mid-burst", "limited-memory": "in memory"}
#: What the limiter's own code may add to a create, in ms (measured on the in-memory store: ~0.02 ms).
TARGET_LIMITER_OWN_MS = 0.1
EXPECTED_STATUS = {"get": 200, "create": 201, "cancel": 200}
ROUTE_NAMES = {"get": "GET job", "create": "create job (small PNG, JSON base64)", "cancel": "cancel job"}

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def run(src: Path, iterations: int, warmup: int) -> Section:
    started = time.perf_counter()
    result = run_child(
        "bench.warm",
        ["--child", "--src", str(src), "--iterations", str(iterations), "--warmup", str(warmup)],
        child_env(src),
    )
    section = to_section(result, iterations)
    section.seconds = time.perf_counter() - started
    return section


def variants_of(route: str) -> tuple[str, ...]:
    return VARIANTS + LIMITER_VARIANTS if route == "create" else VARIANTS


def per_request(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Milliseconds per request of each route and variant: the variant's own median time plus the
    median time inside the boto3 calls, pooled over the three variants (the calls are the same)."""
    out: dict[str, dict[str, float]] = {}
    for route in ROUTES:
        pooled = [t for v in VARIANTS for t in result["inside"][route][v]]
        in_aws = median(pooled)
        out[route] = {v: (median(result["outside"][route][v]) + in_aws) * 1000 for v in VARIANTS}
    return out


def to_section(result: dict[str, Any], iterations: int) -> Section:
    # ours, bare and Powertools (the limiter's variants make more calls on purpose: their own section)
    same_calls = all(len({tuple(result["calls"][route][v]) for v in VARIANTS}) == 1 for route in ROUTES)
    if same_calls:
        figures = per_request(result)
    else:  # the decomposition assumes identical calls; without them, the raw totals are all there is
        figures = {r: {v: median(result["times"][r][v]) * 1000 for v in VARIANTS} for r in ROUTES}
    rows: list[Row] = []
    for route in ROUTES:
        name, fig = ROUTE_NAMES[route], figures[route]
        rows.append(Row(f"{name}: ours", fig["ours"], "bare boto3 calls", fig["bare"], "ms", TARGET_BARE))
    for route in ROUTES:
        name, fig = ROUTE_NAMES[route], figures[route]
        rows.append(Row(f"{name}: ours", fig["ours"], "Powertools", fig["powertools"], "ms", TARGET_POWERTOOLS))
    notes = [
        f"{iterations} requests per route and variant. Each request's time splits into the time inside its "
        "boto3 calls (botocore + the emulator: the same calls for all three variants, checked below) and the "
        "variant's own time. The figures above are median own time + median time inside boto3 pooled over "
        "the variants; the medians of the raw totals (what a stopwatch saw) are here too. The emulator's "
        "share is ~90% of a request and varies by more than the variants differ, so raw totals judge noise "
        "as much as code: two runs of the same code can land either side of 1.00x.",
        "",
        "| route | own: ours | own: Powertools | own: bare | own: ours / Powertools | inside boto3 "
        "(ours / Powertools / bare) | raw totals (ours / Powertools / bare) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for route in ROUTES:
        own = {v: median(result["outside"][route][v]) * 1000 for v in VARIANTS}
        aws = " / ".join(f"{median(result['inside'][route][v]) * 1000:.2f}" for v in ("ours", "powertools", "bare"))
        raw = " / ".join(f"{median(result['times'][route][v]) * 1000:.2f}" for v in ("ours", "powertools", "bare"))
        notes.append(
            f"| {ROUTE_NAMES[route]} | {own['ours']:.3f} ms | {own['powertools']:.3f} ms | {own['bare']:.3f} ms "
            f"| {ratio(own['ours'], own['powertools']):.2f}x | {aws} ms | {raw} ms |"
        )
    notes += ["", "boto3 calls per request, recorded on the clients (they must be the same for all three):", ""]
    for route in ROUTES:
        calls: dict[str, list[str]] = {v: c for v, c in result["calls"][route].items() if v in VARIANTS}
        same = len({tuple(c) for c in calls.values()}) == 1
        shown = ", ".join(calls["ours"]) or "none"
        notes.append(f"- {ROUTE_NAMES[route]}: {shown}" + ("" if same else f" — DIFFER: {json.dumps(calls)}"))
    if all(v in result["times"]["create"] for v in LIMITER_VARIANTS):
        limiter_rows, limiter_notes = limiter_section(result)
        rows += limiter_rows
        notes += limiter_notes
    return Section(
        title="Warm overhead: lambda_handler vs bare boto3 calls vs Powertools",
        method=method_of(__doc__),
        rows=rows,
        notes=notes,
    )


def limiter_section(result: dict[str, Any]) -> tuple[list[Row], list[str]]:
    """What the rate limiter adds to a create, each limited variant against ours with the limiter off:
    per request (own time + its calls' time), the limiter's own code alone, its calls and the differences."""
    variants = ("ours", *LIMITER_VARIANTS)
    own = {v: median(result["outside"]["create"][v]) * 1000 for v in variants}
    aws = {v: median(result["inside"]["create"][v]) * 1000 for v in variants}
    base = own["ours"] + aws["ours"]
    rows = [
        Row(f"create job, rate limiter on ({LIMITER_NAMES[v]})", own[v] + aws[v], "limiter off", base, "ms")
        for v in ("limited", "limited-burst")
    ]
    added = own["limited-memory"] - own["ours"]
    rows.append(
        Row("rate limiter's own code per create (ms added)", added, "create's own time", own["ours"], "ms")
        if added <= 0  # a ratio against a negative figure means nothing: reported
        else Row(
            "rate limiter's own code per create (ms added)",
            added,
            "create's own time",
            own["ours"],
            "ms",
            TARGET_LIMITER_OWN_MS,
            on_ratio=False,
        )
    )
    notes = [
        "",
        "What the per-client rate limiter adds to a create (ours, limiter on vs off):",
        "",
        "| client | calls added | own time added | time in AWS calls added | per request |",
        "|---|---|---:|---:|---:|",
    ]
    base_calls = result["calls"]["create"]["ours"]
    for variant in LIMITER_VARIANTS:
        extra = list(result["calls"]["create"][variant])
        for call in base_calls:
            if call in extra:
                extra.remove(call)
        total = own[variant] + aws[variant]
        notes.append(
            f"| {LIMITER_NAMES[variant]} | {', '.join(extra) or 'none'} | {own[variant] - own['ours']:+.3f} ms "
            f"| {aws[variant] - aws['ours']:+.3f} ms | {total:.2f} vs {base:.2f} ms ({ratio(total, base):.2f}x) |"
        )
    notes += [
        "",
        "The calls' time is the emulator's: moto parses a conditional update expression in ~4-5 ms, and the "
        "garbage it leaves shows up as own time too (compare the in-memory row, the limiter's code alone). "
        "Against DynamoDB in the same region a conditional UpdateItem takes a few ms. A client over its "
        "budget makes one refused update and gets its 429 without the create's calls.",
    ]
    return rows, notes


# ------------------------------------------------------------------------------------------- the child
class Bare:
    """The floor: the boto3 calls ``src/`` makes per route, with nothing around them."""

    def __init__(self, dynamodb: Any, s3: Any, env: dict[str, str]) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        # What a final transition writes, as src/ names it (the values; the calls are made here).
        from services.retention import DAY_SECONDS, SWEEP_INTERVAL_SECONDS
        from storage.blueprint_store import RETENTION_TAG
        from storage.lookups import RETENTION

        self.retention_entry, self.retention_tag = RETENTION, RETENTION_TAG
        self.day, self.sweep_interval = DAY_SECONDS, SWEEP_INTERVAL_SECONDS
        self.dynamodb, self.s3 = dynamodb, s3
        self.jobs, self.previews, self.bucket = env["JOBS_TABLE"], env["PREVIEW_CACHE_TABLE"], env["BLUEPRINTS_BUCKET"]
        self.serializer, self.deserializer = TypeSerializer(), TypeDeserializer()
        self.retention_days = int(env.get("BLUEPRINT_RETENTION_DAYS") or "7")

    def _answer(self, status: int, item: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": status, "body": json.dumps(item, default=str)}

    def get(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        job_id = event["rawPath"].rsplit("/", 1)[-1]
        item = self.dynamodb.get_item(TableName=self.jobs, Key={"job_id": {"S": job_id}}, ConsistentRead=True)["Item"]
        return self._answer(200, {k: self.deserializer.deserialize(v) for k, v in item.items()})

    def create(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        blueprint = json.loads(event["body"])["blueprint"]
        content = base64.b64decode(blueprint["file"])
        digest = hashlib.sha256(content).digest()
        now = time.time()
        job_id = f"job_{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}_{secrets.token_hex(8)}"
        key = f"blueprints/{job_id}/{blueprint['filename']}"
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=content,
            ContentType="image/png",
            ChecksumSHA256=base64.b64encode(digest).decode(),
            Metadata={"sha256": digest.hex()},
            IfNoneMatch="*",
        )
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        job = {
            "job_id": job_id,
            "status": "pending",
            "created_at": stamp,
            "updated_at": stamp,
            "blueprint_s3_key": key,
            "blueprint_format": "png",
            "blueprint_hash": digest.hex(),
            "blueprint_size": len(content),
            "blueprint_filename": blueprint["filename"],
            "request_id": "req",
            "correlation_id": "req",
            "expires_at": int(now) + 7 * 24 * 3600,
            "api_version": "v1",
            "version": 1,
            "feedback_count": 0,
            "owner_id": CLIENT_ID,
        }
        self.dynamodb.put_item(
            TableName=self.jobs,
            Item={k: self.serializer.serialize(v) for k, v in job.items()},
            ConditionExpression="attribute_not_exists(job_id)",
        )
        self.dynamodb.get_item(TableName=self.previews, Key={"blueprint_hash": {"S": digest.hex()}})
        return self._answer(201, job)

    def cancel(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        job_id = event["rawPath"].rsplit("/", 1)[-1]
        key = {"job_id": {"S": job_id}}
        item = self.dynamodb.get_item(TableName=self.jobs, Key=key, ConsistentRead=True)["Item"]
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        # A final state: finished_at, and the retention entry brought forward (docs/erasure.md), as ours.
        due = min(int(now) + self.retention_days * self.day - self.sweep_interval, int(item["expires_at"]["N"]))
        updated = self.dynamodb.update_item(
            TableName=self.jobs,
            Key=key,
            UpdateExpression="SET #f0 = :v0, #f1 = :v1, #f2 = :v2, #f3 = :v3, #f4 = :v4, #version = #version + :one",
            ConditionExpression="#status = :expected_status AND #version = :expected_version",
            ExpressionAttributeNames={
                "#f0": "status",
                "#f1": "updated_at",
                "#f2": "finished_at",
                "#f3": "lookup_key",
                "#f4": "lookup_at",
                "#status": "status",
                "#version": "version",
            },
            ExpressionAttributeValues={
                ":v0": {"S": "cancelled"},
                ":v1": {"S": stamp},
                ":v2": {"S": stamp},
                ":v3": {"S": self.retention_entry},
                ":v4": {"N": str(due)},
                ":expected_status": item["status"],
                ":expected_version": item["version"],
                ":one": {"N": "1"},
            },
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )["Attributes"]
        # The lifecycle rule's tag on the blueprint of a job in a final state, as ours.
        self.s3.put_object_tagging(
            Bucket=self.bucket, Key=updated["blueprint_s3_key"]["S"], Tagging={"TagSet": [self.retention_tag]}
        )
        return self._answer(200, {k: self.deserializer.deserialize(v) for k, v in updated.items()})


class AwsMeter:
    """Wraps the boto3 clients: which operations a request makes, and how long it spends inside them
    (botocore and the emulator). What is left of a request's time is the variant's own overhead."""

    def __init__(self, clients: list[Any]) -> None:
        self.calls: list[str] = []
        self.seconds = 0.0
        for client in clients:
            self._wrap(client)

    def _wrap(self, client: Any) -> None:
        original = client._make_api_call  # what every generated operation method calls
        service = client.meta.service_model.service_id
        perf = time.thread_time

        def timed(operation: str, params: dict[str, Any]) -> Any:
            started = perf()
            try:
                return original(operation, params)
            finally:
                self.seconds += perf() - started
                self.calls.append(f"{service}.{operation}")

        client._make_api_call = timed

    def reset(self) -> None:
        self.calls, self.seconds = [], 0.0


class WarmBench:
    """The three variants, their events and the timing loop (in the child, inside ``mock_aws``)."""

    def __init__(self, stack: Any, env: dict[str, str], log_stream: NullWriter) -> None:
        from api import dependencies, rest_api, routes
        from bench import powertools_app
        from local_api.server import LambdaContext, build_event
        from services.auth import hash_key
        from tests import samples
        from utils import aws as aws_clients

        aws_clients.reset_clients()
        dependencies.reset()
        clients = {name: aws_clients.get_client(name) for name in ("dynamodb", "s3", "ssm", "secretsmanager")}
        self.meter = AwsMeter(list(clients.values()))
        dynamodb, s3 = clients["dynamodb"], clients["s3"]
        bare = Bare(dynamodb, s3, env)
        powertools = powertools_app.build(
            dynamodb=dynamodb,
            s3=s3,
            jobs_table=env["JOBS_TABLE"],
            preview_table=env["PREVIEW_CACHE_TABLE"],
            bucket=env["BLUEPRINTS_BUCKET"],
            api_keys={hash_key(API_KEY): CLIENT_ID},
            log_stream=log_stream,
        )
        self.handlers: dict[str, dict[str, Handler]] = {
            "ours": dict.fromkeys(ROUTES, rest_api.lambda_handler),
            "bare": {"get": bare.get, "create": bare.create, "cancel": bare.cancel},
            "powertools": dict.fromkeys(ROUTES, powertools),
            **{variant: {"create": rest_api.lambda_handler} for variant in LIMITER_VARIANTS},
        }
        self.create_route = next(r for r in routes.ROUTES if (r.method, r.template) == ("POST", "/api/v1/jobs"))
        self.rate_group = self.create_route.rate_limit
        self.dynamodb, self.jobs = dynamodb, env["JOBS_TABLE"]
        self.s3, self.bucket = s3, env["BLUEPRINTS_BUCKET"]
        from tests.fakes import FakeRateLimitStore

        self.stores = dependencies.get().stores
        self.real_limits, self.memory_limits = self.stores.rate_limits, FakeRateLimitStore()
        self.timeout = stack.function_timeout("ApiFunction")
        self.lambda_context = LambdaContext
        self.build_event = build_event
        self.headers = [("Host", "api.example.test"), ("X-API-Key", API_KEY), ("User-Agent", "bench")]
        self.png = samples.png()
        body = {"file": base64.b64encode(self.png).decode(), "format": "png", "filename": "plan.png"}
        self.create_event = build_event(
            "POST",
            "/api/v1/jobs",
            [*self.headers, ("Content-Type", "application/json")],
            json.dumps({"blueprint": body}).encode(),
        )
        self.creation = dependencies.get().job_creation()
        self.jobs_table = dependencies.get().stores.jobs_table
        self.read_job = self.pending_job()

    def context(self) -> Any:
        """A fresh Lambda context per request (its remaining time counts down from the timeout)."""
        return self.lambda_context("bench-api", self.timeout)

    def pending_job(self) -> str:
        """A fresh pending job of the client (for a GET or a cancel), written directly: untimed setup."""
        from models.job import RequestInfo

        job = self.creation.new_job(
            self.creation.new_job_id(),
            "png",
            sha256_hex=hashlib.sha256(self.png).hexdigest(),
            size=len(self.png),
            filename="plan.png",
            request=RequestInfo("req_setup", "req_setup", CLIENT_ID),
        )
        self.jobs_table.put_new(job)
        # Its blueprint too: a cancel tags it (the retention lifecycle rule), in every variant.
        self.s3.put_object(Bucket=self.bucket, Key=job.blueprint_s3_key, Body=self.png, ContentType="image/png")
        return job.job_id

    def event_for(self, route: str) -> dict[str, Any]:
        if route == "get":
            return self.build_event("GET", f"/api/v1/jobs/{self.read_job}", self.headers, b"")
        if route == "create":
            return dict(self.create_event)
        return self.build_event("DELETE", f"/api/v1/jobs/{self.pending_job()}", self.headers, b"")

    def limiter_for(self, variant: str, route: str) -> None:
        """Untimed: the create's rate limiter off for ours (the baselines have none), on for the limited
        variants, with the client idle (no state), within its burst (a spend a second ahead), or on an
        in-memory store."""
        from storage.rate_limits import limit_key

        if route != "create":
            return
        self.create_route.rate_limit = self.rate_group if variant in LIMITER_VARIANTS else None
        # The fake has the store's contract, not its type: what a test double is for.
        self.stores.rate_limits = self.memory_limits if variant == "limited-memory" else self.real_limits  # type: ignore[assignment]
        if variant not in ("limited", "limited-burst"):
            return
        key = {"job_id": {"S": limit_key(CLIENT_ID, str(self.rate_group))}}
        if variant == "limited":
            self.dynamodb.delete_item(TableName=self.jobs, Key=key)
        else:
            tat = {"N": str(round((time.time() + 1) * 1_000_000))}
            self.dynamodb.put_item(TableName=self.jobs, Item={**key, "tat": tat, "last_spend": {"S": "bench"}})

    def run_once(self, variant: str, route: str) -> tuple[float, float, list[str]]:
        """One request: seconds in all, seconds inside boto3, and the boto3 operations it made."""
        event, context = self.event_for(route), self.context()
        handler = self.handlers[variant][route]
        self.limiter_for(variant, route)
        self.meter.reset()
        started = time.thread_time()
        response = handler(event, context)
        elapsed = time.thread_time() - started
        if response["statusCode"] != EXPECTED_STATUS[route]:
            raise RuntimeError(f"{variant} {route}: {response['statusCode']} {response['body']}")
        return elapsed, self.meter.seconds, list(self.meter.calls)

    def measure(self, iterations: int, warmup: int) -> dict[str, Any]:
        for _ in range(warmup):
            for route in ROUTES:
                for variant in variants_of(route):
                    self.run_once(variant, route)
        times: dict[str, dict[str, list[float]]] = {r: {v: [] for v in variants_of(r)} for r in ROUTES}
        outside: dict[str, dict[str, list[float]]] = {r: {v: [] for v in variants_of(r)} for r in ROUTES}
        inside: dict[str, dict[str, list[float]]] = {r: {v: [] for v in variants_of(r)} for r in ROUTES}
        calls: dict[str, dict[str, list[str]]] = {r: {} for r in ROUTES}
        for n in range(iterations):
            for route in ROUTES:
                variants = variants_of(route)
                shift = n % len(variants)
                order = variants[shift:] + variants[:shift]  # who goes first rotates
                for variant in order:
                    elapsed, in_aws, made = self.run_once(variant, route)
                    times[route][variant].append(elapsed)
                    outside[route][variant].append(elapsed - in_aws)
                    inside[route][variant].append(in_aws)
                    calls[route].setdefault(variant, made)
        final = self.jobs_table.get(self.read_job)
        if final is None or final.status.value != "pending":
            raise RuntimeError("the job read by GET changed")
        return {"times": times, "outside": outside, "inside": inside, "calls": calls}


def _child(src: Path, iterations: int, warmup: int) -> None:
    use_src(src)
    from moto import mock_aws  # before any boto3 session: moto hooks into botocore on import

    from local_api.cfn_template import Stack, load_template
    from local_api.provision import provision, provision_api_keys

    stack = Stack(load_template(), {"Environment": "dev"})
    env = stack.function_environment()
    for name in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]
    os.environ.update(env)
    null = NullWriter()
    with mock_aws():
        import boto3

        session = boto3.session.Session(region_name=stack.region)
        provision(stack, session)
        provision_api_keys(stack, {API_KEY: (CLIENT_ID, "bench")}, session)
        ssm = session.client("ssm")
        for name, value in (("rate-limit-per-minute", "100000"), ("rate-limit-burst", "10000")):  # none refused
            ssm.put_parameter(Name=env["CONFIG_PATH"] + name, Value=value, Type="String", Overwrite=True)
        with quiet_stdout(null):
            result = WarmBench(stack, env, null).measure(iterations, warmup)
    report(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    _child(args.src, args.iterations, args.warmup)


if __name__ == "__main__":
    main()
