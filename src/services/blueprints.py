"""Rules about blueprint files: formats, magic bytes, safe filenames. Pure functions, no I/O."""

from __future__ import annotations

import re
import unicodedata

#: Canonical format -> file extension used for fallbacks; ``jpeg`` is an alias stored as ``jpg``.
FORMAT_EXTENSIONS = {"png": "png", "jpg": "jpg", "pdf": "pdf"}
FORMAT_ALIASES = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "pdf": "pdf"}
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "pdf": "application/pdf"}
#: Content types that name one of our formats (with the non-standard JPEG spellings clients send).
FORMATS_BY_CONTENT_TYPE = {mime: fmt for fmt, mime in CONTENT_TYPES.items()} | {
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
}
#: Extensions a filename may already carry for each format.
_EXTENSIONS_OF = {"png": (".png",), "jpg": (".jpg", ".jpeg"), "pdf": (".pdf",)}

#: How many leading bytes ``detect_format`` needs (a PDF header may follow up to 1 KB of junk).
SNIFF_BYTES = 1024
MAX_FILENAME_BYTES = 255

# Signatures of formats we accept and of common ones we refuse (named in error details).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"\x00\x00\x01\x00", "ico"),
)


def normalise_format(value: str) -> str | None:
    """``PNG`` -> ``png``, ``jpeg`` -> ``jpg``; None for anything we do not accept."""
    return FORMAT_ALIASES.get(value.strip().lower())


def detect_format(head: bytes) -> str | None:
    """The format the file's own bytes announce (``png``, ``jpg``, ``pdf``, or another name), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    # PDF readers accept the header anywhere in the first 1024 bytes (ISO 32000-1, annex H).
    if b"%PDF-" in head[:SNIFF_BYTES]:
        return "pdf"
    if head[4:8] == b"ftyp":
        return "heic" if head[8:12] in (b"heic", b"heix", b"mif1") else "mp4"
    return None


_KEPT_PUNCTUATION = frozenset(" ._-()+,=@")
_DOTS = re.compile(r"\.{2,}")
_SPACES = re.compile(r"\s+")


def _safe_char(ch: str) -> str:
    """Letters, marks (the vowel signs of many scripts) and digits of any script stay; so does a little
    punctuation; anything else becomes ``_``."""
    return ch if ch in _KEPT_PUNCTUATION or unicodedata.category(ch)[0] in "LMN" else "_"


def sanitise_filename(raw: str | None, fmt: str) -> str:
    """Reduce a client's filename to one safe path segment that ends with the format's extension.

    Keeps letters (any script), digits and ``._-()+,=@`` and spaces; drops any directory part (``/`` or
    ``\\``), control and format characters; collapses ``..``; strips leading dots and spaces; caps the
    result at 255 UTF-8 bytes keeping the extension. Falls back to ``blueprint.{ext}``.
    """
    ext = FORMAT_EXTENSIONS[fmt]
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(_safe_char(ch) for ch in name if unicodedata.category(ch)[0] != "C")
    name = _SPACES.sub(" ", _DOTS.sub(".", name)).strip(" .")
    if not name or not any(ch.isalnum() for ch in name):
        return f"blueprint.{ext}"
    stem = name
    if not name.lower().endswith(_EXTENSIONS_OF[fmt]):
        name = f"{name}.{ext}"
        stem = name[: -len(ext) - 1]
    else:
        stem, _, ext = name.rpartition(".")
    suffix = f".{ext}"
    budget = MAX_FILENAME_BYTES - len(suffix.encode())
    stem_bytes = stem.encode()[:budget]
    stem = stem_bytes.decode("utf-8", errors="ignore").rstrip(" .")
    return f"{stem}{suffix}" if stem else f"blueprint.{FORMAT_EXTENSIONS[fmt]}"
