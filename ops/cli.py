"""``python -m ops``: drive jobs through their states by hand (operators, local demos), manage keys, and
erase or export data (``ops.clients``).

    python -m ops --local jobs complete JOB_ID --start --result examples/result.json
    python -m ops --local jobs progress JOB_ID 40 --stage preprocessing
    python -m ops --env dev jobs show JOB_ID
    python -m ops --env prod events replay --dry-run
    python -m ops --env prod webhooks dead-letters
    python -m ops --env prod clients erase CLIENT_ID [--yes]

Prints the resulting job (the public view, with ``result_url`` when completed) as indented JSON on
stdout. Exit codes: 0 done; 1 the job or the target refused (not found, illegal transition, bad result
file, invalid job id, AWS error; ``events``/``webhooks replay``: some messages are left), with one line on stderr and
no traceback; 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from api.dependencies import Dependencies
from local_api.cfn_template import Stack, load_template
from models.errors import DomainError, IllegalTransition, InvalidJobId, JobNotFound
from models.job import Job, JobStatus
from ops import clients, events, keys, webhooks
from ops.target import ENVIRONMENTS, Target, TargetError, select_environment, select_local
from services.job_rules import validate_result
from services.job_service import JobService
from storage.jobs_scan import JobsScan
from utils.errors import AppError, ConfigurationError
from utils.logging import LOGGER_NAME, JsonFormatter, get_logger
from utils.settings import Settings
from utils.worker_settings import WorkerSettings
from workers.dependencies import job_events

PROG = "python -m ops"
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class ResultFileError(ValueError):
    """The ``--result`` file cannot be read or is not a pipeline result."""


# --------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Drive jobs through pending -> processing -> completed | failed, as the pipeline does.",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--local",
        action="store_true",
        help="the local API that `make run` serves (found via .local-api.json or LOCAL_API_STATE)",
    )
    target.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        help="a deployed environment, with your AWS credentials (default: $ENVIRONMENT, else dev)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log the service's info lines to stderr")
    groups = parser.add_subparsers(dest="group", required=True, metavar="{jobs,keys,events,webhooks,clients,sweep}")
    _add_key_commands(groups)
    _add_job_commands(groups)
    _add_event_commands(groups)
    webhooks.add_commands(groups)
    clients.add_parser(groups)
    groups.add_parser("sweep", help="run the stack's hourly sweep once (unfinished erasures, ended retention)")
    return parser


def _add_key_commands(groups: Any) -> None:
    keys = groups.add_parser("keys", help="client API keys (hashed) and the cursor-signing key in Secrets Manager")
    key_commands = keys.add_subparsers(
        dest="command", required=True, metavar="{create,list,revoke,cursor-key,restore-previous}"
    )
    create_key = key_commands.add_parser("create", help="a new key, printed once (only its hash is stored)")
    create_key.add_argument("--name", required=True, help="who the key is for, e.g. 'web frontend'")
    create_key.add_argument("--client-id", help="add a second key to this existing client (key rotation)")
    key_commands.add_parser("list", help="clients, names and hash prefixes of the keys")
    revoke = key_commands.add_parser("revoke", help="remove keys (effective within the 5-minute cache)")
    revoke.add_argument("--client-id", help="every key of this client")
    revoke.add_argument("--key-hash", help="the key whose hash starts with this prefix (from keys list)")
    cursor_key = key_commands.add_parser(
        "cursor-key", help="add a random cursor-signing key to a secret without one (never printed)"
    )
    cursor_key.add_argument("--rotate", action="store_true", help="replace it: cursors issued before stop working")
    key_commands.add_parser(
        "restore-previous", help="merge the keys of the secret's previous version back (after a regenerating deploy)"
    )


def _add_job_commands(groups: Any) -> None:
    jobs = groups.add_parser("jobs", help="show a job or move it to another status")
    commands = jobs.add_subparsers(dest="command", required=True, metavar="{show,start,progress,complete,fail,erase}")

    show = commands.add_parser("show", help="print the job (with result_url when completed)")
    show.add_argument("job_id")

    start = commands.add_parser("start", help="pending -> processing")
    start.add_argument("job_id")

    progress = commands.add_parser("progress", help="a processing job's progress (0..100, never lower) and stage")
    progress.add_argument("job_id")
    progress.add_argument("percent", type=int, metavar="PERCENT", help="0..100, at least the job's current progress")
    progress.add_argument("--stage", metavar="NAME", help="the stage it is in, e.g. preprocessing ([a-z][a-z0-9_-]*)")

    complete = commands.add_parser("complete", help="processing -> completed, storing the result")
    complete.add_argument("job_id")
    complete.add_argument(
        "--result",
        required=True,
        type=Path,
        metavar="FILE",
        help='JSON result: {"rooms": [...], "model_version": "..."} (e.g. examples/result.json)',
    )
    complete.add_argument("--start", action="store_true", help="move a pending job to processing first")

    fail = commands.add_parser("fail", help="processing -> failed, recording {code, message}")
    fail.add_argument("job_id")
    fail.add_argument("--code", required=True, help="error code shown to the client, e.g. MODEL_ERROR")
    fail.add_argument("--message", required=True, help="error message shown to the client")
    fail.add_argument("--start", action="store_true", help="move a pending job to processing first")

    erase = commands.add_parser("erase", help="erase the job and everything stored for it (any client's)")
    erase.add_argument("job_id")


def _add_event_commands(groups: Any) -> None:
    events = groups.add_parser("events", help="job events: replay what the failure queue holds (docs/runbook.md)")
    event_commands = events.add_subparsers(dest="command", required=True, metavar="{watch,replay}")
    watch = event_commands.add_parser("watch", help="print the job events the bus delivers, one JSON line each")
    watch.add_argument("--count", type=int, help="stop after this many events")
    watch.add_argument("--seconds", type=float, help="stop after this long")
    replay = event_commands.add_parser("replay", help="re-read the failed batches from the stream and publish them")
    replay.add_argument("--dry-run", action="store_true", help="say what would be published; change nothing")
    replay.add_argument("--max-messages", type=int, default=100, help="messages to handle at most (default 100)")


# ------------------------------------------------------------------------------------------- commands
def load_result(path: Path) -> dict[str, Any]:
    """The result file, validated as ``complete_job`` will (before any status changes)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultFileError(f"cannot read result file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ResultFileError(f"result file {path} is not UTF-8 text") from None
    try:
        result = json.loads(text)
    except ValueError as exc:
        raise ResultFileError(f"result file {path} is not JSON: {exc}") from None
    try:
        validate_result(result)
    except ValueError as exc:
        raise ResultFileError(f"result file {path}: {exc}") from None
    return dict(result)


def start_if_pending(service: JobService, job_id: str) -> None:
    """``--start``: move a pending job to processing; leave a processing one (or a racing start) alone."""
    if service.get_job(job_id).status is not JobStatus.PENDING:
        return
    try:
        service.start_processing(job_id)
    except IllegalTransition as exc:
        if exc.current != JobStatus.PROCESSING.value:
            raise


def public_view(service: JobService, job: Job) -> dict[str, Any]:
    """What ``GET /api/v1/jobs/{job_id}`` shows for ``job`` (a fresh result_url when completed)."""
    return service.job_view(job).to_public()


def run(args: argparse.Namespace, service: JobService, result: dict[str, Any] | None) -> dict[str, Any]:
    job_id: str = args.job_id
    if args.command == "show":
        return service.get_job_view(job_id).to_public()
    if args.command == "start":
        return public_view(service, service.start_processing(job_id))
    if args.command == "progress":
        return public_view(service, service.report_progress(job_id, args.percent, args.stage))
    if args.start:
        start_if_pending(service, job_id)
    if args.command == "complete":
        assert result is not None  # noqa: S101 - loaded by main before any change
        return public_view(service, service.complete_job(job_id, result))
    return public_view(service, service.fail_job(job_id, {"code": args.code, "message": args.message}))


def run_keys(args: argparse.Namespace, secret_name: str) -> Any:
    if args.command == "create":
        created = keys.create_key(secret_name, args.name, args.client_id)
        _say(f"{PROG}: store this key now: it is shown once and only its hash is kept")
        return created
    if args.command == "list":
        return keys.list_keys(secret_name)
    if args.command == "cursor-key":
        return keys.ensure_cursor_key(secret_name, rotate=args.rotate)
    if args.command == "restore-previous":
        return keys.restore_previous(secret_name)
    return {"revoked": keys.revoke(secret_name, args.client_id, args.key_hash)}


def run_events(args: argparse.Namespace) -> dict[str, Any]:
    """``events watch`` (a temporary subscriber of the bus), ``events replay`` (the failure queue): ops/events.py."""
    stack = Stack(load_template(), {"Environment": os.environ["ENVIRONMENT"]})
    session = boto3.session.Session()
    sqs = session.client("sqs")
    if args.command == "watch":
        bus = os.environ["EVENT_BUS_NAME"]
        return events.watch(session.client("events"), sqs, bus, count=args.count, seconds=args.seconds)
    queue = stack.properties("JobEventsFailedQueue")["QueueName"]
    service = job_events(WorkerSettings.from_environ(os.environ, ("EVENT_BUS_NAME",)))
    return events.replay(
        sqs,
        sqs.get_queue_url(QueueName=queue)["QueueUrl"],
        session.client("dynamodbstreams"),
        service,
        JobsScan(os.environ["JOBS_TABLE"]),
        dry_run=args.dry_run,
        limit=args.max_messages,
    )


def run_erasure(args: argparse.Namespace, deps: Dependencies) -> Any:
    if args.group == "sweep":
        return clients.sweep(deps)
    if args.group == "clients":
        data = clients.run_clients(args, deps)
        if args.command == "erase":
            _say(
                f"{PROG}: dry run: nothing was erased; add --yes to erase"
                if data["dry_run"]
                else f"{PROG}: erased; its keys stop working within 5 minutes: run this again after that"
            )
        return data
    return clients.erase_job(deps, args.job_id)


def build_service() -> JobService:
    """The service as the Lambda builds it, from the variables the target put in ``os.environ``."""
    return Dependencies(Settings.from_environ(os.environ)).job_service()


# ----------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (argparse's usage errors included, instead of exiting)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2): a return code, so tests can call main()
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    job_id = str(getattr(args, "job_id", ""))
    try:
        target: Target = select_local(os.environ) if args.local else select_environment(args.env, os.environ)
        _say(f"{PROG}: {target.description}")
        if args.group == "keys":
            data: Any = run_keys(args, os.environ["API_KEYS_SECRET_NAME"])
        elif args.group in ("events", "webhooks"):
            with _service_logs_to_stderr(args.verbose):
                data = run_events(args) if args.group == "events" else webhooks.run(args, boto3.client("sqs"))
        elif args.group in ("clients", "sweep") or args.command == "erase":
            with _service_logs_to_stderr(args.verbose):
                data = run_erasure(args, Dependencies(Settings.from_environ(os.environ)))
        else:
            result = load_result(args.result) if args.command == "complete" else None
            with _service_logs_to_stderr(args.verbose):
                data = run(args, build_service(), result)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = explain(exc, job_id)
        if message is None:
            raise  # a bug: the traceback is the useful output
        _say(f"{PROG}: error: {message}")
        return EXIT_ERROR
    print(json.dumps(data, indent=2, ensure_ascii=False))
    left_work = isinstance(data, dict) and data.get("ok") is False  # events replay: messages are left
    return EXIT_ERROR if left_work else EXIT_OK


_Explainer = Callable[[Any, str], str]
#: Expected failures, most specific first: exception type -> one line for the operator.
_EXPLAIN: tuple[tuple[type[Exception] | tuple[type[Exception], ...], _Explainer], ...] = (
    (IllegalTransition, lambda e, _: f"job {e.job_id} is {e.current}; cannot move it to {e.target}"),
    (JobNotFound, lambda _, job_id: f"job {job_id} not found (or expired)"),
    (
        InvalidJobId,
        lambda _, job_id: f"{job_id!r} is not a job id (expected job_YYYYMMDDTHHMMSS_<16 lowercase hex>)",
    ),
    (
        (DomainError, AppError),
        lambda e, _: f"{e.code}: {e.message}" + (f" ({_describe(e.__cause__)})" if e.__cause__ else ""),
    ),
    (TargetError, lambda e, _: str(e)),
    (ConfigurationError, lambda e, _: f"configuration: {e}"),
    (ValueError, lambda e, _: str(e)),  # ResultFileError, and fail_job's check of --code
    (ClientError, lambda e, _: f"AWS: {_describe(e)}"),
    (BotoCoreError, lambda e, _: f"AWS: {e} (check your AWS credentials and region, e.g. AWS_PROFILE, AWS_REGION)"),
)


def explain(exc: BaseException, job_id: str) -> str | None:
    """One line saying what went wrong, or None for an unexpected exception."""
    for kind, describe in _EXPLAIN:
        if isinstance(exc, kind):
            return describe(exc, job_id)
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def _say(line: str) -> None:
    print(line, file=sys.stderr)


@contextlib.contextmanager
def _service_logs_to_stderr(verbose: bool) -> Iterator[None]:
    """The service logs JSON lines to stdout (CloudWatch's way); here stdout is the job, so send them to
    stderr, warnings and errors only unless ``--verbose``, never metric documents (CloudWatch reads those
    from a Lambda's stdout; a terminal has no use for them). Restored afterwards (tests call main in-process)."""
    root = get_logger()
    saved_handlers, saved_level = list(root.handlers), root.level
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(lambda record: record.name != f"{LOGGER_NAME}.metrics")  # EMF is for CloudWatch
    root.handlers = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
