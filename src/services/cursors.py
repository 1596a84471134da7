"""Opaque list cursors: our own encoding of DynamoDB's last evaluated key, bound to client and query.

``base64url(json{"k": key, "c": client, "q": query}) "." base64url(hmac-sha256[:16])``. The signature
covers the client and a fingerprint of the query (status and date filters), so a cursor is good only for
the client it was issued to and the query it continues; anything else — forged, altered, truncated,
another client's, another query's — is 400 ``INVALID_CURSOR``, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from utils.errors import InvalidCursor

MAX_CURSOR_CHARS = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def query_fingerprint(query: dict[str, Any]) -> str:
    canonical = json.dumps(query, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def encode_cursor(last_key: dict[str, Any], client_id: str, fingerprint: str, key: bytes) -> str:
    payload = json.dumps({"k": last_key, "c": client_id, "q": fingerprint}, separators=(",", ":")).encode()
    signature = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(signature)}"


def decode_cursor(cursor: str, client_id: str, fingerprint: str, key: bytes) -> dict[str, Any]:
    """The last key a cursor carries, if this API issued it to this client for this query."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
            raise ValueError("shape")
        payload_text, signature_text = cursor.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
        expected = hmac.new(key, payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(signature, expected):
            raise ValueError("signature")
        document = json.loads(payload)
        if document.get("c") != client_id or document.get("q") != fingerprint:
            raise ValueError("binding")
        last_key = document.get("k")
        if not isinstance(last_key, dict) or not all(isinstance(v, str) for v in last_key.values()):
            raise ValueError("key")
    except (ValueError, binascii.Error, UnicodeDecodeError, AttributeError):
        raise InvalidCursor(details={"field": "cursor"}) from None
    return last_key
