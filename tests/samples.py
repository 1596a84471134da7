"""Small but real blueprint files (and impostors) for tests.

The JPEG and PDF fixtures in ``tests/fixtures/`` were made once by an image tool (see its README) and are
committed; ``jpg()`` and ``pdf()`` add bytes to them where the format allows any (a JPEG comment segment,
a PDF comment line before ``startxref``), so each test can have a file with a hash of its own that is
still a well-formed file.
"""

from __future__ import annotations

import struct
import zlib
from functools import cache
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@cache
def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def png(width: int = 2, height: int = 2, extra: bytes = b"") -> bytes:
    """A valid PNG (grey pixels); ``extra`` makes distinct files with distinct hashes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw))
    if extra:
        body += chunk(b"tEXt", b"note\x00" + extra)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def jpg(extra: bytes = b"") -> bytes:
    """The real 48x32 baseline JPEG fixture; ``extra`` goes into comment (COM) segments after SOI."""
    base = fixture("baseline.jpg")
    comments = b"".join(
        b"\xff\xfe" + struct.pack(">H", len(part) + 2) + part
        for part in (extra[i : i + 65533] for i in range(0, len(extra), 65533))
    )
    return base[:2] + comments + base[2:]


def pdf(extra: bytes = b"") -> bytes:
    """The real one-page PDF fixture; ``extra`` goes into a comment line just before ``startxref``
    (after the cross-reference table, so every offset in the file stays right)."""
    base = fixture("plan.pdf")
    if not extra:
        return base
    at = base.rindex(b"startxref")
    return base[:at] + b"%" + extra.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n" + base[at:]


GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
HTML = b"<!doctype html><html><body>not a blueprint</body></html>"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
