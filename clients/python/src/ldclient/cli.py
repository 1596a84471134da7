"""``ldclient``: the job API from a terminal or a script.

    ldclient submit plan.png big-site.pdf --wait
    ldclient list --status completed --json
    ldclient get JOB_ID | cancel JOB_ID | erase JOB_ID | feedback JOB_ID --rating 4

Exit codes: 0 done; 1 the API (or S3) refused (4xx: unknown job, bad file, bad key...); 2 usage or
configuration error; 3 the API unreachable or still failing after the retries (network, 5xx, 429);
4 ``--wait``: a job ended failed or cancelled; 5 ``--wait`` timed out. With several files, the highest.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from ldclient import __version__
from ldclient.api import Client, RetryPolicy
from ldclient.config import ConfigError, load
from ldclient.errors import ApiError, ClientError, NetworkError, UploadRefused, WaitTimeout
from ldclient.output import Output

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_NOT_COMPLETED, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
VISIBLE_ASCII = re.compile(r"[\x21-\x7e]{1,247}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ldclient",
        description="Client of the Location Detection job API (LD_API_URL, LD_API_KEY or a config file).",
        epilog="Exit codes:" + (__doc__ or "Exit codes:").split("Exit codes:", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ldclient {__version__}")
    parser.add_argument("--api-url", help="the API's base URL (default: LD_API_URL, the config file, make run's)")
    parser.add_argument("--config", help="TOML file with api_url and api_key (default: ~/.config/ldclient/config.toml)")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout (errors as JSON on stderr)")
    parser.add_argument("--retries", type=int, default=5, metavar="N", help="attempts per request (default 5)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser("submit", help="create a job per file (direct or presigned upload by size)")
    submit.add_argument("files", nargs="+", type=Path, metavar="FILE")
    submit.add_argument("--wait", action="store_true", help="then wait until each job is final")
    submit.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits per job (default 600)")
    submit.add_argument("--idempotency-key", help="for one file: reuse to retry a create safely from a new run")
    submit.add_argument(
        "--upload",
        choices=("auto", "direct", "presigned"),
        default="auto",
        help="auto (default): files up to 4 MB in the request, larger ones through a presigned upload",
    )
    submit.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")

    for name, text in (("get", "show a job"), ("cancel", "cancel a job (idempotent)"), ("erase", "erase a job")):
        command = commands.add_parser(name, help=text)
        command.add_argument("job_id")

    listing = commands.add_parser("list", help="your jobs, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    listing.add_argument("--all", action="store_true", help="every job, page after page")

    feedback = commands.add_parser("feedback", help="rate a completed job's result")
    feedback.add_argument("job_id")
    feedback.add_argument("--rating", type=int, required=True, choices=range(1, 6), metavar="1..5")
    feedback.add_argument("--comment")
    feedback.add_argument("--corrections", help="JSON, or @FILE holding JSON")
    return parser


def exit_code(error: ClientError) -> int:
    if isinstance(error, WaitTimeout):
        return EXIT_TIMEOUT
    if isinstance(error, NetworkError):
        return EXIT_UNAVAILABLE
    if isinstance(error, (ApiError, UploadRefused)) and (error.status >= 500 or error.status == 429):
        return EXIT_UNAVAILABLE
    return EXIT_REFUSED


def _submit(client: Client, args: argparse.Namespace, out: Output) -> int:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    if args.idempotency_key and len(args.files) > 1:
        raise UsageError("--idempotency-key names one logical create: give one file")
    if args.idempotency_key and not VISIBLE_ASCII.fullmatch(args.idempotency_key):
        raise UsageError("--idempotency-key: 1 to 247 visible ASCII characters (.upload and .job are appended)")
    results: list[dict[str, Any]] = []
    codes = [EXIT_OK]
    with out.progress(enabled=not args.no_progress) as bars:
        for path in args.files:
            report = bars.track(path.name, path.stat().st_size)
            try:
                created = client.create_job(
                    path, progress=report, idempotency_key=args.idempotency_key, strategy=args.upload
                )
            except ClientError as exc:
                results.append({"file": str(path), "error": out.describe(exc)})
                codes.append(exit_code(exc))
                continue
            results.append(
                {"file": str(path), "upload": created.path, "replayed": created.replayed, "job": created.job}
            )
    if args.wait:
        codes.extend(_wait_all(client, results, args.timeout, out))
    out.submitted(results)
    return max(codes)


def _wait_all(client: Client, results: list[dict[str, Any]], timeout: float, out: Output) -> list[int]:
    codes = []
    for result in results:
        if "job" not in result:
            continue
        try:
            job = client.wait_for_job(result["job"]["job_id"], timeout=timeout, on_update=out.job_update)
        except WaitTimeout as exc:
            result["job"], result["error"] = exc.job, out.describe(exc)
            codes.append(EXIT_TIMEOUT)
            continue
        except ClientError as exc:
            result["error"] = out.describe(exc)
            codes.append(exit_code(exc))
            continue
        result["job"] = job
        codes.append(EXIT_OK if job["status"] == "completed" else EXIT_NOT_COMPLETED)
    return codes


def _corrections(value: str | None) -> Any:
    if value is None:
        return None
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--corrections is not JSON: {exc}") from exc


class UsageError(Exception):
    """Arguments that cannot work (exit 2), found before anything is sent."""


def _run(client: Client, args: argparse.Namespace, out: Output) -> int:
    if args.command == "submit":
        return _submit(client, args, out)
    if args.command == "list":
        limit = None if args.all else max(0, args.limit)
        jobs: list[dict[str, Any]] = []
        for job in client.list_jobs(status=args.status, page_size=min(100, limit or 100)):
            if limit is not None and len(jobs) >= limit:
                break
            jobs.append(job)
        out.jobs(jobs)
        return EXIT_OK
    if args.command == "feedback":
        out.record(client.submit_feedback(args.job_id, args.rating, args.comment, _corrections(args.corrections)))
        return EXIT_OK
    action = {"get": client.get_job, "cancel": client.cancel_job, "erase": client.erase_job}[args.command]
    result = action(args.job_id)
    out.record(result) if args.command == "erase" else out.job(result)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(json_mode=args.json)
    try:
        config = load(args.api_url, args.config)
    except ConfigError as exc:
        out.fail(str(exc))
        return EXIT_USAGE
    if args.retries < 1:
        out.fail("--retries must be at least 1")
        return EXIT_USAGE
    with Client(config.api_url, config.api_key, retry=RetryPolicy(attempts=args.retries)) as client:
        try:
            return _run(client, args, out)
        except UsageError as exc:
            out.fail(str(exc))
            return EXIT_USAGE
        except ClientError as exc:
            out.error(exc)
            return exit_code(exc)
        except KeyboardInterrupt:
            out.fail("interrupted")
            return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
