"""Logs, metrics, health and the self-check of a real worker, over real HTTP.

The first test runs ``python -m handler worker`` as CloudWatch would see it: log lines on
stderr, metric lines (EMF) on stdout, each read back line by line.
"""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from handler import metrics as m
from handler.aws import Clients
from handler.health import check_health
from handler.lambdas.dlq import handle_event
from handler.metrics import Metrics
from handler.settings import Settings
from handler.storage.keys import output_prefix_for
from handler.worker.build import build_worker, status_store
from handler.worker.selfcheck import self_check
from tests.conftest import DATA, upload
from tests.integration.processes import scanned_pdf, wait_for, worker_env

pytestmark = pytest.mark.integration

NAMESPACE = "pagedrop-test"
# The steps of one document, as its INFO lines begin (the page lines are DEBUG).
DOCUMENT_STEPS = (
    "received",
    "claimed (attempt 1)",
    "downloaded",
    "planned 2 page(s)",
    "outputs written",
    "finished SUCCEEDED",
    "message settled: delete",
)


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _metric_values(blobs: Iterable[dict[str, Any]], name: str, **dimensions: str) -> list[float]:
    """Every value of ``name`` in EMF blobs whose dimensions are exactly ``dimensions``."""
    values: list[float] = []
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        keys = set(directive["Dimensions"][0]) - {"service"}
        if (
            name in blob
            and keys == set(dimensions)
            and all(blob[k] == v for k, v in dimensions.items())
        ):
            values.extend(blob[name])
    return values


def test_a_processed_documents_lines_carry_its_correlation_id_and_metrics_reach_stdout(
    stack_settings: Settings, clients: Clients, tmp_path: Path
) -> None:
    # Given a worker process at DEBUG with a 1-second heartbeat, and a 2-page scan
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    env = worker_env(
        stack_settings,
        {
            "PAGEDROP_HEARTBEAT_INTERVAL_S": "1",
            "PAGEDROP_METRICS_NAMESPACE": NAMESPACE,
            "PAGEDROP_HEALTH_FILE": str(tmp_path / "health.json"),
        },
    )
    with out.open("wb") as stdout, err.open("wb") as stderr:
        worker = subprocess.Popen(
            [sys.executable, "-m", "handler", "--log-level", "DEBUG", "worker"],
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        key = upload(clients, stack_settings, scanned_pdf(tmp_path / "scan.pdf", 2), "obs/a.pdf")
        # When it has converted and settled the document
        wait_for(
            lambda: "message settled" in err.read_text(errors="replace"),
            90,
            f"the document to be settled; log: {err.read_text(errors='replace')[-2000:]}",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    pk = f"{stack_settings.bucket}/{key}"
    item = status_store(stack_settings, clients).get(pk)
    assert item is not None and item.raw["status"] == "SUCCEEDED"
    correlation_id = f"{pk}@{item.version}"

    # Then every line from its "received" to its "message settled" carries its correlation id,
    # the heartbeat thread's lines included
    lines = _json_lines(err)
    messages = [line["message"] for line in lines]
    first = messages.index("received")
    last = max(i for i, text in enumerate(messages) if text.startswith("message settled"))
    document_lines = lines[first : last + 1]
    assert all(line.get("correlation_id") == correlation_id for line in document_lines), [
        (line["message"], line.get("correlation_id")) for line in document_lines
    ]
    assert all(line["pk"] == pk and line["version"] == item.version for line in document_lines)
    assert any(line["message"] == "lease extended" for line in document_lines)
    # and says what happened, one INFO line per step, the pages at DEBUG
    info = [line["message"] for line in document_lines if line["level"] == "INFO"]
    for step in DOCUMENT_STEPS:
        assert sum(text.startswith(step) for text in info) == 1, (step, info)
    pages = [line for line in document_lines if line["message"].startswith("page ")]
    assert [(p["page"], p["engine"], p["level"]) for p in pages] == [
        (1, "rapidocr", "DEBUG"),
        (2, "rapidocr", "DEBUG"),
    ]
    # and no line holds the document's text
    markdown = clients.s3.get_object(
        Bucket=stack_settings.bucket,
        Key=output_prefix_for(key, stack_settings.input_prefix, stack_settings.output_prefix)
        + "document.md",
    )["Body"].read()
    phrases = [p for p in markdown.decode().splitlines() if len(p.strip("#-* ")) >= 12]
    assert phrases, "the scan's text should have been read"
    log_text = err.read_text(errors="replace") + out.read_text(errors="replace")
    assert not [p for p in phrases if p.strip("#-* ") in log_text]

    # And stdout holds only EMF lines, with the document's metrics in the namespace
    blobs = _json_lines(out)
    assert blobs and all(
        blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE for blob in blobs
    )
    assert _metric_values(blobs, m.DOCUMENTS_CONVERTED) == [1]
    assert _metric_values(blobs, m.DOCUMENTS_CONVERTED, engine="rapidocr") == [1]
    assert _metric_values(blobs, m.PAGES_CONVERTED, engine="rapidocr") == [2]
    assert _metric_values(blobs, m.PAGES_CONVERTED) == [2]
    (per_page,) = _metric_values(blobs, m.CONVERSION_SECONDS_PER_PAGE, engine="rapidocr")
    (queue_wait,) = _metric_values(blobs, m.QUEUE_WAIT)
    (latency,) = _metric_values(blobs, m.END_TO_END_LATENCY)
    assert 0 < per_page < latency
    assert 0 <= queue_wait <= latency
    # and a stopped worker's health file says so
    healthy, reason = check_health(tmp_path / "health.json", 60)
    assert not healthy and "stopped" in reason


def test_failures_duplicates_and_poison_are_counted(
    stack_settings: Settings, clients: Clients, tmp_path: Path
) -> None:
    # Given a document that fails, its event delivered twice, and a poison body
    key = upload(clients, stack_settings, DATA / "hostile" / "qpdf__bad1.pdf", "bad/one.pdf")
    queued = clients.sqs.receive_message(
        QueueUrl=stack_settings.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )["Messages"]
    for message in queued:
        for _ in range(2):
            clients.sqs.send_message(QueueUrl=stack_settings.queue_url, MessageBody=message["Body"])
        clients.sqs.delete_message(
            QueueUrl=stack_settings.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    clients.sqs.send_message(QueueUrl=stack_settings.queue_url, MessageBody="not an event")
    # When a worker with a metrics sink drains the queue
    lines: list[str] = []
    build_worker(stack_settings, clients, metrics=Metrics(NAMESPACE, sink=lines.append)).run(
        max_idle_polls=1
    )
    # Then the failure is counted under its category, the duplicate and the poison too
    item = status_store(stack_settings, clients).get(f"{stack_settings.bucket}/{key}")
    assert item is not None and item.raw["status"] == "FAILED"
    category = item.raw["error"]["category"]
    blobs = [json.loads(line) for line in lines]
    assert _metric_values(blobs, m.DOCUMENTS_FAILED, category=category) == [1]
    assert sum(_metric_values(blobs, m.DOCUMENTS_FAILED)) == 1
    assert sum(_metric_values(blobs, m.DUPLICATES_SUPPRESSED)) == 1
    assert sum(_metric_values(blobs, m.POISON_MESSAGES)) == 1
    assert len(_metric_values(blobs, m.END_TO_END_LATENCY)) == 1
    assert not _metric_values(blobs, m.DOCUMENTS_CONVERTED)


def test_a_running_worker_is_healthy_and_a_stopped_one_is_not(
    stack_settings: Settings, clients: Clients, tmp_path: Path
) -> None:
    # Given a worker with a health file and a health endpoint
    path = tmp_path / "health.json"
    port = _free_port()
    settings = stack_settings.model_copy(update={"health_file": path, "health_port": port})
    worker = build_worker(settings, clients)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        # When it has polled: healthy in the file and on the endpoint
        reason = wait_for(
            lambda: (lambda r: r[1] if r[0] else None)(check_health(path, 30)),
            30,
            "a healthy worker",
        )
        assert "Polling" in reason
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            body = json.loads(response.read())
        assert response.status == 200
        assert body["engines"] == ["rapidocr", "text-layer"] and body["gpu_required"] is False
    finally:
        worker.stop()
        thread.join(timeout=30)
    # Then, stopped, it is not
    healthy, reason = check_health(path, 30)
    assert not healthy and "stopped" in reason


def test_self_check_passes_against_the_local_endpoint(
    stack_settings: Settings, clients: Clients
) -> None:
    out = io.StringIO()
    assert self_check(stack_settings, clients, out=out), out.getvalue()
    lines = out.getvalue().splitlines()
    names = [line.split(": ", 1)[0] for line in lines]
    assert names == [
        "settings",
        f"bucket s3://{stack_settings.bucket}",
        "work queue",
        "dead-letter queue",
        f"status table {stack_settings.table_name}",
        "engine text-layer",
        "engine rapidocr",
    ]
    assert all(": ok" in line for line in lines)


def test_self_check_fails_with_one_clear_line_when_the_table_is_missing(
    stack_settings: Settings, clients: Clients
) -> None:
    settings = stack_settings.model_copy(update={"table_name": "no-such-table"})
    out = io.StringIO()
    assert not self_check(settings, clients, out=out)
    failed = [line for line in out.getvalue().splitlines() if "FAILED" in line]
    assert failed == ["status table no-such-table: FAILED: The table does not exist."]


def test_the_dlq_function_counts_exhausted_documents(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given a document left PROCESSING, whose message reached the DLQ
    key = upload(clients, stack_settings, DATA / "hostile" / "qpdf__bad1.pdf", "dlq/one.pdf")
    (message,) = [
        m
        for m in clients.sqs.receive_message(
            QueueUrl=stack_settings.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
        )["Messages"]
        if key in m["Body"].replace("%2F", "/")
    ]
    # When the DLQ function handles it with a metrics sink
    lines: list[str] = []
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "5"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
    }
    handle_event(
        {"Records": [record]},
        status_store(stack_settings, clients),
        metrics=Metrics(NAMESPACE, sink=lines.append),
    )
    # Then the document is counted as exhausted
    blobs = [json.loads(line) for line in lines]
    assert _metric_values(blobs, m.DOCUMENTS_EXHAUSTED) == [1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
