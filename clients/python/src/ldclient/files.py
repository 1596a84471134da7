"""A blueprint on disk: its format, and a ``multipart/form-data`` body streamed from it with its exact length.

The body is a generator (constant memory whatever the size) with ``Content-Length`` known up front: S3's
presigned POST refuses chunked bodies. Each chunk handed to httpx is reported as progress.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 256 * 1024
MIME_TYPES = {"png": "image/png", "jpg": "image/jpeg", "pdf": "application/pdf"}
_EXTENSIONS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".pdf": "pdf"}

Progress = Callable[[int, int], None]


def detect_format(path: Path) -> str | None:
    """``png``, ``jpg`` or ``pdf`` by the first bytes (the API checks the same), else by extension."""
    with path.open("rb") as file:
        head = file.read(1024)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if b"%PDF-" in head:
        return "pdf"
    return _EXTENSIONS.get(path.suffix.lower())


def _quote(value: str) -> str:
    """As browsers write names in ``Content-Disposition`` (WHATWG): ``"``, CR and LF percent-encoded."""
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


@dataclass
class MultipartBody:
    """``fields`` then one ``file`` part read from ``path``; iterate it once per request."""

    path: Path
    filename: str
    content_type: str
    fields: list[tuple[str, str]]

    def __post_init__(self) -> None:
        self.boundary = f"----ldclient{secrets.token_hex(12)}"
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n{value}\r\n'
            for name, value in self.fields
        ]
        parts.append(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{_quote(self.filename)}"\r\n'
            f"Content-Type: {self.content_type}\r\n\r\n"
        )
        self.head = "".join(parts).encode("utf-8")
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.file_size = self.path.stat().st_size

    @property
    def content_type_header(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def length(self) -> int:
        return len(self.head) + self.file_size + len(self.tail)

    def stream(self, progress: Progress | None = None) -> Iterator[bytes]:
        """The body, reporting the file's bytes sent (of its size) after each chunk."""
        sent = 0
        if progress:
            progress(0, self.file_size)
        yield self.head
        with self.path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                yield chunk
                sent += len(chunk)
                if progress:
                    progress(sent, self.file_size)
        yield self.tail
