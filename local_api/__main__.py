"""``python -m local_api``: serve the job API on http://127.0.0.1:$PORT (default 3000). Ctrl-C stops it."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import Any

from local_api.event_poller import StreamPoller, start_poller
from local_api.queue_poller import start_queue_pollers
from local_api.server import STATE_FILE, make_server, prepare_environment, write_state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_api", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--quiet", action="store_true", help="do not print one line per request")
    parser.add_argument(
        "--aws-only",
        action="store_true",
        help="only start and provision emulated AWS (for `sam local start-api --env-vars env.json`)",
    )
    args = parser.parse_args(argv)

    stack, moto_server = prepare_environment()
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    # Job events: the stream consumer, fed by a poller of the emulated stream (started before any request).
    poller: StreamPoller = start_poller(stack)
    # Webhooks: the fan-out and the delivery worker, fed by pollers of the emulated queues.
    queue_pollers = start_queue_pollers(stack)
    if args.aws_only:
        print(f"Emulated AWS with the template's resources at {endpoint} (Ctrl-C stops it)", flush=True)
        _wait_for_stop()
        poller.stop()
        for queue_poller in queue_pollers:
            queue_poller.stop()
        moto_server and moto_server.stop()
        return 0

    server = make_server(args.port, stack, quiet=args.quiet)
    host, port = str(server.server_address[0]), int(server.server_address[1])

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    keys = os.environ["LOCAL_API_KEYS"].split(",")
    write_state(f"http://{host}:{port}", endpoint, keys)
    print(f"Location Detection API listening on http://{host}:{port}", flush=True)
    for key in keys:
        print(f"  API key: {key}   (send it as X-API-Key; set DEV_API_KEYS=k1,k2 to choose your own)", flush=True)
    print(f"  explorer page: http://{host}:{port}/   (local only: paste a key, drop blueprints)", flush=True)
    print(f"  emulated AWS: {endpoint}   (Ctrl-C stops both)", flush=True)
    print(f"  job events: bus {os.environ['EVENT_BUS_NAME']} (subscribe with a rule; docs/pipeline.md)", flush=True)
    delays = os.environ.get("WEBHOOK_RETRY_DELAYS") or "the deployed 24 h schedule"
    print(f"  webhooks: delivered for real, http://127.0.0.1 allowed; retries: {delays}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        poller.stop()
        for queue_poller in queue_pollers:
            queue_poller.stop()
        STATE_FILE.unlink(missing_ok=True)
        if moto_server is not None:
            moto_server.stop()
        print("Stopped.", flush=True)
    return 0


def _wait_for_stop() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
