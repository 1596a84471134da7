"""Is a file what its signature claims? Structural checks of PNG, JPEG and PDF, standard library only.

A signature alone is easy to forge (8 bytes of PNG signature, ``FF D8 FF``, an HTML page with ``%PDF-``
in it), so each format's first structure is checked too:
- PNG: the signature, then an ``IHDR`` chunk of length 13 with a correct CRC, dimensions 1..65535 and a
  bit depth / colour type pair the specification allows;
- JPEG: SOI, then valid marker segments (each a known marker with a length that fits the file) up to a
  frame header (SOFn) with sane dimensions, and then the start of a scan (SOS);
- PDF: ``%PDF-1.0`` .. ``%PDF-1.7`` or ``%PDF-2.0`` at offset 0, or after at most 1 KB of leading bytes that
  are whitespace or binary (never text or markup: an HTML page that mentions ``%PDF-`` is not a PDF), and
  ``%%EOF`` in the last 1 KB (where ISO 32000 readers look for it).

The checks read through ``Read`` (offset, length -> bytes) so an object in S3 is checked with ranged GETs
of the head (and, for PDF, the tail) instead of being downloaded: ``structure_problem`` reads at most
``HEAD_BYTES`` from the start for PNG and PDF, ``TAIL_BYTES`` from the end for PDF, and for JPEG walks the
marker segments in read-ahead blocks (one block for every real file we have seen), never past
``MAX_JPEG_HEADER_BYTES``.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable

#: ``read(offset, length)``: up to ``length`` bytes of the file from ``offset`` (fewer at its end).
Read = Callable[[int, int], bytes]

#: How much the first read takes from the start of a file (enough for PNG, PDF and a typical JPEG).
HEAD_BYTES = 64 * 1024
#: ISO 32000-2, 7.5.5: readers look for ``%%EOF`` in the last 1024 bytes; so do we.
TAIL_BYTES = 1024
#: A PDF header may follow leading bytes, up to 1024 of them (ISO 32000-1, annex H.3, note 13).
PDF_LEADING_BYTES = 1024
#: A JPEG's frame header must come within this many bytes (metadata segments before it are skipped).
MAX_JPEG_HEADER_BYTES = 4 * 1024 * 1024
#: Largest width or height we accept (JPEG's own 16-bit limit, applied to PNG as well).
MAX_SIDE = 65535

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> allowed bit depths (PNG specification, 11.2.2).
_PNG_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}

# JPEG markers (ITU T.81, table B.1). Frame headers: SOF0-3, 5-7, 9-11, 13-15 (C4 DHT, C8 JPG, CC DAC excluded).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SOS = 0xDA
# Segments with a length that may come before the scan: DHT, DAC, DQT, DRI, EXP, APP0-15, JPG0-13, COM.
_TABLES_AND_MISC = frozenset({0xC4, 0xCC, 0xDB, 0xDD, 0xDF, *range(0xE0, 0xF0), *range(0xF0, 0xFE), 0xFE})
_TEM = 0x01  # a standalone marker (no length) that may appear anywhere

_PDF_HEADER = re.compile(rb"%PDF-(?:1\.[0-7]|2\.0)(?=[\s%]|$)")
# Printable ASCII other than whitespace: text. Leading bytes before a PDF header may not contain any.
_TEXT_BYTE = re.compile(rb"[\x21-\x7e]")


def bytes_reader(data: bytes) -> Read:
    """A ``Read`` over bytes already in memory (a direct upload's body)."""
    return lambda offset, length: data[offset : offset + length]


def with_cached_head(read: Read, head_bytes: int = HEAD_BYTES) -> Read:
    """``read`` with the file's first ``head_bytes`` fetched once, on first use: the reads near the start
    (the signature, a PNG's IHDR, a PDF's header, a JPEG's first segments) then cost one ranged GET."""
    head: list[bytes] = []

    def cached(offset: int, length: int) -> bytes:
        if offset + length > head_bytes:
            return read(offset, length)
        if not head:
            head.append(read(0, head_bytes))
        return head[0][offset : offset + length]

    return cached


def structure_problem(fmt: str, read: Read, size: int) -> str | None:
    """None when the file of ``size`` bytes is a well-formed ``fmt`` (png, jpg, pdf); else why it is not."""
    if fmt == "png":
        return png_problem(read(0, 33))
    if fmt == "jpg":
        return jpeg_problem(read, size)
    if fmt == "pdf":
        return pdf_problem(read(0, PDF_LEADING_BYTES + 16), read(max(0, size - TAIL_BYTES), TAIL_BYTES))
    return f"no structural check for {fmt!r}"


def png_problem(head: bytes) -> str | None:
    """The signature, then IHDR (length 13, correct CRC, sane dimensions and pixel format)."""
    if not head.startswith(PNG_SIGNATURE):
        return "no PNG signature"
    chunk = head[8:33]
    if len(chunk) < 25:
        return "the PNG ends before its IHDR chunk"
    length, kind = struct.unpack(">I4s", chunk[:8])
    if kind != b"IHDR" or length != 13:
        return "the PNG signature is not followed by an IHDR chunk of length 13"
    data, crc = chunk[8:21], struct.unpack(">I", chunk[21:25])[0]
    if zlib.crc32(kind + data) & 0xFFFFFFFF != crc:
        return "the PNG's IHDR chunk fails its CRC"
    return _ihdr_problem(data)


def _ihdr_problem(data: bytes) -> str | None:
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", data)
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        return f"the PNG's dimensions {width}x{height} are outside 1..{MAX_SIDE}"
    if depth not in _PNG_DEPTHS.get(colour, set()) or compression or filtering or interlace > 1:
        return "the PNG's IHDR names a pixel format the PNG specification does not define"
    return None


_JPEG_ENDS = "the JPEG ends (or its first 4 MB end) before a frame header and a scan"


def jpeg_problem(read: Read, size: int) -> str | None:
    """SOI, marker segments (each valid and inside the file), a frame header (SOFn), then a scan (SOS)."""
    window = _ReadAhead(read, size)
    if window.get(0, 2) != b"\xff\xd8":
        return "no JPEG start-of-image marker"
    position, frame_seen = 2, False
    while position < min(size, MAX_JPEG_HEADER_BYTES):
        segment = _next_segment(window, position, size)
        if isinstance(segment, str):
            return segment
        marker, start, length = segment
        if marker == _SOS:
            return None if frame_seen else "the JPEG's scan starts before any frame header (SOFn)"
        if marker in _SOF:
            problem = "the JPEG has two frame headers" if frame_seen else _frame_problem(window.get(start, length))
            if problem:
                return problem
            frame_seen = True
        position = start + length
    return _JPEG_ENDS


def _next_segment(window: _ReadAhead, position: int, size: int) -> tuple[int, int, int] | str:
    """The marker at ``position`` (after any fill bytes), where its length field starts and that length
    (0 for a standalone marker); or why there is no valid header segment there."""
    marker_at = position
    while window.get(position, 1) == b"\xff":  # fill bytes may precede a marker (T.81, B.1.1.2)
        position += 1
    if position >= size:
        return _JPEG_ENDS
    if position == marker_at:
        return f"the JPEG has no marker at byte {marker_at}"
    marker = window.get(position, 1)[0]
    position += 1
    if marker == _TEM:
        return marker, position, 0
    if marker not in _SOF and marker != _SOS and marker not in _TABLES_AND_MISC:
        return f"the JPEG has marker FF{marker:02X} where a header segment must be"
    length_bytes = window.get(position, 2)
    length = struct.unpack(">H", length_bytes)[0] if len(length_bytes) == 2 else 0
    if length < 2 or position + length > size:
        return f"the JPEG's FF{marker:02X} segment has a length that does not fit the file"
    return marker, position, length


def _frame_problem(segment: bytes) -> str | None:
    """A SOFn segment (its length field included): precision, lines, samples per line, components."""
    if len(segment) < 8:
        return "the JPEG's frame header is truncated"
    length, precision, height, width, components = struct.unpack(">HBHHB", segment[:8])
    if length != 8 + 3 * components or not 1 <= components <= 4:
        return "the JPEG's frame header has an impossible component count"
    if not 2 <= precision <= 16:
        return "the JPEG's frame header has an impossible sample precision"
    if width < 1 or height < 1:
        return f"the JPEG's dimensions {width}x{height} are outside 1..{MAX_SIDE}"
    return None


def pdf_header_offset(head: bytes) -> int | None:
    """Where a valid PDF header starts in ``head``: 0, or after leading whitespace/binary up to 1 KB."""
    match = _PDF_HEADER.search(head, 0, PDF_LEADING_BYTES + 8)
    if match is None or match.start() + len(b"%PDF-") > PDF_LEADING_BYTES:  # "%PDF-" within the first 1 KB
        return None
    if _TEXT_BYTE.search(head, 0, match.start()):
        return None  # text or markup before the header: an HTML page quoting "%PDF-", not a PDF
    return match.start()


def pdf_problem(head: bytes, tail: bytes) -> str | None:
    """A version header at the start (see ``pdf_header_offset``) and ``%%EOF`` in the last 1 KB."""
    if pdf_header_offset(head) is None:
        return "no %PDF-1.x or %PDF-2.0 header at the start of the file"
    if b"%%EOF" not in tail[-TAIL_BYTES:]:
        return "no %%EOF marker in the PDF's last 1024 bytes"
    return None


class _ReadAhead:
    """Serves small reads from blocks fetched ahead (64 KB, then doubling), so a JPEG's marker walk
    costs one read for a typical file and a handful for one with megabytes of metadata."""

    def __init__(self, read: Read, size: int) -> None:
        self._read, self._size = read, size
        self._start, self._data = 0, b""
        self._block = HEAD_BYTES

    def get(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self._size)
        if offset < self._start or end > self._start + len(self._data):
            self._start, self._data = offset, self._read(offset, max(length, self._block))
            self._block *= 2
        return self._data[offset - self._start : end - self._start]
