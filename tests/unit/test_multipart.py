"""api.multipart: strict multipart/form-data parsing of bodies as curl, browsers and urllib3 send them."""

from __future__ import annotations

import http.server
import random
import shutil
import subprocess
import threading
import tracemalloc
from pathlib import Path
from typing import Any, ClassVar

import pytest
from urllib3.filepost import encode_multipart_formdata

from api.multipart import FormPart, boundary_of, parse_form_data
from utils.errors import InvalidRequest

CURL = "/usr/bin/curl"
NASTY = b"\x89PNG\r\n\x1a\n\x00\x00\r\n--\r\n\r\n--x--\x00\r\r\n\n-- \xff\xfe\r\n"


def _ct(boundary: str) -> str:
    return f"multipart/form-data; boundary={boundary}"


def _body(boundary: str, *parts: bytes, preamble: bytes = b"", epilogue: bytes = b"\r\n") -> bytes:
    """Parts (each ``headers CRLF CRLF data``) joined with CRLF delimiters, RFC 2046 style."""
    delim = b"--" + boundary.encode()
    out = preamble + (b"\r\n" if preamble else b"") + delim
    for part in parts:
        out += b"\r\n" + part + b"\r\n" + delim
    return out + b"--" + epilogue


def _field(name: str, value: bytes, extra: bytes = b"") -> bytes:
    return f'Content-Disposition: form-data; name="{name}"'.encode() + extra + b"\r\n\r\n" + value


def _error(body: bytes, content_type: str, **kwargs: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_form_data(body, content_type, **kwargs)
    return caught.value


# --- real client shapes ------------------------------------------------------------------------------


def test_urllib3_body_with_binary_file_round_trips() -> None:
    boundary = "b0a4e1f2c3d4e5f60718293a4b5c6d7e"
    payload = NASTY + b"x--" + boundary.encode() + b" is not a delimiter without CRLF\r\n" + NASTY + b"\r\n"
    body, content_type = encode_multipart_formdata(
        [
            ("file", ("plan.pdf", payload, "application/pdf")),
            ("format", "pdf"),
            ("note", "h\u00e9llo\r\nworld"),
        ],
        boundary=boundary,
    )
    parts = parse_form_data(body, content_type)
    assert parts == [
        FormPart(name="file", filename="plan.pdf", content_type="application/pdf", data=payload),
        FormPart(name="format", filename=None, content_type=None, data=b"pdf"),
        FormPart(name="note", filename=None, content_type=None, data="h\u00e9llo\r\nworld".encode()),
    ]
    assert parts[1].text() == "pdf"
    assert parts[2].text() == "h\u00e9llo\r\nworld"


def test_urllib3_random_boundary_and_file_tuple_without_type() -> None:
    body, content_type = encode_multipart_formdata({"file": ("scan.jpg", NASTY), "format": "jpg"})
    file_part, format_part = parse_form_data(body, content_type)
    assert file_part.data == NASTY
    assert file_part.filename == "scan.jpg"
    assert file_part.content_type == "image/jpeg"  # urllib3 guesses it from the extension
    assert format_part.text() == "jpg"


def test_curl_7_88_shaped_body() -> None:
    boundary = "------------------------" + "fee3bdb390537c10"
    content_type = f"multipart/form-data; boundary={boundary}"
    body = (
        b"--" + boundary.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="plan.png"\r\n'
        b"Content-Type: image/png\r\n"
        b"\r\n" + NASTY + b"\r\n"
        b"--" + boundary.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="format"\r\n'
        b"\r\n"
        b"png\r\n"
        b"--" + boundary.encode() + b"--\r\n"
    )
    assert parse_form_data(body, content_type) == [
        FormPart(name="file", filename="plan.png", content_type="image/png", data=NASTY),
        FormPart(name="format", filename=None, content_type=None, data=b"png"),
    ]


def test_chromium_shaped_body_keeps_browser_escapes_in_filename() -> None:
    # A file picked as `my "plan"<LF>v2 é.png`: browsers percent-escape only ", CR and LF, and send the
    # rest of the name as raw UTF-8. The escape is not reversible, so the parser returns it as sent.
    boundary = "----WebKitFormBoundaryx7Kq2mRfT9bLpZ4a"
    body = (
        b"--" + boundary.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="my %22plan%22%0Av2 \xc3\xa9.png"\r\n'
        b"Content-Type: image/png\r\n"
        b"\r\n" + NASTY + b"\r\n"
        b"--" + boundary.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="format"\r\n'
        b"\r\n"
        b"png\r\n"
        b"--" + boundary.encode() + b"--\r\n"
    )
    file_part, format_part = parse_form_data(body, f"multipart/form-data; boundary={boundary}")
    assert file_part.filename == "my %22plan%22%0Av2 \u00e9.png"
    assert file_part.content_type == "image/png"
    assert file_part.data == NASTY
    assert format_part == FormPart(name="format", filename=None, content_type=None, data=b"png")


def test_firefox_shaped_body() -> None:
    boundary = "---------------------------" + "28947758029299"
    body = _body(
        boundary,
        b'Content-Disposition: form-data; name="file"; filename="Plan.PDF"\r\n'
        b"Content-Type: application/pdf\r\n\r\n%PDF-1.7\r\n%\xe2\xe3\xcf\xd3\r\n",
    )
    (part,) = parse_form_data(body, _ct(boundary))
    assert part.data == b"%PDF-1.7\r\n%\xe2\xe3\xcf\xd3\r\n"
    assert part.filename == "Plan.PDF"


def test_browser_file_input_with_no_file_selected() -> None:
    body = _body("b", _field("file", b"", b'; filename=""\r\nContent-Type: application/octet-stream'))
    assert parse_form_data(body, _ct("b")) == [
        FormPart(name="file", filename="", content_type="application/octet-stream", data=b"")
    ]


def test_empty_form() -> None:
    assert (
        parse_form_data(
            b"------WebKitFormBoundaryAAAAAAAAAAAAAAAA--\r\n", _ct("----WebKitFormBoundaryAAAAAAAAAAAAAAAA")
        )
        == []
    )


# --- filenames and parameters -----------------------------------------------------------------------


def test_filename_star_wins_over_filename() -> None:
    body = _body(
        "b",
        b'Content-Disposition: form-data; name="file"; filename="plan.png"; filename*=UTF-8\'\''
        b"%E5%B9%B3%E9%9D%A2%E5%9B%BE%20v2.png\r\n\r\nX",
    )
    (part,) = parse_form_data(body, _ct("b"))
    assert part.filename == "\u5e73\u9762\u56fe v2.png"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("utf-8'en'%C3%A9t%C3%A9.pdf", "\u00e9t\u00e9.pdf"),
        ("iso-8859-1''%E9t%E9.pdf", "\u00e9t\u00e9.pdf"),
        ("UTF-8''plain.pdf", "plain.pdf"),
        ("\"UTF-8''quoted%20by%20mistake.pdf\"", "quoted by mistake.pdf"),
    ],
)
def test_filename_star_alone(value: str, expected: str) -> None:
    body = _body("b", f'Content-Disposition: form-data; name="f"; filename*={value}\r\n\r\nX'.encode())
    assert parse_form_data(body, _ct("b"))[0].filename == expected


@pytest.mark.parametrize(
    "value",
    [
        "UTF-8''%E9t%E9.pdf",  # not UTF-8
        "UTF-8''bad%2",  # truncated escape
        "UTF-8''bad%zz",
        "UTF-8''space here",
        "koi8-r''x.pdf",  # only UTF-8 and ISO-8859-1 are required by RFC 5987
        "x.pdf",  # no charset''
    ],
)
def test_malformed_filename_star(value: str) -> None:
    body = _body("b", f'Content-Disposition: form-data; name="f"; filename*="{value}"\r\n\r\nX'.encode())
    error = _error(body, _ct("b"))
    assert "filename*" in error.message
    assert error.details == {"part": 1, "field": "f"}


def test_header_and_parameter_names_are_case_insensitive_and_token_values_work() -> None:
    body = _body(
        "b",
        b"content-disposition: FORM-DATA; NAME=format; FileName=plan.png\r\ncontent-TYPE: Image/PNG; x=1\r\n\r\npng",
    )
    assert parse_form_data(body, _ct("b")) == [
        FormPart(name="format", filename="plan.png", content_type="image/png", data=b"png")
    ]


def test_quoted_string_escapes() -> None:
    body = _body(
        "b",
        b'Content-Disposition: form-data; name="a\\"b\\\\c"; filename="C:\\Users\\me\\plan.png"\r\n\r\nX',
    )
    (part,) = parse_form_data(body, _ct("b"))
    assert part.name == 'a"b\\c'
    assert part.filename == "C:\\Users\\me\\plan.png"  # backslashes no client escapes are kept


def test_semicolon_inside_quoted_value_and_whitespace_around_parameters() -> None:
    body = _body("b", b'Content-Disposition:form-data ;name = "a;b" ;  filename="x; y.png";\r\n\r\nX')
    (part,) = parse_form_data(body, _ct("b"))
    assert (part.name, part.filename) == ("a;b", "x; y.png")


def test_part_without_content_type_and_empty_field() -> None:
    body = _body("b", _field("empty", b""), _field("file", b"data", b'; filename="f.bin"'))
    assert parse_form_data(body, _ct("b")) == [
        FormPart(name="empty", filename=None, content_type=None, data=b""),
        FormPart(name="file", filename="f.bin", content_type=None, data=b"data"),
    ]


def test_data_ending_in_crlf_and_starting_with_crlf_is_kept() -> None:
    body = _body("b", _field("f", b"\r\n\r\nx\r\n\r\n"))
    assert parse_form_data(body, _ct("b"))[0].data == b"\r\n\r\nx\r\n\r\n"


def test_other_headers_are_ignored_and_allowed_transfer_encodings_accepted() -> None:
    body = _body(
        "b",
        _field("a", b"1", b"\r\nContent-Transfer-Encoding: BINARY\r\nX-Extra: 1\r\nX-Extra: 2\r\nContent-Length: 1"),
        _field("b", b"2", b"\r\nContent-Transfer-Encoding: 8bit"),
        _field("c", b"3", b"\r\nContent-Transfer-Encoding: 7bit"),
    )
    assert [p.data for p in parse_form_data(body, _ct("b"))] == [b"1", b"2", b"3"]


def test_text_rejects_non_utf8() -> None:
    part = FormPart(name="format", filename=None, content_type=None, data=b"\xff")
    with pytest.raises(InvalidRequest) as caught:
        part.text()
    assert caught.value.details == {"field": "format"}


def test_repr_leaves_out_the_data() -> None:
    part = FormPart(name="file", filename="a.png", content_type="image/png", data=b"SECRET" * 1000)
    assert "SECRET" not in repr(part)
    assert "a.png" in repr(part)


# --- delimiters, preamble, epilogue, padding --------------------------------------------------------


def test_preamble_and_epilogue_are_ignored() -> None:
    body = _body(
        "simple boundary",
        _field("a", b"1"),
        preamble=b"This is the preamble. --simple boundary inline\r\nIt is to be ignored\r\n",
        epilogue=b"\r\nThis is the epilogue.\r\n--simple boundary\r\ngarbage",
    )
    assert parse_form_data(body, 'multipart/form-data; boundary="simple boundary"') == [
        FormPart(name="a", filename=None, content_type=None, data=b"1")
    ]


def test_transport_padding_after_delimiters() -> None:
    body = (
        b'--b \t \r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b\t\r\n'
        + _field("c", b"2")
        + b"\r\n--b-- \r\n"
    )
    assert [p.data for p in parse_form_data(body, _ct("b"))] == [b"1", b"2"]


def test_closing_delimiter_at_end_of_body_without_crlf() -> None:
    body = _body("b", _field("a", b"1"), epilogue=b"")
    assert body.endswith(b"--b--")
    assert parse_form_data(body, _ct("b"))[0].data == b"1"


def test_boundary_text_inside_data_without_crlf_is_data() -> None:
    # Even at the very start of the data: the blank line's CRLF ends the headers, it is not data.
    data = b"--b--b--\r\n-b\r--b\n--b"
    assert parse_form_data(_body("b", _field("a", data)), _ct("b"))[0].data == data


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/form-data; boundary="a b:c=d?e"',
        'Multipart/Form-Data; charset=utf-8; BOUNDARY="a b:c=d?e"',
        'multipart/form-data;boundary="a b:c=d?e"; charset="utf-8"',
    ],
)
def test_quoted_boundary(content_type: str) -> None:
    body = _body("a b:c=d?e", _field("x", b"1"))
    assert boundary_of(content_type) == "a b:c=d?e"
    assert parse_form_data(body, content_type)[0].data == b"1"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("multipart/form-data; boundary=abc", "abc"),
        ("multipart/form-data;boundary=abc", "abc"),
        ("  multipart/form-data ; Boundary=abc ; ", "abc"),
        ('multipart/form-data; boundary="abc"', "abc"),
        ("multipart/form-data; boundary=" + "x" * 70, "x" * 70),
        (
            "multipart/form-data; boundary=----WebKitFormBoundaryx7Kq2mRfT9bLpZ4a",
            "----WebKitFormBoundaryx7Kq2mRfT9bLpZ4a",
        ),
        ('multipart/form-data; boundary="\'()+_,-./:=?"', "'()+_,-./:=?"),
    ],
)
def test_boundary_of(header: str, expected: str) -> None:
    assert boundary_of(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "multipart/form-data",
        "multipart/form-data;",
        "multipart/form-data; charset=utf-8",
        "multipart/form-data; boundary=",
        'multipart/form-data; boundary=""',
        "multipart/form-data; boundary=" + "x" * 71,
        'multipart/form-data; boundary="ends in space "',
        'multipart/form-data; boundary="semi;colon"',
        "multipart/form-data; boundary=caf\u00e9",
        'multipart/form-data; boundary="unterminated',
        "multipart/form-data; boundary=a; boundary=b",
        "multipart/form-data boundary=abc",
        "",
    ],
)
def test_boundary_of_missing_or_invalid(header: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^multipart/form-data needs a boundary$"):
        boundary_of(header)


@pytest.mark.parametrize("header", ["application/json; boundary=abc", "multipart/mixed; boundary=abc", "text/plain"])
def test_boundary_of_other_media_types(header: str) -> None:
    with pytest.raises(InvalidRequest, match="must be multipart/form-data"):
        boundary_of(header)


# --- errors -----------------------------------------------------------------------------------------


def test_lf_only_line_endings_are_rejected() -> None:
    crlf = _body("b", _field("a", b"1"), _field("f", b"x", b'; filename="f.png"\r\nContent-Type: image/png'))
    lf_only = crlf.replace(b"\r\n", b"\n")
    assert parse_form_data(crlf, _ct("b"))  # the same body with CRLF parses
    error = _error(lf_only, _ct("b"))
    assert "CRLF" in error.message


def test_lf_only_header_lines_are_rejected() -> None:
    body = _body("b", b'Content-Disposition: form-data; name="a"\nContent-Type: text/plain\r\n\r\n1')
    assert "Malformed header line" in _error(body, _ct("b")).message


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"no delimiter at all",
        b'--other\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--other--',
        b"preamble without crlf--b--",
    ],
)
def test_missing_opening_delimiter(body: bytes) -> None:
    assert "opening boundary" in _error(body, _ct("b")).message


@pytest.mark.parametrize(
    "body",
    [
        b"--b",
        b"--b\r\n",
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1',
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b',
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b  ',
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b\r\n',
        b'--b\r\nContent-Disposition: form-data; name="a"',
    ],
)
def test_missing_closing_delimiter(body: bytes) -> None:
    assert "truncated" in _error(body, _ct("b")).message


def test_every_truncation_of_a_valid_body_is_rejected() -> None:
    body, content_type = encode_multipart_formdata(
        [("file", ("p.png", b"\x89PNG\r\n--\r\n\x00", "image/png")), ("format", "png")], boundary="bnd"
    )
    closing = body.rindex(b"--bnd--") + len(b"--bnd--")
    for cut in range(closing):
        with pytest.raises(InvalidRequest):
            parse_form_data(body[:cut], content_type)
    assert len(parse_form_data(body[:closing], content_type)) == 2


@pytest.mark.parametrize(
    "delimiter_line",
    [b"--bX\r\n", b"--b-\r\n", b"--b x\r\n", b"--b\n"],
)
def test_malformed_delimiter_line(delimiter_line: bytes) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
        + delimiter_line
        + _field("c", b"2")
        + b"\r\n--b--"
    )
    error = _error(body, _ct("b"))
    assert "delimiter line" in error.message
    assert error.details == {"part": 2}


def test_part_without_content_disposition() -> None:
    body = _body("b", _field("a", b"1"), b"Content-Type: text/plain\r\n\r\n2")
    error = _error(body, _ct("b"))
    assert "Content-Disposition" in error.message
    assert error.details == {"part": 2}


def test_part_with_no_headers_at_all() -> None:
    assert "Content-Disposition" in _error(_body("b", b"\r\ndata"), _ct("b")).message


@pytest.mark.parametrize(
    "disposition",
    [
        b"Content-Disposition: form-data",
        b'Content-Disposition: form-data; filename="a.png"',
        b"Content-Disposition: form-data;",
    ],
)
def test_part_without_name(disposition: bytes) -> None:
    error = _error(_body("b", disposition + b"\r\n\r\n1"), _ct("b"))
    assert "needs a name" in error.message


@pytest.mark.parametrize(
    "disposition",
    [
        b'Content-Disposition: attachment; name="a"',
        b'Content-Disposition: inline; name="a"',
        b'Content-Disposition: form-datax; name="a"',
    ],
)
def test_disposition_must_be_form_data(disposition: bytes) -> None:
    assert "form-data" in _error(_body("b", disposition + b"\r\n\r\n1"), _ct("b")).message


@pytest.mark.parametrize(
    "disposition",
    [
        b'Content-Disposition: form-data; name="unterminated',
        b'Content-Disposition: form-data name="a"',
        b'Content-Disposition: form-data; name="a"; name="b"',
        b"Content-Disposition: form-data; name=has space",
        b"Content-Disposition: form-data; name=",
        b'Content-Disposition: form-data; name="a" junk',
        b'Content-Disposition: ; name="a"',
        b"Content-Disposition: ",
    ],
)
def test_malformed_content_disposition(disposition: bytes) -> None:
    assert "Content-Disposition" in _error(_body("b", disposition + b"\r\n\r\n1"), _ct("b")).message


@pytest.mark.parametrize("content_type", [b"Content-Type: image", b"Content-Type: image/png junk", b"Content-Type: "])
def test_malformed_part_content_type(content_type: bytes) -> None:
    error = _error(_body("b", _field("a", b"1", b"\r\n" + content_type)), _ct("b"))
    assert "Content-Type" in error.message
    assert error.details == {"part": 1, "field": "a"}


@pytest.mark.parametrize(
    "line",
    [
        b"No colon here",
        b"Content-Type : text/plain",  # whitespace before the colon
        b" folded: continuation",  # obs-fold
        b": no name",
        b"X-Ctl: a\x01b",
        b"X-Bare-CR: a\rb",
    ],
)
def test_malformed_header_line(line: bytes) -> None:
    body = _body("b", b'Content-Disposition: form-data; name="a"\r\n' + line + b"\r\n\r\n1")
    error = _error(body, _ct("b"))
    assert error.message == "Malformed header line in multipart part"
    assert error.details == {"part": 1}


@pytest.mark.parametrize("header", [b"Content-Disposition", b"Content-Type", b"Content-Transfer-Encoding"])
def test_duplicate_headers_that_matter_are_rejected(header: bytes) -> None:
    line = header + b": " + (b'form-data; name="a"' if header == b"Content-Disposition" else b"binary")
    body = _body("b", b'Content-Disposition: form-data; name="a"\r\nContent-Type: text/plain\r\n' + line + b"\r\n\r\n1")
    if header == b"Content-Transfer-Encoding":
        body = body.replace(b"\r\n\r\n1", b"\r\nContent-Transfer-Encoding: binary\r\n\r\n1")
    assert "more than one" in _error(body, _ct("b")).message


@pytest.mark.parametrize("encoding", [b"base64", b"quoted-printable", b"x-gzip", b""])
def test_content_transfer_encoding_is_rejected(encoding: bytes) -> None:
    body = _body("b", _field("file", b"aGVsbG8=", b'; filename="a.png"\r\nContent-Transfer-Encoding: ' + encoding))
    error = _error(body, _ct("b"))
    assert "Content-Transfer-Encoding" in error.message
    assert error.details["content_transfer_encoding"] == encoding.decode()


def test_non_utf8_header_bytes() -> None:
    body = _body("b", b'Content-Disposition: form-data; name="f"; filename="caf\xe9.png"\r\n\r\nX')
    error = _error(body, _ct("b"))
    assert "UTF-8" in error.message
    assert error.details == {"part": 1}


def test_max_parts() -> None:
    body = _body("b", *(_field(f"f{i}", b"x") for i in range(3)))
    assert len(parse_form_data(body, _ct("b"), max_parts=3)) == 3
    error = _error(body, _ct("b"), max_parts=2)
    assert "Too many" in error.message
    assert error.details == {"max_parts": 2}
    default = _body("b", *(_field(f"f{i}", b"x") for i in range(17)))
    assert "at most 16" in _error(default, _ct("b")).message


def test_max_header_bytes() -> None:
    disposition = b'Content-Disposition: form-data; name="a"'
    padding = b"\r\nX-Pad: " + b"p" * 100
    block = disposition + padding
    exact = _body("b", block + b"\r\n\r\n1")
    assert parse_form_data(exact, _ct("b"), max_header_bytes=len(block))[0].data == b"1"
    error = _error(exact, _ct("b"), max_header_bytes=len(block) - 1)
    assert "longer than" in error.message
    assert error.details == {"part": 1}
    huge = _body("b", disposition + b"\r\nX-Pad: " + b"p" * 10_000 + b"\r\n\r\n1")
    assert "longer than 8192" in _error(huge, _ct("b")).message


def test_headers_running_into_the_next_delimiter() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="a"\r\n'
        b'--b\r\nContent-Disposition: form-data; name="c"\r\n\r\n2\r\n--b--'
    )
    assert "not terminated" in _error(body, _ct("b")).message


def test_errors_from_the_content_type_header() -> None:
    body = _body("b", _field("a", b"1"))
    with pytest.raises(InvalidRequest, match="needs a boundary"):
        parse_form_data(body, "multipart/form-data")
    with pytest.raises(InvalidRequest, match="must be multipart/form-data"):
        parse_form_data(body, "application/octet-stream")


def test_random_mutations_only_ever_raise_invalid_request() -> None:
    rng = random.Random(7578)
    body, content_type = encode_multipart_formdata(
        [("file", ("p.png", bytes(range(256)), "image/png")), ("format", "png")], boundary="bnd"
    )
    alphabet = b'\r\n-"\\;=: \t\xff\x00bnd'
    for _ in range(2000):
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            index = rng.randrange(len(mutated))
            action = rng.randrange(3)
            if action == 0:
                mutated[index] = rng.choice(alphabet)
            elif action == 1:
                del mutated[index]
            else:
                mutated.insert(index, rng.choice(alphabet))
        try:
            parts = parse_form_data(bytes(mutated), content_type)
        except InvalidRequest:
            continue
        assert all(isinstance(part, FormPart) for part in parts)


# --- size and round trips ---------------------------------------------------------------------------


def test_six_megabyte_file_part_is_parsed_with_a_single_copy() -> None:
    rng = random.Random(6)
    payload = rng.randbytes(6 * 1024 * 1024) + b"\r\n--tail\r\n"
    body, content_type = encode_multipart_formdata(
        [("file", ("big.pdf", payload, "application/pdf")), ("format", "pdf")]
    )
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        parts = parse_form_data(body, content_type)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert parts[0].data == payload
    assert parts[1].data == b"pdf"
    assert peak - baseline < len(payload) * 1.5  # the slice of the file, and nothing else of its size


def test_random_binary_payloads_round_trip_through_urllib3() -> None:
    rng = random.Random(20240611)
    for _ in range(300):
        boundary = "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(1, 32)))
        tricky = [b"\r\n", b"\r\n--", b"--" + boundary.encode(), b"\r\n-" + boundary.encode(), b"\x00", b"\r\n\r\n"]
        pieces = [
            rng.randbytes(rng.randint(0, 64)) if rng.random() < 0.6 else rng.choice(tricky)
            for _ in range(rng.randint(0, 12))
        ]
        payload = b"".join(pieces)
        if b"\r\n--" + boundary.encode() in payload:
            continue  # the client would have picked another boundary
        fields: list[tuple[str, Any]] = [("file", (f"f{rng.randrange(1000)}.bin", payload, "application/octet-stream"))]
        for index in range(rng.randint(0, 3)):
            fields.append((f"field{index}", "".join(chr(rng.randint(32, 0x24F)) for _ in range(rng.randint(0, 8)))))
        rng.shuffle(fields)
        body, content_type = encode_multipart_formdata(fields, boundary=boundary)
        parts = parse_form_data(body, content_type)
        assert [p.name for p in parts] == [name for name, _ in fields]
        for part, (_, value) in zip(parts, fields, strict=True):
            if isinstance(value, tuple):
                assert (part.filename, part.content_type, part.data) == (value[0], value[2], value[1])
            else:
                assert (part.filename, part.text()) == (None, value)


# --- curl, for real ---------------------------------------------------------------------------------


class _CaptureHandler(http.server.BaseHTTPRequestHandler):
    captured: ClassVar[dict[str, Any]] = {}

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).captured["body"] = self.rfile.read(length)
        type(self).captured["content_type"] = self.headers.get("Content-Type")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        """Keep the test output quiet."""


def test_curl_form_upload_is_parsed_exactly(tmp_path: Path) -> None:
    assert shutil.which(CURL) is not None
    payload = random.Random(88).randbytes(100_000) + NASTY
    plan = tmp_path / "plan.png"
    plan.write_bytes(payload)
    _CaptureHandler.captured = {}
    server = http.server.HTTPServer(("127.0.0.1", 0), _CaptureHandler)
    server.timeout = 15
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/upload"
        subprocess.run(
            [
                CURL,
                "-q",
                "-sS",
                "--noproxy",
                "*",
                "--max-time",
                "10",
                "-H",
                "Expect:",
                "-F",
                f"file=@{plan}",
                "-F",
                "format=png",
                "--form-string",
                'note=a "quoted"; b\\c',
                url,
            ],
            check=True,
            timeout=20,
            capture_output=True,
        )
        thread.join(timeout=15)
    finally:
        server.server_close()
    assert not thread.is_alive()
    content_type = _CaptureHandler.captured["content_type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    parts = parse_form_data(_CaptureHandler.captured["body"], content_type)
    assert parts == [
        FormPart(name="file", filename="plan.png", content_type="image/png", data=payload),
        FormPart(name="format", filename=None, content_type=None, data=b"png"),
        FormPart(name="note", filename=None, content_type=None, data=b'a "quoted"; b\\c'),
    ]
