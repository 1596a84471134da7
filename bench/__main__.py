"""``python -m bench`` (``make bench``): every benchmark, each figure a ratio against a baseline measured
in the same run; writes ``docs/benchmarks.md`` and prints the same.

    python -m bench                  # the full run (a few minutes on two busy cores)
    python -m bench --quick          # a fast smoke run: fewer samples, smaller files (not for the record)
    python -m bench --only warm      # one benchmark (repeatable: --only cold --only first)
    python -m bench --src /tmp/src-try --output /tmp/after.md   # a scratch copy of src/, to try a fix

Exit status: 0 when every target is met, 1 when one is missed (the report says which), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import cold_start, events, first_request, http_latency, memory, scale, warm, webhooks
from bench.common import DEFAULT_SRC, ROOT
from bench.report import Machine, Section, git_revision, render

BENCHMARKS = ("cold", "first", "warm", "memory", "http", "events", "webhooks", "scale")
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"
#: Hand-written analysis (profiles of misses, before/after of fixes) appended to the generated report.
FINDINGS = Path(__file__).resolve().parent / "findings.md"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="few samples and small files: a fast smoke run")
    p.add_argument("--only", action="append", choices=BENCHMARKS, help="run only this benchmark (repeatable)")
    p.add_argument("--src", type=Path, default=DEFAULT_SRC, help="the Lambda's code to measure (default: src/)")
    p.add_argument(
        "--output", type=Path, help="where to write the report (default: docs/benchmarks.md; --quick: nowhere)"
    )
    p.add_argument("--findings", type=Path, default=FINDINGS, help="Markdown appended to the report, if it exists")
    p.add_argument("--cold-samples", type=int, help="fresh interpreters per variant (default 25; quick 5)")
    p.add_argument(
        "--deployed-samples",
        type=int,
        help="fresh interpreters per variant for the packaged settings (default 25; quick 3; 0 skips them)",
    )
    p.add_argument(
        "--first-samples", type=int, help="fresh containers per variant, import + first GET (default 25; quick 3)"
    )
    p.add_argument("--warm-iterations", type=int, help="timed requests per route and variant (default 200; quick 20)")
    p.add_argument("--warm-warmup", type=int, help="untimed requests per route and variant first (default 20; quick 3)")
    p.add_argument("--upload-mib", type=int, help="size of the finalised upload (default 50; quick 8)")
    p.add_argument("--direct-mib", type=int, help="size of the direct create's file (default 4; quick 1)")
    p.add_argument("--http-threads", type=int, default=8, help="client threads (default 8)")
    p.add_argument("--http-seconds", type=float, help="seconds per server and round (default 4; quick 1)")
    p.add_argument("--http-rounds", type=int, help="rounds over the servers (default 3; quick 1)")
    p.add_argument("--events-samples", type=int, help="state changes timed to a subscriber (default 60; quick 15)")
    p.add_argument("--webhooks-samples", type=int, help="state changes timed to a receiver (default 60; quick 15)")
    p.add_argument("--scale-iterations", type=int, help="requests per route, size and client (default 9; quick 2)")
    p.add_argument(
        "--scale-stages", type=int, choices=(1, 2, 3), help="table sizes: 1k, 10k, 100k jobs (default 3; quick 1)"
    )
    p.add_argument(
        "--http-nodelay",
        action="store_true",
        help="prototype the proposed local_api fix (TCP_NODELAY) in every server of the HTTP benchmark",
    )
    return p


def _pick(value: float | None, full: float, quick: float, is_quick: bool) -> float:
    if value is not None:
        return value
    return quick if is_quick else full


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    src = args.src.resolve()
    if not (src / "api" / "rest_api.py").is_file():
        print(f"--src {src}: no api/rest_api.py there", file=sys.stderr)
        return 2
    q = args.quick
    chosen = args.only or list(BENCHMARKS)
    runs: dict[str, Callable[[], Section]] = {
        "cold": lambda: cold_start.run(
            src, int(_pick(args.cold_samples, 25, 5, q)), int(_pick(args.deployed_samples, 25, 3, q))
        ),
        "first": lambda: first_request.run(src, int(_pick(args.first_samples, 25, 3, q))),
        "warm": lambda: warm.run(
            src, int(_pick(args.warm_iterations, 200, 20, q)), int(_pick(args.warm_warmup, 20, 3, q))
        ),
        "memory": lambda: memory.run(src, int(_pick(args.upload_mib, 50, 8, q)), int(_pick(args.direct_mib, 4, 1, q))),
        "http": lambda: http_latency.run(
            src,
            args.http_threads,
            _pick(args.http_seconds, 4, 1, q),
            int(_pick(args.http_rounds, 3, 1, q)),
            nodelay=args.http_nodelay,
        ),
        "events": lambda: events.run(src, int(_pick(args.events_samples, 60, 15, q))),
        "webhooks": lambda: webhooks.run(src, int(_pick(args.webhooks_samples, 60, 15, q))),
        "scale": lambda: scale.run(
            src, int(_pick(args.scale_iterations, 9, 2, q)), int(_pick(args.scale_stages, 3, 1, q))
        ),
    }
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    machine = Machine.probe()
    sections: list[Section] = []
    for name in BENCHMARKS:
        if name in chosen:
            print(f"bench: running {name} ...", file=sys.stderr, flush=True)
            sections.append(runs[name]())
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "bench", *given])
    findings = args.findings.read_text(encoding="utf-8") if args.findings.is_file() else ""
    text = render(
        sections,
        command=command,
        machine=machine,
        started=started_at,
        seconds=time.perf_counter() - started,
        src=str(src.relative_to(ROOT)) if src.is_relative_to(ROOT) else str(src),
        revision=git_revision(),
        load_after=Machine.probe().load_average,
        findings=findings,
        quick=q,
    )
    print(text)
    output = args.output or (None if q else DEFAULT_OUTPUT)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        print(f"bench: wrote {output}", file=sys.stderr)
    return 0 if all(section.met for section in sections) else 1


if __name__ == "__main__":
    sys.exit(main())
