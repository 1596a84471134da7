"""CloudWatch metrics as Embedded Metric Format (EMF) log lines: no SDK call, no extra dependency.

CloudWatch Logs turns a JSON log line with an ``_aws`` member into metrics (the EMF specification), so a
metric costs one line on stdout and nothing at request time. A document looks like::

    {"_aws": {"Timestamp": 1763766900000,
              "CloudWatchMetrics": [{"Namespace": "LocationDetection",
                                     "Dimensions": [["Service", "Environment", "Format"]],
                                     "Metrics": [{"Name": "JobsCreated", "Unit": "Count"}]}]},
     "Service": "job-api", "Environment": "dev", "Format": "png", "JobsCreated": 1,
     "timestamp": "...", "level": "INFO", "message": "metrics", "request_id": "req_...", ...}

Documents are written by the project's logger (``utils.logging``), so they are ordinary log lines too:
they carry the request's ``request_id`` and ``correlation_id`` and go wherever the logs go (stdout in
Lambda, stderr under ``python -m ops``). The metrics logger is pinned at INFO: ``LOG_LEVEL`` never
silences metrics.

How metrics are written (the flush policy):

- Inside ``scope()`` (one per request, opened by ``api.observability``, like Powertools' ``log_metrics``)
  ``add`` only buffers, in a ``ContextVar``: concurrent requests of the local server never mix. When the
  scope ends (also by an exception) it writes one document with a directive per dimension set (a new
  document only where a dimension would need two values or past 100 metrics): one metrics line per
  request. A metric added twice in one dimension set is one member with a list of values (EMF allows up
  to 100); nothing is written twice. ``flush()`` writes the buffer early (a long batch may use it).
- Outside any scope (``JobService.complete_job`` / ``fail_job`` called by the pipeline or the ``ops``
  CLI) ``add`` writes its document at once: nothing waits for a flush that might never come.

Limits of the specification are kept here: at most 100 metrics per document and 100 values per metric
(more are split over several documents), at most 30 dimensions per dimension set, dimension values are
strings, values finite numbers, units from CloudWatch's list. Names of metrics and dimensions are
CamelCase, so they never collide with the log line's own snake_case fields. A bad name, unit or value is
a bug in our code and raises ``ValueError`` (tests catch it), instead of a document CloudWatch drops.

Every document has the default dimensions ``Service`` and ``Environment`` (``configure``, called once
per container from the settings: ``METRICS_NAMESPACE``, ``METRICS_SERVICE`` and ``ENVIRONMENT``); a
metric adds its own (``Format``, ``Code``, ``Route``) as keyword arguments. Dimension values come from
our own bounded sets (formats, error codes, route templates), never from raw input: each distinct
combination is a separate CloudWatch metric, and is billed as one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, NamedTuple

from utils.clock import wall_time
from utils.logging import get_logger

DEFAULT_NAMESPACE = "LocationDetection"
DEFAULT_SERVICE = "job-api"
#: The specification's limits.
MAX_METRICS_PER_DOCUMENT = 100
MAX_VALUES_PER_METRIC = 100
MAX_DIMENSIONS = 30
MAX_NAME_LENGTH = 255
MAX_DIMENSION_VALUE_LENGTH = 1024


class Unit:
    """The units this service uses (``UNITS`` is CloudWatch's full list)."""

    COUNT = "Count"
    BYTES = "Bytes"
    MILLISECONDS = "Milliseconds"


UNITS = frozenset(
    {
        *("Seconds", "Microseconds", "Milliseconds", "Percent", "Count", "None"),
        *("Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes"),
        *("Bits", "Kilobits", "Megabits", "Gigabits", "Terabits"),
        *("Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second"),
        *("Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second"),
        "Count/Second",
    }
)

_NAME = re.compile(rf"[A-Z][A-Za-z0-9]{{0,{MAX_NAME_LENGTH - 1}}}", re.ASCII)
#: CloudWatch namespaces: these characters, at most 255 of them, and never AWS's own prefix.
_NAMESPACE = re.compile(r"[A-Za-z0-9.\-_/#: ]{1,255}", re.ASCII)

_writer = get_logger("metrics")
_writer.setLevel(logging.INFO)  # metrics are data, not diagnostics: LOG_LEVEL does not apply


# ---------------------------------------------------------------------------------------- configuration
class MetricsConfig(NamedTuple):  # (not dataclasses, in this module: see ``models.records``)
    namespace: str = DEFAULT_NAMESPACE
    #: The dimensions every document carries, in order.
    dimensions: tuple[tuple[str, str], ...] = (("Service", DEFAULT_SERVICE), ("Environment", "unknown"))


_config = MetricsConfig()


def configure(*, namespace: str, service: str, environment: str) -> None:
    """Set the namespace and the default dimensions (once per container, from the settings)."""
    global _config
    if not is_valid_namespace(namespace):
        raise ValueError(f"invalid CloudWatch namespace {namespace!r}")
    dimensions = (("Service", service), ("Environment", environment))
    for key, value in dimensions:
        _check_dimension(key, value)
    _config = MetricsConfig(namespace, dimensions)


def reset() -> None:
    """Back to the defaults (tests)."""
    global _config
    _config = MetricsConfig()


def is_valid_namespace(namespace: str) -> bool:
    return bool(_NAMESPACE.fullmatch(namespace)) and not namespace.startswith(("AWS/", ":"))


# ----------------------------------------------------------------------------------------------- buffer
#: A metric's own dimensions with their values, sorted: the key it is buffered under.
DimensionValues = tuple[tuple[str, str], ...]


class Series(NamedTuple):
    """One metric's unit and the values recorded for it in one dimension set."""

    unit: str
    values: list[float]


class MetricsBuffer:
    """Metrics of one scope, grouped by dimension values; drained once into EMF documents."""

    def __init__(self) -> None:
        self._groups: dict[DimensionValues, dict[str, Series]] = {}
        self._lock = threading.Lock()  # a scope's context may be copied into worker threads

    def add(self, name: str, value: float, unit: str, dimensions: DimensionValues) -> None:
        with self._lock:
            series = self._groups.setdefault(dimensions, {}).get(name)
            if series is None:
                self._groups[dimensions][name] = Series(unit, [value])
            elif series.unit != unit:
                raise ValueError(f"metric {name} is recorded in {series.unit}, not {unit}")
            else:
                series.values.append(value)

    def drain(self) -> dict[DimensionValues, dict[str, Series]]:
        """Everything buffered so far; the buffer is empty afterwards."""
        with self._lock:
            groups, self._groups = self._groups, {}
        return groups

    def __len__(self) -> int:
        with self._lock:
            return sum(len(series) for series in self._groups.values())


_buffer: ContextVar[MetricsBuffer | None] = ContextVar("metrics_buffer", default=None)


@contextlib.contextmanager
def scope() -> Iterator[MetricsBuffer]:
    """Buffer the metrics added inside; write them (as few documents as EMF allows) on the way out."""
    buffer = MetricsBuffer()
    token = _buffer.set(buffer)
    try:
        yield buffer
    finally:
        _buffer.reset(token)
        _write(buffer.drain())


def flush() -> None:
    """Write what the current scope has buffered so far (nothing outside a scope: it is written already)."""
    buffer = _buffer.get()
    if buffer is not None:
        _write(buffer.drain())


def add(name: str, value: float, unit: str = Unit.COUNT, **dimensions: str) -> None:
    """Record ``value`` of metric ``name`` with the default dimensions plus ``dimensions``.

    Buffered inside a ``scope()``, written at once outside one. The default dimensions are the ones
    configured when the metric is written (a request's first metric may come before its settings load).
    """
    _check_metric(name, value, unit)
    for dimension, dimension_value in dimensions.items():
        _check_dimension(dimension, dimension_value)
    clashing = {key for key, _ in _config.dimensions} & dimensions.keys()
    if clashing:
        raise ValueError(f"{', '.join(sorted(clashing))} is a default dimension")
    if len(_config.dimensions) + len(dimensions) > MAX_DIMENSIONS:
        raise ValueError(f"a dimension set holds at most {MAX_DIMENSIONS} dimensions")
    group = tuple(sorted(dimensions.items()))
    buffer = _buffer.get()
    if buffer is not None:
        buffer.add(name, value, unit, group)
    else:
        _write({group: {name: Series(unit, [value])}})


# -------------------------------------------------------------------------------------------- documents
def documents(
    groups: dict[DimensionValues, dict[str, Series]], config: MetricsConfig, timestamp_ms: int
) -> list[dict[str, Any]]:
    """EMF documents for ``groups``: as few as the specification allows. Each dimension set is one
    directive (the defaults first, then the metric's own); directives share a document (EMF's
    ``CloudWatchMetrics`` is a list) unless a dimension would need two values there, a name would mean
    both a dimension and a metric, or the 100-metric limit is reached. A request's metrics are then one
    line, as Powertools writes them."""
    packed: list[_Packed] = []
    size = MAX_VALUES_PER_METRIC
    for own, metrics in groups.items():
        dimensions = (*config.dimensions, *own)
        # A metric with more than 100 values spreads over several documents, its n-th hundred in the n-th.
        chunks = {
            name: [series.values[i : i + size] for i in range(0, len(series.values), size)]
            for name, series in metrics.items()
        }
        rounds = max((len(c) for c in chunks.values()), default=0)
        for n in range(rounds):
            entries = [(name, metrics[name].unit, c[n]) for name, c in chunks.items() if n < len(c)]
            for start in range(0, len(entries), MAX_METRICS_PER_DOCUMENT):
                batch = entries[start : start + MAX_METRICS_PER_DOCUMENT]
                target = next((p for p in packed if p.fits(dimensions, batch)), None)
                if target is None:
                    target = _Packed({"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": []}})
                    packed.append(target)
                target.add(dimensions, batch, config.namespace)
    return [p.document for p in packed]


class _Packed:
    """A document being filled, with what it already holds."""

    __slots__ = ("dimensions", "document", "metrics")

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.dimensions: dict[str, str] = {}
        self.metrics: set[str] = set()

    def fits(self, dimensions: DimensionValues, entries: list[tuple[str, str, list[float]]]) -> bool:
        if len(self.metrics) + len(entries) > MAX_METRICS_PER_DOCUMENT:
            return False
        if any(name in self.metrics or name in self.dimensions for name, _, _ in entries):
            return False
        return all(self.dimensions.get(key, value) == value and key not in self.metrics for key, value in dimensions)

    def add(self, dimensions: DimensionValues, entries: list[tuple[str, str, list[float]]], namespace: str) -> None:
        self.document["_aws"]["CloudWatchMetrics"].append(
            {
                "Namespace": namespace,
                "Dimensions": [[key for key, _ in dimensions]],
                "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in entries],
            }
        )
        self.document.update(dimensions)
        self.dimensions.update(dimensions)
        for name, _, values in entries:
            self.document[name] = values[0] if len(values) == 1 else values
            self.metrics.add(name)


def _write(groups: dict[DimensionValues, dict[str, Series]]) -> None:
    if not groups:
        return
    for document in documents(groups, _config, int(wall_time() * 1000)):
        # Each member becomes a top-level field of the JSON line (JsonFormatter puts ``extra`` there).
        _writer.info("metrics", extra=document)


# ------------------------------------------------------------------------------------------- validation
def _check_metric(name: str, value: Any, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"metric {name} needs a finite number, got {value!r}")
    _check_metric_name(name, unit)


@functools.lru_cache(maxsize=256)  # a service uses a handful of names: each is checked once
def _check_metric_name(name: str, unit: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"metric name {name!r} must be CamelCase ASCII, at most {MAX_NAME_LENGTH} characters")
    if unit not in UNITS:
        raise ValueError(f"metric {name}: {unit!r} is not a CloudWatch unit")


def _check_dimension(key: str, value: Any) -> None:
    if not _NAME.fullmatch(key):
        raise ValueError(f"dimension name {key!r} must be CamelCase ASCII, at most {MAX_NAME_LENGTH} characters")
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_DIMENSION_VALUE_LENGTH:
        raise ValueError(f"dimension {key} needs a non-empty string value, got {value!r}")
