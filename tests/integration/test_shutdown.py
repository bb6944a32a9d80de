"""SIGTERM while a document is being converted: the worker process hands its message back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest

from handler.aws import Clients
from handler.settings import Settings
from handler.worker.build import status_store
from tests.conftest import SAMPLES, drain, upload

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# One OCR page takes about 1-3 s here: the worker must stop within a page plus a few calls.
SHUTDOWN_BOUND_S = 20


def _scanned_pdf(path: Path, pages: int) -> Path:
    with pymupdf.open() as pdf:
        for _ in range(pages):
            page = pdf.new_page(width=230.4, height=172.8)
            page.insert_image(page.rect, filename=str(SAMPLES / "tess__phototest.tif"))
        pdf.save(path)
    return path


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGEDROP_")}
    env.update(
        {
            "PAGEDROP_BUCKET": settings.bucket,
            "PAGEDROP_QUEUE_URL": settings.queue_url,
            "PAGEDROP_DLQ_URL": settings.dlq_url,
            "PAGEDROP_TABLE_NAME": settings.table_name,
            "PAGEDROP_ENDPOINT_URL": str(settings.endpoint_url),
            "PAGEDROP_RECEIVE_WAIT_S": "1",
            "PAGEDROP_HEARTBEAT_INTERVAL_S": "5",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": settings.region,
        }
    )
    return env


def test_sigterm_hands_the_message_back_and_keeps_finished_pages(
    stack_settings: Settings, clients: Clients, tmp_path: Path
) -> None:
    # Given a worker process converting a 12-page scan
    key = upload(clients, stack_settings, _scanned_pdf(tmp_path / "scan.pdf", 12), "long.pdf")
    process = subprocess.Popen(
        [sys.executable, "-m", "handler", "worker"],
        env=_worker_env(stack_settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    store = status_store(stack_settings, clients)
    pk = f"{stack_settings.bucket}/{key}"
    prefix = f"{stack_settings.output_prefix}long.pdf/pages/"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            listing = clients.s3.list_objects_v2(Bucket=stack_settings.bucket, Prefix=prefix)
            if listing.get("KeyCount", 0) >= 2:  # at least one page checkpointed
                break
            time.sleep(0.2)
        else:
            pytest.fail("the worker converted no page in time")
        # When it gets SIGTERM
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=SHUTDOWN_BOUND_S)
        took = time.monotonic() - stopped_at
    finally:
        if process.poll() is None:
            process.kill()
    # Then it exits 0 within the bound, the message is visible again at once,
    # and the document is left PROCESSING with its lease released
    assert code == 0, process.stderr.read().decode()[-2000:] if process.stderr else ""
    assert took < SHUTDOWN_BOUND_S
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=stack_settings.queue_url, AttributeNames=["All"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "1"
    item = store.get(pk)
    assert item is not None and item.raw["status"] == "PROCESSING"
    assert item.lease_until == 0
    done_before = {
        o["Key"]
        for o in clients.s3.list_objects_v2(Bucket=stack_settings.bucket, Prefix=prefix)["Contents"]
        if o["Key"].endswith(".json")
    }
    assert 1 <= len(done_before) < 12
    # And another worker resumes: it finishes the document without redoing those pages
    drain(stack_settings, clients)
    item = store.get(pk)
    assert item is not None and item.raw["status"] == "SUCCEEDED"
    assert item.attempt == 2
    manifest = json.loads(
        clients.s3.get_object(
            Bucket=stack_settings.bucket,
            Key=f"{stack_settings.output_prefix}long.pdf/manifest.json",
        )["Body"].read()
    )
    resumed = [p["page"] for p in manifest["pages"] if p.get("resumed")]
    assert len(resumed) == len(done_before)
    assert manifest["page_count"] == 12
