"""A small, strict ``multipart/form-data`` parser (RFC 7578 over RFC 2046) for request bodies.

Written over ``bytes`` with ``bytes.find`` and offsets, so a part's data is copied exactly once (the final
slice) and a multi-megabyte file part is found with a handful of C-level searches. It deliberately uses
neither ``cgi`` (gone in Python 3.13) nor the ``email`` package (lenient, and it mangles binary data).

What it accepts is what curl, browsers (``fetch`` with ``FormData``) and urllib3/requests send:

* an optional preamble, then ``--boundary``; parts separated by CRLF ``--boundary``; ``--boundary--``
  closes the body and anything after it (the epilogue) is ignored; spaces/tabs after a delimiter are
  allowed (transport padding);
* CRLF-terminated ``Name: value`` header lines (no LF-only lines, no folding), UTF-8, at most
  ``max_header_bytes`` per part;
* ``Content-Disposition: form-data; name=...`` on every part, with an optional ``filename`` or RFC 5987
  ``filename*`` (which wins); ``Content-Transfer-Encoding`` only as 7bit, 8bit or binary.

Names and filenames are returned as sent. Browsers, curl (7.81+) and urllib3 2.x escape ``"``, CR and LF
in them as ``%22``, ``%0D`` and ``%0A`` (the WHATWG HTML rule) and escape nothing else, so that escaping
is not reversible (``%22`` may have been typed by the user) and is not undone here. In a quoted-string,
``\\"`` and ``\\\\`` are unescaped (RFC 7230 quoted-pair); any other backslash is kept, because no client
escapes backslashes and Windows-style paths must survive for the filename sanitiser to strip.

Every problem raises :class:`utils.errors.InvalidRequest`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from utils.errors import InvalidRequest

__all__ = ["FormPart", "boundary_of", "parse_form_data"]

_CRLF = b"\r\n"
_ALLOWED_TRANSFER_ENCODINGS = frozenset({"7bit", "8bit", "binary"})
_SINGLE_HEADERS = frozenset({"content-disposition", "content-type", "content-transfer-encoding"})

_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# A parameter: ``; key=value`` where value is a quoted-string (any backslash pair inside) or a token.
_PARAM_RE = re.compile(
    rf'[ \t]*;[ \t]*(?P<key>{_TCHARS})[ \t]*=[ \t]*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>{_TCHARS}))[ \t]*'
)
_TRAILING_SEMICOLON_RE = re.compile(r"[ \t]*;?[ \t]*")
_QUOTED_PAIR_RE = re.compile(r'\\(["\\])')
_DISPOSITION_HEAD_RE = re.compile(rf"[ \t]*({_TCHARS})")
_MEDIA_TYPE_HEAD_RE = re.compile(rf"[ \t]*({_TCHARS}/{_TCHARS})")
# RFC 2046 bchars: 0-69 of bchars followed by one bcharsnospace.
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# RFC 5987 ext-value: charset'[language]'value-chars
_EXT_VALUE_RE = re.compile(
    r"(?P<charset>[!#$%&+\-^_`{}~0-9A-Za-z]+)'(?P<language>[0-9A-Za-z\-]*)'"
    r"(?P<value>(?:[!#$&+\-.^_`|~0-9A-Za-z]|%[0-9A-Fa-f]{2})*)"
)
_EXT_VALUE_CHARSETS = {"utf-8": "utf-8", "iso-8859-1": "iso-8859-1"}
_HEADER_NAME_RE = re.compile(_TCHARS)
# Control characters other than HTAB (a bare CR or LF included) make a header line malformed.
_HEADER_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_PADDING_CRLF_RE = re.compile(rb"[ \t]*\r\n")
_PADDING_RE = re.compile(rb"[ \t]*")


@dataclass(frozen=True)
class FormPart:
    """One part of a ``multipart/form-data`` body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)

    def text(self) -> str:
        """The data as UTF-8 text; :class:`InvalidRequest` if it is not UTF-8."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("Form field must be UTF-8 text", details={"field": self.name}) from None


class _MalformedError(Exception):
    """A header value did not parse; the caller turns it into an ``InvalidRequest`` with context."""


def _parse_header_value(value: str, head_re: re.Pattern[str]) -> tuple[str, dict[str, str]]:
    """Split ``head; key=value; key="value"`` into the lower-cased head and lower-cased-key parameters."""
    match = head_re.match(value)
    if match is None:
        raise _MalformedError
    head = match.group(1).lower()
    params: dict[str, str] = {}
    pos = match.end()
    while pos < len(value):
        match = _PARAM_RE.match(value, pos)
        if match is None:
            if _TRAILING_SEMICOLON_RE.fullmatch(value, pos):
                break
            raise _MalformedError
        key = match["key"].lower()
        if key in params:
            raise _MalformedError
        quoted = match["quoted"]
        params[key] = _QUOTED_PAIR_RE.sub(r"\1", quoted) if quoted is not None else match["token"]
        pos = match.end()
    return head, params


def boundary_of(content_type_header: str) -> str:
    """The ``boundary`` parameter of a ``multipart/form-data`` Content-Type header."""
    try:
        media_type, params = _parse_header_value(content_type_header, _MEDIA_TYPE_HEAD_RE)
    except _MalformedError:
        raise InvalidRequest("multipart/form-data needs a boundary") from None
    if media_type != "multipart/form-data":
        raise InvalidRequest("Content-Type must be multipart/form-data")
    boundary = params.get("boundary")
    if boundary is None or not _BOUNDARY_RE.fullmatch(boundary):
        raise InvalidRequest("multipart/form-data needs a boundary")
    return boundary


def _decode_ext_value(value: str) -> str:
    """Decode an RFC 5987 ``charset'language'percent-encoded`` value."""
    match = _EXT_VALUE_RE.fullmatch(value)
    if match is None:
        raise _MalformedError
    charset = _EXT_VALUE_CHARSETS.get(match["charset"].lower())
    if charset is None:
        raise _MalformedError
    try:
        return unquote_to_bytes(match["value"]).decode(charset)
    except UnicodeDecodeError:
        raise _MalformedError from None


def _parse_headers(block: bytes, part_no: int) -> dict[str, str]:
    """The header lines of one part as a lower-cased-name -> value mapping."""
    details: dict[str, Any] = {"part": part_no}
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("Multipart part headers must be UTF-8", details=details) from None
    headers: dict[str, str] = {}
    if not text:
        return headers
    for line in text.split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME_RE.fullmatch(name) or _HEADER_CONTROL_RE.search(line):
            raise InvalidRequest("Malformed header line in multipart part", details=details)
        key = name.lower()
        if key in headers:
            if key in _SINGLE_HEADERS:
                raise InvalidRequest(f"Multipart part has more than one {name} header", details=details)
            continue
        headers[key] = value.strip(" \t")
    return headers


def _build_part(headers: dict[str, str], data: bytes, part_no: int) -> FormPart:
    details: dict[str, Any] = {"part": part_no}
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise InvalidRequest("Multipart part needs a Content-Disposition: form-data header", details=details)
    try:
        disposition_type, params = _parse_header_value(disposition, _DISPOSITION_HEAD_RE)
    except _MalformedError:
        raise InvalidRequest("Malformed Content-Disposition header in multipart part", details=details) from None
    if disposition_type != "form-data":
        raise InvalidRequest("Multipart part needs a Content-Disposition: form-data header", details=details)
    name = params.get("name")
    if name is None:
        raise InvalidRequest("Multipart part needs a name in its Content-Disposition header", details=details)
    details["field"] = name

    filename = params.get("filename")
    ext_filename = params.get("filename*")
    if ext_filename is not None:
        try:
            filename = _decode_ext_value(ext_filename)
        except _MalformedError:
            raise InvalidRequest("Malformed filename* parameter in multipart part", details=details) from None

    content_type: str | None = None
    raw_content_type = headers.get("content-type")
    if raw_content_type is not None:
        match = _MEDIA_TYPE_HEAD_RE.match(raw_content_type)
        rest = raw_content_type[match.end() :].lstrip(" \t") if match else ""
        if match is None or (rest and not rest.startswith(";")):
            raise InvalidRequest("Malformed Content-Type header in multipart part", details=details)
        content_type = match.group(1).lower()

    encoding = headers.get("content-transfer-encoding")
    if encoding is not None and encoding.lower() not in _ALLOWED_TRANSFER_ENCODINGS:
        details["content_transfer_encoding"] = encoding[:40]
        raise InvalidRequest(
            "Content-Transfer-Encoding is not supported in multipart/form-data; send the raw bytes",
            details=details,
        )
    return FormPart(name=name, filename=filename, content_type=content_type, data=data)


def parse_form_data(
    body: bytes,
    content_type_header: str,
    *,
    max_parts: int = 16,
    max_header_bytes: int = 8192,
) -> list[FormPart]:
    """Parse a ``multipart/form-data`` body into its parts, in order.

    ``content_type_header`` is the request's Content-Type (it carries the boundary). At most ``max_parts``
    parts and ``max_header_bytes`` bytes of headers per part are accepted.
    """
    dash_boundary = b"--" + boundary_of(content_type_header).encode("ascii")
    delimiter = _CRLF + dash_boundary

    if body.startswith(dash_boundary):
        pos = len(dash_boundary)
    else:
        found = body.find(delimiter)
        if found < 0:
            raise InvalidRequest("Multipart body does not contain the opening boundary delimiter")
        pos = found + len(delimiter)

    parts: list[FormPart] = []
    while True:
        # ``pos`` is just past a ``--boundary``: either ``--`` (close) or padding + CRLF (a part follows).
        if body.startswith(b"--", pos):
            return parts
        padding = _PADDING_CRLF_RE.match(body, pos)
        if padding is None:
            if _PADDING_RE.fullmatch(body, pos):
                raise InvalidRequest("Multipart body is truncated: the closing boundary delimiter is missing")
            raise InvalidRequest(
                "Malformed multipart boundary delimiter line (lines must end in CRLF)",
                details={"part": len(parts) + 1},
            )
        part_no = len(parts) + 1
        if part_no > max_parts:
            raise InvalidRequest(f"Too many multipart parts: at most {max_parts}", details={"max_parts": max_parts})
        part, pos = _read_part(body, padding.end(), delimiter, part_no, max_header_bytes)
        parts.append(part)


def _read_part(body: bytes, pos: int, delimiter: bytes, part_no: int, max_header_bytes: int) -> tuple[FormPart, int]:
    """The part whose headers start at ``pos``, and the position just past the delimiter that ends it."""
    # The header block ends at the first CRLFCRLF; searching from pos - 2 (the delimiter line's CRLF)
    # finds an empty block too. The limit bounds the search, not just the result.
    header_end = body.find(b"\r\n\r\n", pos - 2, pos + max_header_bytes + 4)
    if header_end < 0:
        if len(body) - pos > max_header_bytes:
            raise InvalidRequest(
                f"Multipart part headers are longer than {max_header_bytes} bytes", details={"part": part_no}
            )
        raise InvalidRequest("Multipart body is truncated: part headers are not terminated", details={"part": part_no})
    if body.find(delimiter, pos - 2, header_end) >= 0:
        raise InvalidRequest("Multipart part headers are not terminated", details={"part": part_no})
    headers = _parse_headers(body[pos:header_end], part_no)

    # Data runs from after the blank line to the CRLF of the next delimiter; the blank line's CRLF is
    # not data, so data that itself starts with ``--boundary`` stays data.
    data_start = header_end + 4
    next_delimiter = body.find(delimiter, data_start)
    if next_delimiter < 0:
        raise InvalidRequest("Multipart body is truncated: the closing boundary delimiter is missing")
    return _build_part(headers, body[data_start:next_delimiter], part_no), next_delimiter + len(delimiter)
