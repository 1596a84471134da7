"""Rules about blueprint files: formats, magic bytes, size, safe filenames. Pure functions, no I/O.

``models.job.FORMATS`` is the one list of the formats the API knows; every other table here, the runtime
configuration's ``allowed-formats`` (``services.runtime_config``) and the request parsers derive from it.
(It lives with the job model, not here, so that reading the runtime configuration, which every request
does, does not import these rules and their file-structure checks at a GET's cold start.)
"""

from __future__ import annotations

import re
import unicodedata

from models.errors import FileTooLarge, InvalidFileFormat
from models.job import FORMATS
from services.file_structure import Read, pdf_header_offset, structure_problem
from utils.errors import InvalidRequest

FORMAT_EXTENSIONS = {fmt: extensions[0] for fmt, (extensions, _) in FORMATS.items()}
FORMAT_ALIASES = {extension: fmt for fmt, (extensions, _) in FORMATS.items() for extension in extensions}
CONTENT_TYPES = {fmt: content_types[0] for fmt, (_, content_types) in FORMATS.items()}
#: Content types that name one of our formats.
FORMATS_BY_CONTENT_TYPE = {mime: fmt for fmt, (_, content_types) in FORMATS.items() for mime in content_types}
#: Extensions a filename may already carry for each format.
_EXTENSIONS_OF = {fmt: tuple(f".{extension}" for extension in extensions) for fmt, (extensions, _) in FORMATS.items()}

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


def resolve_format(declared: str | None, read: Read, size: int, allowed: tuple[str, ...]) -> str:
    """The file's format: detected from its first bytes, among ``allowed``, agreeing with ``declared`` and
    well-formed (``services.file_structure``: a signature alone is not a file). ``read`` gives the file's
    bytes by range (the bytes of a direct body, ranged GETs of an upload), ``size`` its length."""
    received = None
    if declared is not None:
        received = normalise_format(declared)
        if received is None or received not in allowed:
            raise InvalidFileFormat(
                f"File format must be {_listed(allowed)}",
                details={"received_format": declared, "allowed_formats": list(allowed)},
            )
    detected = detect_format(read(0, SNIFF_BYTES))
    if detected is None or detected not in allowed:
        raise InvalidFileFormat(
            f"The file's content is not {_listed(allowed)}",
            details={"received_format": declared, "detected_format": detected or "unknown"},
        )
    if received is not None and received != detected:
        raise InvalidFileFormat(
            f"The file's content is {detected.upper()}, not {received.upper()}",
            details={"received_format": declared, "detected_format": detected},
        )
    problem = structure_problem(detected, read, size)
    if problem is not None:
        raise InvalidFileFormat(
            f"The file is not a valid {detected.upper()}: {problem}",
            details={"received_format": declared, "detected_format": "unknown", "reason": problem},
        )
    return detected


def check_size(size: int, max_bytes: int, field: str = "blueprint.file") -> None:
    """A file holds 1 to ``max_bytes`` bytes; ``field`` names what the client sent it as."""
    if size <= 0:
        raise InvalidRequest("The file is empty", details={"field": field})
    if size > max_bytes:
        raise FileTooLarge(max_bytes)


def _listed(formats: tuple[str, ...]) -> str:
    """``PNG, JPG, or PDF``"""
    names = [f.upper() for f in formats]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f", or {names[-1]}"


def detect_format(head: bytes) -> str | None:
    """The format the file's own bytes announce (``png``, ``jpg``, ``pdf``, or another name), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    # A PDF header may follow up to 1 KB of whitespace or binary (ISO 32000-1, annex H), never text.
    if pdf_header_offset(head[: SNIFF_BYTES + 16]) is not None:
        return "pdf"
    if _MARKUP.match(head):
        return "html" if _HTML.match(head) else "xml"
    if head[4:8] == b"ftyp":
        return "heic" if head[8:12] in (b"heic", b"heix", b"mif1") else "mp4"
    return None


#: Markup at the start of a file (after whitespace or a UTF-8 BOM): named in the error, never accepted.
_MARKUP = re.compile(rb"(?:\xef\xbb\xbf)?\s*<[!?a-zA-Z]")
_HTML = re.compile(rb"(?:\xef\xbb\xbf)?\s*<(?:!doctype\s+html|html|head|body)", re.IGNORECASE)

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
