"""Who is calling: API keys from Secrets Manager, or the ``sub`` of a JWT API Gateway already verified.

The secret ``location-detection/{env}/api-keys`` holds only SHA-256 hashes of keys:

    {"keys": {"<sha256 hex of the key>": {"client_id": "cli_...", "name": "web frontend", "created_at": "..."}},
     "cursor_signing_key": "<hex>"}

A presented key is hashed and compared with every stored hash in constant time (``hmac.compare_digest``,
no early exit), so neither a wrong key nor a near miss answers faster. The secret is read through the
five-minute cache of ``utils.secrets``: a revoked key stops working within five minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from typing import Any

from utils.errors import ConfigurationError, Unauthorized

KEY_PREFIX = "ldk_"
MAX_KEY_CHARS = 256


class Client:
    """The caller (a plain class rather than a dataclass: cheaper at each cold start)."""

    __slots__ = ("client_id", "method", "name")

    def __init__(self, client_id: str, name: str = "", method: str = "api_key") -> None:
        self.client_id = client_id
        self.name = name
        #: ``api_key`` or ``jwt``.
        self.method = method


class Authenticator:
    """Who a request comes from, given what it presented; the secret is read through ``read_secret``
    (``utils.secrets``' five-minute cache) and only when a key must be checked."""

    def __init__(self, read_secret: Callable[[], dict[str, Any]], cursor_fallback: str | None) -> None:
        """``cursor_fallback``: what the cursor signing key is derived from when the secret has none (the
        environment and the secret's name; None in prod, where a missing key fails closed)."""
        self._read_secret = read_secret
        self.cursor_fallback = cursor_fallback

    def authenticate(self, api_key: str | None, jwt_claims: dict[str, Any]) -> Client:
        """The caller: a JWT's subject when API Gateway verified one, else the owner of ``api_key``."""
        from_jwt = client_from_jwt(jwt_claims)
        if from_jwt is not None:
            return from_jwt
        if not api_key:  # no need to read the secret to refuse
            raise Unauthorized("An API key is required in the X-API-Key header")
        keys = self._read_secret().get("keys")
        return client_from_api_key(api_key, keys if isinstance(keys, dict) else {})

    def cursor_key(self) -> bytes:
        """The key list cursors are signed with."""
        return cursor_signing_key(self._read_secret(), self.cursor_fallback)


def new_api_key() -> str:
    """A fresh key: ``ldk_`` and 256 random bits (shown once; only its hash is ever stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    # surrogatepass: a header can carry a lone surrogate (never in a real key); it must hash, not raise.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def client_from_api_key(presented: str | None, keys: dict[str, Any]) -> Client:
    """The client owning ``presented`` among ``keys`` (the secret's ``keys`` map), or ``Unauthorized``."""
    if not presented:
        raise Unauthorized("An API key is required in the X-API-Key header")
    if len(presented) > MAX_KEY_CHARS:
        raise Unauthorized("The API key is not valid")
    candidate = hash_key(presented).encode()
    found: dict[str, Any] | None = None
    for stored_hash, entry in keys.items():
        # Every entry is compared, whatever matched before: the time taken does not depend on the key.
        if hmac.compare_digest(candidate, str(stored_hash).encode()) and isinstance(entry, dict):
            found = entry
    if found is None or not isinstance(found.get("client_id"), str) or not found["client_id"]:
        raise Unauthorized("The API key is not valid")
    return Client(client_id=found["client_id"], name=str(found.get("name", "")))


def client_from_jwt(claims: dict[str, Any]) -> Client | None:
    """The caller named by a JWT that API Gateway's authorizer verified (``requestContext.authorizer.jwt``).

    The subject becomes the client id, which keys the client's jobs (the owner index), uploads and
    Idempotency-Key records, so it must be a usable key: OpenID Connect Core 1.0 (section 2) caps ``sub``
    at 255 ASCII characters. Anything else (a 3 KB subject would exceed DynamoDB's 2048-byte index key, a
    lone surrogate cannot be encoded at all) is refused with 401, not stored.
    """
    subject = claims.get("sub")
    if isinstance(subject, str) and subject:
        if not _SUBJECT.fullmatch(subject):
            raise Unauthorized("The token's subject (sub) must be 1 to 255 printable ASCII characters")
        return Client(client_id=f"jwt:{subject}", name=str(claims.get("name", "")), method="jwt")
    return None


_SUBJECT = re.compile(r"[\x20-\x7e]{1,255}")


#: The shortest cursor-signing key accepted (a generated one has 64 characters).
MIN_CURSOR_KEY_CHARS = 32


class CursorKeyMissing(ConfigurationError):
    def __init__(self) -> None:
        super().__init__("the API keys secret has no cursor_signing_key (python -m ops keys cursor-key adds one)")


def has_cursor_key(secret: dict[str, Any]) -> bool:
    configured = secret.get("cursor_signing_key")
    return isinstance(configured, str) and len(configured) >= MIN_CURSOR_KEY_CHARS


def cursor_signing_key(secret: dict[str, Any], fallback: str | None) -> bytes:
    """The key cursors are signed with: the secret's ``cursor_signing_key``; without one, a key derived
    from ``fallback`` (the environment and secret name: public, so dev only), or, with no fallback (prod),
    ``CursorKeyMissing``: listing fails closed rather than sign with a key anyone can derive."""
    if has_cursor_key(secret):
        return str(secret["cursor_signing_key"]).encode()
    if fallback is None:
        raise CursorKeyMissing
    return hashlib.sha256(f"location-detection-cursor:{fallback}".encode()).digest()
