"""AWS faults (throttling, 5xx, dropped connections) on the real clients of a real worker.

Faults are injected with botocore's event hooks (tests/faults.py), so botocore's standard
retry mode handles them exactly as it would handle the service's own answers. Every attempt
carries botocore's ``amz-sdk-request: attempt=N; max=M`` header, which the injector records:
that is how the tests show that retries stop at ``MAX_ATTEMPTS``.

Timing bounds are generous on purpose (the machine is shared): they prove "bounded", not
"fast". botocore's backoff before retry ``i`` is at most ``base * 2**(i-1)`` seconds, with a
base of 1 s for throttling and 25-50 ms for 5xx.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest

from handler.aws import MAX_ATTEMPTS, Clients, make_clients
from handler.engines.registry import EngineSet
from handler.errors import TransientError
from handler.events.model import ObjectRef
from handler.lambdas.dlq import mark_exhausted
from handler.local.endpoint import local_boto3_session
from handler.settings import Settings
from handler.storage import objects
from handler.storage.objects import DOWNLOAD_ATTEMPTS, ObjectStore
from handler.worker import loop
from handler.worker.build import build_worker, status_store
from handler.worker.document import Disposition, DocumentProcessor
from handler.worker.heartbeat import Heartbeat
from handler.worker.loop import Worker, WorkerStats
from tests.conftest import SAMPLES, upload
from tests.faults import (
    ALWAYS,
    DYNAMODB_INTERNAL_ERROR,
    DYNAMODB_THROTTLING,
    S3_INTERNAL_ERROR,
    SLOW_DOWN,
    SQS_INTERNAL_ERROR,
    SQS_THROTTLED,
    THROUGHPUT_EXCEEDED,
    Answer,
    Attempt,
    CuttingProxy,
    Fault,
    FaultInjector,
)

pytestmark = pytest.mark.integration

SAMPLE = SAMPLES / "pysf__multicolumn.pdf"  # 3 born-digital pages, 78,657 bytes


# -- helpers -----------------------------------------------------------------------------


@pytest.fixture
def faults() -> Iterator[FaultInjector]:
    with FaultInjector() as injector:
        yield injector


def _sdk_attempt(attempt: Attempt) -> int:
    """botocore's own number of an attempt (1 = a new call, 2.. = its retries)."""
    header = attempt.headers.get("amz-sdk-request", "")  # "attempt=2; max=5"
    fields = dict(part.strip().split("=", 1) for part in header.split(";") if "=" in part)
    return int(fields["attempt"])


def _attempt_numbers(faults: FaultInjector, name: str) -> list[int]:
    return [_sdk_attempt(attempt) for attempt in faults.history(name)]


def _drain(settings: Settings, clients: Clients) -> WorkerStats:
    """A real worker on the stack's queue until it finds the queue empty twice."""
    return build_worker(settings, clients).run(max_idle_polls=2)


def _retries(faults: FaultInjector, name: str) -> int:
    """Attempts that were botocore's retries rather than new calls."""
    return sum(1 for number in _attempt_numbers(faults, name) if number > 1)


def _item(clients: Clients, settings: Settings, key: str) -> dict[str, Any]:
    item = status_store(settings, clients).get(f"{settings.bucket}/{key}")
    assert item is not None, f"no status item for {key}"
    return item.raw


def _output(clients: Clients, settings: Settings, relative: str, name: str) -> bytes:
    key = f"{settings.output_prefix}{relative}/{name}"
    body: bytes = clients.s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
    return body


def _assert_complete_outputs(clients: Clients, settings: Settings, relative: str) -> dict:
    """The manifest exists, says SUCCEEDED, and every output it lists has its bytes."""
    manifest: dict[str, Any] = json.loads(_output(clients, settings, relative, "manifest.json"))
    assert manifest["status"] == "SUCCEEDED"
    names = {entry["key"].rsplit("/", 1)[-1] for entry in manifest["outputs"]}
    assert {"document.md", "elements.json", "0001.json"} <= names
    for entry in manifest["outputs"]:
        stored = clients.s3.get_object(Bucket=settings.bucket, Key=entry["key"])["Body"].read()
        assert hashlib.sha256(stored).hexdigest() == entry["sha256"], entry["key"]
    return manifest


def _queue_counts(clients: Clients, url: str) -> tuple[int, int]:
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attrs["ApproximateNumberOfMessages"]),
        int(attrs["ApproximateNumberOfMessagesNotVisible"]),
    )


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll until ``condition`` holds; the seconds it took (fails after ``timeout_s``)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


class _Running:
    """A worker polling in a thread; what it raised is kept for the test."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="worker-under-test", daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:  # reported to the test, not lost with the thread
            self.errors.append(exc)

    @property
    def polling(self) -> bool:
        return self.thread.is_alive() and not self.errors


@contextmanager
def _running(worker: Worker) -> Iterator[_Running]:
    """The worker polling in a thread until the block ends (then stopped and joined)."""
    running = _Running(worker)
    running.thread.start()
    try:
        yield running
    finally:
        worker.stop()
        running.thread.join(timeout=60)
        assert not running.thread.is_alive(), "the worker did not stop"


def _status_is(clients: Clients, settings: Settings, key: str, status: str) -> Callable[[], bool]:
    store = status_store(settings, clients)

    def check() -> bool:
        item = store.get(f"{settings.bucket}/{key}")
        return item is not None and item.raw["status"] == status

    return check


def _head_ref(clients: Clients, settings: Settings, key: str) -> ObjectRef:
    head = clients.s3.head_object(Bucket=settings.bucket, Key=key)
    return ObjectRef(
        bucket=settings.bucket,
        key=key,
        etag=head["ETag"].strip('"'),
        version_id=head.get("VersionId"),
        size=int(head["ContentLength"]),
    )


# -- throttling and 5xx that clear within botocore's retries -----------------------------


@pytest.mark.parametrize("fault", [SLOW_DOWN, S3_INTERNAL_ERROR], ids=["503-SlowDown", "500"])
def test_s3_faults_on_head_get_and_put_are_retried_and_the_document_succeeds(
    stack_settings: Settings, clients: Clients, faults: FaultInjector, fault: Fault
) -> None:
    # Given a document, and S3 failing the first two attempts of HEAD, GET and PUT
    key = upload(clients, stack_settings, SAMPLE, "s3/doc.pdf")
    for operation in ("HeadObject", "GetObject", "PutObject"):
        faults.fail(clients.s3, operation, fault, times=2)
    # When a worker drains the queue (a checkpoint a page: its page files are written one
    # after the other, so that the first calls' attempts can be told apart)
    started = time.monotonic()
    stats = _drain(stack_settings.model_copy(update={"checkpoint_interval_s": 0}), clients)
    elapsed = time.monotonic() - started
    # Then the document succeeded on its first claim, with every output intact
    assert stats.outcomes == {"SUCCEEDED": 1}
    assert _item(clients, stack_settings, key)["attempt"] == 1
    _assert_complete_outputs(clients, stack_settings, "s3/doc.pdf")
    # And each fault was absorbed by botocore's retries of one call: attempts 1, 2, 3
    for operation in ("HeadObject", "GetObject", "PutObject"):
        name = f"s3.{operation}"
        assert faults.faulted(name) == _retries(faults, name) == 2
        assert _attempt_numbers(faults, name)[:3] == [1, 2, 3]
    assert elapsed < 60, elapsed  # 3 throttled calls back off at most (1 + 2) s each


def test_dynamodb_throttling_on_get_put_and_update_is_retried_and_the_document_succeeds(
    stack_settings: Settings, clients: Clients, faults: FaultInjector
) -> None:
    # Given a document, and DynamoDB throttling the first attempt of each kind of call the
    # status store makes (the claim's read and write, progress/heartbeat/completion; once
    # each, as throttling backs off by up to 1 s, then 2 s)
    key = upload(clients, stack_settings, SAMPLE, "ddb/doc.pdf")
    faults.fail(clients.dynamodb, "GetItem", THROUGHPUT_EXCEEDED)
    faults.fail(clients.dynamodb, "PutItem", DYNAMODB_THROTTLING)
    faults.fail(clients.dynamodb, "UpdateItem", THROUGHPUT_EXCEEDED)
    # When a worker drains the queue
    started = time.monotonic()
    stats = _drain(stack_settings, clients)
    elapsed = time.monotonic() - started
    # Then the document succeeded on its first claim, its item is final and released
    assert stats.outcomes == {"SUCCEEDED": 1}
    item = _item(clients, stack_settings, key)
    assert (item["status"], item["attempt"], item["lease_until"]) == ("SUCCEEDED", 1, 0)
    assert item["pages_done"] == item["pages_total"] == 3
    _assert_complete_outputs(clients, stack_settings, "ddb/doc.pdf")
    # And each throttle cost exactly one retry (the heartbeat thread may interleave its own
    # UpdateItem calls, so attempts are counted rather than read in order)
    for operation in ("GetItem", "PutItem", "UpdateItem"):
        name = f"dynamodb.{operation}"
        assert faults.faulted(name) == _retries(faults, name) == 1
    assert elapsed < 60, elapsed


def test_sqs_faults_on_receive_and_delete_are_retried_and_the_queue_ends_empty(
    stack_settings: Settings, clients: Clients, faults: FaultInjector
) -> None:
    # Given a document, and SQS throttling receives and failing deletes twice each
    key = upload(clients, stack_settings, SAMPLE, "sqs/doc.pdf")
    faults.fail(clients.sqs, "ReceiveMessage", SQS_THROTTLED, times=2)
    faults.fail(clients.sqs, "DeleteMessage", SQS_INTERNAL_ERROR, times=2)
    # When a worker drains the queue
    stats = _drain(stack_settings, clients)
    # Then the document was converted once and every message is gone
    assert stats.outcomes == {"SUCCEEDED": 1}
    assert _item(clients, stack_settings, key)["attempt"] == 1
    assert _queue_counts(clients, stack_settings.queue_url) == (0, 0)
    for name in ("sqs.ReceiveMessage", "sqs.DeleteMessage"):
        assert faults.faulted(name) == _retries(faults, name) == 2


def test_heartbeat_visibility_extension_is_retried_when_sqs_fails(
    stack_settings: Settings, clients: Clients, faults: FaultInjector
) -> None:
    # Given a message received with a 2-second visibility timeout, held by a heartbeat,
    # and SQS failing the first two ChangeMessageVisibilityBatch attempts
    clients.sqs.purge_queue(QueueUrl=stack_settings.queue_url)
    clients.sqs.send_message(QueueUrl=stack_settings.queue_url, MessageBody="{}")
    message = clients.sqs.receive_message(
        QueueUrl=stack_settings.queue_url, VisibilityTimeout=2, WaitTimeSeconds=1
    )["Messages"][0]
    heartbeat = Heartbeat(
        clients.sqs,
        stack_settings.queue_url,
        status_store(stack_settings, clients),
        interval_s=1,
        visibility_timeout_s=30,
    )
    heartbeat.hold(message["MessageId"], message["ReceiptHandle"])
    faults.fail(clients.sqs, "ChangeMessageVisibilityBatch", SQS_INTERNAL_ERROR, times=2)
    # When it beats once and the original timeout passes
    heartbeat.beat()
    time.sleep(3)
    # Then the extension went through on the third attempt: the message is still hidden
    assert _attempt_numbers(faults, "sqs.ChangeMessageVisibilityBatch") == [1, 2, 3]
    assert _queue_counts(clients, stack_settings.queue_url) == (0, 1)


def test_heartbeat_reports_batch_entries_that_failed_one_by_one(
    stack_settings: Settings,
    clients: Clients,
    faults: FaultInjector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a held message, and one ChangeMessageVisibilityBatch answered 200 with its
    # entry listed as failed (a batch succeeds as a whole; botocore does not retry it)
    clients.sqs.send_message(QueueUrl=stack_settings.queue_url, MessageBody="{}")
    heartbeat = Heartbeat(
        clients.sqs,
        stack_settings.queue_url,
        status_store(stack_settings, clients),
        interval_s=1,
        visibility_timeout_s=30,
    )
    heartbeat.hold("m-1", "receipt-1")
    failed = {"Id": "0", "SenderFault": False, "Code": "InternalError", "Message": "x"}
    faults.fail(
        clients.sqs,
        "ChangeMessageVisibilityBatch",
        Answer({"Successful": [], "Failed": [failed]}),
    )
    # When it beats
    with caplog.at_level(logging.WARNING, logger="handler.worker.heartbeat"):
        heartbeat.beat()
    # Then the miss is logged with its code (the next beat tries again), not passed over
    assert "visibility not extended for 1 of 1 message(s)" in caplog.text
    assert "InternalError" in caplog.text


def test_a_fault_outlasting_botocore_retries_leaves_the_message_for_the_next_receive(
    stack_settings: Settings, clients: Clients, faults: FaultInjector
) -> None:
    # Given a document whose first download fails on every one of botocore's attempts,
    # and a settle (ChangeMessageVisibility) that fails twice before it goes through
    settings = stack_settings.model_copy(update={"retry_delay_s": 0})
    key = upload(clients, settings, SAMPLE, "outlast/doc.pdf")
    faults.fail(clients.s3, "GetObject", S3_INTERNAL_ERROR, times=MAX_ATTEMPTS)
    faults.fail(clients.sqs, "ChangeMessageVisibility", SQS_INTERNAL_ERROR, times=2)
    # When a worker drains the queue
    stats = _drain(settings, clients)
    # Then botocore gave up after MAX_ATTEMPTS attempts, the worker released the lease and
    # left the message, and the next receive finished the document (its second attempt)
    assert _attempt_numbers(faults, "s3.GetObject")[: MAX_ATTEMPTS + 1] == [
        *range(1, MAX_ATTEMPTS + 1),
        1,
    ]
    assert stats.outcomes == {"error": 1, "SUCCEEDED": 1}
    assert _attempt_numbers(faults, "sqs.ChangeMessageVisibility") == [1, 2, 3]
    item = _item(clients, settings, key)
    assert (item["status"], item["attempt"]) == ("SUCCEEDED", 2)
    _assert_complete_outputs(clients, settings, "outlast/doc.pdf")
    assert _queue_counts(clients, settings.queue_url) == (0, 0)


# -- a connection that drops mid-download -----------------------------------------------


def test_a_download_dropped_mid_body_is_resumed_and_the_conversion_succeeds(
    stack_settings: Settings, clients: Clients, faults: FaultInjector
) -> None:
    # Given a document whose first GET body breaks after 30,000 bytes
    key = upload(clients, stack_settings, SAMPLE, "drop/doc.pdf")
    faults.drop_downloads(clients.s3, after_bytes=30_000, times=1)
    # When a worker drains the queue
    stats = _drain(stack_settings, clients)
    # Then the rest came from one ranged GET pinned to the version, and the document
    # converted from the exact bytes on its first claim
    history = faults.history("s3.GetObject")
    assert faults.drops == 1
    assert "Range" not in history[0].headers
    assert history[1].headers["Range"] == "bytes=30000-"
    assert "versionId=" in history[1].url
    assert stats.outcomes == {"SUCCEEDED": 1}
    assert _item(clients, stack_settings, key)["attempt"] == 1
    manifest = _assert_complete_outputs(clients, stack_settings, "drop/doc.pdf")
    assert manifest["source"]["size"] == SAMPLE.stat().st_size
    assert manifest["page_count"] == 3


def test_a_download_that_drops_every_time_ends_as_a_transient_retry(
    stack_settings: Settings,
    clients: Clients,
    faults: FaultInjector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a document whose every GET body breaks after 10,000 bytes (no pause between
    # resumes here; the pauses are measured in the ObjectStore test below)
    monkeypatch.setattr(objects, "DOWNLOAD_BACKOFF_S", 0.0)
    key = upload(clients, stack_settings, SAMPLE, "drops/doc.pdf")
    ref = _head_ref(clients, stack_settings, key)
    processor = DocumentProcessor(
        stack_settings,
        ObjectStore(clients.s3, stack_settings.bucket),
        status_store(stack_settings, clients),
        EngineSet(stack_settings),
        None,
        "fault-test",
    )
    faults.drop_downloads(clients.s3, after_bytes=10_000, times=ALWAYS)
    # When the worker processes it
    outcome = processor.process(ref)
    # Then it gave up after DOWNLOAD_ATTEMPTS GETs (each resuming where the last stopped),
    # asked for a retry, and released its lease so the next receive may claim at once
    assert (outcome.disposition, outcome.reason) == (Disposition.RETRY, "error: TransientError")
    ranges = [a.headers.get("Range") for a in faults.history("s3.GetObject")]
    assert ranges == [None] + [f"bytes={10_000 * n}-" for n in range(1, DOWNLOAD_ATTEMPTS)]
    item = _item(clients, stack_settings, key)
    assert (item["status"], item["lease_until"]) == ("PROCESSING", 0)


def _put_random(clients: Clients, settings: Settings, size: int) -> tuple[ObjectRef, str]:
    data = os.urandom(size)
    key = settings.input_prefix + "big/random.bin"
    clients.s3.put_object(Bucket=settings.bucket, Key=key, Body=data)
    return _head_ref(clients, settings, key), hashlib.sha256(data).hexdigest()


def test_object_store_download_resumes_a_dropped_socket_byte_identical(
    stack_settings: Settings, clients: Clients, tmp_path: Path
) -> None:
    # Given a 3 MiB object, read through a proxy that closes the first connection
    # after 1 MiB of the answer
    ref, sha256 = _put_random(clients, stack_settings, 3 * 1024 * 1024)
    with CuttingProxy(stack_settings.endpoint_url or "", cut_after=1024 * 1024) as proxy:
        proxied = stack_settings.model_copy(update={"endpoint_url": proxy.url})
        store = ObjectStore(make_clients(proxied, local_boto3_session()).s3, proxied.bucket)
        # When it is downloaded
        size = store.download(ref, tmp_path / "file")
    # Then the second connection carried the rest, and the file is the object exactly
    assert (proxy.connections, proxy.cut) == (2, 1)
    assert size == 3 * 1024 * 1024
    assert hashlib.sha256((tmp_path / "file").read_bytes()).hexdigest() == sha256


def _ignore_range(request: AWSPreparedRequest, **_: Any) -> None:
    """An endpoint (or proxy) that ignores Range: it answers with the whole object."""
    if "Range" in request.headers:
        del request.headers["Range"]


def test_object_store_download_starts_over_when_a_resume_gets_the_whole_object(
    stack_settings: Settings, clients: Clients, faults: FaultInjector, tmp_path: Path
) -> None:
    # Given a 3 MiB object whose first body drops after 1 MiB, from an endpoint that
    # ignores the Range of the resume
    ref, sha256 = _put_random(clients, stack_settings, 3 * 1024 * 1024)
    faults.drop_downloads(clients.s3, after_bytes=1024 * 1024)
    clients.s3.meta.events.register("before-send.s3.GetObject", _ignore_range)
    try:
        # When it is downloaded
        size = ObjectStore(clients.s3, stack_settings.bucket).download(ref, tmp_path / "file")
    finally:
        clients.s3.meta.events.unregister("before-send.s3.GetObject", _ignore_range)
    # Then the whole body of the second GET replaced the partial file, not extended it
    assert faults.history("s3.GetObject")[1].headers["Range"] == "bytes=1048576-"
    assert size == 3 * 1024 * 1024
    assert hashlib.sha256((tmp_path / "file").read_bytes()).hexdigest() == sha256


def test_object_store_download_gives_up_when_every_connection_drops(
    stack_settings: Settings, clients: Clients, tmp_path: Path
) -> None:
    # Given a 3 MiB object behind a proxy that closes every connection after 256 KiB
    ref, _ = _put_random(clients, stack_settings, 3 * 1024 * 1024)
    with CuttingProxy(
        stack_settings.endpoint_url or "", cut_after=256 * 1024, cuts=ALWAYS
    ) as proxy:
        proxied = stack_settings.model_copy(update={"endpoint_url": proxy.url})
        store = ObjectStore(make_clients(proxied, local_boto3_session()).s3, proxied.bucket)
        # When it is downloaded
        started = time.monotonic()
        with pytest.raises(TransientError, match="kept failing"):
            store.download(ref, tmp_path / "file")
        elapsed = time.monotonic() - started
    # Then it tried DOWNLOAD_ATTEMPTS connections, pausing 0.5 + 1 + 2 s between them
    assert proxy.connections == proxy.cut == DOWNLOAD_ATTEMPTS
    pauses = sum(objects.DOWNLOAD_BACKOFF_S * 2**i for i in range(DOWNLOAD_ATTEMPTS - 1))
    assert pauses <= elapsed < pauses + 30, elapsed


# -- faults that never clear -------------------------------------------------------------


def test_process_asks_for_a_retry_within_bounded_calls_when_updates_always_fail(
    stack_settings: Settings, clients: Clients, faults: FaultInjector
) -> None:
    # Given a document, and DynamoDB answering every UpdateItem with a 500
    key = upload(clients, stack_settings, SAMPLE, "never/doc.pdf")
    ref = _head_ref(clients, stack_settings, key)
    processor = DocumentProcessor(
        stack_settings,
        ObjectStore(clients.s3, stack_settings.bucket),
        status_store(stack_settings, clients),
        EngineSet(stack_settings),
        None,
        "fault-test",
    )
    faults.fail(clients.dynamodb, "UpdateItem", DYNAMODB_INTERNAL_ERROR, times=ALWAYS)
    # When the worker processes it
    started = time.monotonic()
    outcome = processor.process(ref)
    elapsed = time.monotonic() - started
    # Then it asks for a retry after two calls of MAX_ATTEMPTS attempts each: the first
    # progress write, then the attempt to release the lease
    assert outcome.disposition is Disposition.RETRY
    assert _attempt_numbers(faults, "dynamodb.UpdateItem") == [*range(1, MAX_ATTEMPTS + 1)] * 2
    assert elapsed < 30, elapsed  # 5xx backoff: at most 25 ms * (1+2+4+8) per call
    # And the item is left PROCESSING under a lease that runs out by itself
    item = _item(clients, stack_settings, key)
    assert item["status"] == "PROCESSING" and item["lease_until"] > time.time()


@pytest.mark.slow
def test_a_fault_that_never_clears_ends_in_the_dead_letter_queue(
    stack_settings: Settings, clients: Clients, faults: FaultInjector
) -> None:
    # Given a document, DynamoDB failing every UpdateItem (so leases cannot even be
    # released and run out after lease_s = 10 s), and no delay before a retry
    settings = stack_settings.model_copy(update={"retry_delay_s": 0, "lease_s": 10})
    key = upload(clients, settings, SAMPLE, "dlq/doc.pdf")
    faults.fail(clients.dynamodb, "UpdateItem", DYNAMODB_INTERNAL_ERROR, times=ALWAYS)
    worker = build_worker(settings, clients)
    # When a worker runs until the message leaves the work queue
    with _running(worker) as running:
        elapsed = _wait_for(
            lambda: _queue_counts(clients, settings.dlq_url)[0] == 1,
            timeout_s=120,
            what="the message in the dead-letter queue",
        )
    # Then after maxReceiveCount (5) receives it is in the DLQ and the work queue is empty
    assert not running.errors
    assert _queue_counts(clients, settings.queue_url) == (0, 0)
    dead = clients.sqs.receive_message(QueueUrl=settings.dlq_url, WaitTimeSeconds=1)["Messages"]
    assert len(dead) == 1 and json.loads(dead[0]["Body"])["Records"][0]["s3"]["object"]["key"]
    outcomes = worker.stats.outcomes
    assert outcomes.get("error", 0) + outcomes.get("busy", 0) == 5, outcomes
    assert outcomes.get("SUCCEEDED", 0) == 0
    assert elapsed < 120
    # And once DynamoDB answers again, the DLQ function marks the document exhausted
    faults.clear()
    assert mark_exhausted(dead[0]["Body"], 5, status_store(settings, clients)) == 1
    item = _item(clients, settings, key)
    assert (item["status"], item["error"]["category"]) == ("FAILED", "exhausted")


def test_a_receive_outage_backs_off_and_the_worker_recovers_when_it_clears(
    stack_settings: Settings, clients: Clients, faults: FaultInjector
) -> None:
    # Given a document waiting, and SQS failing every ReceiveMessage
    key = upload(clients, stack_settings, SAMPLE, "outage/doc.pdf")
    faults.fail(clients.sqs, "ReceiveMessage", SQS_INTERNAL_ERROR, times=ALWAYS)
    worker = build_worker(stack_settings, clients)
    with _running(worker) as running:
        # When two receives in a row have failed (each after MAX_ATTEMPTS attempts)
        _wait_for(
            lambda: faults.faulted("sqs.ReceiveMessage") >= 2 * MAX_ATTEMPTS,
            timeout_s=60,
            what="two failed receives",
        )
        polling_during_outage = running.polling
        faults.clear()
        # And then SQS answers again
        recovery = _wait_for(
            _status_is(clients, stack_settings, key, "SUCCEEDED"),
            timeout_s=60,
            what="the document converted after the outage",
        )
    # Then the worker kept running, waited RECEIVE_BACKOFF_S between failed receives,
    # and converted the document once the receives went through
    assert polling_during_outage and not running.errors
    calls = [a for a in faults.history("sqs.ReceiveMessage") if _sdk_attempt(a) == 1]
    failed_calls = [c for c in calls if c.faulted]
    assert len(failed_calls) >= 2
    for i, (a, b) in enumerate(itertools.pairwise(calls)):
        if not a.faulted:
            break
        assert b.at - a.at >= loop.RECEIVE_BACKOFF_S[min(i, len(loop.RECEIVE_BACKOFF_S) - 1)]
    numbers = _attempt_numbers(faults, "sqs.ReceiveMessage")
    assert numbers[: 2 * MAX_ATTEMPTS] == [*range(1, MAX_ATTEMPTS + 1)] * 2
    assert worker.stats.outcomes == {"SUCCEEDED": 1}
    assert recovery < 60


# -- writes that happened although the answer was an error -------------------------------


def _is_completion(request: Any) -> bool:
    return b'"SUCCEEDED"' in (request.body or b"")


@pytest.mark.parametrize(
    ("service", "operation", "when"),
    [
        # The claim: the retried write finds the claim taken (by itself, unknown to it) and
        # the document waits out its own lease (lease_s = 10 s) before it is claimed again.
        pytest.param("dynamodb", "PutItem", None, marks=pytest.mark.slow),
        ("dynamodb", "UpdateItem", _is_completion),  # the final write
        ("sqs", "DeleteMessage", None),
    ],
    ids=["claim", "completion", "delete"],
)
def test_a_write_applied_before_a_500_still_ends_with_one_success(
    stack_settings: Settings,
    clients: Clients,
    faults: FaultInjector,
    service: str,
    operation: str,
    when: Callable[[Any], bool] | None,
) -> None:
    # Given a document, and one write whose request reaches the service but whose answer
    # is a 500 (the caller cannot tell whether it happened; botocore retries it)
    settings = stack_settings.model_copy(update={"retry_delay_s": 0, "lease_s": 10})
    key = upload(clients, settings, SAMPLE, f"applied/{operation}.pdf")
    client = getattr(clients, service)
    fault = DYNAMODB_INTERNAL_ERROR if service == "dynamodb" else SQS_INTERNAL_ERROR
    faults.fail(client, operation, fault, times=1, when=when, applied=True)
    faults.watch(clients.s3, "PutObject")
    worker = build_worker(settings, clients)
    # When a worker runs until the document is final and the queue is empty
    with _running(worker) as running:
        elapsed = _wait_for(
            lambda: (
                _status_is(clients, settings, key, "SUCCEEDED")()
                and _queue_counts(clients, settings.queue_url) == (0, 0)
            ),
            timeout_s=90,
            what="SUCCEEDED and an empty queue",
        )
    # Then the document was converted once, with one complete set of outputs
    assert not running.errors
    assert faults.faulted(f"{service}.{operation}") == 1
    _assert_complete_outputs(clients, settings, f"applied/{operation}.pdf")
    manifests = [a for a in faults.history("s3.PutObject") if a.url.endswith("/manifest.json")]
    assert len(manifests) == 1
    assert elapsed < 90
