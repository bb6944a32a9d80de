"""Helpers for tests that run a real ``python -m handler worker`` process against the stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pymupdf

from handler.aws import Clients
from handler.settings import Settings
from tests.conftest import LOCAL_AWS_ENV, SAMPLES

T = TypeVar("T")

# The worker timings of a test that kills or stops a worker: short, so the message and the
# lease come back within seconds (10 s is the least Settings accepts for either), and a
# checkpoint after every page, so that it can be stopped between two checkpointed pages.
SHORT_TIMINGS = {
    "PAGEDROP_VISIBILITY_TIMEOUT_S": "10",
    "PAGEDROP_LEASE_S": "10",
    "PAGEDROP_HEARTBEAT_INTERVAL_S": "2",
    "PAGEDROP_CHECKPOINT_INTERVAL_S": "0",
}


def short_timings(settings: Settings) -> Settings:
    """The same stack with :data:`SHORT_TIMINGS`, for workers run in the test process."""
    return settings.model_copy(
        update={
            "visibility_timeout_s": 10,
            "lease_s": 10,
            "heartbeat_interval_s": 2,
            "checkpoint_interval_s": 0,
        }
    )


def scanned_pdf(path: Path, pages: int) -> Path:
    """A PDF of ``pages`` image-only pages (the phototest scan: about 1 s of OCR each)."""
    with pymupdf.open() as pdf:
        for _ in range(pages):
            page = pdf.new_page(width=230.4, height=172.8)
            page.insert_image(page.rect, filename=str(SAMPLES / "tess__phototest.tif"))
        pdf.save(path)
    return path


def worker_env(settings: Settings, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker process on the stack of ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGEDROP_")}
    env.update(
        {
            "PAGEDROP_BUCKET": settings.bucket,
            "PAGEDROP_INPUT_PREFIX": settings.input_prefix,
            "PAGEDROP_OUTPUT_PREFIX": settings.output_prefix,
            "PAGEDROP_QUEUE_URL": settings.queue_url,
            "PAGEDROP_DLQ_URL": settings.dlq_url,
            "PAGEDROP_TABLE_NAME": settings.table_name,
            "PAGEDROP_ENDPOINT_URL": str(settings.endpoint_url),
            "PAGEDROP_RECEIVE_WAIT_S": "1",
            "PAGEDROP_HEARTBEAT_INTERVAL_S": "5",
            **LOCAL_AWS_ENV,
            "AWS_DEFAULT_REGION": settings.region,
        }
    )
    env.update(overrides or {})
    return env


def start_worker(
    settings: Settings, log_path: Path, overrides: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``python -m handler worker``; its log goes to ``log_path`` (a pipe could fill)."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "handler", "worker"],
            env=worker_env(settings, overrides),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def log_tail(log_path: Path, chars: int = 3000) -> str:
    return log_path.read_text(errors="replace")[-chars:] if log_path.exists() else ""


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def queue_counts(
    clients: Clients, settings: Settings, queue_url: str | None = None
) -> tuple[int, int]:
    """(visible, in flight) messages of the work queue (or ``queue_url``)."""
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=queue_url or settings.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attrs["ApproximateNumberOfMessages"]),
        int(attrs["ApproximateNumberOfMessagesNotVisible"]),
    )


def keys_under(clients: Clients, settings: Settings, prefix: str) -> list[str]:
    listing = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]
