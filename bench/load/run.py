"""``main``: start the server, run the load, verify, report; bounded in time, the server always stopped."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import bench.load
from bench.load.blueprints import load_samples
from bench.load.ledger import Ledger
from bench.load.pipeline import Pipeline, dev_resources
from bench.load.plan import MAX_API_KEYS, REQUEST_TIMEOUT_SECONDS
from bench.load.report import LoadRun, print_report, summary
from bench.load.server import LocalApi, ServerStartError
from bench.load.stats import Stats
from bench.load.verify import Verifier
from bench.load.worker import Worker
from utils.logging import JsonFormatter, get_logger


def _project_logs_to(path: Path) -> None:
    """The in-process pipeline's log lines (and metrics documents) go to a file, not into the report."""
    root = get_logger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)


def _watchdog(seconds: float, server: LocalApi, done: threading.Event, fired: threading.Event) -> None:
    """The hard bound: whatever hangs, stop the server and exit 124 after ``seconds``."""
    if done.wait(seconds):
        return
    fired.set()
    print(f"load: hard timeout after {seconds:.0f} s; stopping the server (log: {server.log_path})", file=sys.stderr)
    with contextlib.suppress(Exception):
        server.stop()
    os._exit(124)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=(bench.load.__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (default 8)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load phase (default 60)")
    parser.add_argument(
        "--keys", type=int, default=0, help=f"API keys the threads share (default min(clients, {MAX_API_KEYS}))"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the operation mix (default: random, printed)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="hard bound on the whole run (default 240 + 2 x seconds)"
    )
    parser.add_argument("--no-pipeline", action="store_true", help="do not complete or fail jobs while loading")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server's and the pipeline's logs")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the summary as JSON")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients must be >= 1 and --seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    n_keys = max(1, min(args.keys or min(args.clients, MAX_API_KEYS), args.clients))
    keys = [f"ldk_load_{n}_{os.urandom(6).hex()}" for n in range(1, n_keys + 1)]
    timeout = args.timeout or 240 + 2 * args.seconds
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    server = LocalApi(keys, workdir)
    done, fired = threading.Event(), threading.Event()
    watchdog = threading.Thread(
        target=_watchdog, args=(timeout, server, done, fired), name="load-watchdog", daemon=True
    )
    watchdog.start()

    def on_sigterm(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    _project_logs_to(workdir / "pipeline.log")
    stop = threading.Event()
    passed = False
    try:
        print(
            f"load: starting the local API ({n_keys} API keys, seed {seed}, hard timeout {timeout:.0f} s)", flush=True
        )
        passed = _load_and_verify(args, server, keys, seed, stop)
        return 0 if passed else 1
    except KeyboardInterrupt:
        print("load: interrupted; stopping the server", file=sys.stderr, flush=True)
        return 130
    except ServerStartError as exc:
        print(f"load: {exc}", file=sys.stderr, flush=True)
        return 3
    finally:
        stop.set()
        if fired.is_set():
            watchdog.join()  # it stops the server and exits 124
        done.set()
        server.stop()
        if passed and not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"load: the server's log is kept in {server.log_path}", file=sys.stderr, flush=True)


def _load_and_verify(
    args: argparse.Namespace, server: LocalApi, keys: list[str], seed: int, stop: threading.Event
) -> bool:
    """Start the server, run the load, verify and report; whether the run passed."""
    started = time.monotonic()
    server.start()
    print(f"load: the local API is up after {time.monotonic() - started:.1f} s", flush=True)
    print(
        f"load: {args.clients} clients x {args.seconds:g} s against http://127.0.0.1:{server.port} "
        f"(emulated AWS at {server.aws_endpoint})",
        flush=True,
    )
    run = run_load(args, server, keys, seed, stop)
    print("load: verifying", flush=True)
    verified_at = time.monotonic()
    api = ("127.0.0.1", server.port)
    verification = Verifier(api, keys, dev_resources(server.aws_endpoint), run.ledger, run.stats).run()
    stats = run.stats
    passed = stats.problem_count == 0 and stats.server_errors == 0 and stats.transport_errors == 0
    print_report(run, verification, time.monotonic() - verified_at, passed, server)
    if args.json is not None:
        document = summary(stats, run.elapsed, verification, run.pipeline, passed)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return passed


def run_load(args: argparse.Namespace, server: LocalApi, keys: list[str], seed: int, stop: threading.Event) -> LoadRun:
    """The load phase: the client threads and the pipeline until ``args.seconds`` have passed."""
    api = ("127.0.0.1", server.port)
    stats, ledger, samples = Stats(), Ledger(), load_samples()
    started = time.monotonic()
    until = started + args.seconds
    threads: list[threading.Thread] = [
        Worker(
            index=i,
            api=api,
            api_key=keys[i % len(keys)],
            samples=samples,
            ledger=ledger,
            stats=stats,
            until=until,
            stop=stop,
            seed=seed,
        )
        for i in range(args.clients)
    ]
    pipeline = None
    if not args.no_pipeline:
        resources = dev_resources(server.aws_endpoint)
        pipeline = Pipeline(resources=resources, ledger=ledger, stats=stats, until=until, stop=stop, seed=seed)
    if pipeline is not None:
        threads.append(pipeline)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, until - time.monotonic()) + REQUEST_TIMEOUT_SECONDS + 5)
    stop.set()
    elapsed = time.monotonic() - started
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        stats.problem(f"threads still running after the load phase: {', '.join(stuck)}")
    return LoadRun(stats, ledger, elapsed, pipeline.outcomes if pipeline is not None else Counter(), os.getloadavg()[0])
