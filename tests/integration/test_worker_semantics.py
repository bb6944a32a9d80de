"""Ordering, leases and heartbeats of the worker, over real HTTP."""

from __future__ import annotations

import time

import pytest

from handler.aws import Clients
from handler.events.model import ObjectRef
from handler.settings import Settings
from handler.worker.build import build_worker, status_store
from handler.worker.heartbeat import Heartbeat
from tests.conftest import DATA, SAMPLES, drain, upload

pytestmark = pytest.mark.integration


def _visible(clients: Clients, settings: Settings) -> int:
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=settings.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_events_of_an_overwritten_version_are_dropped(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given two versions uploaded back to back, both events waiting, the older one first
    key = upload(clients, stack_settings, SAMPLES / "pysf__multicolumn.pdf", "two/v.pdf")
    upload(
        clients, stack_settings, DATA / "hostile" / "wrongext__minimal-document.png", "two/v.pdf"
    )
    # When a worker drains the queue
    stats = drain(stack_settings, clients)
    # Then only the newest version was converted
    item = status_store(stack_settings, clients).get(f"{stack_settings.bucket}/{key}")
    head = clients.s3.head_object(Bucket=stack_settings.bucket, Key=key)
    assert item is not None and item.raw["status"] == "SUCCEEDED"
    assert item.raw["etag"] == head["ETag"].strip('"')
    assert item.attempt == 1
    assert stats.outcomes.get("SUCCEEDED") == 1
    assert stats.outcomes.get("stale") == 1


def test_a_document_under_another_workers_lease_is_left_for_later(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given a document another worker has just claimed
    key = upload(clients, stack_settings, SAMPLES / "pysf__multicolumn.pdf", "held.pdf")
    head = clients.s3.head_object(Bucket=stack_settings.bucket, Key=key)
    ref = ObjectRef(
        bucket=stack_settings.bucket,
        key=key,
        etag=head["ETag"].strip('"'),
        version_id=head.get("VersionId"),
    )
    store = status_store(stack_settings, clients)
    assert store.claim(ref, "someone-else", "output/held.pdf/").claim is not None
    # When this worker receives its event
    stats = drain(stack_settings, clients, idle_polls=1)
    # Then it neither converts nor deletes it: the message is hidden until the lease ends
    assert stats.outcomes.get("busy") == 1
    item = store.get(ref.pk)
    assert item is not None and item.worker == "someone-else"
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=stack_settings.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_heartbeat_keeps_a_held_message_hidden(stack_settings: Settings, clients: Clients) -> None:
    # Given a message received with a 2-second visibility timeout (alone in its queue)
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
    # When the heartbeat beats
    heartbeat.beat()
    time.sleep(3)
    # Then the message stays hidden past its original timeout
    assert _visible(clients, stack_settings) == 0
    # And once it is no longer held and made visible it is there again
    heartbeat.drop(message["MessageId"])
    clients.sqs.change_message_visibility(
        QueueUrl=stack_settings.queue_url,
        ReceiptHandle=message["ReceiptHandle"],
        VisibilityTimeout=0,
    )
    assert _visible(clients, stack_settings) == 1


def test_worker_stop_before_work_hands_back_received_messages(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given a worker that received two events and is told to stop before the first
    upload(clients, stack_settings, SAMPLES / "pysf__multicolumn.pdf", "s/1.pdf")
    upload(clients, stack_settings, SAMPLES / "pysf__multicolumn.pdf", "s/2.pdf")
    worker = build_worker(stack_settings, clients)
    messages = clients.sqs.receive_message(
        QueueUrl=stack_settings.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )["Messages"]
    messages = [m for m in messages if "TestEvent" not in m["Body"]]
    worker.stop()
    # When it handles the batch and shuts down
    worker.handle_batch(messages)
    worker.run()
    # Then both messages are visible again at once and nothing was claimed
    assert _visible(clients, stack_settings) == len(messages) == 2
    assert clients.dynamodb.scan(TableName=stack_settings.table_name)["Count"] == 0
