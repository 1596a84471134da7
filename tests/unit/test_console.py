"""The local API's log lines for a person at a terminal (``local_api.console``): the format of one request
line, what is left out (metric documents), colours, and when each format is chosen."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from local_api import console
from utils import logging as log
from utils import metrics

JOB_ID = "job_20261202T120309_77aa01c3d4e5f6a7"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def screen() -> Iterator[io.StringIO]:
    """The project logger with one handler writing here, set up as ``make run`` sets it on a terminal."""
    out = io.StringIO()
    root = log.get_logger()
    saved = list(root.handlers)
    root.handlers = [logging.StreamHandler(out)]
    console.use_human_logs(colour=False)
    yield out
    root.handlers = saved
    log.clear()


def request_record(**fields: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"msg": "request completed", "levelno": logging.INFO, "levelname": "INFO"})
    record.__dict__.update(fields)
    return record


def test_a_request_is_one_line_of_method_path_status_latency_job_and_error_code() -> None:
    log.bind(job_id=JOB_ID)
    token = console.request_path.set(f"/api/v1/jobs/{JOB_ID}")
    try:
        line = console.HumanFormatter().format(
            request_record(
                method="GET",
                route="GET /api/v1/jobs/{job_id}",
                status=404,
                latency_ms=6.4,
                error_code="JOB_NOT_FOUND",
                request_id="req_x",
            )
        )
    finally:
        console.request_path.reset(token)
        log.clear()
    clock, rest = line.split("  ", 1)
    assert len(clock) == 8
    assert clock.count(":") == 2
    assert rest.split() == ["GET", "/api/v1/jobs/{job_id}", "404", "6", "ms", JOB_ID, "JOB_NOT_FOUND"]
    assert "\n" not in line
    assert "req_x" not in line, "ids a person does not need stay in the JSON format"


def test_a_successful_request_without_a_job_has_no_empty_columns() -> None:
    line = console.HumanFormatter().format(request_record(method="POST", route="POST /x", status=201, latency_ms=38))
    assert line.split()[1:] == ["POST", "/x", "201", "38", "ms"]


def test_colours_follow_the_status_only_when_asked_for() -> None:
    for status, colour in ((201, "\033[32m"), (404, "\033[33m"), (503, "\033[31m")):
        record = request_record(method="GET", route="GET /x", status=status, latency_ms=1.0)
        assert f"{colour}{status}\033[0m" in console.HumanFormatter(colour=True).format(record)
        assert "\033[" not in console.HumanFormatter(colour=False).format(record)


def test_other_lines_are_level_logger_message_and_fields_with_a_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("location_detection.job_events").makeRecord(
            "location_detection.job_events", logging.ERROR, "f", 1, "publish failed", (), exc_info=sys.exc_info()
        )
    record.__dict__["records"] = 3
    line = console.HumanFormatter().format(record)
    first, *trace = line.splitlines()
    assert first.split("  ", 1)[1] == "ERROR job_events: publish failed  records=3"
    assert trace[-1] == "RuntimeError: boom"


def test_the_screen_shows_request_lines_and_no_metric_documents(screen: io.StringIO) -> None:
    with metrics.scope():
        metrics.add("JobsCreated", 1)
        log.get_logger("api").info(
            "request completed", extra={"method": "POST", "route": "POST /api/v1/jobs", "status": 201}
        )
    lines = screen.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "POST" in lines[0]
    assert "201" in lines[0]
    assert "_aws" not in screen.getvalue()
    assert "JobsCreated" not in screen.getvalue()


def test_quiet_drops_the_request_lines_but_not_the_warnings(screen: io.StringIO) -> None:
    console.use_human_logs(colour=False, requests=False)
    log.get_logger("api").info("request completed", extra={"method": "GET", "route": "GET /x", "status": 200})
    log.get_logger("poller").warning("polling the jobs stream failed; retrying")
    assert (
        screen.getvalue().splitlines()[-1].split("  ", 1)[1] == "WARN  poller: polling the jobs stream failed; retrying"
    )
    assert "GET" not in screen.getvalue()


@pytest.mark.parametrize(
    ("setting", "stream", "chosen"),
    [
        (None, Terminal(), "human"),
        (None, io.StringIO(), "json"),  # a pipe, a file, CI: the Lambda's own JSON lines
        ("auto", Terminal(), "human"),
        ("JSON", Terminal(), "json"),
        ("human", io.StringIO(), "human"),
    ],
)
def test_log_format_is_human_on_a_terminal_and_json_elsewhere_unless_set(
    setting: str | None, stream: io.StringIO, chosen: str
) -> None:
    assert console.choose(setting, stream) == chosen


def test_an_unknown_log_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="auto, human, json"):
        console.choose("pretty", io.StringIO())
