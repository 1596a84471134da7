"""utils.logging: one JSON object per line, request context bound per request and per thread."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from utils import logging as log
from utils.logging import JsonFormatter, bind, bound, clear, get_logger, set_level

CONTEXT_FIELDS = ("request_id", "correlation_id", "aws_request_id", "job_id")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", re.ASCII)


class Capture:
    def __init__(self, logger: logging.Logger, stream: io.StringIO) -> None:
        self.logger = logger
        self.stream = stream

    def lines(self) -> list[dict[str, Any]]:
        text = self.stream.getvalue()
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]

    def last(self) -> dict[str, Any]:
        return self.lines()[-1]


@pytest.fixture(autouse=True)
def _clean_context() -> Iterator[None]:
    clear()
    yield
    clear()


@pytest.fixture
def capture() -> Iterator[Capture]:
    """A logger of our own with a JsonFormatter on a StringIO (nothing else sees its records)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"unit.logging.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield Capture(logger, stream)
    logger.removeHandler(handler)


@pytest.fixture
def project_level() -> Iterator[logging.Logger]:
    root = get_logger()
    old = root.level
    yield root
    root.setLevel(old)


def test_one_json_object_per_line_with_the_standard_fields(capture: Capture) -> None:
    capture.logger.info("first")
    capture.logger.warning("second\nwith a newline")
    lines = capture.stream.getvalue().splitlines()
    assert len(lines) == 2  # the newline in the message is escaped inside the JSON string
    first, second = (json.loads(line) for line in lines)
    assert isinstance(first, dict)
    assert first["message"] == "first"
    assert first["level"] == "INFO"
    assert first["logger"] == capture.logger.name
    assert TIMESTAMP.fullmatch(first["timestamp"]), first["timestamp"]
    assert first["timestamp"].endswith("Z")
    for field in CONTEXT_FIELDS:
        assert field in first
        assert first[field] is None
    assert second["level"] == "WARNING"
    assert second["message"] == "second\nwith a newline"


def test_message_arguments_are_interpolated(capture: Capture) -> None:
    capture.logger.info("job %s took %d ms", "job_x", 12)
    assert capture.last()["message"] == "job job_x took 12 ms"


def test_timestamp_is_utc() -> None:
    record = logging.makeLogRecord({"msg": "m", "levelname": "INFO", "levelno": logging.INFO, "name": "n"})
    record.created = 0.5
    entry = json.loads(JsonFormatter().format(record))
    assert entry["timestamp"] == "1970-01-01T00:00:00.500Z"


def test_bound_context_appears_on_every_line(capture: Capture) -> None:
    bind(request_id="req_1", correlation_id="corr_1", aws_request_id="aws_1")
    capture.logger.info("a")
    bind(job_id="job_1", route="GET /api/v1/jobs/{job_id}")
    capture.logger.info("b")
    a, b = capture.lines()
    assert (a["request_id"], a["correlation_id"], a["aws_request_id"], a["job_id"]) == (
        "req_1",
        "corr_1",
        "aws_1",
        None,
    )
    assert "route" not in a
    assert (b["request_id"], b["job_id"], b["route"]) == ("req_1", "job_1", "GET /api/v1/jobs/{job_id}")
    assert bound("job_id") == "job_1"


def test_bind_overrides_and_clear_forgets(capture: Capture) -> None:
    bind(request_id="req_1")
    bind(request_id="req_2")
    assert bound("request_id") == "req_2"
    clear()
    assert bound("request_id") is None
    capture.logger.info("after")
    entry = capture.last()
    for field in CONTEXT_FIELDS:
        assert entry[field] is None


def test_fields_passed_with_extra_appear(capture: Capture) -> None:
    capture.logger.info("done", extra={"status": 201, "latency_ms": 12.5, "route": "POST /api/v1/jobs"})
    entry = capture.last()
    assert entry["status"] == 201
    assert entry["latency_ms"] == 12.5
    assert entry["route"] == "POST /api/v1/jobs"
    # No LogRecord internals leak into the line.
    for internal in ("args", "msg", "levelno", "pathname", "lineno", "exc_text", "stack_info", "thread"):
        assert internal not in entry


def test_non_json_values_in_extra_are_stringified(capture: Capture) -> None:
    capture.logger.info("odd", extra={"thing": object(), "when": {1, 2}})
    entry = capture.last()
    assert isinstance(entry["thing"], str)
    assert isinstance(entry["when"], str)


def test_exc_info_adds_error_type_and_exception(capture: Capture) -> None:
    try:
        raise KeyError("missing-thing")
    except KeyError:
        capture.logger.exception("failed")
    entry = capture.last()
    assert entry["level"] == "ERROR"
    assert entry["error_type"] == "KeyError"
    assert "Traceback" in entry["exception"]
    assert "missing-thing" in entry["exception"]
    assert len(capture.stream.getvalue().splitlines()) == 1  # the traceback stays inside the one line


def test_no_exception_fields_without_exc_info(capture: Capture) -> None:
    capture.logger.error("plain")
    entry = capture.last()
    assert "error_type" not in entry
    assert "exception" not in entry


def test_unicode_is_kept_readable(capture: Capture) -> None:
    capture.logger.info("план grundriß 平面図")
    assert "план grundriß 平面図" in capture.stream.getvalue()


def test_get_logger_children_live_under_the_project_logger() -> None:
    child = get_logger("unit_test_child")
    assert child.name == "location_detection.unit_test_child"
    root = get_logger()
    assert root.name == log.LOGGER_NAME == "location_detection"
    assert root.propagate is False
    assert any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)


def test_get_logger_does_not_add_handlers_twice() -> None:
    before = len(get_logger().handlers)
    get_logger()
    get_logger("x")
    assert len(get_logger().handlers) == before


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("DEBUG", logging.DEBUG),
        ("debug", logging.DEBUG),
        ("INFO", logging.INFO),
        ("WARNING", logging.WARNING),
        ("error", logging.ERROR),
        ("bogus", logging.INFO),
        ("", logging.INFO),
    ],
)
def test_set_level(project_level: logging.Logger, name: str, level: int) -> None:
    project_level.setLevel(logging.CRITICAL)
    set_level(name)
    assert project_level.level == level


def test_set_level_filters_project_records(project_level: logging.Logger) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    child = get_logger("unit_test_levels")
    child.addHandler(handler)
    try:
        set_level("WARNING")
        child.info("hidden")
        child.warning("shown")
        set_level("DEBUG")
        child.debug("now shown")
    finally:
        child.removeHandler(handler)
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["shown", "now shown"]


def test_context_is_not_shared_between_threads(capture: Capture) -> None:
    bind(request_id="req_main")
    seen: dict[str, Any] = {}
    bound_in_thread = threading.Event()
    main_checked = threading.Event()

    def worker() -> None:
        seen["initial"] = bound("request_id")
        bind(request_id="req_thread")
        capture.logger.info("from thread")
        bound_in_thread.set()
        main_checked.wait(5)
        seen["after"] = bound("request_id")

    thread = threading.Thread(target=worker)
    thread.start()
    assert bound_in_thread.wait(5)
    # While the thread holds its own request id, ours is unchanged.
    assert bound("request_id") == "req_main"
    capture.logger.info("from main")
    main_checked.set()
    thread.join(5)
    assert seen == {"initial": None, "after": "req_thread"}
    by_message = {line["message"]: line["request_id"] for line in capture.lines()}
    assert by_message == {"from thread": "req_thread", "from main": "req_main"}


def test_context_is_per_contextvars_context() -> None:
    bind(request_id="outer")

    def inner() -> Any:
        bind(request_id="inner", job_id="job_inner")
        return bound("request_id"), bound("job_id")

    assert contextvars.copy_context().run(inner) == ("inner", "job_inner")
    assert bound("request_id") == "outer"
    assert bound("job_id") is None
