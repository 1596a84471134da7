"""Small but real blueprint files (and impostors) for tests."""

from __future__ import annotations

import struct
import zlib


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
    """A JPEG byte stream (SOI, APP0/JFIF, comment, EOI): what the magic-byte check looks at."""
    comment = b"blueprint" + extra
    return (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xfe"
        + struct.pack(">H", len(comment) + 2)
        + comment
        + b"\xff\xd9"
    )


def pdf(extra: bytes = b"") -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n" + extra + b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
HTML = b"<!doctype html><html><body>not a blueprint</body></html>"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
