"""The media types the routes take, and the one reading of a request's Content-Type."""

from __future__ import annotations

import re

from api.http import Request
from services.blueprints import CONTENT_TYPES, FORMATS_BY_CONTENT_TYPE
from utils.errors import UnsupportedMediaType

JSON_MEDIA_TYPES = ("application/json",)
MULTIPART = "multipart/form-data"
#: Raw bodies: the file itself, its Content-Type declaring the format.
RAW_MEDIA_TYPES = FORMATS_BY_CONTENT_TYPE
CREATE_MEDIA_TYPES = ["application/json", MULTIPART, *CONTENT_TYPES.values()]
#: ``type/subtype`` with RFC 9110 token characters: anything else in a Content-Type is not a media type.
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")


def is_json(media_type: str) -> bool:
    return media_type in JSON_MEDIA_TYPES or (media_type.startswith("application/") and media_type.endswith("+json"))


def media_type_of(request: Request, route: str, supported: list[str]) -> str:
    """The request's media type, ``""`` when it sent no Content-Type at all (then JSON is assumed); 415
    when it sent one that is empty or not ``type/subtype`` (``;;;`` is not JSON by default)."""
    if request.header("content-type") is None:
        return ""
    media_type = request.media_type
    if not _MEDIA_TYPE.fullmatch(media_type):
        raise UnsupportedMediaType(
            f"The Content-Type is not a media type; {route} takes {', '.join(supported)}",
            details={"received_content_type": media_type, "supported_content_types": supported},
        )
    return media_type
