"""Metrics in CloudWatch's embedded metric format, and the document observer's timings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from handler import metrics as m
from handler.metrics import MAX_VALUES_PER_LINE, Metrics
from handler.settings import Settings
from handler.worker.observe import _since


def _emf(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def _metric(blob: dict[str, Any]) -> dict[str, Any]:
    """The one metric directive of a blob: namespace, dimension keys, names and units."""
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    return directive


def test_a_flush_writes_one_emf_line_per_dimension_set() -> None:
    # Given pages counted per engine and in total, and a latency
    lines: list[str] = []
    metrics = Metrics("pagedrop-test", sink=lines.append)
    metrics.count(m.PAGES_CONVERTED, engine="rapidocr")
    metrics.count(m.PAGES_CONVERTED, engine="rapidocr")
    metrics.count(m.PAGES_CONVERTED, engine="text-layer")
    metrics.count(m.PAGES_CONVERTED, 3)
    metrics.seconds(m.END_TO_END_LATENCY, 12.5)
    # When they are flushed
    metrics.flush()
    # Then each set of dimensions is one EMF document, counts summed, with the service
    blobs = {blob.get("engine"): blob for blob in _emf(lines)}
    assert set(blobs) == {"rapidocr", "text-layer", None}
    assert blobs["rapidocr"][m.PAGES_CONVERTED] == [2]
    assert blobs["text-layer"][m.PAGES_CONVERTED] == [1]
    assert blobs[None][m.PAGES_CONVERTED] == [3]
    assert blobs[None][m.END_TO_END_LATENCY] == [12.5]
    directive = _metric(blobs["rapidocr"])
    assert directive["Namespace"] == "pagedrop-test"
    assert directive["Dimensions"] == [["engine", "service"]]
    assert directive["Metrics"] == [{"Name": m.PAGES_CONVERTED, "Unit": "Count"}]
    assert blobs["rapidocr"]["service"] == "pagedrop"
    assert {"Name": m.END_TO_END_LATENCY, "Unit": "Seconds"} in _metric(blobs[None])["Metrics"]
    assert isinstance(blobs[None]["_aws"]["Timestamp"], int)


def test_a_flush_clears_what_it_wrote() -> None:
    lines: list[str] = []
    metrics = Metrics("pagedrop-test", sink=lines.append)
    metrics.count(m.RETRIES, cause="fault")
    metrics.flush()
    metrics.flush()
    assert len(lines) == 1


def test_many_values_are_split_across_lines_and_nothing_bypasses_the_sink(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given more timing values than one EMF document should hold
    lines: list[str] = []
    metrics = Metrics("pagedrop-test", sink=lines.append)
    values = [float(i) for i in range(2 * MAX_VALUES_PER_LINE + 5)]
    for value in values:
        metrics.seconds(m.QUEUE_WAIT, value)
    # When flushed
    metrics.flush()
    # Then they come in several lines, all of them through the sink, none lost
    assert len(lines) == 3
    written = [v for blob in _emf(lines) for v in blob[m.QUEUE_WAIT]]
    assert sorted(written) == values
    assert capsys.readouterr().out == ""


def test_disabled_metrics_write_nothing() -> None:
    settings = Settings(metrics_enabled=False)
    metrics = Metrics.from_settings(settings, sink=pytest.fail)
    metrics.count(m.DOCUMENTS_CONVERTED)
    metrics.flush()
    assert not metrics.enabled


def test_settings_name_the_namespace() -> None:
    lines: list[str] = []
    metrics = Metrics.from_settings(Settings(metrics_namespace="pagedrop-prod"), sink=lines.append)
    metrics.count(m.POISON_MESSAGES)
    metrics.flush()
    assert _metric(_emf(lines)[0])["Namespace"] == "pagedrop-prod"


def test_negative_durations_are_recorded_as_zero() -> None:
    # A clock behind the event's time must not produce a negative latency
    lines: list[str] = []
    metrics = Metrics("pagedrop-test", sink=lines.append)
    metrics.seconds(m.QUEUE_WAIT, -3.0)
    metrics.flush()
    assert _emf(lines)[0][m.QUEUE_WAIT] == [0.0]


def test_seconds_since_an_event_time() -> None:
    # 2024-01-01T00:00:00Z is epoch 1704067200
    assert _since("2024-01-01T00:00:10.500Z", 1704067230.5) == pytest.approx(20.0)
    assert _since("2024-01-01T00:00:00+00:00", 1704067200.0) == 0.0
    assert _since(None, 1704067200.0) is None
    assert _since("not a time", 1704067200.0) is None
    assert _since("2024-01-01T00:00:00", 1704067200.0) is None  # no zone: not guessed


def test_gpu_batch_metrics_per_engine() -> None:
    # Given a batching engine's work since the last document: 3 batches of 7 pages, one split
    from handler.engines.batching import BatchStats
    from handler.worker.observe import DocumentObserver

    lines: list[str] = []
    metrics = Metrics("pagedrop-test", sink=lines.append)
    observer = DocumentObserver(metrics)
    observer.batches(
        {
            "vlm": BatchStats(batches=3, pages=21, seconds=6.0, out_of_memory=1),
            "paddleocr-vl": BatchStats(),  # built, nothing run: nothing published
        }
    )
    metrics.flush()
    # Then they are published by engine: batches, mean fill, mean seconds, OOM splits
    (blob,) = _emf(lines)
    assert blob["engine"] == "vlm"
    assert blob[m.GPU_BATCHES] == [3]
    assert blob[m.GPU_PAGES_PER_BATCH] == [7.0]
    assert blob[m.GPU_SECONDS_PER_BATCH] == [2.0]
    assert blob[m.GPU_OUT_OF_MEMORY] == [1]
    units = {d["Name"]: d["Unit"] for d in _metric(blob)["Metrics"]}
    assert units[m.GPU_PAGES_PER_BATCH] == "None"
    assert units[m.GPU_SECONDS_PER_BATCH] == "Seconds"
