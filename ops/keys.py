"""``python -m ops keys create|list|revoke``: manage client API keys in the environment's secret.

A new key is printed once and never stored: the secret keeps only its SHA-256 (see src/services/auth.py).
The Lambda caches the secret for five minutes, so a new key works, and a revoked key stops working,
within five minutes. Two operators editing keys at the same moment may lose one edit (read-modify-write
of one secret): re-run ``keys list`` to check.
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


def _read(secret_name: str) -> dict[str, Any]:
    value = json.loads(_client().get_secret_value(SecretId=secret_name)["SecretString"])
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
