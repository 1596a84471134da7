"""Parsing of request bodies into the service's inputs. Knows bodies and headers, not storage.

``POST /api/v1/jobs`` takes a file four ways: JSON with base64 or a data URL, JSON naming a finished
upload, ``multipart/form-data`` with a ``file`` part, or the raw file with its own Content-Type.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dateutil.parser import isoparse

from api.http import Request
from api.media_types import CREATE_MEDIA_TYPES, MULTIPART, RAW_MEDIA_TYPES, is_json, media_type_of
from models.errors import FileTooLarge
from models.job import JobStatus
from services.blueprints import FORMATS_BY_CONTENT_TYPE
from services.feedback_service import Feedback
from services.job_creation import BlueprintFile
from services.job_listing import ListQuery
from utils.errors import InvalidRequest, UnsupportedMediaType

_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.ASCII | re.IGNORECASE)
#: Part content types that declare nothing about the file (curl's default for unknown extensions).
_UNDECLARED_PART_TYPES = ("", "application/octet-stream")
_WHITESPACE = re.compile(rb"\s+")
#: What only the general decoding path handles: whitespace (line-wrapped base64) and the URL-safe alphabet.
_NOT_PLAIN = re.compile(r"[\s_-]")
MAX_FILENAME_CHARS = 1024
MAX_COMMENT_CHARS = 2000
MAX_CORRECTIONS_BYTES = 64 * 1024


@dataclass(frozen=True)
class UploadReference:
    """``{"blueprint": {"upload_id": ...}}``: create the job from a finished upload."""

    upload_id: str


# ------------------------------------------------------------------------------------ POST /api/v1/jobs
def parse_create_job(request: Request, max_bytes: int) -> BlueprintFile | UploadReference:
    media_type = media_type_of(request, "POST /api/v1/jobs", CREATE_MEDIA_TYPES)
    _query_filename(request)  # the document's limit holds whatever the body (it is used for raw bodies)
    if not media_type or is_json(media_type):
        return _create_from_json(request, max_bytes)
    if media_type == MULTIPART:
        return _create_from_multipart(request, max_bytes)
    if media_type in RAW_MEDIA_TYPES:
        return _create_from_raw(request, media_type, max_bytes)
    raise UnsupportedMediaType(
        "POST /api/v1/jobs takes application/json, multipart/form-data, image/png, image/jpeg or application/pdf",
        details={"received_content_type": media_type[:100], "supported_content_types": CREATE_MEDIA_TYPES},
    )


def _create_from_json(request: Request, max_bytes: int) -> BlueprintFile | UploadReference:
    body = _object(request.json_body(), "body", {"blueprint"}, required={"blueprint"})
    fields = _object(body["blueprint"], "blueprint", {"file", "format", "filename", "upload_id"}, required=set())
    if "upload_id" in fields:
        if set(fields) != {"upload_id"}:
            raise InvalidRequest(
                "blueprint.upload_id goes alone: the upload already has its file, format and name",
                details={"field": "blueprint.upload_id"},
            )
        return UploadReference(_string(fields, "upload_id", 64, required=True, parent="blueprint") or "")
    if "file" not in fields:
        raise InvalidRequest("Missing required field: blueprint.file", details={"field": "blueprint.file"})
    declared = _string(fields, "format", 32, parent="blueprint")
    filename = _string(fields, "filename", MAX_FILENAME_CHARS, parent="blueprint")
    file_value = fields["file"]
    if not isinstance(file_value, str):
        raise InvalidRequest("blueprint.file must be a base64 string", details={"field": "blueprint.file"})
    content, data_url_format = decode_file(file_value, max_bytes)
    return BlueprintFile(content=content, declared_format=declared or data_url_format, filename=filename)


def _create_from_multipart(request: Request, max_bytes: int) -> BlueprintFile:
    parts = request.form()
    files = [p for p in parts if p.name == "file"]
    unknown = sorted({p.name for p in parts} - {"file", "format", "filename"})
    if unknown:
        raise InvalidRequest(
            f"Unknown form field: {unknown[0][:64]}",
            details={"field": unknown[0][:64], "allowed_fields": ["file", "filename", "format"]},
        )
    if len(files) != 1:
        raise InvalidRequest("The form needs exactly one 'file' part", details={"field": "file"})
    texts = {p.name: p.text() for p in parts if p.name != "file"}
    part = files[0]
    if len(part.data) > max_bytes:
        raise FileTooLarge(max_bytes)
    declared = texts.get("format") or _format_of_part_type(part.content_type)
    filename = texts.get("filename") or part.filename
    if filename is not None and len(filename) > MAX_FILENAME_CHARS:
        raise InvalidRequest(f"filename is longer than {MAX_FILENAME_CHARS} characters", details={"field": "filename"})
    return BlueprintFile(content=part.data, declared_format=declared, filename=filename)


def _format_of_part_type(content_type: str | None) -> str | None:
    media = (content_type or "").lower()
    if media in _UNDECLARED_PART_TYPES or not media.startswith(("image/", "application/pdf")):
        return None
    return FORMATS_BY_CONTENT_TYPE.get(media, media.rsplit("/", 1)[-1])


def _create_from_raw(request: Request, media_type: str, max_bytes: int) -> BlueprintFile:
    content = request.body
    if len(content) > max_bytes:
        raise FileTooLarge(max_bytes)
    return BlueprintFile(
        content=content, declared_format=RAW_MEDIA_TYPES[media_type], filename=_query_filename(request)
    )


def _query_filename(request: Request) -> str | None:
    filename = request.query.get("filename")
    if filename is not None and len(filename) > MAX_FILENAME_CHARS:
        raise InvalidRequest(f"filename is longer than {MAX_FILENAME_CHARS} characters", details={"field": "filename"})
    return filename


def decode_file(value: str, max_bytes: int) -> tuple[bytes, str | None]:
    """Decode base64 or a ``data:`` URL; returns the bytes and the data URL's format (if it names one)."""
    declared: str | None = None
    match = _DATA_URL.match(value)
    if match:
        mime = (match.group("mime") or "").lower()
        declared = FORMATS_BY_CONTENT_TYPE.get(mime, mime.rsplit("/", 1)[-1] or None)
        value = value[match.end() :]
    elif value[:5].lower() == "data:":
        raise InvalidRequest("blueprint.file data URLs must be base64-encoded", details={"field": "blueprint.file"})
    # Plain padded base64 (what clients send): binascii reads the str in place, no bytes copies of it
    # (the file twice at the peak, not four times). The same check as b64decode(validate=True).
    plain = len(value) % 4 == 0 and not _NOT_PLAIN.search(value)
    encoded: str | bytes = value if plain else _normalised_base64(value)
    if (len(encoded) // 4) * 3 > max_bytes + 3:  # 4 base64 characters carry 3 bytes: refuse before decoding
        raise FileTooLarge(max_bytes)
    try:
        content = binascii.a2b_base64(encoded, strict_mode=True) if plain else base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("blueprint.file is not valid base64", details={"field": "blueprint.file"}) from None
    return content, declared


def _normalised_base64(value: str) -> bytes:
    """Line-wrapped, URL-safe or unpadded base64 as plain padded base64."""
    encoded = _WHITESPACE.sub(b"", value.encode("ascii", errors="replace"))
    if b"-" in encoded or b"_" in encoded:
        encoded = encoded.translate(bytes.maketrans(b"-_", b"+/"))
    return encoded + b"=" * (-len(encoded) % 4)


# --------------------------------------------------------------------------------- POST /api/v1/uploads
class UploadRequest:
    __slots__ = ("filename", "format", "size")

    def __init__(self, *, filename: str | None, format: str, size: int) -> None:  # noqa: A002 - the field's name
        self.filename = filename
        self.format = format
        self.size = size


def parse_upload_request(request: Request) -> UploadRequest:
    _require_json(request, "POST /api/v1/uploads")
    body = _object(request.json_body(), "body", {"filename", "format", "size"}, required={"format", "size"})
    size = _integer(body["size"])
    if size is None:
        raise InvalidRequest("size must be an integer number of bytes", details={"field": "size"})
    return UploadRequest(
        filename=_string(body, "filename", MAX_FILENAME_CHARS),
        format=_string(body, "format", 32, required=True) or "",
        size=size,
    )


# ---------------------------------------------------------------------- POST /api/v1/jobs/{id}/feedback
def parse_feedback(request: Request) -> Feedback:
    _require_json(request, "POST /api/v1/jobs/{job_id}/feedback")
    body = _object(request.json_body(), "body", {"rating", "comment", "corrections"}, required={"rating"})
    rating = _integer(body["rating"])
    if rating is None or not 1 <= rating <= 5:
        raise InvalidRequest("rating must be an integer from 1 to 5", details={"field": "rating"})
    comment = _string(body, "comment", MAX_COMMENT_CHARS) or ""
    corrections = body.get("corrections")
    # Measured as stored: compact UTF-8 JSON (ASCII escapes of non-ASCII characters would inflate it).
    if len(json.dumps(corrections, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_CORRECTIONS_BYTES:
        raise InvalidRequest("corrections must be at most 64 KB of JSON", details={"field": "corrections"})
    return Feedback(rating=rating, comment=comment, corrections=corrections)


# ------------------------------------------------------------------------------------ GET /api/v1/jobs
LIST_STATUSES = tuple(status.value for status in JobStatus)
_SMALL_INT = re.compile(r"[0-9]{1,3}")
#: RFC 3339 date-times, or plain dates (midnight UTC); nothing else that ISO 8601 parsers would take.
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)


def parse_list_query(request: Request, default_limit: int) -> ListQuery:
    """``?limit=1..100&cursor=&status=&created_after=&created_before=`` (ISO 8601; no zone means UTC)."""
    query = request.query
    limit = default_limit
    if "limit" in query:
        raw = query["limit"]
        if not _SMALL_INT.fullmatch(raw) or not 1 <= int(raw) <= 100:
            raise InvalidRequest("limit must be an integer from 1 to 100", details={"field": "limit"})
        limit = int(raw)
    status = query.get("status")
    if status is not None and status not in LIST_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(LIST_STATUSES)}", details={"field": "status"})
    cursor = query.get("cursor")
    if cursor is not None and not cursor:
        raise InvalidRequest("cursor must not be empty", details={"field": "cursor"})
    return ListQuery(
        limit=limit,
        cursor=cursor,
        status=status,
        created_after=_timestamp(query, "created_after"),
        created_before=_timestamp(query, "created_before"),
    )


def _timestamp(query: dict[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        if not _DATE_TIME.fullmatch(raw):
            raise ValueError(raw)
        moment = isoparse(raw)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{name} must be an ISO 8601 date-time", details={"field": name}) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not _EARLIEST <= moment <= _LATEST:
        raise InvalidRequest(f"{name} must be between 1970 and 9998", details={"field": name})
    return moment


_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9998, 12, 31, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ helpers
def _integer(value: Any) -> int | None:
    """A JSON integer: ``4`` or ``4.0`` (JSON has one number type); not ``true``, ``4.5`` or ``"4"``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _require_json(request: Request, route: str) -> None:
    media_type = media_type_of(request, route, ["application/json"])
    if media_type and not is_json(media_type):
        raise UnsupportedMediaType(
            f"{route} takes application/json",
            details={"received_content_type": media_type, "supported_content_types": ["application/json"]},
        )


def _object(value: Any, name: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{name} must be a JSON object", details={"field": name})
    unknown = sorted(set(value) - allowed)
    if unknown:
        field = _field_path(name, unknown[0][:64])
        raise InvalidRequest(f"Unknown field: {field}", details={"field": field, "allowed_fields": sorted(allowed)})
    missing = sorted(required - set(value))
    if missing:
        field = _field_path(name, missing[0])
        raise InvalidRequest(f"Missing required field: {field}", details={"field": field})
    return value


def _field_path(parent: str, key: str) -> str:
    """``blueprint.file``; top-level fields are named alone (``blueprint``)."""
    return key if parent == "body" else f"{parent}.{key}"


def _string(
    fields: dict[str, Any], key: str, max_chars: int, *, required: bool = False, parent: str = "body"
) -> str | None:
    value = fields.get(key)
    field = _field_path(parent, key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > max_chars or (required and not value):
        raise InvalidRequest(f"{field} must be a string of at most {max_chars} characters", details={"field": field})
    return value
