"""Resource bounds of a real worker process: memory that does not grow with the page count,
and a per-document time limit that holds on a real OCR document.

Each measured document is converted by its own ``python -m handler worker`` process on a
stack (bucket, queues, table) of its own, configured by the stack's ``settings_env()``; its
peak resident memory is the process's ``ru_maxrss`` as ``os.wait4`` reports it when the
process ends (that child only, not every child the test run ever had).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pymupdf
import pytest

from handler.aws import Clients, make_clients
from handler.local.endpoint import LocalEndpoint, local_boto3_session
from handler.local.resources import LocalStack, create_local_stack
from handler.settings import Settings
from handler.worker.build import status_store
from tests.conftest import LOCAL_AWS_ENV, SAMPLES, drain, upload
from tests.hostile_files import pdf_claiming_pages
from tests.integration.processes import scanned_pdf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Pages are converted one at a time and only their small results are kept: ten times the
# pages may cost a little more memory, not ten times as much.
MEMORY_GROWTH_BOUND = 1.5
CONVERT_BOUND_S = 90  # for the 300-page document, about 15 s here; generous for a shared CPU
FINAL = {"SUCCEEDED", "PARTIAL", "FAILED"}
# rapidocr's models and ONNX Runtime's arena are most of a scan's memory (about 640 MiB).
SCANNED_PAGES = 20
# A PDF of a few kilobytes may declare an object table of millions of entries; MuPDF builds
# the table (about 85 bytes an entry) up to its own cap of 2**23 entries: about 0.7 GB.
OBJECT_TABLE_BOMB_ENTRIES = 8_000_000
OBJECT_TABLE_BOMB_BOUND_MIB = 1536

_PARAGRAPH = (
    "Pagedrop turns documents dropped into a bucket into markdown and element JSON. "
    "Each page is read from its own text layer when it has a usable one, and by OCR when "
    "it does not; the results are written as the pages complete. "
)


def _born_digital_pdf(path: Path, pages: int) -> Path:
    """A text PDF of ``pages`` US Letter pages: a heading and four paragraphs each."""
    with pymupdf.open() as pdf:
        for number in range(1, pages + 1):
            page = pdf.new_page(width=612, height=792)
            page.insert_text((72, 90), f"Chapter {number}", fontsize=20)
            page.insert_textbox(pymupdf.Rect(72, 120, 540, 720), (_PARAGRAPH * 3 + "\n\n") * 4)
        pdf.save(path)
    return path


@dataclass(frozen=True)
class Stack:
    local: LocalStack
    settings: Settings
    clients: Clients


def _fresh_stack(endpoint: LocalEndpoint) -> Stack:
    """A bucket, queues and table for one measured run, so that runs stay apart: nothing
    of one worker (its last long poll, its held messages) can touch the next run's work."""
    name = f"pagedrop-bounds-{uuid.uuid4().hex[:10]}"
    session = local_boto3_session()
    raw = [endpoint.client(service, session) for service in ("s3", "sqs", "dynamodb")]
    local = create_local_stack(*raw, bucket=name, prefix=name)
    settings = local.settings(endpoint_url=endpoint.url, receive_wait_s=1)
    return Stack(local, settings, make_clients(settings, session))


def _worker_env(stack: LocalStack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAGEDROP_", "AWS_"))}
    env.update(stack.settings_env())
    env.update(
        {
            "PAGEDROP_RECEIVE_WAIT_S": "1",
            **LOCAL_AWS_ENV,
            "AWS_DEFAULT_REGION": stack.region,
            "PYTHONUNBUFFERED": "1",  # its log is read when a test fails
        }
    )
    return env


@dataclass(frozen=True)
class Run:
    status: str
    pages: int
    peak_rss_mib: float
    seconds: float  # the document's started_at to finished_at


def _peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident memory so far (VmHWM), in KiB; None without /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def _convert_in_a_worker_process(endpoint: LocalEndpoint, path: Path, relative: str) -> Run:
    """Upload ``path`` to a fresh stack, let a fresh worker process convert it, stop the
    process, measure."""
    stack = _fresh_stack(endpoint)
    settings, clients = stack.settings, stack.clients
    key = upload(clients, settings, path, relative)
    store = status_store(settings, clients)
    log_path = path.with_suffix(".log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "handler", "worker"],
            env=_worker_env(stack.local),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + CONVERT_BOUND_S
        item = None
        while time.monotonic() < deadline:
            item = store.get(f"{settings.bucket}/{key}")
            if item is not None and item.raw["status"] in FINAL:
                break
            time.sleep(0.5)
        else:
            tail = log_path.read_text(errors="replace")[-3000:]
            pytest.fail(f"{relative} did not reach a final state in {CONVERT_BOUND_S} s:\n{tail}")
        # The worker's own peak, read before it exits. Its rusage's ru_maxrss would not do:
        # a process started by vfork + exec inherits the parent's high-water mark, so a test
        # process grown large by earlier tests (torch, paddle) would be measured instead.
        peak_kib = _peak_rss_kib(process.pid)
        process.send_signal(signal.SIGTERM)
        _, code, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(code)
    finally:
        if process.returncode is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, log_path.read_text(errors="replace")[-3000:]
    assert item is not None
    started = datetime.fromisoformat(item.raw["started_at"])
    finished = datetime.fromisoformat(item.raw["finished_at"])
    return Run(
        status=item.raw["status"],
        pages=int(item.raw["pages_done"]),
        peak_rss_mib=(peak_kib or usage.ru_maxrss) / 1024,  # KiB on Linux
        seconds=(finished - started).total_seconds(),
    )


def _report(name: str, small: Run, large: Run) -> None:
    # Shown with -s (and in the output of a failing test): the numbers behind the bound.
    print(
        f"\n{name}: {small.pages} pages {small.peak_rss_mib:.0f} MiB peak in {small.seconds:.1f} s;"
        f" {large.pages} pages {large.peak_rss_mib:.0f} MiB peak in {large.seconds:.1f} s;"
        f" ratio {large.peak_rss_mib / small.peak_rss_mib:.2f}"
    )


def test_memory_of_a_300_page_document_stays_near_that_of_a_30_page_one(
    endpoint: LocalEndpoint, tmp_path: Path
) -> None:
    # Given a 30-page and a 300-page born-digital PDF
    small_pdf = _born_digital_pdf(tmp_path / "small.pdf", 30)
    large_pdf = _born_digital_pdf(tmp_path / "large.pdf", 300)
    # When a fresh worker process converts each
    small = _convert_in_a_worker_process(endpoint, small_pdf, "mem/30.pdf")
    large = _convert_in_a_worker_process(endpoint, large_pdf, "mem/300.pdf")
    _report("born-digital", small, large)
    # Then both succeed, and ten times the pages cost at most half as much memory again
    assert (small.status, small.pages) == ("SUCCEEDED", 30)
    assert (large.status, large.pages) == ("SUCCEEDED", 300)
    assert large.peak_rss_mib <= MEMORY_GROWTH_BOUND * small.peak_rss_mib, (small, large)


def test_memory_of_a_20_page_scan_stays_near_that_of_a_2_page_one(
    endpoint: LocalEndpoint, tmp_path: Path
) -> None:
    # Given a 2-page and a 20-page scanned PDF (image-only: every page goes to OCR)
    small_pdf = scanned_pdf(tmp_path / "small.pdf", 2)
    large_pdf = scanned_pdf(tmp_path / "large.pdf", SCANNED_PAGES)
    # When a fresh worker process converts each
    small = _convert_in_a_worker_process(endpoint, small_pdf, "ocr/2.pdf")
    large = _convert_in_a_worker_process(endpoint, large_pdf, "ocr/large.pdf")
    _report("scanned", small, large)
    # Then both succeed, and the OCR engine's memory does not grow with the pages
    assert (small.status, small.pages) == ("SUCCEEDED", 2)
    assert (large.status, large.pages) == ("SUCCEEDED", SCANNED_PAGES)
    assert large.peak_rss_mib <= MEMORY_GROWTH_BOUND * small.peak_rss_mib, (small, large)


def test_a_pdf_declaring_millions_of_objects_is_converted_within_a_memory_bound(
    endpoint: LocalEndpoint, tmp_path: Path
) -> None:
    # Given a 47 KB one-page PDF whose object table declares eight million entries
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(pdf_claiming_pages(1, table_entries=OBJECT_TABLE_BOMB_ENTRIES))
    # When a fresh worker process converts it
    run = _convert_in_a_worker_process(endpoint, bomb, "bomb/objects.pdf")
    print(
        f"\nobject-table bomb: {run.status} {run.peak_rss_mib:.0f} MiB peak in {run.seconds:.1f} s"
    )
    # Then it ends (its one blank page converted) within a bounded time and memory: the
    # bound is MuPDF's cap on the table; were it lifted, this test would say so
    assert (run.status, run.pages) == ("SUCCEEDED", 1)
    assert run.seconds < 30
    assert run.peak_rss_mib < OBJECT_TABLE_BOMB_BOUND_MIB, run


def test_a_real_ocr_document_past_its_time_limit_ends_as_timeout_in_bounded_time(
    stack_settings: Settings, clients: Clients, tmp_path: Path
) -> None:
    # Given a worker with a 1 s limit per document and an 8-page scan (OCR at full size:
    # seconds per page, so the whole document would take far longer than the limit)
    settings = stack_settings.model_copy(update={"document_timeout_s": 1.0})
    with pymupdf.open() as pdf:
        for _ in range(8):
            page = pdf.new_page(width=612, height=792)
            page.insert_image(page.rect, filename=str(SAMPLES / "tess__phototest.tif"))
        pdf.save(tmp_path / "scan.pdf")
    key = upload(clients, settings, tmp_path / "scan.pdf", "timeout/scan.pdf")
    # When a worker drains the queue
    began = time.monotonic()
    drain(settings, clients)
    took = time.monotonic() - began
    # Then the document is FAILED/timeout after at most a page or two, not after all eight;
    # the limit is checked between pages, so the bound is the limit plus one page
    item = status_store(settings, clients).get(f"{settings.bucket}/{key}")
    assert item is not None and item.raw["status"] == "FAILED"
    assert item.raw["error"]["category"] == "timeout"
    assert "longer than the limit of 1 second" in item.raw["error"]["message"]
    assert int(item.raw["pages_done"]) < 8
    started = datetime.fromisoformat(item.raw["started_at"])
    seconds = (datetime.fromisoformat(item.raw["finished_at"]) - started).total_seconds()
    print(f"\ntimeout: FAILED after {item.raw['pages_done']} of 8 pages, {seconds:.1f} s")
    assert seconds < 30
    assert took < 60
    manifest = f"{settings.output_prefix}timeout/scan.pdf/manifest.json"
    listing = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=manifest)
    assert listing.get("KeyCount", 0) == 0
