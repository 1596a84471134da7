"""Reading the JSON lines the code writes: log lines and CloudWatch Embedded Metric Format documents.

``assert_valid_emf`` checks a document against the EMF specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html),
rule by rule, so the tests do not merely compare with what the code happens to write.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from utils.metrics import UNITS

SUMMARY = "request completed"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` that is a JSON object (each must parse: one object per line)."""
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def emf_documents(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    documents = [line for line in lines if "_aws" in line]
    for document in documents:
        assert_valid_emf(document)
    return documents


def summaries(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("message") == SUMMARY]


def assert_valid_emf(document: dict[str, Any]) -> None:
    """The specification's MUSTs (and CloudWatch's limits) for one document."""
    metadata = document["_aws"]
    assert isinstance(metadata, dict)
    assert set(metadata) == {"Timestamp", "CloudWatchMetrics"}
    timestamp = metadata["Timestamp"]
    assert isinstance(timestamp, int)
    assert not isinstance(timestamp, bool)
    now_ms = time.time() * 1000
    # CloudWatch drops values more than two weeks old or two hours ahead.
    assert now_ms - 14 * 24 * 3600 * 1000 < timestamp < now_ms + 2 * 3600 * 1000
    directives = metadata["CloudWatchMetrics"]
    assert isinstance(directives, list)
    assert directives
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        namespace = directive["Namespace"]
        assert isinstance(namespace, str)
        assert len(namespace) >= 1
        assert len(namespace) <= 255
        assert not namespace.startswith("AWS/")
        dimension_sets = directive["Dimensions"]
        assert isinstance(dimension_sets, list)
        for dimension_set in dimension_sets:
            assert isinstance(dimension_set, list)
            assert len(dimension_set) >= 1
            assert len(dimension_set) <= 30
            assert len(set(dimension_set)) == len(dimension_set)
            for key in dimension_set:
                value = document[key]  # a target member per dimension ...
                assert isinstance(value, str)
                assert value
                assert len(value) <= 1024
        metrics = directive["Metrics"]
        assert isinstance(metrics, list)
        assert len(metrics) >= 1
        assert len(metrics) <= 100
        names = [metric["Name"] for metric in metrics]
        assert len(set(names)) == len(names), "a metric appears once per directive"
        for metric in metrics:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert isinstance(metric["Name"], str)
            assert len(metric["Name"]) >= 1
            assert len(metric["Name"]) <= 255
            assert metric.get("Unit", "None") in UNITS
            value = document[metric["Name"]]  # a target member per metric: a number or up to 100 numbers
            values = value if isinstance(value, list) else [value]
            assert len(values) >= 1
            assert len(values) <= 100
            for number in values:
                assert isinstance(number, int | float)
                assert not isinstance(number, bool)
                assert math.isfinite(number)


def dimensions_of(document: dict[str, Any], metric: str | None = None) -> list[str]:
    """The dimension set of the directive that holds ``metric`` (of the document's only one without it)."""
    directives = document["_aws"]["CloudWatchMetrics"]
    if metric is None:
        (directive,) = directives
    else:
        (directive,) = [d for d in directives if metric in [m["Name"] for m in d["Metrics"]]]
    (dimension_set,) = directive["Dimensions"]
    return list(dimension_set)


def metric_names(document: dict[str, Any]) -> list[str]:
    return [m["Name"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]


def unit_of(document: dict[str, Any], name: str) -> str:
    units = [m["Unit"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"] if m["Name"] == name]
    assert len(units) == 1
    return str(units[0])


def datapoints(documents: list[dict[str, Any]], name: str, **dimensions: str) -> list[float]:
    """Every value of metric ``name`` in ``documents`` whose dimensions include ``dimensions``."""
    found: list[float] = []
    for document in documents:
        if name not in metric_names(document):
            continue
        if any(document.get(key) != value for key, value in dimensions.items()):
            continue
        value = document[name]
        found.extend(value if isinstance(value, list) else [value])
    return found
