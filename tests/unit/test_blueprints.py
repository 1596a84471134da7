"""services.blueprints: accepted formats, magic-byte detection and safe filenames."""

from __future__ import annotations

import unicodedata

import pytest

from services.blueprints import (
    FORMAT_EXTENSIONS,
    MAX_FILENAME_BYTES,
    SNIFF_BYTES,
    detect_format,
    normalise_format,
    sanitise_filename,
)
from tests import samples

# --- normalise_format -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("png", "png"),
        ("PNG", "png"),
        ("Png", "png"),
        (" png ", "png"),
        ("jpg", "jpg"),
        ("JPG", "jpg"),
        ("jpeg", "jpg"),
        ("JPEG", "jpg"),
        ("pdf", "pdf"),
        ("PDF", "pdf"),
        ("gif", None),
        ("GIF", None),
        ("webp", None),
        ("image/png", None),
        (".png", None),
        ("", None),
        ("   ", None),
        ("\t\n", None),
        ("png,jpg", None),
    ],
)
def test_normalise_format(value: str, expected: str | None) -> None:
    assert normalise_format(value) == expected


# --- detect_format ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(samples.png(), "png", id="png"),
        pytest.param(samples.png(40, 30, extra=b"x"), "png", id="png-bigger"),
        pytest.param(samples.jpg(), "jpg", id="jpg"),
        pytest.param(samples.pdf(), "pdf", id="pdf"),
        pytest.param(samples.GIF, "gif", id="gif89a"),
        pytest.param(b"GIF87a" + b"\x00" * 10, "gif", id="gif87a"),
        pytest.param(samples.HTML, "html", id="html"),
        pytest.param(b"\xef\xbb\xbf  <?xml version='1.0'?><svg/>", "xml", id="xml"),
        pytest.param(samples.HTML[:20] + b"%PDF-1.4\n", "html", id="html-quoting-a-pdf-header"),
        pytest.param(samples.EXE, None, id="exe"),
        pytest.param(b"RIFF\x24\x00\x00\x00WEBPVP8 ", "webp", id="webp"),
        pytest.param(b"\x00\x00\x00\x18ftypheic\x00\x00", "heic", id="heic"),
        pytest.param(b"\x00\x00\x00\x18ftypisom\x00\x00", "mp4", id="mp4"),
        pytest.param(b"PK\x03\x04rest", "zip", id="zip"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"\x89PNG", None, id="truncated-png-signature"),
        pytest.param(b"\xff\xd8", None, id="truncated-jpg-signature"),
        pytest.param(b"%PDF", None, id="truncated-pdf-header"),
    ],
)
def test_detect_format(content: bytes, expected: str | None) -> None:
    assert detect_format(content) == expected


def test_detect_format_only_needs_the_head() -> None:
    assert detect_format(samples.png()[:SNIFF_BYTES]) == "png"
    assert detect_format(samples.jpg()[:3]) == "jpg"


@pytest.mark.parametrize("junk_length", [1, 7, 500, SNIFF_BYTES - len(b"%PDF-")])
def test_pdf_header_after_junk_within_the_first_kilobyte(junk_length: int) -> None:
    content = b"\x00" * junk_length + samples.pdf()
    assert detect_format(content) == "pdf"


@pytest.mark.parametrize("junk_length", [SNIFF_BYTES - len(b"%PDF-") + 1, SNIFF_BYTES, SNIFF_BYTES + 500])
def test_pdf_header_beyond_the_first_kilobyte_is_not_pdf(junk_length: int) -> None:
    content = b" " * junk_length + samples.pdf()
    assert detect_format(content) is None


def test_a_leading_signature_wins_over_an_embedded_pdf_header() -> None:
    assert detect_format(samples.GIF + b"%PDF-1.4") == "gif"


def test_webp_needs_both_riff_and_webp_markers() -> None:
    assert detect_format(b"RIFF\x24\x00\x00\x00WAVEfmt ") is None


# --- sanitise_filename ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fmt", "expected"),
    [
        pytest.param("plan.png", "png", "plan.png", id="plain"),
        pytest.param("floor plan (2).png", "png", "floor plan (2).png", id="spaces-and-parens"),
        pytest.param("a-b_c+d,e=f@g.pdf", "pdf", "a-b_c+d,e=f@g.pdf", id="allowed-punctuation"),
        pytest.param("scan.pdf", "pdf", "scan.pdf", id="pdf"),
        pytest.param("photo.jpg", "jpg", "photo.jpg", id="jpg"),
        pytest.param("photo.jpeg", "jpg", "photo.jpeg", id="jpeg-accepted-for-jpg"),
        pytest.param("PHOTO.JPEG", "jpg", "PHOTO.JPEG", id="uppercase-jpeg"),
        pytest.param("plan", "png", "plan.png", id="no-extension"),
        pytest.param("plan.gif", "png", "plan.gif.png", id="wrong-extension"),
        pytest.param("plan.png.exe", "png", "plan.png.exe.png", id="double-extension"),
        pytest.param("photo.png", "jpg", "photo.png.jpg", id="png-name-for-jpg"),
        pytest.param("plan.jpeg", "png", "plan.jpeg.png", id="jpeg-name-for-png"),
        pytest.param("/tmp/plan.png", "png", "plan.png", id="unix-absolute"),
        pytest.param("uploads/2026/plan.png", "png", "plan.png", id="unix-relative"),
        pytest.param("C:\\Users\\me\\plan.png", "png", "plan.png", id="windows"),
        pytest.param("..\\..\\plan.png", "png", "plan.png", id="windows-traversal"),
        pytest.param("../../etc/passwd", "png", "passwd.png", id="unix-traversal"),
        pytest.param("a/b\\c.pdf", "pdf", "c.pdf", id="mixed-separators"),
        pytest.param("plan..png", "png", "plan.png", id="double-dot"),
        pytest.param("a....b.png", "png", "a.b.png", id="many-dots"),
        pytest.param(".htaccess", "png", "htaccess.png", id="leading-dot"),
        pytest.param("...plan.png", "png", "plan.png", id="leading-dots"),
        pytest.param(" . plan.png", "png", "plan.png", id="leading-space-dot"),
        pytest.param("plan.png.", "png", "plan.png", id="trailing-dot"),
        pytest.param("plan\x00.png", "png", "plan.png", id="nul"),
        pytest.param("pl\nan\r.png", "png", "plan.png", id="newlines"),
        pytest.param("plan\t\x07\x1b[31m.png", "png", "plan_31m.png", id="control-and-ansi"),
        pytest.param("\u202egnp.exe", "png", "gnp.exe.png", id="right-to-left-override"),
        pytest.param("pl\u200ban.png", "png", "plan.png", id="zero-width-space"),
        pytest.param("plan   v2.png", "png", "plan v2.png", id="collapsed-spaces"),
        pytest.param('plan<>:"|?*.png', "png", "plan_______.png", id="windows-reserved-characters"),
        pytest.param("$(rm -rf ~).png", "png", "_(rm -rf _).png", id="shell"),
        pytest.param("grundriß.png", "png", "grundriß.png", id="german"),
        pytest.param("план.pdf", "pdf", "план.pdf", id="cyrillic"),
        pytest.param("平面図.png", "png", "平面図.png", id="japanese"),
        pytest.param("e\u0301tage.png", "png", "\u00e9tage.png", id="nfd-becomes-nfc"),
    ],
)
def test_sanitise_filename(raw: str, fmt: str, expected: str) -> None:
    assert sanitise_filename(raw, fmt) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("नक्शा.png", id="devanagari"),
        pytest.param("แผนที่.png", id="thai"),
        pytest.param("خَرِيطَة.png", id="arabic-with-harakat"),
    ],
)
def test_letters_of_any_script_are_kept_with_their_combining_marks(raw: str) -> None:
    # The docstring promises "letters (any script)"; in these scripts vowel signs and viramas are
    # combining marks (Mn/Mc) that are part of the word, not punctuation to replace.
    assert sanitise_filename(raw, "png") == unicodedata.normalize("NFC", raw)


@pytest.mark.parametrize("fmt", ["png", "jpg", "pdf"])
@pytest.mark.parametrize("raw", [None, "", "   ", ".", "..", "...", "/", "\\", "../..", "!!!", "\x00\x01", "@@", "_"])
def test_fallback_name(raw: str | None, fmt: str) -> None:
    assert sanitise_filename(raw, fmt) == f"blueprint.{FORMAT_EXTENSIONS[fmt]}"


def test_nfc_normalisation() -> None:
    decomposed = "Pla\u0308ne.pdf"  # a + combining diaeresis
    result = sanitise_filename(decomposed, "pdf")
    assert result == "Pläne.pdf"
    assert unicodedata.is_normalized("NFC", result)


@pytest.mark.parametrize(
    ("raw", "fmt", "ext"),
    [
        ("a" * 300, "png", ".png"),
        ("a" * 300 + ".png", "png", ".png"),
        ("a" * 300 + ".jpeg", "jpg", ".jpeg"),
        ("é" * 300, "pdf", ".pdf"),
        ("é" * 300 + ".pdf", "pdf", ".pdf"),
        ("平" * 200 + ".png", "png", ".png"),
        ("𠀀" * 100 + ".jpg", "jpg", ".jpg"),  # 4-byte letters (CJK extension B)
        ("a" + "é" * 200, "png", ".png"),
    ],
)
def test_long_names_are_capped_at_255_bytes_and_keep_the_extension(raw: str, fmt: str, ext: str) -> None:
    result = sanitise_filename(raw, fmt)
    assert len(result.encode("utf-8")) <= MAX_FILENAME_BYTES
    assert result.endswith(ext)
    # The cut never splits a character and leaves most of the budget used.
    result.encode("utf-8").decode("utf-8")
    assert len(result.encode("utf-8")) > MAX_FILENAME_BYTES - 4
    stem = result[: -len(ext)]
    assert stem
    assert raw.startswith(stem)


HOSTILE_NAMES = [
    None,
    "",
    ".",
    "..",
    "../",
    "../../../../etc/passwd",
    "..\\..\\windows\\system32\\config\\sam",
    "/",
    "\\",
    "//server/share/x.png",
    ".htaccess",
    ".png",
    "..png",
    ". .png",
    " ../ .. /x",
    "x/..",
    "x\\..",
    "\x00",
    "a\x00/../b",
    "..\x00/x",
    ".\x00.",
    "\u202e../",
    "\u200b.\u200b.\u200b/",
    "\ufeff.hidden",
    "\r\n.png",
    "\uff052e\uff052e\uff0fx",  # fullwidth percent signs and solidus
    "..%2f..%2fetc%2fpasswd",
    "con",
    "NUL.png",
    "a" * 1000,
    "." * 1000,
    ". " * 500,
    "é" * 1000,
    "😀" * 1000,
    "\u0301" * 500,
    "../" * 200 + "x.png",
    "x." + "y" * 400,
    "x" * 254 + ".png",
    "<script>alert(1)</script>.png",
    "'; DROP TABLE jobs;--.png",
    "plan.png\n.exe",
    "ﾠ.png",
    "\u2028\u2029.png",
    "\udcff.png",
]


@pytest.mark.parametrize("fmt", ["png", "jpg", "pdf"])
def test_hostile_names_always_give_one_safe_segment(fmt: str) -> None:
    allowed_ext = {"png": (".png",), "jpg": (".jpg", ".jpeg"), "pdf": (".pdf",)}[fmt]
    for raw in HOSTILE_NAMES:
        result = sanitise_filename(raw, fmt)
        assert result, raw
        assert "/" not in result, raw
        assert "\\" not in result, raw
        assert ".." not in result, raw
        assert not result.startswith("."), raw
        assert not result.startswith(" "), raw
        assert len(result.encode("utf-8")) <= MAX_FILENAME_BYTES, raw
        assert result.lower().endswith(allowed_ext), raw
        assert not any(unicodedata.category(ch).startswith("C") for ch in result), raw
        assert unicodedata.is_normalized("NFC", result), raw
        # Idempotent: a sanitised name is already safe.
        assert sanitise_filename(result, fmt) == result, raw
