"""boto3 clients: created lazily on first use, once per container, shared by every request.

Import stays cheap (no client is built at import time, which is what keeps cold starts near the floor of
``import boto3``). botocore's retries are off: ``utils.retry`` is the one retry layer and it knows the
Lambda's deadline. Timeouts are short so that a hung connection fails inside the API Gateway budget.
``AWS_ENDPOINT_URL`` (read by boto3 itself) points every client at moto or LocalStack unchanged.
Tests and the local server may install their own clients with ``set_client``.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 10

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_session: boto3.session.Session | None = None


def client_config(**overrides: Any) -> Config:
    return Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        **overrides,
    )


def get_client(service: str) -> Any:
    """The container's client for ``service`` (``dynamodb``, ``s3``, ``ssm``, ``secretsmanager``)."""
    client = _clients.get(service)
    if client is not None:
        return client
    with _lock:  # boto3 sessions are not thread-safe; the local server calls the handler from threads
        client = _clients.get(service)
        if client is None:
            global _session
            if _session is None:
                _session = boto3.session.Session()
            extra = {"signature_version": "s3v4"} if service == "s3" else {}
            client = _session.client(service, config=client_config(**extra))  # type: ignore[call-overload]
            _clients[service] = client
        return client


def current_session() -> boto3.session.Session | None:
    """The session the clients are built from, once one exists (the local server adds event handlers)."""
    return _session


def set_client(service: str, client: Any) -> None:
    with _lock:
        _clients[service] = client


def reset_clients() -> None:
    """Forget every client (tests use this between emulated accounts). The session, which only caches
    service models, is kept: building clients from it again is cheap."""
    with _lock:
        _clients.clear()
