"""``python -m ops clients erase|export CLIENT_ID``, ``jobs erase JOB_ID`` and ``sweep``: erasure by hand.

``clients erase CLIENT_ID`` lists what would go (a dry run: keys, jobs, uploads, idempotency records, and
each kind of per-client data a feature registers in ``CLIENT_DATA``); with ``--yes`` it revokes the
client's keys first (they stop working within the Lambda's five-minute secret cache), then erases every
job, upload and record of it (``services.client_erasure``). Run it again after five minutes to catch what
the client made meanwhile; every run is idempotent. ``clients export CLIENT_ID`` writes the client's jobs
(as the client sees them, each with its feedback), uploads and key names as JSON, for a data-access
request. ``jobs erase JOB_ID`` erases one job of any client (expired too); ``sweep`` runs the stack's sweep
once (what the hourly schedule does).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from api.dependencies import Dependencies
from ops import keys
from services.client_erasure import ClientData, ClientErasure
from services.rate_limits import RateLimitState
from services.sweep import Sweep

#: Who erased, in the audit line: the operator (their AWS identity is in CloudTrail).
ACTOR = "operator"
#: Per-client data of features beside jobs, each built from the dependencies: the limiter's items
#: (``rate#...``) and, with issue 17, webhooks register their ``ClientData`` here.
CLIENT_DATA: tuple[Callable[[Dependencies], ClientData], ...] = (lambda deps: RateLimitState(deps.stores.rate_limits),)
#: A client id as the keys and the JWT authorizer make them (``cli_...``, a token's ``sub``).
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,256}")


def add_parser(groups: Any) -> None:
    clients = groups.add_parser("clients", help="erase or export everything of one client (GDPR requests)")
    commands = clients.add_subparsers(dest="command", required=True, metavar="{erase,export}")
    erase = commands.add_parser("erase", help="list what would go; with --yes, revoke its keys and erase it all")
    erase.add_argument("client_id")
    erase.add_argument("--yes", action="store_true", help="really erase (without it: a dry run that lists)")
    export = commands.add_parser("export", help="the client's jobs, feedback, uploads and key names as JSON")
    export.add_argument("client_id")


def client_erasure(deps: Dependencies) -> ClientErasure:
    s = deps.stores
    return ClientErasure(
        deps.erasure(),
        s.lookups,
        jobs_table=s.jobs_table,
        uploads=s.uploads,
        idempotency=s.idempotency,
        cache=s.cache,
        parts=[part(deps) for part in CLIENT_DATA],
    )


def run_clients(args: argparse.Namespace, deps: Dependencies) -> dict[str, Any]:
    client_id: str = args.client_id
    if not _CLIENT_ID.fullmatch(client_id):
        raise ValueError("CLIENT_ID must be 1 to 256 visible ASCII characters (e.g. cli_0123456789abcdef)")
    secret = deps.settings.api_keys_secret_name
    client_keys = [key for key in keys.list_keys(secret) if key.get("client_id") == client_id]
    service = client_erasure(deps)
    if args.command == "export":
        return {**service.export(client_id), "keys": client_keys}
    if not args.yes:
        return {
            "client_id": client_id,
            "dry_run": True,
            "would_erase": {"keys": client_keys, **service.inventory(client_id)},
        }
    revoked = keys.revoke(secret, client_id) if client_keys else 0
    erased = service.erase(client_id, actor=ACTOR)
    return {"client_id": client_id, "dry_run": False, "erased": {"keys": revoked, **erased}}


def erase_job(deps: Dependencies, job_id: str) -> dict[str, Any]:
    receipt = deps.erasure().erase_job(job_id, None, actor=ACTOR, expired_too=True)
    return receipt.to_public()


def sweep(deps: Dependencies) -> dict[str, int]:
    """One run of the stack's sweep with the operator's credentials (the same service the worker builds)."""
    return Sweep(deps.stores.lookups, deps.erasure(), deps.retention).run()
