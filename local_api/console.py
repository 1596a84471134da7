"""What the local API prints while it serves, for a person at a terminal (development only).

The Lambda logs one JSON object per line (``utils.logging``), which CloudWatch wants and a person does not.
When stdout is a terminal, ``make run`` puts ``HumanFormatter`` on the project's log handler instead: one
short line per request, coloured by status::

    12:03:04  POST    /api/v1/jobs                201   38 ms  job_20261202T120304_0f3a9c1d2b7e4f60
    12:03:09  GET     /api/v1/jobs/{job_id}       404    6 ms  job_20261202T120309_77aa01c3d4e5f6a7  JOB_NOT_FOUND

and other log lines (warnings, errors) as ``time LEVEL logger: message key=value``, with a traceback when
there is one. Metric documents (EMF) are not shown: they are for CloudWatch. ``LOG_FORMAT=json`` keeps
the Lambda's own lines (what a non-terminal gets: tests, CI, a pipe into ``jq``); ``NO_COLOR`` drops the
colours (no-color.org). The deployed Lambda never imports this module: its lines are unchanged.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any, TextIO

from utils import logging as log

LOG_FORMATS = ("auto", "human", "json")
#: The logger ``utils.metrics`` writes its EMF documents through.
METRICS_LOGGER = f"{log.LOGGER_NAME}.metrics"
#: The request's path as the client sent it (without the query), set by the local server for the line.
request_path: ContextVar[str | None] = ContextVar("request_path", default=None)

_RESET = "\033[0m"
_STYLES = {"bold": "\033[1m", "dim": "\033[2m", "red": "\033[31m", "green": "\033[32m", "yellow": "\033[33m"}
_STATUS_COLOURS = {2: "green", 3: "dim", 4: "yellow", 5: "red"}
_LEVEL_COLOURS = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "red"}
_LEVEL_NAMES = {"WARNING": "WARN", "CRITICAL": "CRIT"}
#: Fields of a record that are not worth a person's attention on a one-line summary.
_QUIET_FIELDS = frozenset({"request_id", "correlation_id", "aws_request_id", "api_gateway_request_id", "cold_start"})
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_PATH_WIDTH = 34


def choose(setting: str | None, stream: TextIO) -> str:
    """``human`` or ``json`` for ``LOG_FORMAT`` (``auto``/unset: human on a terminal, JSON otherwise)."""
    value = (setting or "auto").strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {setting!r}")
    if value == "auto":
        return "human" if _is_terminal(stream) else "json"
    return value


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def not_metrics(record: logging.LogRecord) -> bool:
    """A handler filter: drops metric documents (a console shows no EMF)."""
    return record.name != METRICS_LOGGER


class HumanFormatter(logging.Formatter):
    """One short line per record; requests as ``time METHOD path status latency job error``."""

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def paint(self, text: str, style: str | None) -> str:
        return f"{_STYLES[style]}{text}{_RESET}" if self.colour and style else text

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
        if record.getMessage() == "request completed" and "status" in fields:
            return f"{self.paint(clock, 'dim')}  {self.request_line(fields)}"
        return f"{self.paint(clock, 'dim')}  {self.other_line(record, fields)}"

    def request_line(self, fields: dict[str, Any]) -> str:
        status = int(fields.get("status") or 0)
        route = str(fields.get("route") or "")
        method = str(fields.get("method") or route.partition(" ")[0] or "-")
        job_id = log.bound("job_id")
        path = request_path.get() or route.partition(" ")[2] or route
        if job_id:  # the id has a column of its own: the path says where it went
            path = path.replace(str(job_id), "{job_id}")
        latency = fields.get("latency_ms")
        parts = [
            self.paint(f"{method:<7}", "bold"),
            f"{path:<{_PATH_WIDTH}}",
            self.paint(str(status), _STATUS_COLOURS.get(status // 100)),
            self.paint(f"{latency:>6.0f} ms" if isinstance(latency, int | float) else "     - ms", "dim"),
        ]
        if job_id:
            parts.append(str(job_id))
        if fields.get("error_code"):
            parts.append(self.paint(str(fields["error_code"]), "red" if status >= 500 else "yellow"))
        if fields.get("idempotent_replayed"):
            parts.append(self.paint("(replayed)", "dim"))
        return "  ".join(parts)

    def other_line(self, record: logging.LogRecord, fields: dict[str, Any]) -> str:
        level = _LEVEL_NAMES.get(record.levelname, record.levelname)
        name = record.name.removeprefix(f"{log.LOGGER_NAME}.")
        extras = " ".join(f"{k}={v}" for k, v in fields.items() if k not in _QUIET_FIELDS and v is not None)
        line = f"{self.paint(f'{level:<5}', _LEVEL_COLOURS.get(record.levelname))} {name}: {record.getMessage()}"
        if extras:
            line += f"  {self.paint(extras, 'dim')}"
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + self.formatException(record.exc_info)
        return line


def not_requests(record: logging.LogRecord) -> bool:
    """A handler filter: drops the per-request lines (``--quiet``)."""
    return record.getMessage() != "request completed"


def use_human_logs(colour: bool, requests: bool = True) -> None:
    """Put the human formatter on the project logger's handlers, metrics (and ``requests``: the request
    lines) filtered out."""
    for handler in log.get_logger().handlers:
        handler.setFormatter(HumanFormatter(colour))
        handler.addFilter(not_metrics)
        if not requests:
            handler.addFilter(not_requests)


def log_local_request(method: str, path: str, status: int, started: float) -> None:
    """The line of a request the local server answered itself (the explorer page, a transport error)."""
    token = request_path.set(path)
    try:
        _local.info(
            "request completed",
            extra={"method": method, "route": f"{method} {path}", "status": status, "latency_ms": _ms(started)},
        )
    finally:
        request_path.reset(token)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


_local = log.get_logger("local")
