"""The folder ``make run`` keeps its state in (``.local-state/`` by default; development only).

    .local-state/
      state.json          what the emulated account held: tables' items, objects (as blob names), parameters,
                          secrets, KMS keys, the printed API keys; one JSON document with a format version
      blobs/ab/ab12...    each object's bytes once, named by their SHA-256 (a periodic save writes only new ones)
    .local-state.lock     held while a local API uses the folder (a second one at once keeps nothing)
    .local-state.broken-20261202T101500Z/   a state that could not be restored, set aside as it was

Writes are atomic (a temporary file, fsync, then a rename): a crash leaves the previous state or the new
one, never half of one. The folder and its files are private to the user (0700/0600): ``state.json``
holds the local API keys in clear, as ``.local-api.json`` does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

#: What ``state.json`` says it is, and the layout version this code reads and writes. A change to the
#: document's shape that older code would misread bumps ``FORMAT_VERSION``; older states are then set aside.
FORMAT_NAME = "location-detection/local-state"
FORMAT_VERSION = 1
DOCUMENT = "state.json"


class UnreadableState(Exception):
    """The saved state cannot be restored: the message says why (for the person who runs ``make run``)."""


class StateFolder:
    """One state folder: its document, its blobs, its lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blobs = path / "blobs"
        self._lock: IO[str] | None = None

    # ------------------------------------------------------------------------------------------ the lock
    def lock(self) -> bool:
        """Take the folder for this process; False when another local API holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = (self.path.parent / f"{self.path.name}.lock").open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock = handle
        return True

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    # -------------------------------------------------------------------------------------- the document
    def exists(self) -> bool:
        return (self.path / DOCUMENT).exists()

    def read(self) -> dict[str, Any]:
        """The saved document, checked for its format and version (``UnreadableState`` otherwise)."""
        try:
            text = (self.path / DOCUMENT).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UnreadableState(f"{DOCUMENT} cannot be read ({exc})") from None
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise UnreadableState(f"{DOCUMENT} is not JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
            raise UnreadableState(f'{DOCUMENT} is not a local API state (no "format": "{FORMAT_NAME}")')
        version = document.get("version")
        if version != FORMAT_VERSION:
            age = "an older" if isinstance(version, int) and version < FORMAT_VERSION else "another"
            raise UnreadableState(
                f"{DOCUMENT} was saved by {age} version of the local API (format {version!r}; this one reads "
                f"format {FORMAT_VERSION})"
            )
        return document

    def write(self, document: dict[str, Any]) -> None:
        """Replace the document atomically."""
        body = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, **document}, indent=1, sort_keys=True)
        self._make()
        _write_atomically(self.path / DOCUMENT, body.encode("utf-8"))

    # ----------------------------------------------------------------------------------------- the blobs
    def put_blob(self, data: bytes) -> str:
        """Keep ``data`` (once: an existing blob is not written again); returns its name."""
        name = hashlib.sha256(data).hexdigest()
        path = self._blob_path(name)
        if not path.exists():
            self._make()
            path.parent.mkdir(mode=0o700, exist_ok=True)
            _write_atomically(path, data)
        return name

    def has_blob(self, name: str) -> bool:
        return self._blob_path(name).is_file()

    def read_blob(self, name: str) -> bytes:
        return self._blob_path(name).read_bytes()

    def keep_only(self, names: set[str]) -> int:
        """Delete the blobs not in ``names`` (after a save that no longer needs them); returns how many."""
        removed = 0
        for path in self.blobs.glob("*/*") if self.blobs.is_dir() else ():
            if path.name not in names and not path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _blob_path(self, name: str) -> Path:
        if len(name) != 64 or not all(c in "0123456789abcdef" for c in name):
            raise UnreadableState(f"{name!r} is not a blob name")
        return self.blobs / name[:2] / name

    # ----------------------------------------------------------------------------------- set aside, reset
    def set_aside(self, now: datetime | None = None) -> Path:
        """Move the folder out of the way (kept for a look, never restored); returns where it went."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.broken-{stamp}")
        for n in range(2, 100):
            if not target.exists():
                break
            target = self.path.with_name(f"{self.path.name}.broken-{stamp}-{n}")
        self.path.rename(target)
        return target

    def clear(self) -> None:
        """Forget everything (``--fresh``)."""
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)

    def _make(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.blobs.mkdir(mode=0o700, exist_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with _private(temporary) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


@contextlib.contextmanager
def _private(path: Path) -> Iterator[IO[bytes]]:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        yield handle
