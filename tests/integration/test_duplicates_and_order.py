"""Duplicate and out-of-order events, and a worker whose lease was taken over (DESIGN §4, §5).

Documents here use a scripted engine (selected by the object's ``pagedrop-engine`` metadata)
that notes which thread converted which page and can hold a page until the test lets it go,
so that two workers are made to overlap exactly where the test wants them to.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pymupdf
import pytest

from handler.aws import Clients, make_clients
from handler.documents.pages import PageInput
from handler.engines import registry
from handler.engines.base import Element, ElementType, PageResult
from handler.engines.registry import EngineSet
from handler.errors import ErrorCategory, LeaseLost
from handler.events.model import ObjectRef
from handler.local.endpoint import local_boto3_session
from handler.settings import Settings
from handler.status.model import Status
from handler.status.store import Claim, ClaimResult, StatusStore
from handler.storage.objects import ObjectStore
from handler.worker.build import build_worker, status_store
from handler.worker.document import Disposition, DocumentProcessor, Outcome
from handler.worker.loop import Worker
from tests.conftest import mid_page
from tests.integration.processes import queue_counts, short_timings, wait_for

pytestmark = pytest.mark.integration

ENGINE = "scripted"
EVENTS = Path(__file__).parents[1] / "events"
HOLD_TIMEOUT_S = 60  # a held page gives up after this (the test then fails on its checks)
SETTLE_BOUND_S = 60  # duplicates settle within a lease (10 s) plus generous slack


# -- the scripted engine -----------------------------------------------------------------


@dataclass
class Script:
    """What every scripted engine shares: a log of (thread, page) and the pages to hold."""

    log: list[tuple[str, int]] = field(default_factory=list)
    # (thread name, page) -> a condition the page waits for before it is converted
    holds: dict[tuple[str, int], Callable[[], bool]] = field(default_factory=dict)
    holding: set[tuple[str, int]] = field(default_factory=set)

    def pages_by(self, thread: str) -> list[int]:
        return [page for name, page in self.log if name == thread]


class ScriptedEngine:
    """Writes "page N by THREAD"; holds a page while its condition in the script is false."""

    name = ENGINE

    def __init__(self, script: Script) -> None:
        self._script = script

    def convert(self, page: PageInput) -> PageResult:
        thread = threading.current_thread().name
        self._script.log.append((thread, page.number))
        condition = self._script.holds.get((thread, page.number))
        if condition is not None:
            self._script.holding.add((thread, page.number))
            wait_for(condition, HOLD_TIMEOUT_S, f"the release of page {page.number}", 0.05)
        text = Element(
            ElementType.NARRATIVE_TEXT, f"page {page.number} by {thread}", mid_page(page)
        )
        return PageResult(page.number, page.layout_width, page.layout_height, ENGINE, [text])


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    shared = Script()
    monkeypatch.setitem(registry.FACTORIES, ENGINE, lambda settings: ScriptedEngine(shared))
    return shared


# -- helpers ------------------------------------------------------------------------------


def _pdf(pages: int, label: str) -> bytes:
    with pymupdf.open() as pdf:
        for number in range(1, pages + 1):
            pdf.new_page().insert_text((72, 72), f"{label}, page {number}")
        data: bytes = pdf.tobytes()
    return data


def _put(clients: Clients, settings: Settings, relative: str, data: bytes) -> dict[str, Any]:
    """Upload under the input prefix with the scripted engine; the new version's HEAD."""
    key = settings.input_prefix + relative
    clients.s3.put_object(
        Bucket=settings.bucket, Key=key, Body=data, Metadata={"pagedrop-engine": ENGINE}
    )
    head: dict[str, Any] = clients.s3.head_object(Bucket=settings.bucket, Key=key)
    return {"key": key, "etag": head["ETag"].strip('"'), **head}


def _take_bodies(clients: Clients, settings: Settings, count: int) -> list[str]:
    """Receive and delete the queue's messages; the bodies of the first ``count`` object
    events, in the order they came (the s3:TestEvent is dropped)."""
    bodies: list[str] = []

    def receive() -> bool:
        response = clients.sqs.receive_message(
            QueueUrl=settings.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in response.get("Messages", []):
            clients.sqs.delete_message(
                QueueUrl=settings.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
            if "s3:TestEvent" not in message["Body"]:
                bodies.append(message["Body"])
        return len(bodies) >= count

    wait_for(receive, 30, f"{count} object events")
    assert queue_counts(clients, settings) == (0, 0)
    return bodies


def _send(clients: Clients, settings: Settings, body: str) -> None:
    clients.sqs.send_message(QueueUrl=settings.queue_url, MessageBody=body)


def _aws_event(settings: Settings, version: dict[str, Any], sequencer: str) -> str:
    """A real-AWS-shaped notification (tests/events/s3_put.json) for one version."""
    event = json.loads((EVENTS / "s3_put.json").read_text())
    record = event["Records"][0]
    record["awsRegion"] = settings.region
    record["s3"]["bucket"].update(name=settings.bucket, arn=f"arn:aws:s3:::{settings.bucket}")
    record["s3"]["object"].update(
        key=quote_plus(version["key"], safe="/"),  # real S3 leaves "/" alone
        size=version["ContentLength"],
        eTag=version["etag"],
        versionId=version["VersionId"],
        sequencer=sequencer,
    )
    return json.dumps(event)


def _get(clients: Clients, settings: Settings, key: str) -> bytes:
    data: bytes = clients.s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
    return data


def _manifest_is_consistent(clients: Clients, settings: Settings, prefix: str) -> dict[str, Any]:
    """The manifest, after checking that every output it lists has its size and sha256, and
    that it lists every object under the prefix."""
    manifest: dict[str, Any] = json.loads(_get(clients, settings, prefix + "manifest.json"))
    for output in manifest["outputs"]:
        data = _get(clients, settings, output["key"])
        assert len(data) == output["bytes"], output["key"]
        assert hashlib.sha256(data).hexdigest() == output["sha256"], output["key"]
    listing = clients.s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)
    stored = {o["Key"] for o in listing["Contents"]} - {prefix + "manifest.json"}
    assert stored == {o["key"] for o in manifest["outputs"]}
    return manifest


def _versions_of(clients: Clients, settings: Settings, key: str) -> int:
    listing = clients.s3.list_object_versions(Bucket=settings.bucket, Prefix=key)
    return sum(1 for v in listing.get("Versions", []) if v["Key"] == key)


def _own_clients(settings: Settings) -> Clients:
    return make_clients(settings, local_boto3_session())


@dataclass
class Calls:
    """API calls one worker's clients made: (operation, key, started, ended), monotonic."""

    made: list[list[Any]] = field(default_factory=list)

    def watch(self, client: Any, operation: str, service: str) -> None:
        def started(params: dict[str, Any], **kwargs: Any) -> None:
            self.made.append([operation, params.get("Key"), time.monotonic(), None])

        def ended(**kwargs: Any) -> None:
            self.made[-1][3] = time.monotonic()  # one thread per client: the last one began

        client.meta.events.register(f"before-parameter-build.{service}.{operation}", started)
        client.meta.events.register(f"after-call.{service}.{operation}", ended)

    def of(self, operation: str) -> list[list[Any]]:
        return [c for c in self.made if c[0] == operation]


class RecordingStore(StatusStore):
    """A status store that remembers the claims it won."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claims: list[Claim] = []

    def claim(self, ref: ObjectRef, worker: str, output_prefix: str) -> ClaimResult:
        result = super().claim(ref, worker, output_prefix)
        if result.claim is not None:
            self.claims.append(result.claim)
        return result


@dataclass
class Processor:
    """A DocumentProcessor on clients of its own, with its S3 writes and claims recorded."""

    processor: DocumentProcessor
    store: RecordingStore
    calls: Calls
    clients: Clients


def _processor(settings: Settings, name: str, *, lease_s: int) -> Processor:
    # A checkpoint after every page: the tests hold a worker between two checkpointed pages.
    settings = settings.model_copy(update={"checkpoint_interval_s": 0})
    clients = _own_clients(settings)
    calls = Calls()
    calls.watch(clients.s3, "PutObject", "s3")
    calls.watch(clients.s3, "DeleteObjects", "s3")
    calls.watch(clients.dynamodb, "PutItem", "dynamodb")  # the claim's conditional put
    store = RecordingStore(clients.dynamodb, settings.table_name, lease_s=lease_s, retention_days=1)
    processor = DocumentProcessor(
        settings,
        ObjectStore(clients.s3, settings.bucket),
        store,
        EngineSet(settings),
        None,  # no heartbeat: the lease runs out unless a write extends it
        name,
    )
    return Processor(processor, store, calls, clients)


class Background:
    """One document processed on a thread of its own, named for its worker."""

    def __init__(self, name: str, processor: DocumentProcessor, ref: ObjectRef) -> None:
        self._outcome: list[Outcome] = []
        self._thread = threading.Thread(
            target=lambda: self._outcome.append(processor.process(ref)), name=name, daemon=True
        )
        self._thread.start()

    def outcome(self) -> Outcome:
        self._thread.join(timeout=HOLD_TIMEOUT_S + 30)
        assert self._outcome, f"{self._thread.name} did not finish"
        return self._outcome[0]


def _lease_lost_everywhere(store: StatusStore, claim: Claim) -> None:
    """Every write of a claim that was taken over raises LeaseLost."""
    with pytest.raises(LeaseLost):
        store.heartbeat(claim)
    with pytest.raises(LeaseLost):
        store.progress(claim, pages_done=9, pages_total=9, engines=["x"])
    with pytest.raises(LeaseLost):
        store.complete(claim, Status.SUCCEEDED, pages_done=9, pages_total=9, engines=["x"])
    with pytest.raises(LeaseLost):
        store.fail(claim, ErrorCategory.INTERNAL, "late")
    with pytest.raises(LeaseLost):
        store.release(claim)


# -- (a) one event, delivered twice, to two workers at once ---------------------------------


def _run_in_threads(workers: dict[str, Worker]) -> dict[str, threading.Thread]:
    threads = {
        name: threading.Thread(target=worker.run, name=name, daemon=True)
        for name, worker in workers.items()
    }
    for thread in threads.values():
        thread.start()
    return threads


def test_one_event_delivered_twice_at_once_is_converted_once(
    stack_settings: Settings, clients: Clients, script: Script
) -> None:
    # Given one upload whose event is in the queue twice, and two workers (one message each
    # per receive, clients of their own)
    settings = short_timings(stack_settings).model_copy(update={"receive_batch": 1})
    source = _put(clients, settings, "dup/doc.pdf", _pdf(3, "one document"))
    (body,) = _take_bodies(clients, settings, 1)
    _send(clients, settings, body)
    _send(clients, settings, body)
    workers = {
        name: build_worker(settings.model_copy(update={"worker_id": name}), _own_clients(settings))
        for name in ("worker-a", "worker-b")
    }
    # ... where whoever converts holds page 1 until the other has found the document busy:
    # both hold a copy of the event at once
    for name in workers:
        other = next(w for n, w in workers.items() if n != name)
        script.holds[(name, 1)] = lambda other=other: other.stats.outcomes.get("busy", 0) > 0

    # When both run until the document is final and the queue is empty
    threads = _run_in_threads(workers)
    store = status_store(settings, clients)
    pk = f"{settings.bucket}/{source['key']}"
    try:
        wait_for(
            lambda: (
                (item := store.get(pk)) is not None
                and item.status is Status.SUCCEEDED
                and queue_counts(clients, settings) == (0, 0)
            ),
            SETTLE_BOUND_S,
            "the document to finish and the queue to empty",
        )
    finally:
        for worker in workers.values():
            worker.stop()
        for thread in threads.values():
            thread.join(timeout=30)

    # Then it was converted once: one worker converted every page once, the other none
    total: Counter[str] = Counter()
    for worker in workers.values():
        total.update(worker.stats.outcomes)
    assert total.get("SUCCEEDED") == 1 and total.get("duplicate") == 1, total
    assert set(total) == {"SUCCEEDED", "busy", "duplicate"}, total
    converter = next(n for n, w in workers.items() if w.stats.outcomes.get("SUCCEEDED"))
    other = next(n for n in workers if n != converter)
    assert workers[other].stats.outcomes.get("busy", 0) >= 1  # it waited while the other held
    assert (converter, 1) in script.holding
    assert sorted(script.log) == [(converter, 1), (converter, 2), (converter, 3)]
    item = store.get(pk)
    assert item is not None and item.attempt == 1 and item.worker == converter
    out = f"{settings.output_prefix}dup/doc.pdf/"
    assert _versions_of(clients, settings, out + "manifest.json") == 1
    assert _manifest_is_consistent(clients, settings, out)["attempt"] == 1
    # And the queue (and its dead-letter queue) ends empty
    assert queue_counts(clients, settings) == (0, 0)
    assert queue_counts(clients, settings, settings.dlq_url) == (0, 0)


# -- (b) two versions of one key, their events delivered newest first ----------------------


@pytest.mark.parametrize("shape", ["moto", "aws"])
def test_two_versions_delivered_newest_first_convert_only_the_newest(
    stack_settings: Settings, clients: Clients, script: Script, shape: str
) -> None:
    # Given two versions of one key uploaded back to back
    settings = stack_settings.model_copy(update={"receive_batch": 1})
    old = _put(clients, settings, "order/doc.pdf", _pdf(3, "the old version"))
    new = _put(clients, settings, "order/doc.pdf", _pdf(2, "the new version"))
    assert old["VersionId"] != new["VersionId"] and old["etag"] != new["etag"]
    bodies = _take_bodies(clients, settings, 2)
    if shape == "aws":
        # as real S3 sends them: with versionId and increasing sequencers
        bodies = [
            _aws_event(settings, old, "0055AED6DCD90281E5"),
            _aws_event(settings, new, "0055AED6DCD90281F2"),
        ]
    else:
        etags = [json.loads(b)["Records"][0]["s3"]["object"]["eTag"].strip('"') for b in bodies]
        assert etags == [old["etag"], new["etag"]]
    # ... delivered in reverse order
    _send(clients, settings, bodies[1])
    _send(clients, settings, bodies[0])

    # When a worker drains the queue (its receives and source downloads recorded)
    own = _own_clients(settings)
    received: list[str] = []
    downloads: list[str | None] = []
    own.sqs.meta.events.register(
        "after-call.sqs.ReceiveMessage",
        lambda parsed, **kw: received.extend(m["Body"] for m in parsed.get("Messages", [])),
    )
    own.s3.meta.events.register(
        "before-parameter-build.s3.GetObject",
        lambda params, **kw: (
            downloads.append(params.get("VersionId")) if params.get("Key") == new["key"] else None
        ),
    )
    stats = build_worker(settings, own).run(max_idle_polls=2)

    # Then the newest came first, and only it was converted, once; the other was stale
    assert received == [bodies[1], bodies[0]]
    assert stats.outcomes == {"SUCCEEDED": 1, "stale": 1}
    assert downloads == [new["VersionId"]]
    assert len(script.log) == 2  # the new version's two pages; never the old one's three
    # And the status and the outputs describe the current version
    head = clients.s3.head_object(Bucket=settings.bucket, Key=new["key"])
    item = status_store(settings, clients).get(f"{settings.bucket}/{new['key']}")
    assert item is not None and item.status is Status.SUCCEEDED and item.attempt == 1
    assert item.raw["etag"] == head["ETag"].strip('"') == new["etag"]
    assert item.raw["version_id"] == head["VersionId"] == new["VersionId"]
    if shape == "aws":
        assert item.sequencer == "0055AED6DCD90281F2"
    out = f"{settings.output_prefix}order/doc.pdf/"
    manifest = _manifest_is_consistent(clients, settings, out)
    assert manifest["source"]["etag"] == new["etag"]
    assert manifest["source"]["version_id"] == new["VersionId"]
    assert manifest["page_count"] == 2
    assert queue_counts(clients, settings) == (0, 0)


# -- (c) a worker whose lease was taken over writes nothing more ----------------------------


def test_a_worker_whose_lease_was_taken_over_writes_nothing_after_the_takeover(
    stack_settings: Settings, clients: Clients, script: Script
) -> None:
    # Given worker A converting a 4-page document under a 1-second lease it never extends,
    # held at page 2 once page 1 is checkpointed
    source = _put(clients, stack_settings, "takeover/doc.pdf", _pdf(4, "taken over"))
    ref = ObjectRef(bucket=stack_settings.bucket, key=source["key"], etag=source["etag"])
    a = _processor(stack_settings, "worker-a", lease_s=1)
    b = _processor(stack_settings, "worker-b", lease_s=stack_settings.lease_s)
    b_done = threading.Event()
    script.holds[("worker-a", 2)] = b_done.is_set
    run_a = Background("worker-a", a.processor, ref)
    wait_for(lambda: ("worker-a", 2) in script.holding, 30, "worker A to reach page 2")
    store = status_store(stack_settings, clients)
    held = store.get(ref.pk)
    assert held is not None and held.worker == "worker-a"

    # When its lease runs out and worker B takes the document over and finishes it
    wait_for(lambda: time.time() > held.lease_until, 10, "A's lease to run out")
    outcome_b = Background("worker-b", b.processor, ref).outcome()
    b_done.set()  # A goes on with page 2 ...
    outcome_a = run_a.outcome()

    # Then A stops at that page, with the lease lost, and every write it tries is refused
    assert outcome_b.status is Status.SUCCEEDED, outcome_b
    assert outcome_a.disposition is Disposition.RETRY and "lease lost" in outcome_a.reason
    assert script.pages_by("worker-a") == [1, 2]
    assert script.pages_by("worker-b") == [2, 3, 4]  # page 1 resumed from A's checkpoint
    _lease_lost_everywhere(a.store, a.store.claims[0])
    # And none of A's S3 writes happened after B's claim: A wrote page 1 only, before it
    (b_claim,) = b.calls.of("PutItem")
    a_writes = a.calls.of("PutObject") + a.calls.of("DeleteObjects")
    assert sorted(c[1] for c in a_writes) == [
        f"{stack_settings.output_prefix}takeover/doc.pdf/pages/0001.{s}" for s in ("json", "md")
    ]
    assert all(c[3] is not None and c[3] < b_claim[2] for c in a_writes)
    # And the final status and outputs are B's, consistent with B's manifest
    item = store.get(ref.pk)
    assert item is not None and item.status is Status.SUCCEEDED
    assert item.worker == "worker-b" and item.attempt == 2
    out = f"{stack_settings.output_prefix}takeover/doc.pdf/"
    manifest = _manifest_is_consistent(clients, stack_settings, out)
    assert manifest["attempt"] == 2
    assert [p["page"] for p in manifest["pages"] if p.get("resumed")] == [1]
    markdown = _get(clients, stack_settings, out + "document.md").decode()
    assert "page 1 by worker-a" in markdown
    assert all(f"page {n} by worker-b" in markdown for n in (2, 3, 4))
    assert "page 2 by worker-a" not in markdown


def test_a_new_version_claimed_over_a_live_lease_fences_the_old_versions_worker(
    stack_settings: Settings, clients: Clients, script: Script
) -> None:
    # Given worker A converting version 1 of a key (3 pages) under a live lease, held at
    # page 2 once page 1 is checkpointed
    old = _put(clients, stack_settings, "fence/doc.pdf", _pdf(3, "version one"))
    old_ref = ObjectRef(bucket=stack_settings.bucket, key=old["key"], etag=old["etag"])
    a = _processor(stack_settings, "worker-a", lease_s=stack_settings.lease_s)
    b = _processor(stack_settings, "worker-b", lease_s=stack_settings.lease_s)
    b_done = threading.Event()
    script.holds[("worker-a", 2)] = b_done.is_set
    run_a = Background("worker-a", a.processor, old_ref)
    wait_for(lambda: ("worker-a", 2) in script.holding, 30, "worker A to reach page 2")
    store = status_store(stack_settings, clients)
    held = store.get(old_ref.pk)
    assert held is not None and held.lease_until > time.time() + 30  # very much alive

    # When version 2 (2 pages) is uploaded and worker B converts it over A's live lease
    new = _put(clients, stack_settings, "fence/doc.pdf", _pdf(2, "version two"))
    new_ref = ObjectRef(bucket=stack_settings.bucket, key=new["key"], etag=new["etag"])
    outcome_b = Background("worker-b", b.processor, new_ref).outcome()
    b_done.set()
    outcome_a = run_a.outcome()

    # Then A stops at its next page and writes nothing after B's claim
    assert outcome_b.status is Status.SUCCEEDED, outcome_b
    assert outcome_a.disposition is Disposition.RETRY and "lease lost" in outcome_a.reason
    assert script.pages_by("worker-a") == [1, 2]
    assert script.pages_by("worker-b") == [1, 2]  # A's page 1 was of the old version
    _lease_lost_everywhere(a.store, a.store.claims[0])
    (b_claim,) = b.calls.of("PutItem")
    a_writes = a.calls.of("PutObject") + a.calls.of("DeleteObjects")
    assert len(a_writes) == 2  # page 1's markdown and checkpoint, before B's claim
    assert all(c[3] is not None and c[3] < b_claim[2] for c in a_writes)
    # And the status and outputs describe version 2 only
    item = store.get(new_ref.pk)
    assert item is not None and item.status is Status.SUCCEEDED and item.worker == "worker-b"
    assert item.raw["etag"] == new["etag"] and item.raw["version_id"] == new["VersionId"]
    assert item.attempt == 1  # the new version's first attempt
    out = f"{stack_settings.output_prefix}fence/doc.pdf/"
    manifest = _manifest_is_consistent(clients, stack_settings, out)
    assert manifest["source"]["version_id"] == new["VersionId"]
    assert manifest["page_count"] == 2 and not any(p.get("resumed") for p in manifest["pages"])
    markdown = _get(clients, stack_settings, out + "document.md").decode()
    assert "worker-a" not in markdown
    page_one = clients.s3.head_object(Bucket=stack_settings.bucket, Key=out + "pages/0001.json")
    assert page_one["Metadata"]["pagedrop-source-version"] == new["VersionId"]


def test_a_new_version_claimed_during_the_old_versions_final_writes(
    stack_settings: Settings, clients: Clients, script: Script
) -> None:
    # Given worker A past its last fence for version 1, its elements.json upload stalled
    old = _put(clients, stack_settings, "final/doc.pdf", _pdf(2, "version one"))
    old_ref = ObjectRef(bucket=stack_settings.bucket, key=old["key"], etag=old["etag"])
    a = _processor(stack_settings, "worker-a", lease_s=stack_settings.lease_s)
    b = _processor(stack_settings, "worker-b", lease_s=stack_settings.lease_s)
    b_done, a_stalled = threading.Event(), threading.Event()

    def stall(params: dict[str, Any], **kwargs: Any) -> None:
        if str(params.get("Key", "")).endswith("elements.json"):
            a_stalled.set()
            b_done.wait(HOLD_TIMEOUT_S)

    a.clients.s3.meta.events.register("before-parameter-build.s3.PutObject", stall)
    run_a = Background("worker-a", a.processor, old_ref)
    wait_for(a_stalled.is_set, 30, "worker A to start its final writes")

    # When version 2 is uploaded and worker B converts it
    new = _put(clients, stack_settings, "final/doc.pdf", _pdf(1, "version two"))
    new_ref = ObjectRef(bucket=stack_settings.bucket, key=new["key"], etag=new["etag"])
    assert Background("worker-b", b.processor, new_ref).outcome().status is Status.SUCCEEDED
    b_done.set()
    assert "lease lost" in run_a.outcome().reason

    # Then A's stalled write was refused by S3 (it was conditional on what A had read before
    # its fence), A found its lease gone, and the outputs describe version 2 only
    (b_claim,) = b.calls.of("PutItem")
    assert all(c[2] < b_claim[2] for c in a.calls.of("PutObject") + a.calls.of("DeleteObjects"))
    out = f"{stack_settings.output_prefix}final/doc.pdf/"
    manifest = _manifest_is_consistent(clients, stack_settings, out)
    assert manifest["source"]["version_id"] == new["VersionId"]
