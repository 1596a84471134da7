"""``python -m ops keys create|list|revoke|cursor-key|restore-previous``: manage the environment's secret.

A new key is printed once and never stored: the secret keeps only its SHA-256 (see src/services/auth.py).
The Lambda caches the secret for five minutes, so a new key works, and a revoked key stops working,
within five minutes. Two operators editing keys at the same moment may lose one edit (read-modify-write
of one secret): re-run ``keys list`` to check.

The same secret holds ``cursor_signing_key``, the HMAC key list cursors are signed with. A stack created
from today's template generates it (``GenerateSecretString``); ``keys cursor-key`` adds one to a secret
made before that. The first deploy of that template change makes CloudFormation mint a whole new value
(``{"keys": {}, "cursor_signing_key": ...}``: it regenerates whenever ``GenerateSecretString`` changes), and
the clients' keys are then only in the secret's previous version: ``keys restore-previous`` merges them
back (docs/runbook.md).
"""

from __future__ import annotations

import json
import secrets as random_tokens
from typing import Any

import boto3

from services.auth import hash_key, new_api_key
from utils.clock import iso_utc, wall_time


def _client() -> Any:
    return boto3.client("secretsmanager")


#: The secret's field for the cursor-signing key; 64 hex characters (256 bits) when generated here.
CURSOR_KEY_FIELD = "cursor_signing_key"
MIN_CURSOR_KEY_CHARS = 32


def _read(secret_name: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    value = json.loads(_client().get_secret_value(SecretId=secret_name, VersionStage=stage)["SecretString"])
    if not isinstance(value, dict):
        raise ValueError(f"secret {secret_name} is not a JSON object")
    value.setdefault("keys", {})
    return value


def _write(secret_name: str, document: dict[str, Any]) -> None:
    _client().put_secret_value(SecretId=secret_name, SecretString=json.dumps(document))


def create_key(secret_name: str, name: str, client_id: str | None = None) -> dict[str, str]:
    """Add a key (a new client unless ``client_id`` names an existing one: a second key, for rotation)."""
    document = _read(secret_name)
    key = new_api_key()
    client = client_id or f"cli_{random_tokens.token_hex(8)}"
    document["keys"][hash_key(key)] = {"client_id": client, "name": name, "created_at": iso_utc(wall_time())}
    _write(secret_name, document)
    return {"api_key": key, "client_id": client, "name": name}


def list_keys(secret_name: str) -> list[dict[str, str]]:
    """Every key's client, name, creation time and hash prefix (the keys themselves are not stored)."""
    return [
        {"key_hash": digest[:12], **{k: str(v) for k, v in entry.items()}}
        for digest, entry in sorted(_read(secret_name)["keys"].items(), key=lambda item: str(item[1]))
    ]


def revoke(secret_name: str, client_id: str | None = None, key_hash: str | None = None) -> int:
    """Remove every key of ``client_id``, or the key whose hash starts with ``key_hash``; returns how many."""
    if not client_id and not key_hash:
        raise ValueError("revoke needs --client-id or --key-hash")
    document = _read(secret_name)
    kept = {
        digest: entry
        for digest, entry in document["keys"].items()
        if not ((client_id and entry.get("client_id") == client_id) or (key_hash and digest.startswith(key_hash)))
    }
    removed = len(document["keys"]) - len(kept)
    if removed:
        document["keys"] = kept
        _write(secret_name, document)
    return removed


def ensure_cursor_key(secret_name: str, rotate: bool = False) -> dict[str, str]:
    """Give the secret a random cursor-signing key if it has none (or ``rotate``: a new one, which makes
    every cursor issued before it invalid); the key itself is never printed."""
    document = _read(secret_name)
    present = len(str(document.get(CURSOR_KEY_FIELD) or "")) >= MIN_CURSOR_KEY_CHARS
    if present and not rotate:
        return {CURSOR_KEY_FIELD: "present"}
    document[CURSOR_KEY_FIELD] = random_tokens.token_hex(32)
    _write(secret_name, document)
    return {CURSOR_KEY_FIELD: "rotated" if present else "created"}


def restore_previous(secret_name: str) -> dict[str, int]:
    """Merge the keys of the secret's previous version (AWSPREVIOUS) into the current one; a key in both
    keeps its current entry, and the current cursor-signing key stays. Returns how many were restored."""
    document = _read(secret_name)
    previous = _read(secret_name, stage="AWSPREVIOUS")
    missing = {digest: entry for digest, entry in previous["keys"].items() if digest not in document["keys"]}
    if missing:
        document["keys"].update(missing)
        _write(secret_name, document)
    return {"restored": len(missing)}
