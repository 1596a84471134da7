"""Where a variant's own time goes: the warm benchmark's requests with AWS answered instantly.

``python -m bench.profile [--src DIR] [--route create] [--requests 1500] [--top 40]``

The warm benchmark's three variants and events (``bench.warm.WarmBench``), but every boto3 call answers
at once with a canned response recorded from the emulator. What is left is each variant's own work:
routing, validation, (de)serialisation, logging, metrics. Prints, per route, the median own time of
ours, Powertools and bare (interleaved), then a cProfile of ours (cumulative, own code and stdlib) —
how the warm overhead's misses were found (docs/benchmarks.md, "Findings").
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_SRC, FAKE_AWS, NullWriter, median, quiet_stdout, ratio, use_src
from bench.warm import API_KEY, CLIENT_ID, ROUTES, VARIANTS, WarmBench


def answer_instantly(bench: WarmBench, env: dict[str, str]) -> None:
    """Replace every DynamoDB and S3 call with a canned answer (the job, as the emulator returned it)."""
    from utils import aws as aws_clients

    dynamodb = aws_clients.get_client("dynamodb")
    item = dynamodb.get_item(TableName=env["JOBS_TABLE"], Key={"job_id": {"S": bench.read_job}})["Item"]
    cancelled = {**item, "status": {"S": "cancelled"}, "version": {"N": "2"}}
    canned: dict[str, dict[str, Any]] = {
        "GetItem": {"Item": item},
        "PutItem": {},
        "PutObject": {"ETag": '"0"'},
        "UpdateItem": {"Attributes": cancelled},
        "PutObjectTagging": {},
    }

    def answer(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "GetItem" and params["TableName"] == env["PREVIEW_CACHE_TABLE"]:
            return {}  # no preview
        return canned[operation]

    for name in ("dynamodb", "s3"):
        aws_clients.get_client(name)._make_api_call = answer


def own_times(bench: WarmBench, route: str, requests: int) -> dict[str, float]:
    """Median seconds per request of each variant, interleaved."""
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(requests):
        for variant in VARIANTS:
            event, context, handler = bench.event_for(route), bench.context(), bench.handlers[variant][route]
            started = time.perf_counter()
            handler(event, context)
            times[variant].append(time.perf_counter() - started)
    return {v: median(t) for v, t in times.items()}


def profile_ours(bench: WarmBench, route: str, requests: int, top: int) -> str:
    events = [bench.event_for(route) for _ in range(requests)]
    handler, context = bench.handlers["ours"][route], bench.context()
    profiler = cProfile.Profile()
    profiler.enable()
    for event in events:
        handler(event, context)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC)
    parser.add_argument("--route", choices=ROUTES, action="append", help="default: all three")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--top", type=int, default=40, help="functions shown per profile (0: no profile)")
    args = parser.parse_args()
    use_src(args.src.resolve())
    for key, value in FAKE_AWS.items():
        os.environ.setdefault(key, value)
    from moto import mock_aws

    from local_api.cfn_template import Stack, load_template
    from local_api.provision import provision, provision_api_keys

    stack = Stack(load_template(), {"Environment": "dev"})
    env = stack.function_environment()
    for name in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]
    os.environ.update(env)
    null = NullWriter()
    reports: list[str] = []
    with mock_aws():
        import boto3

        session = boto3.session.Session(region_name=stack.region)
        provision(stack, session)
        provision_api_keys(stack, {API_KEY: (CLIENT_ID, "bench")}, session)
        with quiet_stdout(null):
            bench = WarmBench(stack, env, null)
            for route in ROUTES:  # warm: caches filled, every path taken once
                for variant in VARIANTS:
                    bench.run_once(variant, route)
            answer_instantly(bench, env)
            for route in args.route or ROUTES:
                own = own_times(bench, route, args.requests)
                reports.append(
                    f"{route}: own work per request, median of {args.requests}: "
                    + ", ".join(f"{v} {own[v] * 1e6:.0f} us" for v in VARIANTS)
                    + f"; ours / Powertools {ratio(own['ours'], own['powertools']):.2f}x"
                )
                if args.top:
                    reports.append(profile_ours(bench, route, args.requests, args.top))
    print("\n".join(reports))


if __name__ == "__main__":
    main()
