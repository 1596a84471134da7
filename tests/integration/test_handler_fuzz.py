"""Hostile input straight into ``lambda_handler``: random API Gateway HTTP API (payload 2.0) events.

The property, for every event: the handler returns (never raises), never answers 500 (nor any 5xx: the
emulated AWS behind it is healthy), and always answers in the contract's envelope: JSON with the success
or error shape, ``meta.request_id`` equal to ``X-Request-ID`` (``req_{YYYYMMDDTHHMMSS}_{6+ [a-z0-9]}``), an
error code from the contract's table with its HTTP status, ``X-Correlation-ID``, CORS headers, and no
traceback or resource name that the request did not itself contain.

Events are built the way API Gateway builds them (``local_api.server.build_event`` is the model: lower-cased
headers joined by commas, ``queryStringParameters`` joined by commas, ``rawPath``/``rawQueryString``, binary
bodies base64-encoded), with the pieces drawn at random: methods standard and odd; paths on real routes
(with the ids of real jobs and uploads of the caller, of another client, and random ones) or anywhere,
percent-encoded, unicode, very long; headers random, with Content-Type variants (multipart with broken
boundaries included) and mostly the valid API key, so requests reach the deep code paths; query strings
with repeated keys and huge values; bodies of random bytes, random JSON (huge, 10,000 levels deep),
valid-ish create/upload/feedback bodies, multipart forms, invalid UTF-8, right and wrong base64 flags.
``test_malformed_events`` also breaks the event itself (fields missing or of the wrong type, not a dict)
and authenticates some with a JWT (``requestContext.authorizer``): API Gateway never sends the broken
ones, but the handler still must not crash on them. ``test_extreme_inputs`` runs, once each, what random
generation reaches only rarely (5 MB bodies, 100,000-deep JSON, depths around the recursion limit, 1 MB
query strings, lone surrogates in every header, 3 KB JWT subjects).

Profiles: ``make test`` runs a fixed, derandomised budget (a few hundred examples in total); with
``HYPOTHESIS_PROFILE=fuzz`` (``make fuzz``) every test runs ``FUZZ_SCALE`` times as many, randomised (a
failure prints the blob to reproduce it). No example database: nothing depends on a ``.hypothesis`` dir.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import string
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import boto3
import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from local_api.cfn_template import Stack
from local_api.server import LambdaContext, build_event
from tests import samples
from tests.conftest import API_KEY, OTHER_API_KEY
from utils.logging import LOGGER_NAME, JsonFormatter

# ----------------------------------------------------------------------------------------- profiles
SUPPRESSED = [
    HealthCheck.function_scoped_fixture,  # one emulated stack per test function, shared by its examples
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
    HealthCheck.filter_too_much,
]
settings.register_profile(
    "handler-fuzz-ci",
    max_examples=100,
    derandomize=True,  # the same examples on every run: make test is reproducible
    database=None,
    deadline=None,
    suppress_health_check=SUPPRESSED,
    print_blob=True,
)
settings.register_profile(
    "fuzz",
    parent=settings.get_profile("handler-fuzz-ci"),
    max_examples=3000,
    derandomize=False,  # new ground on every run; a failure prints its reproduction blob
)
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
#: ``make fuzz`` runs every test with this many times the examples of ``make test``.
FUZZ_SCALE = 10
_ACTIVE = settings.get_profile("fuzz" if FUZZ else "handler-fuzz-ci")


def budget(examples: int) -> settings:
    """``examples`` under make test; ``FUZZ_SCALE`` times as many, randomised, under make fuzz."""
    return settings(_ACTIVE, max_examples=examples * FUZZ_SCALE if FUZZ else examples)


# ----------------------------------------------------------------------------------------- contract
#: The contract's error table (../shared/API_CONTRACT.md): code -> HTTP status.
ERROR_CODES = {
    "INVALID_REQUEST": 400,
    "INVALID_FILE_FORMAT": 400,
    "INVALID_JOB_ID": 400,
    "INVALID_CURSOR": 400,
    "UNAUTHORIZED": 401,
    "JOB_NOT_FOUND": 404,
    "UPLOAD_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "JOB_ALREADY_COMPLETED": 409,
    "JOB_NOT_COMPLETED": 409,
    "CONFLICT": 409,
    "IDEMPOTENCY_IN_PROGRESS": 409,
    "FILE_TOO_LARGE": 413,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "IDEMPOTENCY_KEY_REUSED": 422,
    "RATE_LIMITED": 429,
    "SERVICE_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}
REQUEST_ID = re.compile(r"req_[0-9]{8}T[0-9]{6}_[a-z0-9]{6,}")
TAME_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:/=+-]{1,128}")
JOB_ID = re.compile(r"job_[0-9]{8}T[0-9]{6}_[0-9a-f]{16}")
#: Never in a response unless the request itself carried it (a path echoed in a 404's details, say).
PRESIGNED_URL = re.compile(r'"(?:url|result_url)":"https?://[^"]*"')
LEAKS = ("Traceback", 'File "', "botocore", "boto3", "location-detection-dev-", "location-detection/dev/")


def assert_contract_response(event: Any, result: Any) -> dict[str, Any] | None:
    """The property. Returns the parsed envelope (None for 204 and the OpenAPI document)."""
    assert isinstance(result, dict), result
    assert {"statusCode", "headers", "body"} <= set(result), result
    assert result.get("isBase64Encoded") in (False, None)
    status = result["statusCode"]
    assert isinstance(status, int)
    assert status < 500, result  # nothing behind the handler is failing: any 5xx is a bug
    headers = result["headers"]
    assert isinstance(headers, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()), headers
    request_id = headers["X-Request-ID"]
    assert REQUEST_ID.fullmatch(request_id), request_id
    correlation_id = headers["X-Correlation-ID"]
    assert correlation_id == request_id or TAME_CORRELATION_ID.fullmatch(correlation_id), correlation_id
    assert "Access-Control-Allow-Methods" in headers
    body = result["body"]
    assert isinstance(body, str)
    echoed = json.dumps(event, ensure_ascii=False, default=repr) if not isinstance(event, str) else event
    # Presigned URLs (an upload's ``url``, a completed job's ``result_url``) name the bucket by necessity.
    unlinked = PRESIGNED_URL.sub("", body)
    for leak in LEAKS:
        assert leak not in unlinked or leak in echoed, (leak, body[:2000])

    if status == 204:
        assert body == ""
        return None
    assert headers["Content-Type"] == "application/json"
    document = json.loads(body)
    assert isinstance(document, dict)
    if "openapi" in document:  # GET /api/v1/openapi.json: the document itself, not in the envelope
        assert status == 200
        return None
    assert document.get("meta") == {"request_id": request_id, "api_version": "v1"}, document.get("meta")
    if document["status"] == "success":
        assert set(document) == {"status", "data", "meta"}
        assert status in (200, 201), status
        if status == 201 and isinstance(document["data"], dict) and "blueprint_hash" in document["data"]:  # a job
            job_id = document["data"]["job_id"]
            assert JOB_ID.fullmatch(job_id)
            assert headers["Location"] == f"/api/v1/jobs/{job_id}"
    else:
        assert document["status"] == "error", document
        assert set(document) == {"status", "error", "meta"}
        error = document["error"]
        assert isinstance(error, dict)
        assert {"code", "message"} <= set(error) <= {"code", "message", "details"}, error
        assert isinstance(error["message"], str)
        assert error["message"]
        assert error["code"] in ERROR_CODES, error
        assert ERROR_CODES[error["code"]] == status, (status, error)
        assert isinstance(error.get("details", {}), dict)
        if status == 401:
            assert "WWW-Authenticate" in headers
        if status == 405:
            assert headers["Allow"]
        if status in (429, 503) or error["code"] == "IDEMPOTENCY_IN_PROGRESS":
            assert headers["Retry-After"]
    return document


# --------------------------------------------------------------------------------------- the world
@dataclass
class World:
    """Real things the generated requests can point at (created once per test function)."""

    ids: dict[str, str]

    def fill(self, text: str) -> str:
        for marker, value in self.ids.items():
            text = text.replace(marker, value)
        return text.replace(FRESH, uuid.uuid4().hex)

    def fill_bytes(self, data: bytes) -> bytes:
        for marker, value in self.ids.items():
            data = data.replace(marker.encode(), value.encode())
        return data


#: Placeholders the strategies put in paths and bodies; the test swaps in the world's real ids.
PENDING, COMPLETED, CANCELLED, FOREIGN, UPLOAD, FOREIGN_UPLOAD = (
    "@pending@",
    "@completed@",
    "@cancelled@",
    "@foreign@",
    "@upload@",
    "@foreign-upload@",
)
MARKERS = (PENDING, COMPLETED, CANCELLED, FOREIGN)
CURSOR, FOREIGN_CURSOR = "@cursor@", "@foreign-cursor@"
#: Replaced by a new unique value in every event (an Idempotency-Key never seen before).
FRESH = "@fresh@"


def _call(event: Any) -> Any:
    from api.rest_api import lambda_handler

    return lambda_handler(event, LambdaContext("location-detection-dev-api", 25))


def _request(method: str, path: str, body: bytes = b"", key: str = API_KEY, **headers: str) -> dict[str, Any]:
    pairs = [("Host", "api.example.test"), ("X-API-Key", key), *headers.items()]
    result = _call(build_event(method, path, pairs, body))
    document = assert_contract_response(None, result)
    assert document is not None
    assert result["statusCode"] in (200, 201), document
    return dict(document["data"])


def _create(key: str = API_KEY) -> str:
    body = json.dumps(
        {"blueprint": {"file": base64.b64encode(samples.png(extra=os.urandom(8))).decode(), "format": "png"}}
    )
    return str(_request("POST", "/api/v1/jobs", body.encode(), key, **{"Content-Type": "application/json"})["job_id"])


def _finished_upload(key: str, owner: str) -> str:
    """An upload whose file is in the bucket (as if the client had POSTed it to S3), ready to finalise."""
    body = json.dumps({"filename": "plan.png", "format": "png", "size": 100}).encode()
    upload = _request("POST", "/api/v1/uploads", body, key, **{"Content-Type": "application/json"})
    fields = upload["fields"]
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="location-detection-dev-blueprints-123456789012-us-east-1",
        Key=fields["key"],
        Body=samples.png(extra=os.urandom(8)),
        ContentType=fields["Content-Type"],
        Metadata={"owner": owner},
    )
    return str(upload["upload_id"])


@pytest.fixture
def world(aws: Stack) -> World:
    from api.dependencies import get as get_dependencies

    pending, completed, cancelled, foreign = _create(), _create(), _create(), _create(OTHER_API_KEY)
    _create(OTHER_API_KEY)
    service = get_dependencies().job_service()
    service.start_processing(completed)
    service.complete_job(completed, {"rooms": [], "model_version": "fuzz"})
    _request("DELETE", f"/api/v1/jobs/{cancelled}")
    return World(
        {
            PENDING: pending,
            COMPLETED: completed,
            CANCELLED: cancelled,
            FOREIGN: foreign,
            UPLOAD: _finished_upload(API_KEY, "cli_alice"),
            FOREIGN_UPLOAD: _finished_upload(OTHER_API_KEY, "cli_bob"),
            CURSOR: _request("GET", "/api/v1/jobs?limit=1")["next_cursor"],
            FOREIGN_CURSOR: _request("GET", "/api/v1/jobs?limit=1", key=OTHER_API_KEY)["next_cursor"],
        }
    )


# -------------------------------------------------------------------------------------- strategies
T = TypeVar("T")


def weighted(*options: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of ``options``, each chosen with its weight (``st.one_of`` picks branches evenly, and collapses
    repeated ones). The first option should be the ordinary case: hypothesis favours the ends of a choice
    (and shrinks towards its start), so the ordinary case sits at both ends and the odd ones in between."""
    table = [strategy for weight, strategy in options for _ in range(weight)] + [options[0][1]]

    @st.composite
    def pick(draw: st.DrawFn) -> T:
        return draw(draw(st.sampled_from(table)))

    return pick()


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True with probability about 1/n (``st.integers`` favours its bounds; ``sampled_from`` is even)."""
    return draw(st.sampled_from(range(n))) == n // 2  # not an end: hypothesis favours those


ANY_TEXT = st.text(max_size=40)
#: Characters that break naive code: lone and paired surrogates, NUL, controls, quotes, backslashes, BOM,
#: right-to-left override, combining marks (any code point is rare in a random draw; these come often).
TRICKY_CHARS = [
    "\ud800",
    "\udfff",
    "\ud83c",
    "\udfe0",
    "\x00",
    "\x1f",
    "\x7f",
    '"',
    "\\",
    "\ufeff",
    "\u202e",
    "\u0301",
    "a",
    " ",
]
#: Text with lone surrogates and control characters (a Lambda event's JSON can carry "\ud800").
WILD_TEXT = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.text(st.sampled_from(TRICKY_CHARS), max_size=12),
)
TOKEN = st.text(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~", min_size=1, max_size=20)


def huge_text(alphabet: str = "aZ09%&=/\u00e9\u4e2d") -> st.SearchStrategy[str]:
    """Up to ~200 KB of text, cheaply (hypothesis draws a short unit and a count)."""
    return st.builds(lambda unit, n: unit * n, st.text(alphabet, min_size=1, max_size=4), st.integers(1, 50_000))


METHODS = weighted(
    (12, st.sampled_from(["GET", "POST", "DELETE", "GET", "POST", "OPTIONS"])),
    (2, st.sampled_from(["PUT", "PATCH", "HEAD", "TRACE", "CONNECT", "QUERY", "PROPFIND", "get", "Post", "dElEtE"])),
    (1, st.sampled_from(["", " GET", "GET ", "G\u00c9T", "OPTIONS\x00"])),
    (1, TOKEN),
    (1, ANY_TEXT),
)

VALID_SHAPE_ID = st.builds(
    lambda digits, hex_: f"job_{digits[:8]}T{digits[8:]}_{hex_}",
    st.text("0123456789", min_size=14, max_size=14),
    st.text("0123456789abcdef", min_size=16, max_size=16),
)
JOB_ID_IN_PATH = weighted(
    (8, st.sampled_from(MARKERS)),
    (3, VALID_SHAPE_ID),
    (
        2,
        st.sampled_from(
            [
                "job_20261121T231500_9F2C4E7A1B3D5F60",
                "job_20261121T231500_9f2c4e7a1b3d5f6",
                "job_20261321T251500_9f2c4e7a1b3d5f60",
                "..",
                ".",
                "%2e%2e",
                "%2F",
                "job_20261121T231500_9f2c4e7a1b3d5f60%00",
                "job_20261121T231500_9f2c4e7a1b3d5f60 ",
                "\u0130",
                "null",
                "' OR 1=1 --",
                "${jndi:ldap://x}",
            ]
        ),
    ),
    (1, st.text(st.characters(exclude_characters="/"), min_size=1, max_size=40)),
    (1, st.builds(quote, ANY_TEXT, safe=st.just(""))),
    (1, huge_text()),
)
ROUTE_PATHS = weighted(
    (4, st.sampled_from(["/api/v1/jobs", "/api/v1/uploads", "/health", "/api/v1/openapi.json", "/", ""])),
    (6, st.builds("/api/v1/jobs/{}".format, JOB_ID_IN_PATH)),
    (3, st.builds("/api/v1/jobs/{}/feedback".format, JOB_ID_IN_PATH)),
    (
        1,
        st.builds(
            lambda p, tail: p + tail,
            st.sampled_from(["/api/v1/jobs", "/health", "/api/v1/uploads"]),
            st.sampled_from(["/", "//", "/.", "?", "%20", "/feedback"]),
        ),
    ),
)
RANDOM_PATHS = st.one_of(
    st.builds(
        lambda segs, lead: lead + "/".join(segs), st.lists(WILD_TEXT, max_size=8), st.sampled_from(["/", "", "//"])
    ),
    st.builds(lambda segs: "/" + "/".join(quote(s, safe="") for s in segs), st.lists(ANY_TEXT, max_size=6)),
    st.builds(
        lambda unit, n: "/" + unit * n, st.sampled_from(["a", "a/", "%41", "\u00e9/", "../"]), st.integers(1, 20_000)
    ),
    st.builds("/API/V1/JOBS/{}".format, JOB_ID_IN_PATH),
)
PATHS = weighted((5, ROUTE_PATHS), (1, RANDOM_PATHS))

#: The valid key most of the time, so that requests get past authentication to the deep code paths.
API_KEYS: st.SearchStrategy[str | None] = weighted(
    (24, st.just(API_KEY)),
    (2, st.just(OTHER_API_KEY)),
    (1, st.none()),
    (1, st.sampled_from(["", " ", API_KEY + " ", API_KEY.upper(), "ldk_", API_KEY + "," + API_KEY, "Bearer x"])),
    (1, WILD_TEXT),
    (1, huge_text()),
)

CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/problem+json",
            "application/vnd.api+json;x=1",
            "text/plain",
            "image/png",
            "image/jpeg",
            "application/pdf",
            "image/gif",
            "application/octet-stream",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            'multipart/form-data; boundary=""',
            "multipart/form-data; boundary=X; boundary=Y",
            "multipart/form-data; boundary=" + "b" * 71,
            "multipart/form-data; boundary=ab cd",
            'multipart/form-data; boundary="ab\\"cd"',
            "multipart/mixed; boundary=X",
            ";",
            "",
            " ; ; ",
        ]
    ),
    st.builds("multipart/form-data; boundary={}".format, WILD_TEXT),
    st.builds("{}/{}".format, TOKEN, TOKEN),
    WILD_TEXT,
)

HEADER_NAMES = st.one_of(
    st.sampled_from(
        ["accept", "origin", "x-correlation-id", "idempotency-key", "authorization", "user-agent", "content-length"]
    ),
    TOKEN.map(str.lower),
    WILD_TEXT,
)
HEADER_VALUES = st.one_of(ANY_TEXT, WILD_TEXT, huge_text())
CORRELATION_IDS = st.one_of(ANY_TEXT, TOKEN, st.text("abc.:/=+-", min_size=120, max_size=140), huge_text())
IDEMPOTENCY_KEYS = weighted(
    (4, st.just(FRESH)),  # a new key every time: the request runs
    (2, st.sampled_from(["k1", "k2", "k3"])),  # few, so keys collide across examples: replays, reuse, ...
    (1, st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=255)),
    (1, st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=256, max_size=300)),
    (1, ANY_TEXT),
)

QUERY_KEYS = st.one_of(
    st.sampled_from(["limit", "cursor", "status", "created_after", "created_before", "filename"]), ANY_TEXT
)
QUERY_VALUES = st.one_of(
    st.sampled_from(["1", "20", "100", "0", "101", "-1", "1.5", "1e3", "\u0661", " 1", "007", ""]),
    st.sampled_from(["pending", "processing", "completed", "failed", "cancelled", "PENDING"]),
    st.sampled_from(["eyJ9", "AAAA", "a.b", "==", CURSOR, FOREIGN_CURSOR]),
    st.text(string.ascii_letters + string.digits + "-_=", max_size=300),
    WILD_TEXT,
    huge_text(),
)
DATES = st.one_of(
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.dates().map(lambda d: d.strftime("%Y-%m-%d")),
    st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "2026-01-01T24:00",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "1969-12-31T23:59:59Z",
            "2026-02-30",
            "2026-01-01T00:00:00.123456789+05:30",
            "2026-01-01t00:00:00z",
            "2026-W01",
            "20260101T000000Z",
        ]
    ),
)


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=False, allow_infinity=False),
        WILD_TEXT,
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(WILD_TEXT, inner, max_size=5)),
        max_leaves=max_leaves,
    )


def _nested(depth: int, leaf: str, kind: str) -> str:
    if kind == "list":
        return "[" * depth + leaf + "]" * depth
    return '{"a":' * depth + leaf + "}" * depth


NESTED_JSON = st.builds(
    _nested, st.integers(1, 12_000), st.sampled_from(["1", '"x"', "null", ""]), st.sampled_from(["list", "dict"])
)


def _to_json(value: Any, ascii_only: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)


def json_text(values: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """``values`` as JSON text, with non-ASCII characters as they are or as ``\\u`` escapes (as Python's
    default and many clients write them: a lone surrogate then becomes valid UTF-8 text, ``"\\ud800"``)."""
    return st.builds(_to_json, values, st.booleans())


#: Real files (distinct bytes each time: one blueprint, one hash) most of the time, impostors otherwise.
FILES = weighted(
    (3, st.builds(lambda extra: samples.png(extra=extra), st.binary(min_size=8, max_size=20))),
    (1, st.builds(lambda extra: samples.jpg(extra=extra), st.binary(min_size=8, max_size=20))),
    (1, st.builds(lambda extra: samples.pdf(extra=extra), st.binary(min_size=8, max_size=20))),
    (
        1,
        st.sampled_from([samples.GIF, samples.HTML, samples.EXE, b"", b"\x89PNG\r\n\x1a\n", b"%PDF-", b"\xff\xd8\xff"]),
    ),
    (1, st.binary(max_size=64)),
)
FORMATS: st.SearchStrategy[Any] = weighted(
    (4, st.sampled_from(["png", "jpg", "jpeg", "pdf", "PNG", "Jpeg"])),
    (1, st.sampled_from(["gif", "", " png", "png\x00", "image/png", "tiff"])),
    (1, WILD_TEXT),
    (1, json_values(3)),
)
FILENAMES: st.SearchStrategy[Any] = weighted(
    (4, st.sampled_from(["plan.png", "ground floor.pdf", "site.jpg", "Grundri\u00df.png"])),
    (
        3,
        st.sampled_from(
            [
                "plan.png",
                "../../etc/passwd",
                "C:\\Users\\x\\plan.png",
                "a/b/c.png",
                "..",
                ".",
                "",
                "con.png",
                "plan\x00.png",
                "\u202egnp.exe",
                "\U0001f3e0 plan.png",
            ]
        ),
    ),
    (2, WILD_TEXT),
    (
        1,
        st.builds(
            lambda unit, n: unit * n, st.sampled_from(["a", "\u00e9", "\U0001f3e0", "/"]), st.integers(200, 1100)
        ),
    ),
    (1, json_values(3)),
)


def _encoded_file(content: bytes, how: str, fmt: Any) -> str:
    """``content`` as a ``blueprint.file`` value: base64 (standard, URL-safe, wrapped), a data URL, or broken."""
    b64 = base64.b64encode(content).decode()
    mime = f"image/{fmt}" if isinstance(fmt, str) else "image/png"
    encodings: dict[str, Callable[[], str]] = {
        "std": lambda: b64,
        "urlsafe": lambda: base64.urlsafe_b64encode(content).decode().rstrip("="),
        "wrapped": lambda: "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)),
        "data-url": lambda: f"data:{mime};base64,{b64}",
        "data-url-plain": lambda: "data:image/png," + content.decode("latin-1"),
        "broken": lambda: b64[:-1] + "!" if b64 else "!",
        "raw": lambda: content.decode("latin-1"),  # not base64 at all
    }
    return encodings[how]()


ENCODED_AS = weighted(
    (6, st.just("std")),
    (1, st.sampled_from(["urlsafe", "wrapped", "data-url"])),
    (1, st.sampled_from(["data-url-plain", "broken", "raw"])),
)
FILE_VALUES = weighted((8, st.builds(_encoded_file, FILES, ENCODED_AS, FORMATS)), (1, json_values(3)))
MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpg", b"%PDF-": "pdf"}


@st.composite
def create_job_json(draw: st.DrawFn) -> Any:
    """``{"blueprint": {...}}`` mostly right in shape, with random values (and extra or missing fields)."""
    blueprint: dict[str, Any] = {}
    content = draw(FILES)
    detected = next((fmt for magic, fmt in MAGIC.items() if content.startswith(magic)), None)
    if not one_in(draw, 10):
        blueprint["file"] = draw(FILE_VALUES) if one_in(draw, 6) else _encoded_file(content, draw(ENCODED_AS), detected)
    declared = draw(weighted((3, st.just(detected)), (1, st.none()), (2, FORMATS)))
    if declared is not None:
        blueprint["format"] = declared
    if draw(st.booleans()):
        blueprint["filename"] = draw(FILENAMES)
    if one_in(draw, 8):
        blueprint["upload_id"] = draw(
            st.one_of(
                st.sampled_from([UPLOAD, FOREIGN_UPLOAD, "upl_20261121T231500_" + "0" * 32]),
                WILD_TEXT,
                json_values(2),
            )
        )
    if one_in(draw, 13):
        blueprint.update(draw(st.dictionaries(WILD_TEXT, json_values(2), max_size=2)))
    body: dict[str, Any] = {"blueprint": draw(json_values(3)) if one_in(draw, 13) else blueprint}
    if one_in(draw, 13):
        body.update(draw(st.dictionaries(WILD_TEXT, json_values(2), max_size=2)))
    return body


SIZES = weighted(
    (4, st.integers(1, 60 * 1024 * 1024)),
    (1, st.sampled_from([0, -1, 52428800, 52428801, 10**30, 1.0, 2.5, True, "100"])),
    (1, json_values(2)),
)
UPLOAD_JSON = weighted(
    (4, st.fixed_dictionaries({"format": FORMATS, "size": SIZES}, optional={"filename": FILENAMES})),
    (
        1,
        st.fixed_dictionaries(
            {}, optional={"filename": FILENAMES, "format": FORMATS, "size": SIZES, "extra": json_values(2)}
        ),
    ),
)
RATINGS = weighted(
    (4, st.integers(1, 5)),
    (1, st.integers(-2, 7)),
    (1, st.sampled_from([3.0, 4.5, True, "4", None, 10**100])),
    (1, json_values(2)),
)
COMMENTS = weighted((4, ANY_TEXT), (1, WILD_TEXT), (1, huge_text()), (1, json_values(2)))
FEEDBACK_JSON = weighted(
    (4, st.fixed_dictionaries({"rating": RATINGS}, optional={"comment": COMMENTS, "corrections": json_values(30)})),
    (
        1,
        st.fixed_dictionaries(
            {},
            optional={
                "rating": RATINGS,
                "comment": COMMENTS,
                "corrections": st.one_of(huge_text(), json_values(5)),
                "extra": json_values(2),
            },
        ),
    ),
)
#: Feedback whose corrections are nested ``depth`` levels deep, around Python's recursion limit (as text:
#: building the object here would hit the same limit).
DEEP_FEEDBACK = st.builds(
    lambda depth, kind: '{"rating": 4, "corrections": ' + _nested(depth, "1", kind) + "}",
    st.one_of(st.integers(1, 1200), st.integers(850, 1000)),
    st.sampled_from(["list", "dict"]),
)

# ----------------------------------------------------------------------------------- multipart forms
BOUNDARY_CHARS = string.ascii_letters + string.digits + "'()+_,-./:=? "


@st.composite
def form_parts(draw: st.DrawFn) -> bytes:
    """One part: mostly as browsers and curl write it (the ``file`` part most of all), sometimes broken."""
    name = draw(weighted((6, st.just("file")), (2, st.sampled_from(["format", "filename"])), (1, WILD_TEXT)))
    disposition = draw(
        weighted(
            (6, st.sampled_from(['form-data; name="{n}"; filename="{f}"', 'form-data; name="{n}"'])),
            (
                2,
                st.sampled_from(
                    [
                        "form-data; name={n}; filename={f}",
                        "form-data; name=\"{n}\"; filename*=UTF-8''{f}",
                        'form-data; name="{n}"; filename="{f}"; filename*=utf-8\'\'%E2%82%AC.png',
                    ]
                ),
            ),
            (
                1,
                st.sampled_from(
                    [
                        'form-data; name="{n}"; name="{n}"',
                        'attachment; name="{n}"',
                        'form-data; filename="{f}"',
                        "form-data",
                        'form-data; name="{n}',
                        "",
                    ]
                ),
            ),
        )
    )
    filename = draw(weighted((4, st.sampled_from(["plan.png", "a.pdf", "x.jpg", "..\\..\\p.png", ""])), (1, WILD_TEXT)))
    lines = []
    if disposition:
        lines.append("Content-Disposition: " + disposition.format(n=name, f=filename))
    if draw(st.booleans()):
        part_type = weighted(
            (4, st.sampled_from(["image/png", "application/pdf", "application/octet-stream"])), (1, CONTENT_TYPES)
        )
        lines.append("Content-Type: " + draw(part_type))
    if one_in(draw, 10):
        lines.append("Content-Transfer-Encoding: " + draw(st.sampled_from(["base64", "binary", "7bit", "x"])))
    if one_in(draw, 10):
        lines.append(
            draw(st.sampled_from(["Content-Disposition: form-data; name=dup", "no colon", ": empty", "X: \x01"]))
        )
    if name == "format":
        data = draw(FORMATS.map(lambda f: f if isinstance(f, str) else _to_json(f))).encode("utf-8", "surrogatepass")
    elif name == "filename":
        data = draw(FILENAMES.map(lambda f: f if isinstance(f, str) else _to_json(f))).encode("utf-8", "surrogatepass")
    else:
        data = draw(FILES)
    newline = draw(weighted((8, st.just("\r\n")), (1, st.just("\n"))))
    head = newline.join(lines).encode("utf-8", "surrogatepass")
    return head + newline.encode() + newline.encode() + data


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """A form as browsers and curl send it, or broken: wrong or missing boundary, truncated, LF-only, ..."""
    boundary = draw(
        weighted(
            (4, st.sampled_from(["----WebKitFormBoundaryZm9vYmFy", "------------------------d74496d66958873e"])),
            (2, st.text(BOUNDARY_CHARS, min_size=1, max_size=70)),
            (1, st.text(BOUNDARY_CHARS, min_size=71, max_size=90)),
            (1, WILD_TEXT),
        )
    )
    declared = draw(
        weighted(
            (8, st.just(boundary)),
            (1, st.just(f'"{boundary}"')),
            (1, st.sampled_from(["", '""', boundary + "x", boundary[:-1]])),
            (1, st.text(BOUNDARY_CHARS, min_size=1, max_size=10)),
        )
    )
    content_type = draw(
        weighted(
            (8, st.just("multipart/form-data; boundary={b}")),
            (
                2,
                st.sampled_from(
                    [
                        "multipart/form-data;boundary={b}",
                        "Multipart/Form-Data; charset=utf-8; boundary={b}",
                        "multipart/form-data",
                        "multipart/form-data; boundary={b}; boundary={b}",
                    ]
                ),
            ),
        )
    ).format(b=declared)
    dash = b"--" + boundary.encode("utf-8", "surrogatepass")
    parts = draw(st.lists(form_parts(), min_size=draw(st.integers(0, 1)), max_size=4))
    body = draw(weighted((4, st.just(b"")), (1, st.just(b"preamble\r\n"))))
    for part in parts:
        separator = weighted((10, st.just(b"\r\n")), (1, st.sampled_from([b" \t\r\n", b"\n", b""])))
        body += dash + draw(separator) + part + b"\r\n"
    closing = weighted(
        (8, st.just(dash + b"--\r\n")),
        (1, st.sampled_from([dash + b"--", dash + b"--\r\nepilogue", dash, b"", dash + b"\r\n"])),
    )
    body += draw(closing)
    if one_in(draw, 10):
        body = body[: draw(st.integers(0, len(body)))]
    return content_type, body


# ---------------------------------------------------------------------------------------- requests
#: A body: its Content-Type (None: no header) and its bytes or text (text may hold lone surrogates).
Body = tuple[str | None, bytes | str | None]

MAYBE_CONTENT_TYPE = st.one_of(st.none(), CONTENT_TYPES)
NO_BODY: st.SearchStrategy[Body] = st.just((None, None))
RANDOM_BODIES: st.SearchStrategy[Body] = st.one_of(
    st.tuples(MAYBE_CONTENT_TYPE, st.binary(max_size=200)),
    st.tuples(MAYBE_CONTENT_TYPE, WILD_TEXT),
    st.tuples(
        MAYBE_CONTENT_TYPE,
        st.builds(lambda unit, n: unit * n, st.binary(min_size=1, max_size=4), st.integers(1, 2_000_000)),
    ),
)
JSON_BODIES: st.SearchStrategy[Body] = st.tuples(
    weighted((4, st.just("application/json")), (1, st.sampled_from([None, "text/plain", "application/x+json"]))),
    st.one_of(
        json_text(json_values()),
        NESTED_JSON,
        st.sampled_from(["", " ", "{", "[1,]", "NaN", '{"a": Infinity}', "1e400", "9" * 5000, '"\\ud800"', "\ufeff{}"]),
        WILD_TEXT,
        st.builds(lambda n: '{"blueprint": {"file": "' + "A" * n + '"}}', st.integers(0, 5_000_000)),
        st.builds(lambda n: "[" + ",".join(["{}"] * n) + "]", st.integers(0, 200_000)),
    ),
)
CREATE_BODIES: st.SearchStrategy[Body] = weighted(
    (
        3,
        st.tuples(
            weighted((6, st.just("application/json")), (1, st.sampled_from([None, "application/json; charset=utf-8"]))),
            json_text(create_job_json()),
        ),
    ),
    (2, multipart_bodies()),
    (1, st.tuples(st.sampled_from(["image/png", "image/jpeg", "application/pdf", "IMAGE/PNG; x=y"]), FILES)),
)
JSON_TYPES = weighted(
    (6, st.just("application/json")), (1, st.sampled_from([None, "application/json; charset=utf-8", "text/plain"]))
)
UPLOAD_BODIES: st.SearchStrategy[Body] = st.tuples(JSON_TYPES, json_text(UPLOAD_JSON))
FEEDBACK_BODIES: st.SearchStrategy[Body] = st.tuples(
    JSON_TYPES, weighted((4, json_text(FEEDBACK_JSON)), (1, DEEP_FEEDBACK))
)
OTHER_JSON_BODIES = st.one_of(UPLOAD_BODIES, FEEDBACK_BODIES)
ANY_BODY = weighted((3, NO_BODY), (1, RANDOM_BODIES), (1, JSON_BODIES), (2, CREATE_BODIES), (2, OTHER_JSON_BODIES))

#: How the body travels in the event: as API Gateway does it, or with a lying or odd isBase64Encoded.
ENCODINGS = weighted((12, st.just("gateway")), (1, st.sampled_from(["base64", "plain", "bad-base64", "odd-flag"])))


@dataclass
class Spec:
    """One HTTP request as the strategies drew it; ``event(world)`` makes the payload-2.0 event."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]
    raw_query: str | None
    body: bytes | str | None
    encoding: str

    def event(self, world: World) -> dict[str, Any]:
        path = world.fill(self.path)
        body = self.body
        if isinstance(body, bytes):
            body = world.fill_bytes(body)
        elif isinstance(body, str):
            body = world.fill(body)
        headers = [(k, world.fill(v)) for k, v in self.headers]
        event = build_event("GET", "/", headers, b"")
        query: dict[str, str] = {}
        for key, value in self.query:
            query[key] = f"{query[key]},{value}" if key in query else value
        event["rawPath"] = path
        event["requestContext"]["http"].update(method=self.method, path=path)
        event["rawQueryString"] = (
            self.raw_query if self.raw_query is not None else urlencode(self.query, errors="surrogatepass")
        )
        if query:
            event["queryStringParameters"] = query
        if path not in ("/", "/health"):
            event["routeKey"] = event["requestContext"]["routeKey"] = "ANY /{proxy+}"
            event["pathParameters"] = {"proxy": path.lstrip("/")}
        event.update(_encoded_body(body, self.encoding, event["headers"].get("content-type", "")))
        return event


def _encoded_body(body: bytes | str | None, encoding: str, content_type: str) -> dict[str, Any]:
    if body is None or body in (b"", ""):
        return {"isBase64Encoded": False}
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    if encoding == "base64":
        return {"body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    if encoding == "plain":  # text as sent (lone surrogates kept), bytes as latin-1: no flag
        return {"body": body if isinstance(body, str) else raw.decode("latin-1"), "isBase64Encoded": False}
    if encoding == "bad-base64":
        return {"body": base64.b64encode(raw).decode()[:-1] + "*", "isBase64Encoded": True}
    if encoding == "odd-flag":
        return {"body": base64.b64encode(raw).decode(), "isBase64Encoded": "true"}
    # "gateway": exactly what API Gateway (and local_api) does with the bytes a client sent.
    rebuilt = build_event("POST", "/", [("content-type", content_type)], raw)
    return {k: rebuilt[k] for k in ("body", "isBase64Encoded") if k in rebuilt}


#: ``GET /api/v1/jobs`` parameters: mostly meaningful values, then anything.
QUERY_PAIRS = weighted(
    (3, st.tuples(st.just("limit"), weighted((3, st.integers(1, 100).map(str)), (1, QUERY_VALUES)))),
    (
        2,
        st.tuples(
            st.just("status"), weighted((3, st.sampled_from(["pending", "completed", "cancelled"])), (1, QUERY_VALUES))
        ),
    ),
    (
        2,
        st.tuples(
            st.just("cursor"),
            weighted(
                (3, st.sampled_from([CURSOR, FOREIGN_CURSOR, CURSOR + "x", "A" + CURSOR])),
                (1, QUERY_VALUES),
            ),
        ),
    ),
    (2, st.tuples(st.sampled_from(["created_after", "created_before"]), weighted((3, DATES), (1, QUERY_VALUES)))),
    (1, st.tuples(st.just("filename"), FILENAMES.map(str))),
    (1, st.tuples(QUERY_KEYS, QUERY_VALUES)),
)


JOB_PATHS = st.builds("/api/v1/jobs/{}".format, JOB_ID_IN_PATH)
FEEDBACK_PATHS = st.builds("/api/v1/jobs/{}/feedback".format, JOB_ID_IN_PATH)
#: A call: method, path and body. Mostly what the route takes (so requests get deep), else anything.
CREATE_CALLS = st.tuples(st.just("POST"), st.sampled_from(["/api/v1/jobs", "/api/v1/jobs/"]), CREATE_BODIES)
ROUTE_CALLS = weighted(
    (4, st.tuples(st.just("GET"), JOB_PATHS, NO_BODY)),
    (3, st.tuples(st.just("DELETE"), JOB_PATHS, weighted((4, NO_BODY), (1, RANDOM_BODIES)))),
    (4, st.tuples(st.just("POST"), FEEDBACK_PATHS, weighted((4, FEEDBACK_BODIES), (1, JSON_BODIES)))),
    (3, st.tuples(st.just("GET"), st.just("/api/v1/jobs"), NO_BODY)),
    (2, st.tuples(st.just("POST"), st.just("/api/v1/uploads"), weighted((4, UPLOAD_BODIES), (1, JSON_BODIES)))),
    (1, st.tuples(st.just("GET"), st.sampled_from(["/health", "/api/v1/openapi.json"]), NO_BODY)),
    (1, st.tuples(st.just("OPTIONS"), PATHS, NO_BODY)),
)
ANY_CALLS = st.tuples(METHODS, PATHS, ANY_BODY)


@st.composite
def requests(
    draw: st.DrawFn,
    calls: st.SearchStrategy[tuple[str, str, Body]],
    keys: st.SearchStrategy[str | None] = API_KEYS,
) -> Spec:
    method, path, (content_type, body) = draw(calls)
    headers: list[tuple[str, str]] = [("host", draw(st.sampled_from(["api.example.test", "127.0.0.1:3000", ""])))]
    key = draw(keys)
    if key is not None:
        headers.append(("x-api-key", key))
    if one_in(draw, 15):
        content_type = draw(st.one_of(st.none(), CONTENT_TYPES))
    if content_type is not None:
        headers.append(("content-type", content_type))
    if one_in(draw, 6):
        headers.append(("idempotency-key", draw(IDEMPOTENCY_KEYS)))
    if one_in(draw, 4):
        headers.append(("x-correlation-id", draw(CORRELATION_IDS)))
    if one_in(draw, 4):
        headers.append(("origin", draw(st.one_of(st.sampled_from(["https://app.example.com", "null"]), ANY_TEXT))))
    if one_in(draw, 4):
        headers.extend(draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4)))
    query = draw(st.lists(QUERY_PAIRS, min_size=1, max_size=4)) if not one_in(draw, 3) else []
    raw_query = draw(weighted((10, st.none()), (1, WILD_TEXT), (1, huge_text())))
    return Spec(method, path, headers, query, raw_query, body, draw(ENCODINGS))


# ------------------------------------------------------------------------------------------- tests
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")


def _outcome(result: dict[str, Any], document: dict[str, Any] | None) -> str:
    if document is None or document["status"] == "success":
        return str(result["statusCode"])
    return str(document["error"]["code"])


def _run_examples(
    world: World, strategy: st.SearchStrategy[Any], examples: int, explicit: tuple[Any, ...] = ()
) -> set[str]:
    """Run ``strategy``'s examples (and the ``explicit`` ones, first) through the handler, checking the
    property on each; return the outcomes seen (status codes of successes, error codes of errors)."""
    seen: Counter[str] = Counter()

    @given(spec=strategy)
    def check(spec: Any) -> None:
        note(f"request: {spec!r}"[:4000])
        event = spec.event(world)
        result = _call(event)
        seen[_outcome(result, assert_contract_response(event, result))] += 1

    for spec in explicit:
        check = example(spec=spec)(check)
    started = time.perf_counter()
    budget(examples)(check)()
    print(f"{sum(seen.values())} requests in {time.perf_counter() - started:.1f} s: {dict(seen.most_common())}")
    return set(seen)


#: Requests that answered 500 before their fix, run first on every run (each also stays in ``EXTREMES``).
FOUND_BY_FUZZING = (
    # A lone surrogate in X-API-Key: hashing the key raised UnicodeEncodeError (services/auth.hash_key).
    Spec("GET", "/api/v1/jobs", [("x-api-key", "\ud800")], [], None, None, "gateway"),
    # A lone surrogate escaped in JSON (valid UTF-8 text): S3's UTF-8 encoder raised (api/http.json_body).
    Spec(
        "POST",
        f"/api/v1/jobs/{COMPLETED}/feedback",
        [("x-api-key", API_KEY), ("content-type", "application/json")],
        [],
        None,
        '{"rating": 1, "comment": "\\udfff"}',
        "gateway",
    ),
)


def test_random_requests_get_the_envelope(world: World) -> None:
    seen = _run_examples(
        world,
        requests(weighted((1, ROUTE_CALLS), (1, CREATE_CALLS), (2, ANY_CALLS))),
        100,
        explicit=FOUND_BY_FUZZING,
    )
    # The generator reaches past routing and authentication, not only the doors.
    assert {"200", "NOT_FOUND"} <= seen, seen
    assert len(seen) >= 6, seen


def test_job_creation_bodies(world: World) -> None:
    """POST /api/v1/jobs with JSON, multipart and raw bodies, right and wrong: the deepest route."""
    seen = _run_examples(world, requests(CREATE_CALLS), 80)
    assert {"201", "INVALID_REQUEST"} <= seen, seen


def test_job_routes_with_ids_queries_and_bodies(world: World) -> None:
    """Get, cancel, list, feedback and uploads, on real jobs (the caller's, another client's) and others."""
    seen = _run_examples(world, requests(ROUTE_CALLS), 80)
    assert {"200", "JOB_NOT_FOUND"} <= seen, seen
    assert len(seen) >= 5, seen


# ------------------------------------------------------------------------------ malformed events
#: Where an event can be broken. API Gateway always sends version, routeKey, rawPath, rawQueryString,
#: headers, requestContext (with http.method and http.path) and isBase64Encoded, so none of this happens
#: in AWS; a test harness, a misconfigured integration or a direct invoke can still send it.
EVENT_FIELDS = (
    ("version",),
    ("routeKey",),
    ("rawPath",),
    ("rawQueryString",),
    ("headers",),
    ("queryStringParameters",),
    ("pathParameters",),
    ("cookies",),
    ("body",),
    ("isBase64Encoded",),
    ("requestContext",),
    ("requestContext", "http"),
    ("requestContext", "http", "method"),
    ("requestContext", "http", "path"),
    ("requestContext", "requestId"),
    ("requestContext", "authorizer"),
    ("headers", "x-api-key"),
    ("headers", "content-type"),
    ("headers", "x-correlation-id"),
    ("headers", "idempotency-key"),
    ("headers", "origin"),
)
DELETE = object()
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    WILD_TEXT,
    st.lists(json_values(3), max_size=3),
    st.dictionaries(WILD_TEXT, json_values(3), max_size=3),
    st.just({"x-api-key": 123, "content-type": ["application/json"]}),
    st.just({"http": {"method": None, "path": 7}}),
    st.just(b"bytes"),
)
#: What API Gateway's JWT authorizer puts in ``requestContext.authorizer`` (claims it verified).
JWT_AUTHORIZERS = st.builds(
    lambda sub, extra: {"jwt": {"claims": {"sub": sub, **extra}, "scopes": None}},
    weighted(
        (3, st.text(string.ascii_letters + string.digits + "|-_@.", min_size=1, max_size=64)),
        (1, WILD_TEXT),
        (1, huge_text()),
        (1, json_values(3)),
    ),
    st.dictionaries(st.sampled_from(["name", "iss", "aud", "exp"]), json_values(2), max_size=2),
)


@dataclass
class Malformed:
    """A drawn request whose event is then broken: fields deleted or replaced, or the event replaced."""

    spec: Spec
    breaks: list[tuple[tuple[str, ...], Any]]
    replacement: Any = DELETE

    def event(self, world: World) -> Any:
        if self.replacement is not DELETE:
            return self.replacement
        event = self.spec.event(world)
        for path, value in self.breaks:
            target = event
            for step in path[:-1]:
                target = target.get(step) if isinstance(target, dict) else None
            if not isinstance(target, dict):
                continue
            if value is DELETE:
                target.pop(path[-1], None)
            else:
                target[path[-1]] = value
        return event


@st.composite
def malformed_events(draw: st.DrawFn) -> Malformed:
    spec = draw(requests(weighted((2, ROUTE_CALLS), (1, CREATE_CALLS), (1, ANY_CALLS))))
    breaks = draw(
        st.lists(
            st.tuples(
                st.sampled_from(EVENT_FIELDS),
                weighted((2, st.just(DELETE)), (3, ODD_VALUES)),
            ),
            max_size=4,
        )
    )
    if not one_in(draw, 3):
        breaks.append((("requestContext", "authorizer"), draw(JWT_AUTHORIZERS)))
    replacement = draw(
        weighted((8, st.just(DELETE)), (1, json_values(5)), (1, st.sampled_from([None, "", b"", 0, []])))
    )
    return Malformed(spec, breaks, replacement)


def test_malformed_events(world: World) -> None:
    """Events API Gateway never sends (and JWT-authenticated ones): still the envelope, never a crash."""
    seen = _run_examples(world, malformed_events(), 50)
    assert "200" in seen, seen
    assert len(seen) >= 3, seen


# ------------------------------------------------------------------------------- extreme inputs
def _deep(depth: int, kind: str = "list") -> str:
    return _nested(depth, "1", kind)


EXTREMES: dict[str, Spec | Malformed] = {}


def _extreme(
    name: str, method: str, path: str, body: bytes | str | None, content_type: str | None, **extra: Any
) -> None:
    headers = [("host", "api.example.test"), ("x-api-key", API_KEY)]
    if content_type is not None:
        headers.append(("content-type", content_type))
    headers.extend(extra.pop("headers", []))
    EXTREMES[name] = Spec(
        method,
        path,
        headers,
        extra.pop("query", []),
        extra.pop("raw_query", None),
        body,
        extra.pop("encoding", "gateway"),
    )


for _kind in ("list", "dict"):
    for _depth in (10_000, 100_000):
        _extreme(f"create-nested-{_kind}-{_depth}", "POST", "/api/v1/jobs", _deep(_depth, _kind), "application/json")
        _extreme(f"upload-nested-{_kind}-{_depth}", "POST", "/api/v1/uploads", _deep(_depth, _kind), "application/json")
    # Around the recursion limit: parsing may succeed where re-serialising (or storing) would not.
    for _depth in (400, 800, 900, 950, 980, 990, 995, 999, 1000, 1001, 1100, 10_000):
        _extreme(
            f"feedback-corrections-{_kind}-{_depth}",
            "POST",
            f"/api/v1/jobs/{COMPLETED}/feedback",
            '{"rating": 5, "corrections": ' + _deep(_depth, _kind) + "}",
            "application/json",
        )
_extreme(
    "create-4mb-base64-json",
    "POST",
    "/api/v1/jobs",
    json.dumps(
        {"blueprint": {"file": base64.b64encode(samples.png(extra=b"x" * 4_400_000)).decode(), "format": "png"}}
    ),
    "application/json",
)
_extreme("create-4mb-raw-png", "POST", "/api/v1/jobs", samples.png(extra=os.urandom(16) * 280_000), "image/png")
_extreme("create-6mb-garbage", "POST", "/api/v1/jobs", b"\x89PNG\r\n\x1a\n" + b"\x00" * 6_000_000, "image/png")
_extreme(
    "create-1m-keys",
    "POST",
    "/api/v1/jobs",
    "{" + ",".join(f'"k{i}":0' for i in range(300_000)) + "}",
    "application/json",
)
_extreme(
    "create-huge-int", "POST", "/api/v1/jobs", '{"blueprint": {"file": 1' + "0" * 100_000 + "}}", "application/json"
)
_extreme(
    "upload-huge-size", "POST", "/api/v1/uploads", '{"format": "png", "size": 1' + "0" * 4000 + "}", "application/json"
)
_extreme("list-1mb-query", "GET", "/api/v1/jobs", None, None, query=[("cursor", "A" * 1_000_000)])
_extreme("list-1mb-raw-query", "GET", "/api/v1/jobs", None, None, raw_query="a=" + "%" * 1_000_000)
_extreme("get-100kb-path", "GET", "/api/v1/jobs/" + "a" * 100_000, None, None)
_extreme("many-headers", "GET", "/api/v1/jobs", None, None, headers=[(f"x-h{i}", "v" * 100) for i in range(2000)])
_extreme("huge-correlation-id", "GET", "/health", None, None, headers=[("x-correlation-id", "c" * 1_000_000)])
_extreme("invalid-utf8-json", "POST", "/api/v1/jobs", b'{"blueprint": {"file": "\xff\xfe"}}', "application/json")
_extreme(
    "lone-surrogate-json",
    "POST",
    "/api/v1/jobs",
    '{"blueprint": {"file": "\ud800", "filename": "\udfff"}}',
    "application/json",
    encoding="plain",
)
_extreme(
    "escaped-surrogate-filename",
    "POST",
    "/api/v1/jobs",
    json.dumps({"blueprint": {"file": base64.b64encode(samples.png(extra=b"s")).decode(), "filename": "\ud800.png"}}),
    "application/json",
)
_extreme(
    "escaped-surrogate-comment",
    "POST",
    f"/api/v1/jobs/{COMPLETED}/feedback",
    '{"rating": 3, "comment": "\\ud800", "corrections": {"\\udfff": "\\udbff"}}',
    "application/json",
)
_extreme("surrogate-in-path", "GET", "/api/v1/jobs/\ud800", None, None)
_extreme(
    "surrogate-idempotency-key",
    "POST",
    "/api/v1/uploads",
    '{"format": "png", "size": 5}',
    "application/json",
    headers=[("idempotency-key", "\ud800")],
)
for _header in ("x-api-key", "x-correlation-id", "origin", "content-type", "idempotency-key", "host", "user-agent"):
    _extreme(
        f"surrogate-header-{_header}",
        "POST",
        "/api/v1/uploads",
        '{"format": "png", "size": 5}',
        None,
        headers=[(_header, "\ud800")],
    )
_extreme(
    "surrogate-query-filename",
    "POST",
    "/api/v1/jobs",
    samples.png(extra=b"q"),
    "image/png",
    query=[("filename", "\udfff.png")],
)
_extreme("surrogate-query-list", "GET", "/api/v1/jobs", None, None, query=[("status", "\ud800"), ("cursor", "\ud800")])
_extreme("surrogate-method", "\ud800", "/api/v1/jobs", None, None)
_extreme(
    "nul-everywhere", "POST", "/api/v1/jobs\x00", "\x00", "application/json\x00", headers=[("x-correlation-id", "\x00")]
)

# A JWT's subject becomes the client id (``jwt:<sub>``): the owner key of jobs, uploads and idempotency records.
_CREATE_PNG = json.dumps({"blueprint": {"file": base64.b64encode(samples.png(extra=b"jwt")).decode()}})
for _label, _sub in (("surrogate", "\ud800"), ("3kb", "s" * 3000), ("nul", "\x00"), ("2kb-utf8", "\u00e9" * 1100)):
    for _route, (_method, _path, _body) in {
        "create": ("POST", "/api/v1/jobs", _CREATE_PNG),
        "list": ("GET", "/api/v1/jobs", None),
        "upload": ("POST", "/api/v1/uploads", '{"format": "png", "size": 5}'),
        "get": ("GET", f"/api/v1/jobs/{PENDING}", None),
    }.items():
        _spec = Spec(_method, _path, [("content-type", "application/json")], [], None, _body, "gateway")
        _key = ("requestContext", "authorizer")
        EXTREMES[f"jwt-sub-{_label}-{_route}"] = Malformed(_spec, [(_key, {"jwt": {"claims": {"sub": _sub}}})])
        EXTREMES[f"jwt-sub-{_label}-{_route}-idempotent"] = Malformed(
            Spec(_method, _path, [("idempotency-key", "k-" + _label)], [], None, _body, "gateway"),
            [(_key, {"jwt": {"claims": {"sub": _sub}}})],
        )


def test_extreme_inputs(world: World) -> None:
    """The sizes, depths and code points random generation reaches only rarely, each once (in one test:
    the emulated stack is built once for all of them)."""
    failures = {}
    for name, spec in EXTREMES.items():
        event = spec.event(world)
        try:
            assert_contract_response(event, _call(event))
        except AssertionError as exc:
            failures[name] = str(exc)[:500]
    assert not failures, (sorted(failures), failures)


def test_escaped_surrogate_pairs_are_characters_and_lone_ones_are_refused(world: World) -> None:
    """A lone ``\\ud800`` escape once reached S3's UTF-8 encoder (500); a pair is an ordinary character."""
    path = f"/api/v1/jobs/{world.ids[COMPLETED]}/feedback"
    pair = _call(
        build_event(
            "POST",
            path,
            [("x-api-key", API_KEY), ("content-type", "application/json")],
            b'{"rating": 4, "comment": "\\ud83c\\udfe0 \\\\ud800", "corrections": {"\\u00e9": 1}}',
        )
    )
    document = assert_contract_response(None, pair)
    assert pair["statusCode"] == 201, document
    assert document is not None
    assert document["data"]["comment"] == "\U0001f3e0 \\ud800"  # an escaped backslash is no escape
    for lone in (b'"\\ud800"', b'"\\udfff\\ud800"', b'{"\\ud83c": 1}', b'["a", ["\\udc00x"]]'):
        body = b'{"rating": 4, "comment": "c", "corrections": ' + lone + b"}"
        reply = _call(build_event("POST", path, [("x-api-key", API_KEY), ("content-type", "application/json")], body))
        document = assert_contract_response(None, reply)
        assert reply["statusCode"] == 400, (lone, document)
        assert document is not None
        assert document["error"]["code"] == "INVALID_REQUEST"


class _Lines(logging.Handler):
    """Formats every record of the project's loggers as the Lambda would print it."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


#: Requests whose path, method or headers carry a lone surrogate (API Gateway hands the Lambda JSON; a
#: ``"\ud800"`` escape in it is a lone surrogate in Python).
SURROGATE_REQUESTS = ("surrogate-in-path", "surrogate-method", "surrogate-header-origin", "surrogate-header-user-agent")


def test_every_log_line_of_a_hostile_request_can_be_written(world: World) -> None:
    lines = _Lines()
    root = logging.getLogger(LOGGER_NAME)
    root.addHandler(lines)
    try:
        for name in SURROGATE_REQUESTS:
            event = EXTREMES[name].event(world)
            assert_contract_response(event, _call(event))
    finally:
        root.removeHandler(lines)
    assert any("request completed" in line for line in lines.lines)
    unwritable = []
    for line in lines.lines:
        try:
            line.encode("utf-8")  # what sys.stdout (UTF-8, strict) does with it in Lambda
        except UnicodeEncodeError:
            unwritable.append(line[:300])
    assert not unwritable, unwritable
