"""SIGTERM to a real worker process: mid-document it hands its message back and keeps the
finished pages; idle, it cuts its long poll short. Either way it exits 0 within a bound and
leaves nothing PROCESSING under a live lease and no message in flight."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import moto.sqs.models as sqs_models
import pytest

from handler.aws import Clients, make_clients
from handler.documents.pages import PageInput
from handler.engines import registry
from handler.engines.base import Element, ElementType, PageResult
from handler.local.endpoint import local_boto3_session
from handler.settings import Settings
from handler.worker.build import build_worker, status_store
from tests.conftest import SAMPLES, drain, mid_page, upload
from tests.integration.processes import (
    log_tail,
    queue_counts,
    scanned_pdf,
    short_timings,
    start_worker,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# One OCR page takes about 1-3 s here: the worker must stop within a page plus a few calls.
SHUTDOWN_BOUND_S = 20
# Idle, the worker lets its long poll run out (abandoning it would leave SQS holding what it
# received for the visibility timeout) and hands back what it brought: the bound is the rest
# of the poll plus a few calls. The tests poll for 5 s and set the watchdog's grace to 1 s, so
# the watchdog wakes in the middle of the poll (and must leave it alone).
IDLE_RECEIVE_WAIT_S = 5
IDLE_SHUTDOWN_BOUND_S = IDLE_RECEIVE_WAIT_S + 10
HELD_BEAT_S = 3  # how long the test holds up a heartbeat's visibility extension


def _no_live_processing_lease(clients: Clients, settings: Settings) -> None:
    """Nothing is left PROCESSING under a lease that is still running."""
    now = time.time()
    for raw in clients.dynamodb.scan(TableName=settings.table_name)["Items"]:
        if raw["status"]["S"] == "PROCESSING":
            assert float(raw["lease_until"]["N"]) <= now, raw["pk"]["S"]


def test_sigterm_hands_the_message_back_and_keeps_finished_pages(
    stack_settings: Settings, clients: Clients, tmp_path: Path
) -> None:
    # Given a worker process converting a 12-page scan
    key = upload(clients, stack_settings, scanned_pdf(tmp_path / "scan.pdf", 12), "long.pdf")
    log = tmp_path / "worker.log"
    # a checkpoint after every page, so that SIGTERM lands between two checkpointed pages
    process = start_worker(stack_settings, log, {"PAGEDROP_CHECKPOINT_INTERVAL_S": "0"})
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
    assert code == 0, log_tail(log)
    assert took < SHUTDOWN_BOUND_S
    assert queue_counts(clients, stack_settings) == (1, 0)  # visible, none in flight
    item = store.get(pk)
    assert item is not None and item.raw["status"] == "PROCESSING"
    assert item.lease_until == 0
    _no_live_processing_lease(clients, stack_settings)
    print(f"mid-document SIGTERM: exit 0 after {took:.1f} s")
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


@pytest.mark.parametrize("arrives", [False, True], ids=["nothing-arrives", "a-message-arrives"])
def test_sigterm_while_idle_ends_the_long_poll_and_hands_back_what_it_brings(
    stack_settings: Settings,
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    arrives: bool,
) -> None:
    # Given an idle worker process in a long poll on an empty queue (the endpoint runs in this
    # process: a spy on its receive shows when the poll has begun)
    clients.sqs.purge_queue(QueueUrl=stack_settings.queue_url)
    queue_name = stack_settings.queue_url.rsplit("/", 1)[-1]
    polls: list[float] = []
    receive = sqs_models.SQSBackend.receive_message

    def spy(self: object, queue: str, count: int, wait_s: int, *args: object) -> object:
        if queue == queue_name and wait_s == IDLE_RECEIVE_WAIT_S:
            polls.append(time.monotonic())
        return receive(self, queue, count, wait_s, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(sqs_models.SQSBackend, "receive_message", spy)
    log = tmp_path / "worker.log"
    process = start_worker(
        stack_settings,
        log,
        {
            "PAGEDROP_RECEIVE_WAIT_S": str(IDLE_RECEIVE_WAIT_S),
            "PAGEDROP_SHUTDOWN_GRACE_S": "1",
        },
    )
    try:
        wait_for(lambda: polls, 60, "the worker's first long poll")
        time.sleep(0.5)  # inside the poll
        # When it gets SIGTERM (and, in one case, a message arrives during the rest of the poll)
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        if arrives:
            time.sleep(1.0)
            clients.sqs.send_message(QueueUrl=stack_settings.queue_url, MessageBody="{}")
        code = process.wait(timeout=IDLE_SHUTDOWN_BOUND_S + 30)
        took = time.monotonic() - stopped_at
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    # Then it exits 0 within the bound, by the normal path, having polled no more
    assert code == 0, log_tail(log)
    assert took < IDLE_SHUTDOWN_BOUND_S, log_tail(log)
    assert "still busy" not in log.read_text(), log_tail(log)
    assert len(polls) == 1
    # And what the poll brought is visible again at once: nothing in flight, nothing claimed
    assert queue_counts(clients, stack_settings) == ((1, 0) if arrives else (0, 0))
    _no_live_processing_lease(clients, stack_settings)
    print(f"idle SIGTERM ({'a message arrives' if arrives else 'nothing'}): exit 0 in {took:.2f} s")


class HoldingEngine:
    """Holds page 1 until ``release`` says so; every page becomes one line of text."""

    name = "holding"

    def __init__(self, release: Callable[[], bool]) -> None:
        self._release = release

    def convert(self, page: PageInput) -> PageResult:
        if page.number == 1:
            wait_for(self._release, 30, "the release of page 1", 0.05)
        text = Element(ElementType.NARRATIVE_TEXT, f"page {page.number}", mid_page(page))
        return PageResult(page.number, page.layout_width, page.layout_height, self.name, [text])


def test_a_heartbeat_in_flight_cannot_hide_a_message_handed_back(
    stack_settings: Settings, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker stopped mid-document while its heartbeat is extending the visibility of
    # the message (the extension is held up until the hand-back has been sent)
    settings = short_timings(stack_settings)
    clients.sqs.purge_queue(QueueUrl=settings.queue_url)
    own = make_clients(settings, local_boto3_session())
    worker = build_worker(settings, own)
    monkeypatch.setitem(
        registry.FACTORIES, "holding", lambda s: HoldingEngine(lambda: worker.stopping)
    )
    beat_in_flight, handed_back = threading.Event(), threading.Event()

    def hold_up_the_beat(**kwargs: object) -> None:
        if not beat_in_flight.is_set():
            beat_in_flight.set()
            handed_back.wait(HELD_BEAT_S)

    def note_hand_back(params: dict[str, object], **kwargs: object) -> None:
        if params.get("VisibilityTimeout") == 0:
            handed_back.set()

    own.sqs.meta.events.register("before-call.sqs.ChangeMessageVisibilityBatch", hold_up_the_beat)
    own.sqs.meta.events.register(
        "before-parameter-build.sqs.ChangeMessageVisibility", note_hand_back
    )
    key = settings.input_prefix + "beat/doc.pdf"
    clients.s3.upload_file(
        str(SAMPLES / "pysf__multicolumn.pdf"),
        settings.bucket,
        key,
        ExtraArgs={"Metadata": {"pagedrop-engine": "holding"}},
    )
    thread = threading.Thread(target=worker.run, name="worker", daemon=True)
    thread.start()
    try:
        wait_for(beat_in_flight.is_set, 30, "a heartbeat while the document is held")
        # When the worker is told to stop (it hands the message back after page 1)
        worker.stop()
    finally:
        worker.stop()
        thread.join(timeout=60)
    # Then the message is visible at once: the late extension did not hide it again
    assert handed_back.is_set()
    assert queue_counts(clients, settings) == (1, 0)
    item = status_store(settings, clients).get(f"{settings.bucket}/{key}")
    assert item is not None and item.lease_until == 0
