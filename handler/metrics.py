"""Metrics in CloudWatch's embedded metric format (EMF), serialized by Powertools.

Values are buffered as they happen and flushed once per document (and at shutdown): one
JSON line per set of dimensions, on stdout. The container's log driver ships each line to
CloudWatch Logs as one log event, and CloudWatch Logs extracts the metrics from it (no agent
needed: docs/operations.md says why). Every metric carries the ``service`` dimension; the
names, units and dimensions are listed in docs/operations.md.

A :class:`Metrics` built without a sink is disabled: recording is a no-op. Tests inject a
sink that keeps the lines.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

if TYPE_CHECKING:
    from handler.settings import Settings

SERVICE = "pagedrop"
COUNT, SECONDS, NONE = "Count", "Seconds", "None"

# Powertools prints a metric set by itself (to stdout, past any sink) once one metric holds
# 100 values; a flush hands it at most this many per line.
MAX_VALUES_PER_LINE = 90

# The metric names (docs/operations.md describes each, with its alarm).
DOCUMENTS_CONVERTED = "DocumentsConverted"  # by engine used; SUCCEEDED or PARTIAL
DOCUMENTS_FAILED = "DocumentsFailed"  # by error category
DOCUMENTS_EXHAUSTED = "DocumentsExhausted"  # marked by the DLQ function
PAGES_CONVERTED = "PagesConverted"  # by engine
PAGES_FAILED = "PagesFailed"  # by engine
CONVERSION_SECONDS_PER_PAGE = "ConversionSecondsPerPage"  # by engine, one value per document
END_TO_END_LATENCY = "EndToEndLatency"  # event time -> final status
QUEUE_WAIT = "QueueWait"  # event time -> claim
RETRIES = "Retries"  # by cause: fault, bug, lease_lost
DUPLICATES_SUPPRESSED = "DuplicatesSuppressed"
STALE_EVENTS_DROPPED = "StaleEventsDropped"
LEASES_LOST = "LeasesLost"
POISON_MESSAGES = "PoisonMessages"
RECEIVE_ERRORS = "ReceiveErrors"
GPU_BATCHES = "GpuBatches"  # by engine: generation batches run
GPU_PAGES_PER_BATCH = "GpuPagesPerBatch"  # by engine: mean batch fill since the last flush
GPU_SECONDS_PER_BATCH = "GpuSecondsPerBatch"  # by engine
GPU_OUT_OF_MEMORY = "GpuOutOfMemory"  # by engine: batches split (or failed) for memory

Sink = Callable[[str], None]
_Dimensions = tuple[tuple[str, str], ...]


def stdout_sink(line: str) -> None:
    """One EMF line on stdout, flushed at once (a pipe would otherwise hold it back)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(slots=True)
class _Series:
    unit: str
    values: list[float] = field(default_factory=list)


class Metrics:
    """Buffers metric values by dimensions and flushes them as EMF lines to a sink."""

    def __init__(self, namespace: str, *, sink: Sink | None = None) -> None:
        self.namespace = namespace
        self._sink = sink
        self._lock = threading.Lock()
        self._pending: dict[_Dimensions, dict[str, _Series]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, sink: Sink = stdout_sink) -> Metrics:
        """Enabled (to ``sink``) or disabled by ``PAGEDROP_METRICS_ENABLED``."""
        return cls(settings.metrics_namespace, sink=sink if settings.metrics_enabled else None)

    @classmethod
    def disabled(cls) -> Metrics:
        return cls("pagedrop")

    @property
    def enabled(self) -> bool:
        return self._sink is not None

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        self._add(name, COUNT, value, dimensions)

    def seconds(self, name: str, value: float, **dimensions: str) -> None:
        self._add(name, SECONDS, max(0.0, value), dimensions)

    def value(self, name: str, value: float, **dimensions: str) -> None:
        """A plain number (unit None), kept value by value like seconds, never summed."""
        self._add(name, NONE, value, dimensions)

    def _add(self, name: str, unit: str, value: float, dimensions: dict[str, str]) -> None:
        if self._sink is None:
            return
        key = tuple(sorted(dimensions.items()))
        with self._lock:
            series = self._pending.setdefault(key, {}).setdefault(name, _Series(unit))
            if unit == COUNT and series.values:
                series.values[0] += value  # counts are summed: one value per flush
            else:
                series.values.append(float(value))

    def flush(self) -> None:
        """Write what was recorded since the last flush (nothing when nothing was)."""
        if self._sink is None:
            return
        with self._lock:
            pending, self._pending = self._pending, {}
        for dimensions, series in pending.items():
            for line in self._lines(dict(dimensions), series):
                self._sink(line)

    def _lines(self, dimensions: dict[str, str], series: dict[str, _Series]) -> list[str]:
        lines = []
        start = 0
        while any(len(s.values) > start for s in series.values()):
            provider = AmazonCloudWatchEMFProvider(namespace=self.namespace, service=SERVICE)
            for dimension, label in dimensions.items():
                provider.add_dimension(name=dimension, value=label)
            for name, s in series.items():
                for value in s.values[start : start + MAX_VALUES_PER_LINE]:
                    provider.add_metric(name=name, unit=s.unit, value=value)
            blob = provider.serialize_metric_set()
            lines.append(json.dumps(blob, separators=(",", ":")))
            start += MAX_VALUES_PER_LINE
        return lines
