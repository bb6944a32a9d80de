"""``pagedrop local``: the whole pipeline on this machine, against the embedded endpoint.

Two modes: serve (start the endpoint, create the stack, run a worker until stopped, and
print how to drop files in) and process (upload a folder, convert it, copy the outputs to
a local folder, print a summary table, exit).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from handler.aws import Clients, make_clients
from handler.lambdas.dlq import handle_event, lambda_record
from handler.local.endpoint import LocalEndpoint, local_boto3_session, start_endpoint
from handler.local.resources import LocalStack, create_local_stack
from handler.settings import Settings
from handler.status.model import FINAL_STATUSES, StatusItem
from handler.storage.keys import output_prefix_for, safe_relative_path
from handler.worker.build import build_worker, status_store

LOCAL_RECEIVE_WAIT_S = 1  # short polls: a local run should react at once
DLQ_RETRY_S = 30  # a dead letter whose marking failed is tried again after this long
SQS_BATCH_MAX = 10  # entries per ReceiveMessage / DeleteMessageBatch (SQS quota)
STATUS_POLL_S = 0.5
SKIP_NAMES = frozenset({".DS_Store", "LICENSES.md", "README.md"})

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LocalRun:
    endpoint: LocalEndpoint
    stack: LocalStack
    settings: Settings
    clients: Clients


@contextmanager
def local_environment(
    port: int = 0, bucket: str = "pagedrop-local", **overrides: Any
) -> Iterator[LocalRun]:
    """Start the endpoint, create the stack from template.yaml, yield settings and clients."""
    with start_endpoint(port) as endpoint:
        session = local_boto3_session()
        raw = [endpoint.client(name, session) for name in ("s3", "sqs", "dynamodb")]
        stack = create_local_stack(*raw, bucket=bucket)
        # No metrics by default: EMF lines are for CloudWatch, not a person's terminal.
        overrides = {"metrics_enabled": False, **overrides}
        settings = stack.settings(
            endpoint_url=endpoint.url, receive_wait_s=LOCAL_RECEIVE_WAIT_S, **overrides
        )
        yield LocalRun(endpoint, stack, settings, make_clients(settings, session))


class DeadLetterWatcher:
    """What the DLQ Lambda function does in AWS, as a thread: the documents each dead letter
    names are marked FAILED/exhausted (the same code, :func:`handler.lambdas.dlq.handle_event`),
    then the message is deleted, as Lambda deletes what its function processed. A message
    whose marking failed stays and is tried again after ``DLQ_RETRY_S``; a poison body is
    logged and deleted. ``pagedrop dlq redrive --exhausted`` retries the documents."""

    def __init__(self, settings: Settings, clients: Clients) -> None:
        self._sqs = clients.sqs
        self._url = settings.dlq_url
        self._store = status_store(settings, clients)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dlq", daemon=True)

    def __enter__(self) -> DeadLetterWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.drain_once()
            except Exception:
                log.exception("dead-letter watcher failed; trying again")
                self._stop.wait(STATUS_POLL_S)

    def drain_once(self) -> int:
        """Receive one batch, mark, delete what was handled; returns how many were deleted."""
        response = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=SQS_BATCH_MAX,
            WaitTimeSeconds=LOCAL_RECEIVE_WAIT_S,
            VisibilityTimeout=DLQ_RETRY_S,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        result = handle_event({"Records": [lambda_record(m) for m in messages]}, self._store)
        failed = {failure["itemIdentifier"] for failure in result["batchItemFailures"]}
        handled = [m for m in messages if m["MessageId"] not in failed]
        if not handled:
            return 0
        deleted = self._sqs.delete_message_batch(
            QueueUrl=self._url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(handled)
            ],
        )
        for failure in deleted.get("Failed", []):
            # Marked already; it comes back and marking it again changes nothing.
            log.warning("could not delete a dead letter: %s", failure.get("Message"))
        return len(handled) - len(deleted.get("Failed", []))


@dataclass(frozen=True, slots=True)
class DocumentSummary:
    source: Path
    key: str
    item: StatusItem | None
    outputs: Path | None


def process_folder(
    run: LocalRun, folder: Path, out: Path, *, timeout_s: float = 1800.0
) -> list[DocumentSummary]:
    """Upload every file under ``folder``, convert them all, copy outputs into ``out``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in SKIP_NAMES)
    settings, clients = run.settings, run.clients
    keys = {}
    for path in files:
        key = settings.input_prefix + path.relative_to(folder).as_posix()
        clients.s3.upload_file(str(path), settings.bucket, key)
        keys[key] = path
    worker = build_worker(settings, clients)
    thread = threading.Thread(target=worker.run, name="worker", daemon=True)
    thread.start()
    store = status_store(settings, clients)
    deadline = time.monotonic() + timeout_s
    items: dict[str, StatusItem | None] = {}
    try:
        with DeadLetterWatcher(settings, clients):
            while time.monotonic() < deadline:
                items = {k: store.get(f"{settings.bucket}/{k}") for k in keys}
                if all(i is not None and i.status in FINAL_STATUSES for i in items.values()):
                    break
                time.sleep(STATUS_POLL_S)
    finally:
        worker.stop()
        thread.join(timeout=60)
    return [
        DocumentSummary(
            source=path,
            key=key,
            item=items.get(key),
            outputs=_download_outputs(run, key, out),
        )
        for key, path in keys.items()
    ]


def _download_outputs(run: LocalRun, key: str, out: Path) -> Path | None:
    settings = run.settings
    prefix = output_prefix_for(key, settings.input_prefix, settings.output_prefix)
    listing = run.clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    contents = listing.get("Contents", [])
    if not contents:
        return None
    target = out / safe_relative_path(prefix[len(settings.output_prefix) :])
    for obj in contents:
        relative = safe_relative_path(obj["Key"][len(prefix) :])
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        run.clients.s3.download_file(settings.bucket, obj["Key"], str(destination))
    return target


def summary_table(summaries: list[DocumentSummary]) -> str:
    """A plain-text table: document, status, pages, engines, seconds, error."""
    rows = [("document", "status", "pages", "engines", "seconds", "error")]
    for s in summaries:
        raw = s.item.raw if s.item else {}
        error = raw.get("error") or {}
        rows.append(
            (
                s.key,
                str(raw.get("status", "NOT FINISHED")),
                f"{raw.get('pages_done', 0)}/{raw.get('pages_total', 0)}",
                ",".join(raw.get("engine") or []) or "-",
                _seconds(raw),
                f"{error.get('category')}: {error.get('message')}" if error else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def all_final(summaries: list[DocumentSummary]) -> bool:
    return all(s.item is not None and s.item.status in FINAL_STATUSES for s in summaries)


def _seconds(raw: dict[str, Any]) -> str:
    try:
        started = datetime.fromisoformat(str(raw["started_at"]).replace("Z", "+00:00"))
        finished = datetime.fromisoformat(str(raw["finished_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return "-"
    return f"{(finished - started).total_seconds():.1f}"


def serve(run: LocalRun, announce: Any = print) -> None:
    """Run a worker on the local stack until SIGINT/SIGTERM."""
    s = run.settings
    announce(
        "\n".join(
            [
                f"pagedrop local endpoint: {run.endpoint.url}",
                f"bucket: {s.bucket}  (drop files under s3://{s.bucket}/{s.input_prefix})",
                f"outputs: s3://{s.bucket}/{s.output_prefix}<path>/",
                f"table: {s.table_name}   queue: {s.queue_url}",
                "",
                "try:",
                "  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing "
                f"AWS_DEFAULT_REGION={s.region}",
                f"  aws --endpoint-url {run.endpoint.url} s3 cp some.pdf "
                f"s3://{s.bucket}/{s.input_prefix}x/some.pdf",
                f"  pagedrop status --endpoint-url {run.endpoint.url} --bucket {s.bucket} "
                f"--table-name {s.table_name} {s.input_prefix}x/some.pdf",
                "",
                "Ctrl-C stops.",
            ]
        ),
    )
    worker = build_worker(run.settings, run.clients)
    worker.install_signal_handlers()
    with DeadLetterWatcher(run.settings, run.clients):
        worker.run()
