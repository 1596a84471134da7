"""Parsing of request bodies into the service's inputs. Knows bodies and headers, not storage."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from api.http import Request
from services.blueprints import CONTENT_TYPES
from services.job_service import BlueprintFile
from utils.errors import FileTooLarge, InvalidRequest, UnsupportedMediaType

JSON_MEDIA_TYPES = ("application/json",)
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.ASCII)
_MIME_FORMATS = {mime: fmt for fmt, mime in CONTENT_TYPES.items()} | {"image/jpg": "jpg", "image/pjpeg": "jpg"}
_WHITESPACE = re.compile(rb"\s+")
_CREATE_FIELDS = {"blueprint"}
_BLUEPRINT_FIELDS = {"file", "format", "filename"}
MAX_FILENAME_CHARS = 1024


def is_json(media_type: str) -> bool:
    return media_type in JSON_MEDIA_TYPES or (media_type.startswith("application/") and media_type.endswith("+json"))


def parse_create_job(request: Request, max_bytes: int) -> BlueprintFile:
    """``{"blueprint": {"file": base64 or data URL, "format": ..., "filename": ...}}`` -> ``BlueprintFile``."""
    media_type = request.media_type
    if media_type and not is_json(media_type):
        raise UnsupportedMediaType(
            "POST /api/v1/jobs takes application/json",
            details={"received_content_type": media_type[:100], "supported_content_types": ["application/json"]},
        )
    body = request.json_body()
    blueprint = _object(body, "body", _CREATE_FIELDS, required={"blueprint"})["blueprint"]
    fields = _object(blueprint, "blueprint", _BLUEPRINT_FIELDS, required={"file"})
    declared = _optional_string(fields, "format", 32)
    filename = _optional_string(fields, "filename", MAX_FILENAME_CHARS)
    file_value = fields["file"]
    if not isinstance(file_value, str):
        raise InvalidRequest("blueprint.file must be a base64 string", details={"field": "blueprint.file"})
    content, data_url_format = decode_file(file_value, max_bytes)
    return BlueprintFile(content=content, declared_format=declared or data_url_format, filename=filename)


def decode_file(value: str, max_bytes: int) -> tuple[bytes, str | None]:
    """Decode base64 or a ``data:`` URL; returns the bytes and the data URL's format (if it names one)."""
    declared: str | None = None
    match = _DATA_URL.match(value)
    if match:
        mime = (match.group("mime") or "").lower()
        declared = _MIME_FORMATS.get(mime, mime.rsplit("/", 1)[-1] or None)
        value = value[match.end() :]
    elif value.startswith("data:"):
        raise InvalidRequest("blueprint.file data URLs must be base64-encoded", details={"field": "blueprint.file"})
    encoded = _WHITESPACE.sub(b"", value.encode("ascii", errors="replace"))
    # Refuse before decoding: 4 base64 characters carry 3 bytes.
    if (len(encoded) // 4) * 3 > max_bytes + 3:
        raise FileTooLarge(max_bytes)
    if b"-" in encoded or b"_" in encoded:
        encoded = encoded.translate(bytes.maketrans(b"-_", b"+/"))
    encoded += b"=" * (-len(encoded) % 4)
    try:
        content = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("blueprint.file is not valid base64", details={"field": "blueprint.file"}) from None
    return content, declared


def _object(value: Any, name: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{name} must be a JSON object", details={"field": name})
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidRequest(
            f"Unknown field: {_field_path(name, unknown[0][:64])}",
            details={"field": _field_path(name, unknown[0][:64]), "allowed_fields": sorted(allowed)},
        )
    missing = sorted(required - set(value))
    if missing:
        field = _field_path(name, missing[0])
        raise InvalidRequest(f"Missing required field: {field}", details={"field": field})
    return value


def _field_path(parent: str, key: str) -> str:
    """``blueprint.file``; top-level fields are named alone (``blueprint``)."""
    return key if parent == "body" else f"{parent}.{key}"


def _optional_string(fields: dict[str, Any], key: str, max_chars: int) -> str | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_chars:
        raise InvalidRequest(
            f"blueprint.{key} must be a string of at most {max_chars} characters", details={"field": f"blueprint.{key}"}
        )
    return value
