"""``python -m local_api``: serve the job API on http://127.0.0.1:$PORT (default 3000). Ctrl-C stops it.

``make run`` passes ``--state-dir .local-state``: what the emulated account holds is restored from there at
start and saved there while it serves (``local_api.local_state``); without it, every run starts empty.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from local_api import console
from local_api.event_poller import StreamPoller, start_poller
from local_api.local_state import LocalState
from local_api.queue_poller import QueuePoller, start_queue_pollers
from local_api.schedules import Scheduler, start_schedules
from local_api.server import STATE_FILE, make_server, prepare_environment, write_state


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local_api", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--quiet", action="store_true", help="do not print one line per request")
    parser.add_argument(
        "--aws-only",
        action="store_true",
        help="only start and provision emulated AWS (for `sam local start-api --env-vars env.json`)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="keep jobs, files, keys, ... in DIR between runs (make run: .local-state); default: nothing kept",
    )
    parser.add_argument("--fresh", action="store_true", help="with --state-dir: forget what DIR holds first")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        log_format = console.choose(os.environ.get("LOG_FORMAT"), sys.stdout)
    except ValueError as exc:
        parser.error(str(exc))
    if log_format == "human":
        colour = console.choose("auto", sys.stdout) == "human" and not os.environ.get("NO_COLOR")
        console.use_human_logs(colour, requests=not args.quiet)

    state = open_state(args.state_dir, args.fresh)
    stack, moto_server = prepare_environment(state=state)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    # Job events: the stream consumer, fed by a poller of the emulated stream, started after the restore
    # (at the stream's newest end: nothing restored is published again) and before any request.
    poller: StreamPoller = start_poller(stack)
    # Webhooks: the fan-out and the delivery worker, fed by pollers of the emulated queues.
    queue_pollers = start_queue_pollers(stack)
    if state is not None:
        state.start()
    # Scheduled functions (the sweep): a first run now, after the restore, then at the template's rate.
    scheduler = start_schedules(stack, os.environ.get("LOCAL_SCHEDULES"))
    stopping = (scheduler, poller, queue_pollers, state, moto_server)
    if args.aws_only:
        print(f"Emulated AWS with the template's resources at {endpoint} (Ctrl-C stops it)", flush=True)
        _print_state(state, scheduler)
        _wait_for_stop()
        _stop(*stopping)
        return 0

    server = make_server(args.port, stack, quiet=args.quiet, human=log_format == "human")
    host, port = str(server.server_address[0]), int(server.server_address[1])

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    keys = os.environ["LOCAL_API_KEYS"].split(",")
    write_state(f"http://{host}:{port}", endpoint, keys)
    print(f"Location Detection API listening on http://{host}:{port}", flush=True)
    kept = "; the same after a restart" if state is not None else ""
    for key in keys:
        print(f"  API key: {key}   (send it as X-API-Key{kept}; DEV_API_KEYS=k1,k2 chooses your own)", flush=True)
    print(f"  explorer page: http://{host}:{port}/   (local only: paste a key, drop blueprints)", flush=True)
    print(f"  emulated AWS: {endpoint}   (Ctrl-C stops both)", flush=True)
    print(f"  job events: bus {os.environ['EVENT_BUS_NAME']} (subscribe with a rule; docs/pipeline.md)", flush=True)
    delays = os.environ.get("WEBHOOK_RETRY_DELAYS") or "the deployed 24 h schedule"
    print(f"  webhooks: delivered for real, http://127.0.0.1 allowed; retries: {delays}", flush=True)
    _print_state(state, scheduler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        STATE_FILE.unlink(missing_ok=True)
        _stop(*stopping)
        print("Stopped.", flush=True)
    return 0


def open_state(path: Path | None, fresh: bool) -> LocalState | None:
    """The state to restore and keep, or None (not asked for, an emulator of your own, or in use)."""
    if path is None:
        return None
    if os.environ.get("AWS_ENDPOINT_URL"):
        print(f"  state: not kept in {path}/: AWS_ENDPOINT_URL points at an emulator of your own", flush=True)
        return None
    state = LocalState(path)
    if not state.open(fresh=fresh):
        print(f"  state: not kept: another local API is using {path}/ (this one starts empty)", flush=True)
        return None
    return state


def _print_state(state: LocalState | None, scheduler: Scheduler) -> None:
    for function in scheduler.functions:
        name = function.function_name
        print(f"  schedule: {name} at {function.rate}, first run now (LOCAL_SCHEDULES=off: none)", flush=True)
    if state is not None:
        where = state.folder.path
        print(f"  state: {state.restored.summary}; kept in {where}/ (make reset forgets it)", flush=True)


def _stop(
    scheduler: Scheduler,
    poller: StreamPoller,
    queue_pollers: list[QueuePoller],
    state: LocalState | None,
    moto_server: Any,
) -> None:
    """Let a scheduled run finish, publish what the stream still holds, save the state, stop emulated AWS."""
    scheduler.stop()
    poller.stop()
    for queue_poller in queue_pollers:
        queue_poller.stop()
    with contextlib.suppress(Exception):  # best effort: an event left is one the restore will not replay
        for _ in range(20):
            if poller.poll_once() == 0:
                break
    try:
        if state is not None:
            state.close()
    finally:
        if moto_server is not None:
            moto_server.stop()


def _wait_for_stop() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
