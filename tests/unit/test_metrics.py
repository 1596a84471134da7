"""utils.metrics: CloudWatch Embedded Metric Format documents, buffered per request, written as log lines."""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emf import assert_valid_emf, datapoints, dimensions_of, emf_documents, json_lines, metric_names, unit_of
from tests.factories import lambda_environ
from utils import logging as log
from utils import metrics
from utils.errors import ConfigurationError
from utils.metrics import MetricsConfig, Series, Unit
from utils.settings import Settings

ENVIRON = lambda_environ(ENVIRONMENT="prod")


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    metrics.configure(namespace="LocationDetection", service="job-api", environment="dev")
    log.clear()
    yield
    metrics.reset()
    log.clear()


def written(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF documents written to stdout since the last call (each checked against the spec)."""
    return emf_documents(json_lines(capsys.readouterr().out))


# ------------------------------------------------------------------------------------------ the document
def test_a_document_field_by_field(capsys: pytest.CaptureFixture[str]) -> None:
    before = int(time.time() * 1000)
    metrics.add("JobsCreated", 1, Format="png")
    after = int(time.time() * 1000)

    (document,) = written(capsys)
    metadata = document["_aws"]
    assert set(metadata) == {"Timestamp", "CloudWatchMetrics"}
    assert before <= metadata["Timestamp"] <= after  # epoch milliseconds
    assert metadata["CloudWatchMetrics"] == [
        {
            "Namespace": "LocationDetection",
            "Dimensions": [["Service", "Environment", "Format"]],
            "Metrics": [{"Name": "JobsCreated", "Unit": "Count"}],
        }
    ]
    assert document["Service"] == "job-api"
    assert document["Environment"] == "dev"
    assert document["Format"] == "png"
    assert document["JobsCreated"] == 1
    # It is a log line of the project's logger as well, on one line like every other.
    assert document["message"] == "metrics"
    assert document["level"] == "INFO"
    assert document["logger"] == "location_detection.metrics"


def test_the_whole_document_is_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.add("Latency", 12.5, Unit.MILLISECONDS, Route="GET /api/v1/jobs/{job_id}")
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    (document,) = emf_documents(json_lines(out))
    assert document["Route"] == "GET /api/v1/jobs/{job_id}"
    assert document["Latency"] == 12.5


@pytest.mark.parametrize(
    ("name", "value", "unit"),
    [("JobsCreated", 1, "Count"), ("UploadBytes", 4096, "Bytes"), ("Latency", 3.25, "Milliseconds")],
)
def test_units(capsys: pytest.CaptureFixture[str], name: str, value: float, unit: str) -> None:
    metrics.add(name, value, unit)
    (document,) = written(capsys)
    assert unit_of(document, name) == unit
    assert document[name] == value


def test_default_unit_is_count(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.add("JobsCancelled", 1)
    (document,) = written(capsys)
    assert unit_of(document, "JobsCancelled") == "Count"


def test_default_dimensions_come_first_and_only_from_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.configure(namespace="Team/LocationDetection", service="pipeline", environment="prod")
    metrics.add("Errors", 1, Code="JOB_NOT_FOUND")
    metrics.add("ColdStart", 1)
    errors, cold = written(capsys)
    assert dimensions_of(errors) == ["Service", "Environment", "Code"]
    assert (errors["Service"], errors["Environment"], errors["Code"]) == ("pipeline", "prod", "JOB_NOT_FOUND")
    assert dimensions_of(cold) == ["Service", "Environment"]
    assert {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in (errors, cold)} == {"Team/LocationDetection"}


def test_own_dimensions_are_sorted_so_one_set_has_one_order(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.scope():
        metrics.add("Probe", 1, Zeta="z", Alpha="a")
        metrics.add("Probe", 2, Alpha="a", Zeta="z")
    (document,) = written(capsys)
    assert dimensions_of(document) == ["Service", "Environment", "Alpha", "Zeta"]
    assert document["Probe"] == [1, 2]


def test_unconfigured_metrics_still_make_a_valid_document(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.reset()
    metrics.add("JobsFailed", 1)
    (document,) = written(capsys)
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == metrics.DEFAULT_NAMESPACE
    assert (document["Service"], document["Environment"]) == (metrics.DEFAULT_SERVICE, "unknown")


def test_the_request_context_rides_along(capsys: pytest.CaptureFixture[str]) -> None:
    log.bind(request_id="req_1", correlation_id="corr_1", job_id="job_1")
    metrics.add("JobsCancelled", 1)
    (document,) = written(capsys)
    assert (document["request_id"], document["correlation_id"], document["job_id"]) == ("req_1", "corr_1", "job_1")


def test_log_level_never_silences_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    root = log.get_logger()
    saved = root.level
    try:
        log.set_level("ERROR")
        log.get_logger("unit").info("an info line is filtered")
        metrics.add("JobsCompleted", 1)
    finally:
        root.setLevel(saved)
    lines = json_lines(capsys.readouterr().out)
    assert [line["message"] for line in lines] == ["metrics"]


# ------------------------------------------------------------------------------------------- the buffer
def test_outside_a_scope_each_metric_is_written_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.add("JobsCompleted", 1)
    assert datapoints(written(capsys), "JobsCompleted") == [1]
    metrics.add("JobsFailed", 1)
    assert datapoints(written(capsys), "JobsFailed") == [1]
    metrics.flush()  # nothing is waiting
    assert written(capsys) == []


def test_a_scope_buffers_until_it_ends_then_writes_one_line_with_a_directive_per_dimension_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with metrics.scope() as buffer:
        metrics.add("ColdStart", 1)
        metrics.add("UploadBytes", 71, Unit.BYTES)
        metrics.add("JobsCreated", 1, Format="png")
        metrics.add("Latency", 5.5, Unit.MILLISECONDS, Route="POST /api/v1/jobs")
        assert written(capsys) == []
        assert len(buffer) == 4

    (document,) = written(capsys)  # one line: a directive per dimension set
    defaults = ["Service", "Environment"]
    directives = document["_aws"]["CloudWatchMetrics"]
    assert [d["Dimensions"] for d in directives] == [[defaults], [[*defaults, "Format"]], [[*defaults, "Route"]]]
    names = [[m["Name"] for m in d["Metrics"]] for d in directives]
    assert names == [["ColdStart", "UploadBytes"], ["JobsCreated"], ["Latency"]]
    assert unit_of(document, "UploadBytes") == "Bytes"
    assert (document["JobsCreated"], document["Format"]) == (1, "png")
    assert (document["Latency"], document["Route"]) == (5.5, "POST /api/v1/jobs")


def test_different_dimension_values_are_different_documents(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.scope():
        metrics.add("JobsCreated", 1, Format="png")
        metrics.add("JobsCreated", 1, Format="pdf")
    documents = written(capsys)
    assert sorted(d["Format"] for d in documents) == ["pdf", "png"]
    assert all(d["JobsCreated"] == 1 for d in documents)


def test_a_metric_added_twice_is_one_member_with_both_values(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.scope():
        metrics.add("Errors", 1, Code="CONFLICT")
        metrics.add("Errors", 1, Code="CONFLICT")
    (document,) = written(capsys)
    assert metric_names(document) == ["Errors"]
    assert document["Errors"] == [1, 1]


def test_nothing_is_written_twice(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.scope():
        metrics.add("JobsCancelled", 1)
        metrics.flush()
        assert datapoints(written(capsys), "JobsCancelled") == [1]
        metrics.flush()
        assert written(capsys) == []
        metrics.add("JobsFailed", 1)
    documents = written(capsys)
    assert datapoints(documents, "JobsFailed") == [1]
    assert datapoints(documents, "JobsCancelled") == []


def test_an_empty_scope_writes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.scope():
        pass
    assert capsys.readouterr().out == ""


def test_a_scope_that_raises_still_writes_its_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    def failing_request() -> None:
        with metrics.scope():
            metrics.add("JobsCreated", 1, Format="jpg")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_request()
    assert datapoints(written(capsys), "JobsCreated", Format="jpg") == [1]


def test_a_nested_scope_writes_its_own_and_leaves_the_outer_one_buffered(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.scope():
        metrics.add("JobsCreated", 1, Format="png")
        with metrics.scope():
            metrics.add("JobsFailed", 1)
        assert [metric_names(d) for d in written(capsys)] == [["JobsFailed"]]
    assert [metric_names(d) for d in written(capsys)] == [["JobsCreated"]]


def test_after_a_scope_metrics_are_written_at_once_again(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.scope():
        pass
    metrics.add("JobsCompleted", 1)
    assert datapoints(written(capsys), "JobsCompleted") == [1]


# ---------------------------------------------------------------------------------------- isolation
def test_concurrent_scopes_never_see_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    """The local server runs requests on threads: each request's buffer is its own (a ContextVar)."""
    both_added = threading.Barrier(2, timeout=5)
    first_done = threading.Event()

    def request(code: str, wait_for: threading.Event | None, done: threading.Event | None) -> None:
        log.bind(request_id=f"req_{code}")
        with metrics.scope():
            metrics.add("Errors", 1, Code=code)
            both_added.wait()
            if wait_for is not None:
                assert wait_for.wait(5)
        if done is not None:
            done.set()

    a = threading.Thread(target=request, args=("JOB_NOT_FOUND", None, first_done))
    b = threading.Thread(target=request, args=("CONFLICT", first_done, None))
    a.start()
    b.start()
    a.join(5)
    b.join(5)

    documents = written(capsys)
    assert sorted(d["Code"] for d in documents) == ["CONFLICT", "JOB_NOT_FOUND"]
    # The first request ended while the second was still running: it wrote its own metric only.
    assert {d["request_id"]: d["Code"] for d in documents} == {
        "req_JOB_NOT_FOUND": "JOB_NOT_FOUND",
        "req_CONFLICT": "CONFLICT",
    }
    assert all(d["Errors"] == 1 for d in documents)


def test_a_scope_in_another_context_does_not_capture_this_one(capsys: pytest.CaptureFixture[str]) -> None:
    def other_request() -> None:
        with metrics.scope():
            metrics.add("JobsFailed", 1)

    with metrics.scope():
        metrics.add("JobsCreated", 1, Format="pdf")
        contextvars.copy_context().run(other_request)
        assert [metric_names(d) for d in written(capsys)] == [["JobsFailed"]]
    assert [metric_names(d) for d in written(capsys)] == [["JobsCreated"]]


# ------------------------------------------------------------------------------------------ the limits
def test_more_than_100_metrics_split_into_documents_of_at_most_100(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.scope():
        for n in range(150):
            metrics.add(f"Probe{n}", n)
    documents = written(capsys)
    assert [len(metric_names(d)) for d in documents] == [100, 50]
    names = [name for d in documents for name in metric_names(d)]
    assert names == [f"Probe{n}" for n in range(150)], "each metric exactly once"
    for document in documents:
        assert dimensions_of(document) == ["Service", "Environment"]
        for name in metric_names(document):
            assert document[name] == int(name.removeprefix("Probe"))


def test_more_than_100_values_of_one_metric_split_into_documents(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.scope():
        for n in range(250):
            metrics.add("Latency", float(n), Unit.MILLISECONDS, Route="GET /health")
        metrics.add("Errors", 1, Code="NOT_FOUND")
    documents = written(capsys)
    latency = [d for d in documents if "Latency" in metric_names(d)]
    assert [len(d["Latency"]) for d in latency] == [100, 100, 50]
    assert [v for d in latency for v in d["Latency"]] == [float(n) for n in range(250)]
    assert datapoints(documents, "Errors", Code="NOT_FOUND") == [1]


def test_documents_split_both_ways_at_once() -> None:
    groups: dict[metrics.DimensionValues, dict[str, Series]] = {
        (): {f"M{n}": Series("Count", [1.0] * 150) for n in range(120)}
    }
    documents = metrics.documents(groups, MetricsConfig(), 1_700_000_000_000)
    for document in documents:
        assert_valid_emf({**document, "_aws": {**document["_aws"], "Timestamp": int(time.time() * 1000)}})
    assert [len(metric_names(d)) for d in documents] == [100, 20, 100, 20]
    assert sum(len(d[name]) for d in documents for name in metric_names(d)) == 120 * 150


def test_thirty_dimensions_is_the_most(capsys: pytest.CaptureFixture[str]) -> None:
    own = {f"D{n}": "x" for n in range(28)}
    metrics.add("Probe", 1, **own)
    (document,) = written(capsys)
    assert len(dimensions_of(document)) == 30
    with pytest.raises(ValueError, match="30"):
        metrics.add("Probe", 1, **own, D28="x")


# ----------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("name", ["", "jobsCreated", "jobs_created", "Jobs Created", "Jobs-Created", "É", "A" * 256])
def test_metric_names_are_camel_case_ascii(name: str) -> None:
    with pytest.raises(ValueError, match="metric name"):
        metrics.add(name, 1)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "1", None])
def test_values_are_finite_numbers(value: Any) -> None:
    with pytest.raises(ValueError, match="finite number"):
        metrics.add("Probe", value)


@pytest.mark.parametrize("unit", ["count", "ms", "Millisecond", ""])
def test_units_are_cloudwatch_units(unit: str) -> None:
    with pytest.raises(ValueError, match="unit"):
        metrics.add("Probe", 1, unit)


@pytest.mark.parametrize(("key", "value"), [("format", "png"), ("Format", ""), ("Format", " "), ("Format", "x" * 1025)])
def test_dimensions_are_camel_case_with_string_values(key: str, value: str) -> None:
    with pytest.raises(ValueError, match="dimension"):
        metrics.add("Probe", 1, **{key: value})


def test_a_default_dimension_cannot_be_overridden() -> None:
    with pytest.raises(ValueError, match="default dimension"):
        metrics.add("Probe", 1, Environment="prod")


def test_one_metric_keeps_one_unit_within_a_scope() -> None:
    with metrics.scope():
        metrics.add("Latency", 1, Unit.MILLISECONDS)
        with pytest.raises(ValueError, match="Milliseconds"):
            metrics.add("Latency", 1, Unit.COUNT)


@pytest.mark.parametrize("namespace", ["", "AWS/Lambda", "x" * 256, "Location;Detection", ":x"])
def test_configure_refuses_a_bad_namespace(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        metrics.configure(namespace=namespace, service="job-api", environment="dev")


def test_configure_refuses_an_empty_dimension_value() -> None:
    with pytest.raises(ValueError, match="Service"):
        metrics.configure(namespace="LocationDetection", service="", environment="dev")


# ------------------------------------------------------------------------------------------- settings
def test_settings_default_namespace_and_service() -> None:
    settings = Settings.from_environ(ENVIRON)
    assert settings.metrics_namespace == "LocationDetection"
    assert settings.metrics_service == "job-api"


def test_settings_take_namespace_and_service_from_the_environment() -> None:
    settings = Settings.from_environ({**ENVIRON, "METRICS_NAMESPACE": "Acme/Plans", "METRICS_SERVICE": "pipeline"})
    assert (settings.metrics_namespace, settings.metrics_service) == ("Acme/Plans", "pipeline")


@pytest.mark.parametrize("namespace", ["AWS/Lambda", "x" * 256, "bad;name"])
def test_settings_refuse_a_bad_namespace_naming_the_variable(namespace: str) -> None:
    with pytest.raises(ConfigurationError, match="METRICS_NAMESPACE"):
        Settings.from_environ({**ENVIRON, "METRICS_NAMESPACE": namespace})


def test_the_metrics_logger_is_pinned_at_info() -> None:
    assert log.get_logger("metrics").level == logging.INFO
