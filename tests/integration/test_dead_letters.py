"""Exhausted retries: a document that fails every time ends in the DLQ, is marked
FAILED/exhausted by the DLQ function, and is converted after a fix and a redrive
(``pagedrop dlq list`` / ``pagedrop dlq redrive``), over real HTTP.

Time bounds: the worker runs with ``retry_delay_s=0`` and 1-second long polls, so the five
failing receives take a few seconds; each ``dlq`` command waits 1 s on its last, empty
receive.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from handler.aws import Clients
from handler.cli import main
from handler.dead_letters import DeadLetters, ExhaustedDocument
from handler.documents.pages import PageInput
from handler.engines import registry
from handler.engines.base import Element, ElementType, PageResult
from handler.errors import TransientError
from handler.events.model import ObjectRef
from handler.events.parse import parse_body
from handler.lambdas import dlq
from handler.local.run import DeadLetterWatcher
from handler.settings import Settings
from handler.worker.build import status_store
from tests.conftest import LOCAL_AWS_ENV, SAMPLES, drain, mid_page

pytestmark = pytest.mark.integration

ENGINE = "broken-until-fixed"


@dataclass
class Fault:
    """Whether the engine is still broken: the test's "fix" sets it to False."""

    broken: bool = True


class BrokenUntilFixedEngine:
    """Raises a transient fault on every page while broken; converts once fixed."""

    name = ENGINE

    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    def convert(self, page: PageInput) -> PageResult:
        if self.fault.broken:
            raise TransientError("the GPU ran out of memory (simulated)")
        text = Element(ElementType.NARRATIVE_TEXT, f"text of page {page.number}", mid_page(page))
        return PageResult(page.number, page.layout_width, page.layout_height, self.name, [text])


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch) -> Fault:
    state = Fault()
    monkeypatch.setitem(registry.FACTORIES, ENGINE, lambda settings: BrokenUntilFixedEngine(state))
    return state


@pytest.fixture
def pagedrop(
    stack_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """Run ``pagedrop dlq ...`` against the test's stack; (exit code, stdout, stderr)."""
    for name, value in {
        **LOCAL_AWS_ENV,
        "AWS_DEFAULT_REGION": stack_settings.region,
    }.items():
        monkeypatch.setenv(name, value)
    where = [
        "--endpoint-url",
        str(stack_settings.endpoint_url),
        "--table-name",
        stack_settings.table_name,
        "--queue-url",
        stack_settings.queue_url,
        "--dlq-url",
        stack_settings.dlq_url,
    ]

    def run(action: str, *extra: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--log-level", "WARNING", "dlq", action, *where, *extra])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _counts(clients: Clients, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def _max_receive_count(clients: Clients, settings: Settings) -> int:
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=settings.queue_url, AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    return int(json.loads(attrs["RedrivePolicy"])["maxReceiveCount"])


def _receive_all(clients: Clients, url: str) -> list[dict[str, Any]]:
    return list(
        clients.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
    )


def _run_dlq_function(
    clients: Clients, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    """What Lambda does with the DLQ: hand the records to the function, delete the handled."""
    for name, value in {
        "PAGEDROP_TABLE_NAME": settings.table_name,
        "PAGEDROP_ENDPOINT_URL": str(settings.endpoint_url),
        **LOCAL_AWS_ENV,
    }.items():
        monkeypatch.setenv(name, value)
    records = [dlq.lambda_record(m) for m in _receive_all(clients, settings.dlq_url)]
    dlq._store.cache_clear()
    try:
        response = dlq.lambda_handler({"Records": records}, None)
    finally:
        dlq._store.cache_clear()
    assert response == {"batchItemFailures": []}
    for record in records:
        clients.sqs.delete_message(QueueUrl=settings.dlq_url, ReceiptHandle=record["receiptHandle"])
    return records


def _s3_body(ref: ObjectRef) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": ref.bucket},
                        "object": {"key": ref.key, "size": 10, "eTag": ref.etag},
                    },
                }
            ]
        }
    )


@pytest.mark.slow
def test_a_document_failing_every_time_is_marked_exhausted_and_converted_after_a_redrive(
    stack_settings: Settings,
    clients: Clients,
    fault: Fault,
    pagedrop: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a document whose engine fails transiently on every attempt (a key that needs
    # URL-encoding), and a worker that retries at once
    settings = stack_settings.model_copy(update={"retry_delay_s": 0})
    key = settings.input_prefix + "dead letters/q3 report+final.pdf"
    clients.s3.upload_file(
        str(SAMPLES / "pysf__multicolumn.pdf"),
        settings.bucket,
        key,
        ExtraArgs={"Metadata": {"pagedrop-engine": ENGINE}},
    )
    max_receives = _max_receive_count(clients, settings)
    store = status_store(settings, clients)

    # When the worker drains the queue
    stats = drain(settings, clients)

    # Then it tried maxReceiveCount times, and the message is in the DLQ, not the work queue
    assert max_receives == 5  # template.yaml's MaxReceiveCount
    assert stats.outcomes == {"error": max_receives}
    assert _counts(clients, settings.queue_url) == (0, 0)
    assert _counts(clients, settings.dlq_url) == (1, 0)
    item = store.get(f"{settings.bucket}/{key}")
    assert item is not None and item.raw["status"] == "PROCESSING"
    assert item.attempt == max_receives

    # ... and `dlq list` shows it, naming the key, and leaves it there
    code, out, _ = pagedrop("list", "--json")
    listed = json.loads(out)
    assert code == 0
    [message] = listed["messages"]
    assert message["keys"] == [key] and message["reason"] is None
    assert message["receive_count"] > max_receives
    assert listed["exhausted"] == []
    assert _counts(clients, settings.dlq_url) == (1, 0)

    # When the DLQ function handles the DLQ's messages (and Lambda deletes them)
    [record] = _run_dlq_function(clients, settings, monkeypatch)

    # Then the document is FAILED/exhausted with the receive count, the DLQ is empty
    item = store.get(f"{settings.bucket}/{key}")
    assert item is not None and item.raw["status"] == "FAILED"
    assert item.raw["error"]["category"] == "exhausted"
    receives = record["attributes"]["ApproximateReceiveCount"]
    assert f"after {receives} receives" in item.raw["error"]["message"]
    assert _counts(clients, settings.dlq_url) == (0, 0)

    # ... and `dlq list` shows it with its key, version, error and when
    code, out, _ = pagedrop("list")
    assert code == 0
    assert "messages in the dead-letter queue: 0" in out
    assert "documents FAILED/exhausted: 1" in out
    [row] = [line for line in out.splitlines() if line.startswith(key)]
    assert item.version in row and str(item.raw["finished_at"]) in row
    assert f"after {receives} receives" in row

    # When the engine is fixed and the exhausted documents are redriven
    fault.broken = False
    code, out, _ = pagedrop("redrive", "--exhausted")
    assert code == 0
    assert "re-queued 1 FAILED/exhausted document(s)" in out and key in out
    assert _counts(clients, settings.queue_url) == (1, 0)
    stats = drain(settings, clients)

    # Then it is converted: SUCCEEDED, the attempts counted on from the exhausted ones
    assert stats.outcomes == {"SUCCEEDED": 1}
    item = store.get(f"{settings.bucket}/{key}")
    assert item is not None and item.raw["status"] == "SUCCEEDED"
    assert "error" not in item.raw
    assert item.attempt == max_receives + 1
    manifest_key = f"{settings.output_prefix}dead letters/q3 report+final.pdf/manifest.json"
    manifest = json.loads(
        clients.s3.get_object(Bucket=settings.bucket, Key=manifest_key)["Body"].read()
    )
    assert manifest["status"] == "SUCCEEDED"
    assert _counts(clients, settings.queue_url) == (0, 0)
    assert _counts(clients, settings.dlq_url) == (0, 0)


def test_list_shows_a_poison_message_and_redrive_puts_it_back_on_the_work_queue(
    stack_settings: Settings,
    clients: Clients,
    pagedrop: Callable[..., tuple[int, str, str]],
) -> None:
    # Given a poison body the worker set aside in the DLQ, and an exhausted document
    clients.sqs.send_message(QueueUrl=stack_settings.queue_url, MessageBody="not an event")
    drain(stack_settings, clients)
    store = status_store(stack_settings, clients)
    ref = ObjectRef(bucket=stack_settings.bucket, key="input/gone.pdf", etag="e1", size=10)
    assert store.claim(ref, "w1", "output/gone.pdf/").claim is not None
    assert dlq.mark_exhausted(_s3_body(ref), 6, store) == 1

    # When the DLQ is listed
    code, out, _ = pagedrop("list")

    # Then the poison message shows with the worker's reason, the document with its error,
    # and the message is still in the DLQ
    assert code == 0
    assert "messages in the dead-letter queue: 1" in out
    assert "The message body is not valid JSON." in out
    assert "input/gone.pdf  e1" in out and "after 6 receives" in out
    assert _counts(clients, stack_settings.dlq_url) == (1, 0)

    # When a dry run, then a redrive (without --exhausted), are asked for
    code, out, _ = pagedrop("redrive", "--dry-run")
    assert code == 0 and "would move 1 message(s)" in out
    assert _counts(clients, stack_settings.dlq_url) == (1, 0)
    assert _counts(clients, stack_settings.queue_url) == (0, 0)
    code, out, _ = pagedrop("redrive")

    # Then the poison body is back on the work queue (marked as redriven, without the
    # worker's old reason), the DLQ is empty, and the exhausted document was not re-queued
    assert code == 0 and "moved 1 message(s)" in out
    assert _counts(clients, stack_settings.dlq_url) == (0, 0)
    [message] = _receive_all(clients, stack_settings.queue_url)
    assert message["Body"] == "not an event"
    attributes = message.get("MessageAttributes", {})
    assert attributes["pagedrop-redrive"]["StringValue"] == "dlq"
    assert "pagedrop-reason" not in attributes


def test_redrive_skips_a_version_a_moved_message_names_and_keeps_to_the_limit(
    stack_settings: Settings,
    clients: Clients,
    pagedrop: Callable[..., tuple[int, str, str]],
) -> None:
    # Given three exhausted documents, the message of input/x1.pdf still in the DLQ (and
    # no s3:TestEvent in the work queue)
    clients.sqs.purge_queue(QueueUrl=stack_settings.queue_url)
    store = status_store(stack_settings, clients)
    refs = [
        ObjectRef(bucket=stack_settings.bucket, key=f"input/x{n}.pdf", etag=f"e{n}", size=10)
        for n in range(3)
    ]
    for ref in refs:
        assert store.claim(ref, "w1", "output/").claim is not None
        assert dlq.mark_exhausted(_s3_body(ref), 6, store) == 1
    clients.sqs.send_message(QueueUrl=stack_settings.dlq_url, MessageBody=_s3_body(refs[1]))

    # When a dry run is asked for
    code, out, _ = pagedrop("redrive", "--exhausted", "--dry-run")

    # Then it would move the message and re-queue the two others, not x1 a second time
    assert code == 0
    assert "would move 1 message(s)" in out and "would re-queue 2 FAILED/exhausted" in out
    assert "input/x1.pdf  skipped: a moved message names the same version" in out
    assert _counts(clients, stack_settings.queue_url) == (0, 0)

    # When at most two are redriven
    code, out, _ = pagedrop("redrive", "--exhausted", "--limit", "2")

    # Then the message goes back and the most recently exhausted document is re-queued
    assert code == 0
    assert "moved 1 message(s)" in out and "re-queued 1 FAILED/exhausted" in out
    sent = [parse_body(m["Body"]).refs[0] for m in _receive_all(clients, stack_settings.queue_url)]
    assert sorted((r.key, r.etag) for r in sent) == [("input/x1.pdf", "e1"), ("input/x2.pdf", "e2")]
    assert _counts(clients, stack_settings.dlq_url) == (0, 0)


class OneSendFails:
    """An SQS client whose batch sends refuse their first entry (and pass the rest on)."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        sent = {"Successful": []}
        if len(Entries) > 1:
            sent = self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=Entries[1:])
        refused = {"Id": Entries[0]["Id"], "SenderFault": False, "Code": "InternalError"}
        return {**sent, "Failed": [{**refused, "Message": "try again"}]}


def test_a_message_that_cannot_be_sent_stays_in_the_dlq(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given two messages in the DLQ and a work queue that refuses one of them
    clients.sqs.purge_queue(QueueUrl=stack_settings.queue_url)
    for body in ("first", "second"):
        clients.sqs.send_message(QueueUrl=stack_settings.dlq_url, MessageBody=body)
    letters = DeadLetters(
        OneSendFails(clients.sqs),
        status_store(stack_settings, clients),
        queue_url=stack_settings.queue_url,
        dlq_url=stack_settings.dlq_url,
        region=stack_settings.region,
    )
    # When they are redriven
    report = letters.redrive(limit=10, exhausted=True)
    # Then one moved, the other is visible in the DLQ again at once, the failure is one
    # sentence, and nothing else was attempted
    assert len(report.moved) == 1 and report.requeued == []
    [failure] = report.failures
    assert failure.startswith("Could not send message ") and failure.endswith(": try again.")
    assert _counts(clients, stack_settings.queue_url) == (1, 0)
    assert _counts(clients, stack_settings.dlq_url) == (1, 0)


def test_a_synthesized_event_parses_back_to_the_recorded_version() -> None:
    # Given an exhausted document with every field an S3 event carries, and one without
    full = ExhaustedDocument(
        bucket="b",
        key="input/a dir/é+1 %.pdf",
        version_id="v1",
        etag="e1",
        sequencer="0055AED6DCD90281E5",
        size=42,
        version="v1",
        message="m",
        failed_at="t",
    )
    bare = ExhaustedDocument("b", "input/k.pdf", None, None, None, None, "e2", "m", "t")
    # When their events are synthesized and parsed the worker's way
    [ref] = parse_body(full.event_body("eu-west-1", 0.0)).refs
    [bare_ref] = parse_body(bare.event_body("eu-west-1", 0.0)).refs
    # Then the same version comes back (the key URL-encoded on the way, decoded again)
    assert '"key": "input/a+dir/%C3%A9%2B1+%25.pdf"' in full.event_body("eu-west-1", 0.0)
    assert (ref.bucket, ref.key, ref.version_id, ref.etag, ref.sequencer, ref.size) == (
        "b",
        "input/a dir/é+1 %.pdf",
        "v1",
        "e1",
        "0055AED6DCD90281E5",
        42,
    )
    assert (bare_ref.key, bare_ref.version_id, bare_ref.etag, bare_ref.size) == (
        "input/k.pdf",
        None,
        None,
        None,
    )


def test_the_local_watcher_marks_then_deletes_like_the_lambda(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given a dead letter for a stuck document and a poison body, in the DLQ
    store = status_store(stack_settings, clients)
    ref = ObjectRef(bucket=stack_settings.bucket, key="input/stuck.pdf", etag="e9")
    assert store.claim(ref, "w1", "output/stuck.pdf/").claim is not None
    clients.sqs.send_message(QueueUrl=stack_settings.dlq_url, MessageBody=_s3_body(ref))
    clients.sqs.send_message(QueueUrl=stack_settings.dlq_url, MessageBody="not json")

    # When the watcher drains the DLQ once
    deleted = DeadLetterWatcher(stack_settings, clients).drain_once()

    # Then the document is FAILED/exhausted and both messages are consumed
    assert deleted == 2
    item = store.get(ref.pk)
    assert item is not None and item.raw["status"] == "FAILED"
    assert item.raw["error"]["category"] == "exhausted"
    assert _counts(clients, stack_settings.dlq_url) == (0, 0)
