"""What ``make run`` keeps between runs: the emulated account's data, restored at start and saved while it
serves (every few seconds when something changed, and on Ctrl-C).

Kept (generic over ``template.yaml``: whatever tables, buckets, parameters and secrets it defines):
every table's items (jobs, uploads, idempotency records, rate-limit state, webhooks: typed items of the
jobs table; the preview cache), every object version of the buckets, parameters someone changed, every
secret (the API keys, the cursor-signing key), the KMS keys (what they encrypted stays readable), and the
API keys ``make run`` printed (the same ones come back, unless ``DEV_API_KEYS`` says otherwise).

Not kept, on purpose:
- **SQS messages** (pending webhook deliveries, the failure queues). Reading a queue is not read-only (a
  receive hides the message and counts towards its dead-letter redrive), so a save would disturb the
  workers; and the job events' failure queue points into the table's stream by sequence number, which a
  new emulator numbers afresh. A delivery still queued when the local API stops is not made.
- **The stream and the poller's position.** The restore writes every item again, so the new emulator's
  stream holds those writes; the poller starts after the restore at the stream's newest end, so none of
  them is published again (no job event, no webhook for what happened before the restart).
- **Rules and queues made by hand** on the emulated bus (``tests/events.py`` subscribers, ``ops events
  watch``): subscribe again.

A state that cannot be restored (not JSON, another format version, a table whose key schema changed, a
missing blob) is reported, set aside as ``.local-state.broken-<time>`` and the run starts empty; nothing
is written before the whole state has been checked. Saves are whole documents written atomically.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from local_api import in_process, saved_settings, saved_tables
from local_api.cfn_template import Stack
from local_api.saved_objects import ObjectArchive
from local_api.state_store import StateFolder, UnreadableState

#: How often the state is saved while the local API serves (when something changed).
SAVE_SECONDS = 5.0


@dataclass
class Restored:
    """What a restore did, for the start-up banner."""

    dev_api_keys: list[str] = field(default_factory=list)
    summary: str = ""
    problem: str | None = None


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class LocalState:
    """The state folder of one running local API, and the emulated account it mirrors."""

    def __init__(self, path: Path, *, interval: float = SAVE_SECONDS, say: Callable[[str], None] = _say) -> None:
        self.folder = StateFolder(path)
        self.objects = ObjectArchive(self.folder)
        self.interval = interval
        self.say = say
        self.dev_api_keys: list[str] = []
        self._stack: Stack | None = None
        self._endpoint = ""
        self._written: str | None = None
        self._save_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.restored = Restored()

    # ---------------------------------------------------------------------------------------- start-up
    def open(self, fresh: bool = False) -> bool:
        """Take the folder (``fresh``: emptied first); False when another local API is using it."""
        if not self.folder.lock():
            return False
        if fresh:
            self.folder.clear()
        return True

    def restore(self, stack: Stack, endpoint_url: str, reprovision: Callable[[], None]) -> Restored:
        """Put the saved state into the freshly provisioned emulator at ``endpoint_url`` (``reprovision``:
        provision it again, after a restore that failed half-way emptied it)."""
        self.restored = self._restore(stack, endpoint_url, reprovision)
        return self.restored

    def _restore(self, stack: Stack, endpoint_url: str, reprovision: Callable[[], None]) -> Restored:
        self._stack, self._endpoint = stack, endpoint_url
        if not self.folder.exists():
            return Restored(summary=f"nothing saved yet in {self.folder.path.name}/")
        try:
            document = self.folder.read()
            notes = self._check(document, stack)
        except UnreadableState as exc:
            return self._set_aside(str(exc))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a shape the checks did not foresee
            return self._set_aside(f"it is not shaped as this version saves it ({type(exc).__name__}: {exc})")
        try:
            counts = self._apply(document, stack)
        except Exception as exc:  # the emulator refused something the checks let through: start clean
            _reset_emulator(endpoint_url)
            reprovision()
            return self._set_aside(f"writing it back failed ({type(exc).__name__}: {exc})")
        for note in notes:
            self.say(f"  state: {note}")
        self.dev_api_keys = list(document.get("dev_api_keys") or [])
        self._written = _digest(document)
        saved_at = str(document.get("saved_at", "?"))
        return Restored(self.dev_api_keys, f"{counts} from {self.folder.path.name}/ (saved {saved_at})")

    def _check(self, document: dict[str, Any], stack: Stack) -> list[str]:
        notes = saved_tables.check_tables(document.get("tables", {}), stack)
        notes += self.objects.check(document.get("buckets", {}), stack)
        saved_settings.changed_parameters(document.get("parameters", []))
        saved_settings.check_secrets(document.get("secrets", []))
        saved_settings.check_kms_keys(document.get("kms_keys", []))
        keys = document.get("dev_api_keys", [])
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            raise UnreadableState('"dev_api_keys" is not a list of keys')
        return notes

    def _apply(self, document: dict[str, Any], stack: Stack) -> str:
        clients = self._clients()
        keys = saved_settings.restore_kms_keys(stack, document.get("kms_keys", []))
        secrets = saved_settings.restore_secrets(clients["secretsmanager"], document.get("secrets", []))
        parameters = saved_settings.restore_parameters(clients["ssm"], document.get("parameters", []))
        items = saved_tables.restore_tables(clients["dynamodb"], document.get("tables", {}), stack)
        objects = self.objects.restore(clients["s3"], document.get("buckets", {}), stack)
        return (
            f"restored {sum(items.values())} table items, {sum(objects.values())} stored file versions, "
            f"{secrets} secrets, {parameters} changed parameters, {keys} KMS keys"
        )

    def _set_aside(self, reason: str) -> Restored:
        where = self.folder.set_aside()
        problem = (
            f"the saved state in {self.folder.path}/ cannot be restored: {reason}. It was moved to {where}/ "
            "(look at it, or delete it); this run starts empty."
        )
        self.say(f"WARNING: {problem}")
        return Restored(summary="started empty (the saved state was set aside)", problem=problem)

    def _clients(self) -> dict[str, Any]:
        assert self._stack is not None  # noqa: S101 - restore() came first
        session = boto3.session.Session(region_name=self._stack.region)
        return {
            # "": in-process moto (tests); with the local API's in-process AWS, only S3 names the server
            name: session.client(name, endpoint_url=in_process.endpoint_for(name, self._endpoint) or None)
            for name in ("dynamodb", "s3", "ssm", "secretsmanager")
        }

    # ---------------------------------------------------------------------------------------------- saves
    def save(self, final: bool = False) -> bool:
        """Save what the emulator holds now if it changed since the last save; True when written.
        ``final``: the save at shutdown (object tags read again too)."""
        assert self._stack is not None  # noqa: S101 - restore() came first
        with self._save_lock:
            clients = self._clients()
            buckets = self.objects.snapshot(clients["s3"], self._stack, refresh_tags=final)
            document = {
                "dev_api_keys": self.dev_api_keys,
                "tables": saved_tables.snapshot_tables(clients["dynamodb"], self._stack),
                "buckets": buckets,
                "parameters": saved_settings.snapshot_parameters(clients["ssm"], self._stack),
                "secrets": saved_settings.snapshot_secrets(clients["secretsmanager"]),
                "kms_keys": saved_settings.snapshot_kms_keys(self._stack),
            }
            digest = _digest(document)
            if digest == self._written:
                return False
            self.folder.write({**document, "saved_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")})
            self.folder.keep_only(self.objects.blobs_in(buckets))
            self._written = digest
            return True

    def start(self) -> None:
        """Save every ``interval`` seconds in a thread (a crash then loses at most that much)."""
        self._thread = threading.Thread(target=self._run, name="local-state-saver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.save()
                self._failing = False
            except Exception as exc:  # keep serving; say it once, not every few seconds
                if not self._failing:
                    self.say(f"WARNING: saving the local state failed ({type(exc).__name__}: {exc}); retrying")
                self._failing = True

    def close(self) -> None:
        """The last save (the HTTP server and the pollers have stopped), then let the folder go."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            if self._stack is not None:
                self.save(final=True)
        finally:
            self.folder.unlock()


def _digest(document: dict[str, Any]) -> str:
    content = {k: v for k, v in document.items() if k not in ("saved_at", "format", "version")}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _reset_emulator(endpoint_url: str) -> None:
    """moto's own reset (every service back to empty): what a half-written restore leaves is gone."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass
