"""services.file_structure: real small files pass, each forgery of issue 14 fails, and only the bytes needed
are read (a finalised upload reads them from S3 with ranged GETs)."""

from __future__ import annotations

import struct
import zlib

import pytest

from services.file_structure import (
    MAX_JPEG_HEADER_BYTES,
    TAIL_BYTES,
    bytes_reader,
    jpeg_problem,
    pdf_header_offset,
    png_problem,
    structure_problem,
)
from tests import samples


def problem(fmt: str, content: bytes) -> str | None:
    return structure_problem(fmt, bytes_reader(content), len(content))


class CountingReader:
    """A ``Read`` that records every (offset, length) it is asked for, as an S3 ranged GET would be."""

    def __init__(self, content: bytes) -> None:
        self.content, self.calls = content, []

    def __call__(self, offset: int, length: int) -> bytes:
        self.calls.append((offset, length))
        return self.content[offset : offset + length]


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def ihdr(width: int = 8, height: int = 8, depth: int = 8, colour: int = 0, interlace: int = 0) -> bytes:
    return struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


SOF0 = jpeg_segment(0xC0, struct.pack(">BHHB", 8, 32, 48, 1) + b"\x01\x11\x00")
SOS = jpeg_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
APP0 = jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")


# --- real files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plan.png", "palette.png", "grey16.png", "rgba.png"])
def test_real_pngs_pass(name: str) -> None:
    assert problem("png", samples.fixture(name)) is None


@pytest.mark.parametrize("name", ["baseline.jpg", "progressive.jpg", "grey.jpg", "cmyk.jpg", "exif.jpg"])
def test_real_jpegs_pass(name: str) -> None:
    assert problem("jpg", samples.fixture(name)) is None


def test_real_pdf_passes_and_so_do_the_samples_made_from_the_fixtures() -> None:
    assert problem("pdf", samples.fixture("plan.pdf")) is None
    assert problem("pdf", samples.pdf(b"%" + b"x" * 3000)) is None
    assert problem("jpg", samples.jpg(b"y" * 70_000)) is None  # two comment segments
    assert problem("png", samples.png(40, 30, extra=b"z")) is None


def test_the_examples_are_well_formed() -> None:
    root = samples.FIXTURES.parent.parent / "examples"
    assert problem("png", (root / "plan.png").read_bytes()) is None
    assert problem("jpg", (root / "site.jpg").read_bytes()) is None
    assert problem("pdf", (root / "plan.pdf").read_bytes()) is None


# --- PNG forgeries ------------------------------------------------------------------------------------

SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(SIGNATURE, "ends before its IHDR", id="lone-signature"),
        pytest.param(SIGNATURE + b"\x00" * 40, "not followed by an IHDR", id="signature-then-zeros"),
        pytest.param(SIGNATURE + png_chunk(b"IDAT", b"\x00" * 13), "not followed by an IHDR", id="idat-first"),
        pytest.param(SIGNATURE + png_chunk(b"IHDR", ihdr() + b"\x00"), "not followed by an IHDR", id="ihdr-length-14"),
        pytest.param(SIGNATURE + png_chunk(b"IHDR", ihdr(), crc=0xDEADBEEF), "CRC", id="bad-crc"),
        pytest.param(SIGNATURE + png_chunk(b"IHDR", ihdr(width=0)), "dimensions 0x8", id="zero-width"),
        pytest.param(SIGNATURE + png_chunk(b"IHDR", ihdr(height=0)), "dimensions 8x0", id="zero-height"),
        pytest.param(SIGNATURE + png_chunk(b"IHDR", ihdr(width=2**31)), "outside 1..65535", id="huge-width"),
        pytest.param(SIGNATURE + png_chunk(b"IHDR", ihdr(depth=3)), "pixel format", id="depth-3"),
        pytest.param(SIGNATURE + png_chunk(b"IHDR", ihdr(colour=2, depth=4)), "pixel format", id="rgb-depth-4"),
        pytest.param(SIGNATURE + png_chunk(b"IHDR", ihdr(colour=5)), "pixel format", id="colour-type-5"),
        pytest.param(SIGNATURE + png_chunk(b"IHDR", ihdr(interlace=2)), "pixel format", id="interlace-2"),
        pytest.param(samples.GIF, "no PNG signature", id="gif"),
    ],
)
def test_png_forgeries_fail(content: bytes, reason: str) -> None:
    found = problem("png", content)
    assert found is not None
    assert reason in found


def test_png_with_a_valid_ihdr_passes_even_when_the_rest_is_not_checked() -> None:
    """The check is IHDR deep by design (33 bytes): the pipeline's decoder owns the pixel data."""
    assert png_problem(SIGNATURE + png_chunk(b"IHDR", ihdr(colour=6, depth=16))) is None


def test_png_check_reads_33_bytes_from_the_start() -> None:
    reader = CountingReader(samples.png(extra=b"x" * 100_000))
    assert structure_problem("png", reader, len(reader.content)) is None
    assert reader.calls == [(0, 33)]


# --- JPEG forgeries -----------------------------------------------------------------------------------

OLD_FAKE_JPEG = (  # what tests/samples.py used to call a JPEG (and examples/site.jpg was): no frame header
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xfe\x00\x0bblueprint\xff\xd9"
)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"\xff\xd8\xff", "ends", id="three-byte-signature"),
        pytest.param(b"\xff\xd8", "ends", id="soi-only"),
        pytest.param(OLD_FAKE_JPEG, "FFD9", id="old-fixture-no-frame"),
        pytest.param(b"\xff\xd8" + APP0 + SOS + SOF0, "before any frame header", id="scan-before-frame"),
        pytest.param(b"\xff\xd8\xff\x00" + b"\x00" * 20, "FF00", id="stuffed-zero-as-marker"),
        pytest.param(b"\xff\xd8\xff\xd0" + APP0 + SOF0 + SOS, "FFD0", id="restart-marker-in-header"),
        pytest.param(b"\xff\xd8\xff\xd8" + APP0 + SOF0 + SOS, "FFD8", id="second-soi"),
        pytest.param(b"\xff\xd8" + b"\xff\xe0\x7f\xff" + b"\x00" * 30, "does not fit", id="length-past-end"),
        pytest.param(b"\xff\xd8" + b"\xff\xe0\x00\x01" + SOF0 + SOS, "does not fit", id="length-1"),
        pytest.param(b"\xff\xd8" + APP0 + b"JUNK" + SOF0 + SOS, "no marker at byte", id="junk-between-segments"),
        pytest.param(b"\xff\xd8" + APP0 + SOF0 + SOF0 + SOS, "two frame headers", id="two-frames"),
        pytest.param(b"\xff\xd8" + APP0 + SOF0, "ends", id="frame-but-no-scan"),
        pytest.param(
            b"\xff\xd8" + jpeg_segment(0xC0, struct.pack(">BHHB", 8, 32, 0, 1) + b"\x01\x11\x00") + SOS,
            "dimensions 0x32",
            id="zero-width",
        ),
        pytest.param(
            b"\xff\xd8" + jpeg_segment(0xC0, struct.pack(">BHHB", 8, 0, 48, 1) + b"\x01\x11\x00") + SOS,
            "dimensions 48x0",
            id="zero-height",
        ),
        pytest.param(
            b"\xff\xd8" + jpeg_segment(0xC0, struct.pack(">BHHB", 8, 32, 48, 3) + b"\x01\x11\x00") + SOS,
            "component count",
            id="components-disagree-with-length",
        ),
        pytest.param(
            b"\xff\xd8" + jpeg_segment(0xC0, struct.pack(">BHHB", 0, 32, 48, 1) + b"\x01\x11\x00") + SOS,
            "precision",
            id="precision-0",
        ),
        pytest.param(b"\xff\xd8" + jpeg_segment(0xC0, b"\x08\x00") + SOS, "truncated", id="short-frame"),
        pytest.param(samples.png(), "start-of-image", id="png"),
    ],
)
def test_jpeg_forgeries_fail(content: bytes, reason: str) -> None:
    found = problem("jpg", content)
    assert found is not None
    assert reason in found


def test_jpeg_fill_bytes_and_tem_markers_before_a_segment_are_allowed() -> None:
    content = b"\xff\xd8" + APP0 + b"\xff\xff\xff" + SOF0[1:] + b"\xff\x01" + SOS + b"\x00\x00\xff\xd9"
    assert problem("jpg", content) is None


def test_jpeg_check_reads_one_block_for_a_real_file() -> None:
    reader = CountingReader(samples.fixture("exif.jpg"))
    assert jpeg_problem(reader, len(reader.content)) is None
    assert len(reader.calls) == 1
    assert reader.calls[0][0] == 0


def test_jpeg_with_megabytes_of_metadata_is_walked_in_a_few_growing_reads() -> None:
    metadata = jpeg_segment(0xE1, b"x" * 65_000) * 40  # 2.6 MB of APP1 before the frame header
    content = b"\xff\xd8" + metadata + SOF0 + SOS + b"\x00" * 1000 + b"\xff\xd9"
    reader = CountingReader(content)
    assert jpeg_problem(reader, len(content)) is None
    assert len(reader.calls) <= 8
    assert sum(length for _, length in reader.calls) < 2 * len(content)


def test_jpeg_whose_frame_header_is_past_the_header_budget_fails() -> None:
    metadata = jpeg_segment(0xE1, b"x" * 65_000) * (MAX_JPEG_HEADER_BYTES // 65_000 + 1)
    content = b"\xff\xd8" + metadata + SOF0 + SOS
    found = problem("jpg", content)
    assert found is not None
    assert "first 4 MB" in found


# --- PDF forgeries ------------------------------------------------------------------------------------

EOF_TAIL = b"\ntrailer << >>\nstartxref\n0\n%%EOF\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(samples.HTML[:20] + b"%PDF-1.4\n" + samples.HTML[20:] + EOF_TAIL, "header", id="html-quoting"),
        pytest.param(b"<?xml version='1.0'?>\n%PDF-1.7\n" + EOF_TAIL, "header", id="xml-then-header"),
        pytest.param(b"hello %PDF-1.4\n" + EOF_TAIL, "header", id="text-then-header"),
        pytest.param(b"%PDF-\n" + EOF_TAIL, "header", id="no-version"),
        pytest.param(b"%PDF-1.8\n" + EOF_TAIL, "header", id="version-1.8"),
        pytest.param(b"%PDF-3.0\n" + EOF_TAIL, "header", id="version-3.0"),
        pytest.param(b"%PDF-1.45\n" + EOF_TAIL, "header", id="version-1.45"),
        pytest.param(b"%PDF-1.4\n1 0 obj << >> endobj\n", "%%EOF", id="no-eof"),
        pytest.param(b"%PDF-1.4\n%%EOF\n" + b"\n" * (TAIL_BYTES + 1), "%%EOF", id="eof-far-from-end"),
        pytest.param(b" " * 1020 + b"%PDF-1.4\n" + EOF_TAIL, "header", id="header-ending-past-1024-bytes"),
        pytest.param(samples.GIF + b"%PDF-1.4\n" + EOF_TAIL, "header", id="gif-then-header"),
        pytest.param(b"", "header", id="empty"),
    ],
)
def test_pdf_forgeries_fail(content: bytes, reason: str) -> None:
    found = problem("pdf", content)
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "leading",
    [
        pytest.param(b"", id="none"),
        pytest.param(b"\xef\xbb\xbf", id="utf8-bom"),
        pytest.param(b"\r\n \t\x0c", id="whitespace"),
        pytest.param(b"\x00" * 128, id="macbinary-like-zeros"),
        pytest.param(b"\x80\x81\xfe" * 339 + b"\xff\xff", id="1019-binary-bytes"),
    ],
)
def test_pdf_header_may_follow_whitespace_or_binary_up_to_1024_bytes(leading: bytes) -> None:
    content = leading + samples.pdf()
    assert pdf_header_offset(content) == len(leading)
    assert problem("pdf", content) is None


@pytest.mark.parametrize("header", [b"%PDF-1.0", b"%PDF-1.7", b"%PDF-2.0"])
def test_every_pdf_version_header_is_accepted(header: bytes) -> None:
    content = header + samples.pdf()[len(header) :]
    assert problem("pdf", content) is None


def test_pdf_with_trailing_bytes_after_eof_passes_when_eof_is_in_the_last_kilobyte() -> None:
    assert problem("pdf", samples.pdf() + b"\x00" * 500) is None


def test_pdf_check_reads_only_the_head_and_the_tail() -> None:
    content = samples.pdf(b"x" * 1_000_000)
    reader = CountingReader(content)
    assert structure_problem("pdf", reader, len(content)) is None
    (head_offset, head_length), (tail_offset, tail_length) = reader.calls
    assert head_offset == 0
    assert head_length <= 1040
    assert (tail_offset, tail_length) == (len(content) - TAIL_BYTES, TAIL_BYTES)


def test_a_short_pdf_reads_its_tail_from_offset_zero() -> None:
    reader = CountingReader(b"%PDF-1.4\n%%EOF\n")
    assert structure_problem("pdf", reader, len(reader.content)) is None
    assert reader.calls[1] == (0, TAIL_BYTES)


def test_unknown_format_has_no_structural_check() -> None:
    assert problem("gif", samples.GIF) is not None
