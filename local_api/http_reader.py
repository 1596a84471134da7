"""Reading a request as API Gateway would take it: request line and headers within 10 KB however many
headers that is (http.server allows 64 KB lines and refuses more than 100 headers), and a body delimited
exactly (``Content-Length`` a number, chunked bodies well formed, never both). What is wrong is raised
(``BadRequest``) or answered through ``send_error``, which the server turns into the envelope.
"""

from __future__ import annotations

import email.parser
import io
import re
from http.server import BaseHTTPRequestHandler

#: API Gateway's limit on the request line and headers (the contract's Transport section).
MAX_HEADER_BYTES = 10 * 1024
MAX_LAMBDA_PAYLOAD_BYTES = 6_291_456
#: An oversized body is read and dropped up to this much before answering 413 (then the connection closes).
MAX_DRAINED_BYTES = 64 * 1024 * 1024
#: Oversized headers are read and dropped up to this much before answering 431 (then the connection closes).
MAX_DRAINED_HEADER_BYTES = 1024 * 1024


class BadRequest(Exception):
    """The request cannot be read as HTTP/1.1 (answered 400 ``INVALID_REQUEST``, then the connection closes)."""


class RequestReader(BaseHTTPRequestHandler):
    """The reading half of the local API's handler; the server's handler answers (``_dispatch``)."""

    _origin: str | None = None

    def _dispatch(self) -> None:
        raise NotImplementedError

    def handle_one_request(self) -> None:
        """One request, read within API Gateway's limits (http.server's own allow 64 KB lines and refuse
        more than 100 headers, answering in HTML)."""
        self._origin = None  # for the CORS headers of an answer made here
        try:
            self.raw_requestline = self.rfile.readline(MAX_HEADER_BYTES + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > MAX_HEADER_BYTES:
                self.requestline, self.request_version, self.command = "", "", ""
                self._skip_header_block(self.raw_requestline)
                self.send_error(431)
                return
            if self.parse_request():
                self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True

    def parse_request(self) -> bool:
        """The base class parses the request line; the header block is read here, counted against 10 KB."""
        real_rfile = self.rfile
        self.rfile = io.BytesIO(b"\r\n")  # an empty header block for the base class
        try:
            if not super().parse_request():
                return False
        finally:
            self.rfile = real_rfile
        lines = self._read_header_lines()
        if lines is None:
            self.send_error(431)
            return False
        self.headers = email.parser.Parser(_class=self.MessageClass).parsestr(b"".join(lines).decode("iso-8859-1"))
        self._origin = self.headers.get("Origin")
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if self.headers.get("Expect", "").lower() == "100-continue" and self.request_version >= "HTTP/1.1":
            return bool(self.handle_expect_100())
        return True

    def _read_header_lines(self, counted: int | None = None) -> list[bytes] | None:
        """Header (or trailer) lines; None when they and the ``counted`` bytes before them (the request
        line by default) exceed 10 KB: the rest of the block is then dropped."""
        total = len(self.raw_requestline) if counted is None else counted
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline(MAX_HEADER_BYTES + 1)
            total += len(line)
            if total > MAX_HEADER_BYTES:
                self._skip_header_block(line)
                return None
            if line in (b"\r\n", b"\n", b""):
                return lines
            self._note_origin(line)
            lines.append(line)

    def _skip_header_block(self, last: bytes) -> None:
        """Read on to the end of the header block (bounded), so the client reads our 431 instead of a reset."""
        self.close_connection = True
        seen = len(last)
        while last not in (b"\r\n", b"\n", b"") and seen < MAX_DRAINED_HEADER_BYTES:
            last = self.rfile.readline(MAX_HEADER_BYTES + 1)
            seen += len(last)
            self._note_origin(last)

    def _note_origin(self, line: bytes) -> None:
        """Remember an ``Origin`` header seen in a block that will not be parsed (it is too large)."""
        if line[:7].lower() == b"origin:" and self._origin is None:
            self._origin = line[7:].decode("iso-8859-1").strip()

    def _declared_length(self) -> int:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        if not raw.strip().isdigit():  # "abc", "-1", "1,2": a request no proxy would pass on
            raise BadRequest("The Content-Length header is not a length")
        return int(raw)

    def _read_body(self) -> bytes | None:
        """The body, or None when it is over the limit (the connection is then closed)."""
        if self.headers.get("Transfer-Encoding"):
            if self.headers.get("Content-Length") is not None:  # RFC 9112, 6.3: a smuggling attempt
                raise BadRequest("A request may not carry both Transfer-Encoding and Content-Length")
            if self.headers["Transfer-Encoding"].strip().lower() != "chunked":
                raise BadRequest("Only the chunked transfer coding is accepted")
            return self._read_chunked()
        length = self._declared_length()
        if length > MAX_LAMBDA_PAYLOAD_BYTES:
            self._drain(length)
            return None
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            raise BadRequest("The body is shorter than its Content-Length")
        return body

    def _drain(self, length: int) -> None:
        """Read and drop an oversized body (up to a bound) so the client sees our 413, not a reset."""
        self.close_connection = True
        left = min(length, MAX_DRAINED_BYTES)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)

    def _read_chunked(self) -> bytes | None:
        """A chunked body (RFC 9112, 7.1); a malformed one is ``BadRequest``, an oversized one None."""
        chunks: list[bytes] = []
        total = 0
        while True:
            size = _chunk_size(self.rfile.readline(1024))
            if size == 0:
                if self._read_header_lines(counted=0) is None:
                    raise BadRequest("The chunked body's trailer is too large")
                return b"".join(chunks)
            total += size
            if total > MAX_LAMBDA_PAYLOAD_BYTES:
                self._drain(MAX_DRAINED_BYTES)
                return None
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("A chunk of the chunked body is shorter than its size")
            chunks.append(chunk)


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")  # up to 4 GB a chunk: more than any body we take


def _chunk_size(line: bytes) -> int:
    """A chunk-size line (hex digits, optional ``;extensions``) as a number, else ``BadRequest``."""
    digits = line.split(b";", 1)[0].strip()
    if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(digits):
        raise BadRequest("The chunked body has an invalid chunk size")
    return int(digits, 16)
