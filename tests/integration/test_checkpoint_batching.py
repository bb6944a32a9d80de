"""Page checkpoints written in batches behind the engine (handler/worker/checkpoints.py),
against the embedded AWS endpoint: one fence a batch, resumption from complete batches, the
converted pages kept on shutdown, nothing written by a worker that lost its lease, and a
failed write stopping the conversion at the next page.

Documents use a paced engine (selected by the object's ``pagedrop-engine`` metadata) that
takes a fixed time a page, so that batches form by conversion time as they do for real pages.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pymupdf
import pytest
from botocore.exceptions import ClientError

from handler.aws import Clients, make_clients
from handler.documents.pages import PageInput
from handler.engines import registry
from handler.engines.base import Element, ElementType, PageResult
from handler.engines.registry import EngineSet
from handler.events.model import ObjectRef
from handler.local.endpoint import local_boto3_session
from handler.settings import Settings
from handler.status.model import Status
from handler.status.store import Claim, StatusStore
from handler.storage.objects import ObjectStore
from handler.worker.build import status_store
from handler.worker.document import Disposition, DocumentProcessor
from tests.conftest import mid_page
from tests.faults import SLOW_DOWN, FaultInjector
from tests.integration.processes import wait_for

pytestmark = pytest.mark.integration

ENGINE = "paced"
PAGE_S = 0.05  # the paced engine's time a page
HOLD_TIMEOUT_S = 60


@dataclass
class Pace:
    """What every paced engine shares: (worker, page) converted, pages to hold or break."""

    log: list[tuple[str, int]] = field(default_factory=list)
    holds: dict[tuple[str, int], Callable[[], bool]] = field(default_factory=dict)
    holding: set[tuple[str, int]] = field(default_factory=set)
    broken: set[tuple[str, int]] = field(default_factory=set)  # raise a bug there

    def pages_by(self, worker: str) -> list[int]:
        return [page for name, page in self.log if name == worker]


class PacedEngine:
    name = ENGINE

    def __init__(self, pace: Pace) -> None:
        self._pace = pace

    def convert(self, page: PageInput) -> PageResult:
        worker = threading.current_thread().name
        if (worker, page.number) in self._pace.broken:
            raise RuntimeError(f"engine bug on page {page.number}")
        self._pace.log.append((worker, page.number))
        hold = self._pace.holds.get((worker, page.number))
        if hold is not None:
            self._pace.holding.add((worker, page.number))
            wait_for(hold, HOLD_TIMEOUT_S, f"the release of page {page.number}", 0.05)
        time.sleep(PAGE_S)
        text = Element(
            ElementType.NARRATIVE_TEXT, f"page {page.number} by {worker}", mid_page(page)
        )
        return PageResult(page.number, page.layout_width, page.layout_height, ENGINE, [text])


@pytest.fixture
def pace(monkeypatch: pytest.MonkeyPatch) -> Pace:
    shared = Pace()
    monkeypatch.setitem(registry.FACTORIES, ENGINE, lambda settings: PacedEngine(shared))
    return shared


class RecordingStore(StatusStore):
    """A status store that notes its progress writes (the batch fences): (time, pages_done)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fences: list[tuple[float, int]] = []
        self.claims: list[Claim] = []

    def claim(self, ref: ObjectRef, worker: str, output_prefix: str) -> Any:
        result = super().claim(ref, worker, output_prefix)
        if result.claim is not None:
            self.claims.append(result.claim)
        return result

    def progress(
        self, claim: Claim, *, pages_done: int, pages_total: int, engines: list[str]
    ) -> None:
        super().progress(claim, pages_done=pages_done, pages_total=pages_total, engines=engines)
        self.fences.append((time.monotonic(), pages_done))


@dataclass
class Worker:
    """A DocumentProcessor on clients of its own, its S3 writes recorded (key, started)."""

    name: str
    processor: DocumentProcessor
    store: RecordingStore
    clients: Clients
    puts: list[tuple[str, float]] = field(default_factory=list)

    def process(self, ref: ObjectRef) -> Any:
        """Process ``ref`` on a thread named for the worker (the engine notes it)."""
        outcome: list[Any] = []
        thread = threading.Thread(
            target=lambda: outcome.append(self.processor.process(ref)), name=self.name
        )
        thread.start()
        thread.join(HOLD_TIMEOUT_S + 30)
        assert outcome, f"{self.name} did not finish"
        return outcome[0]


def _worker(
    settings: Settings,
    name: str,
    *,
    interval_s: float,
    lease_s: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Worker:
    settings = settings.model_copy(update={"checkpoint_interval_s": interval_s})
    clients = make_clients(settings, local_boto3_session())
    store = RecordingStore(
        clients.dynamodb,
        settings.table_name,
        lease_s=lease_s or settings.lease_s,
        retention_days=1,
    )
    processor = DocumentProcessor(
        settings,
        ObjectStore(clients.s3, settings.bucket),
        store,
        EngineSet(settings),
        None,
        name,
        should_stop,
    )
    worker = Worker(name, processor, store, clients)
    lock = threading.Lock()

    def note(params: dict[str, Any], **kwargs: Any) -> None:
        with lock:  # called on the writing threads
            worker.puts.append((str(params.get("Key")), time.monotonic()))

    clients.s3.meta.events.register("before-parameter-build.s3.PutObject", note)
    return worker


def _upload(clients: Clients, settings: Settings, relative: str, pages: int) -> ObjectRef:
    with pymupdf.open() as pdf:
        for number in range(1, pages + 1):
            pdf.new_page().insert_text((72, 72), f"{relative}, page {number}")
        data: bytes = pdf.tobytes()
    key = settings.input_prefix + relative
    clients.s3.put_object(
        Bucket=settings.bucket, Key=key, Body=data, Metadata={"pagedrop-engine": ENGINE}
    )
    etag = clients.s3.head_object(Bucket=settings.bucket, Key=key)["ETag"].strip('"')
    return ObjectRef(bucket=settings.bucket, key=key, etag=etag)


def _out(settings: Settings, relative: str) -> str:
    return f"{settings.output_prefix}{relative}/"


def _checkpointed(clients: Clients, settings: Settings, out: str) -> list[int]:
    """Pages whose checkpoint (JSON with the source version) exists."""
    listing = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=out + "pages/")
    done = []
    for obj in listing.get("Contents", []):
        if obj["Key"].endswith(".json"):
            head = clients.s3.head_object(Bucket=settings.bucket, Key=obj["Key"])
            if "pagedrop-source-version" in head["Metadata"]:
                done.append(int(obj["Key"].rsplit("/", 1)[-1].removesuffix(".json")))
    return sorted(done)


def _manifest(clients: Clients, settings: Settings, out: str) -> dict[str, Any]:
    """The manifest, after checking every output it lists and that it lists everything."""
    body = clients.s3.get_object(Bucket=settings.bucket, Key=out + "manifest.json")["Body"]
    manifest: dict[str, Any] = json.loads(body.read())
    for output in manifest["outputs"]:
        data = clients.s3.get_object(Bucket=settings.bucket, Key=output["key"])["Body"].read()
        assert hashlib.sha256(data).hexdigest() == output["sha256"], output["key"]
    listing = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=out)
    stored = {o["Key"] for o in listing["Contents"]} - {out + "manifest.json"}
    assert stored == {o["key"] for o in manifest["outputs"]}
    return manifest


def test_pages_are_checkpointed_in_batches_each_behind_its_fence(
    stack_settings: Settings, clients: Clients, pace: Pace
) -> None:
    # Given a 12-page document of 50 ms pages and a checkpoint interval of 300 ms
    ref = _upload(clients, stack_settings, "batched/doc.pdf", 12)
    worker = _worker(stack_settings, "worker-a", interval_s=0.3)
    # When it is converted
    outcome = worker.process(ref)
    # Then it succeeds with fewer fences than pages (one at the start, one a batch; a batch
    # is flushed after 6 pages at the most, sooner when pages run slow)
    assert outcome.status is Status.SUCCEEDED, outcome
    batches = worker.store.fences[1:]
    assert 2 <= len(batches) < 12
    assert [done for _, done in batches] == sorted({done for _, done in batches})
    assert batches[-1][1] == 12
    # and every page file was written after a fence that counted its page
    out = _out(stack_settings, "batched/doc.pdf")
    page_puts = [(key, at) for key, at in worker.puts if "/pages/" in key]
    assert len(page_puts) == 24
    for key, at in page_puts:
        number = int(key.rsplit("/", 1)[-1].split(".")[0])
        assert any(fenced < at and done >= number for fenced, done in batches), key
    assert _checkpointed(clients, stack_settings, out) == list(range(1, 13))
    manifest = _manifest(clients, stack_settings, out)
    assert manifest["page_count"] == 12 and not any(p.get("resumed") for p in manifest["pages"])


def test_a_failed_attempt_leaves_whole_batches_and_the_next_resumes_after_them(
    stack_settings: Settings, clients: Clients, pace: Pace
) -> None:
    # Given worker A whose engine breaks (a bug) on page 8 of 12, batches of 3 pages at most
    ref = _upload(clients, stack_settings, "resume/doc.pdf", 12)
    pace.broken.add(("worker-a", 8))
    a = _worker(stack_settings, "worker-a", interval_s=0.12)
    outcome = a.process(ref)
    assert outcome.disposition is Disposition.RETRY, outcome
    # Then what A left is whole batches: a prefix of the pages, each with both files, the
    # pages converted since the last flush not among them
    out = _out(stack_settings, "resume/doc.pdf")
    done = _checkpointed(clients, stack_settings, out)
    last_fence = a.store.fences[-1][1]
    assert done == list(range(1, last_fence + 1)) and 4 <= last_fence <= 7
    for number in done:
        clients.s3.head_object(Bucket=stack_settings.bucket, Key=f"{out}pages/{number:04d}.md")
    # And worker B converts only the pages after them
    b = _worker(stack_settings, "worker-b", interval_s=0.12)
    assert b.process(ref).status is Status.SUCCEEDED
    assert pace.pages_by("worker-b") == list(range(last_fence + 1, 13))
    manifest = _manifest(clients, stack_settings, out)
    assert [p["page"] for p in manifest["pages"] if p.get("resumed")] == done


def test_on_shutdown_the_converted_pages_are_checkpointed_before_the_hand_back(
    stack_settings: Settings, clients: Clients, pace: Pace
) -> None:
    # Given a worker with a long interval (no batch flushed before the end), told to stop
    # once it has converted page 5 of 10
    ref = _upload(clients, stack_settings, "stop/doc.pdf", 10)
    a = _worker(
        stack_settings,
        "worker-a",
        interval_s=60,
        should_stop=lambda: len(pace.pages_by("worker-a")) >= 5,
    )
    # When it stops between pages
    outcome = a.process(ref)
    # Then it hands the document back with pages 1-5 checkpointed and its lease released
    assert outcome.disposition is Disposition.HAND_BACK, outcome
    out = _out(stack_settings, "stop/doc.pdf")
    assert _checkpointed(clients, stack_settings, out) == [1, 2, 3, 4, 5]
    item = status_store(stack_settings, clients).get(ref.pk)
    assert item is not None and item.raw["status"] == "PROCESSING" and item.lease_until == 0
    # And the next worker converts pages 6-10 only
    b = _worker(stack_settings, "worker-b", interval_s=60)
    assert b.process(ref).status is Status.SUCCEEDED
    assert pace.pages_by("worker-b") == [6, 7, 8, 9, 10]


def test_a_worker_whose_lease_was_taken_over_writes_no_batch(
    stack_settings: Settings, clients: Clients, pace: Pace
) -> None:
    # Given worker A converting 4 pages under a 1-second lease it never extends, with a long
    # interval (its pages wait for one batch), held at page 3
    ref = _upload(clients, stack_settings, "taken/doc.pdf", 4)
    a = _worker(stack_settings, "worker-a", interval_s=60, lease_s=1)
    b_done = threading.Event()
    pace.holds[("worker-a", 3)] = b_done.is_set
    outcome_a: list[Any] = []
    run_a = threading.Thread(target=lambda: outcome_a.append(a.process(ref)), name="run-a")
    run_a.start()
    wait_for(lambda: ("worker-a", 3) in pace.holding, 30, "worker A to reach page 3")
    held = status_store(stack_settings, clients).get(ref.pk)
    assert held is not None

    # When its lease runs out and worker B takes the document over and finishes it
    wait_for(lambda: time.time() > held.lease_until, 10, "A's lease to run out")
    b = _worker(stack_settings, "worker-b", interval_s=60)
    outcome_b = b.process(ref)
    b_done.set()
    run_a.join(HOLD_TIMEOUT_S)

    # Then A converts its pages but its batch's fence fails: it wrote nothing at all
    assert outcome_b.status is Status.SUCCEEDED, outcome_b
    assert outcome_a and outcome_a[0].disposition is Disposition.RETRY
    assert "lease lost" in outcome_a[0].reason
    assert pace.pages_by("worker-a") == [1, 2, 3, 4]
    assert a.puts == []
    out = _out(stack_settings, "taken/doc.pdf")
    manifest = _manifest(clients, stack_settings, out)
    assert manifest["attempt"] == 2 and not any(p.get("resumed") for p in manifest["pages"])
    markdown = clients.s3.get_object(Bucket=stack_settings.bucket, Key=out + "document.md")
    assert "worker-a" not in markdown["Body"].read().decode()


def test_a_failed_page_write_stops_the_conversion_at_the_next_page(
    stack_settings: Settings, clients: Clients, pace: Pace
) -> None:
    # Given a worker checkpointing every page whose write of page 3's checkpoint is refused
    ref = _upload(clients, stack_settings, "refused/doc.pdf", 10)
    a = _worker(stack_settings, "worker-a", interval_s=0)

    def refuse(params: dict[str, Any], **kwargs: Any) -> None:
        if str(params.get("Key", "")).endswith("pages/0003.json"):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")

    a.clients.s3.meta.events.register("before-parameter-build.s3.PutObject", refuse)
    # When it converts the document
    outcome = a.process(ref)
    # Then it stops within a page of the failure (page 4's flush waits for page 3's batch),
    # asks for a retry as before, and releases the lease; page 3 is no checkpoint
    assert outcome.disposition is Disposition.RETRY and "ClientError" in outcome.reason
    assert pace.pages_by("worker-a") in ([1, 2, 3], [1, 2, 3, 4])
    out = _out(stack_settings, "refused/doc.pdf")
    assert 3 not in _checkpointed(clients, stack_settings, out)
    item = status_store(stack_settings, clients).get(ref.pk)
    assert item is not None and item.raw["status"] == "PROCESSING" and item.lease_until == 0


def test_s3_throttling_of_a_batch_written_at_once_is_retried_and_the_document_succeeds(
    stack_settings: Settings, clients: Clients, pace: Pace
) -> None:
    # Given one batch of 8 pages (16 page files written at once) and S3 throttling the
    # first 6 PutObject attempts
    ref = _upload(clients, stack_settings, "throttled/doc.pdf", 8)
    a = _worker(stack_settings, "worker-a", interval_s=60)
    with FaultInjector() as faults:
        faults.fail(a.clients.s3, "PutObject", SLOW_DOWN, times=6)
        # When it is converted
        outcome = a.process(ref)
        # Then botocore's retries absorb the faults of the concurrent writes
        assert faults.faulted("s3.PutObject") == 6
    assert outcome.status is Status.SUCCEEDED, outcome
    out = _out(stack_settings, "throttled/doc.pdf")
    assert _checkpointed(clients, stack_settings, out) == list(range(1, 9))
    _manifest(clients, stack_settings, out)
