"""Structured logs: one JSON object per line on stdout (CloudWatch Logs keeps each as one event).

Request context (request_id, correlation_id, aws_request_id, job_id, route) is bound once per request
with ``bind`` and cleared with ``clear`` after it, like Powertools' ``append_keys``/``clear_state``; it
lives in a ``ContextVar`` so concurrent requests of the local server never see each other's fields.
Never pass file contents, API keys or secret values to a logger.

Metrics are log lines too: ``utils.metrics`` writes each CloudWatch Embedded Metric Format document
through the ``location_detection.metrics`` child logger, whose ``extra`` members (``_aws``, dimensions,
values) land at the top level of the line beside the request context. That logger is pinned at INFO,
so ``LOG_LEVEL`` never silences metrics, and it shares the handlers: redirect the logs (as the ``ops``
CLI does) and the metrics follow.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "location_detection"

_context: ContextVar[dict[str, Any] | None] = ContextVar("log_context", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged as a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_CONTEXT_FIELDS = ("request_id", "correlation_id", "aws_request_id", "job_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        context = _context.get() or {}
        for field in _CONTEXT_FIELDS:
            entry[field] = context.get(field)
        entry.update({k: v for k, v in context.items() if k not in entry})
        entry.update({k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES})
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info))
        line = json.dumps(entry, default=str, ensure_ascii=False)
        if not line.isascii():
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate from the request: keep the line, escaped
                line = json.dumps(entry, default=str)
        return line


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time (test capture and the local server swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def get_logger(name: str | None = None) -> logging.Logger:
    """A logger under the project's root logger (configured on first use)."""
    root = logging.getLogger(LOGGER_NAME)
    if not root.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        # The Lambda runtime puts its own handler on the root logger; ours must not print twice.
        root.propagate = False
    return root.getChild(name) if name else root


def set_level(level: str) -> None:
    """Set the level from ``LOG_LEVEL`` (unknown names fall back to INFO rather than crash)."""
    resolved = logging.getLevelName(level.upper())
    get_logger().setLevel(resolved if isinstance(resolved, int) else logging.INFO)


def bind(**fields: Any) -> None:
    """Add fields to every log line of the current request."""
    _context.set({**(_context.get() or {}), **fields})


def clear() -> None:
    _context.set(None)


def bound(field: str) -> Any:
    return (_context.get() or {}).get(field)
