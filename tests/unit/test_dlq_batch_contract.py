"""The DLQ function's answer is the partial batch response Lambda reads when the event source
mapping has ``FunctionResponseTypes: [ReportBatchItemFailures]``: ``{"batchItemFailures":
[{"itemIdentifier": <messageId>}]}``; a listed record comes back, every other one is deleted.
(https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from handler.errors import TransientError
from handler.events.model import ObjectRef
from handler.lambdas import dlq
from handler.status.model import StatusItem


class FakeStore:
    """Marks every document except the ones whose key says ``throttled``."""

    def __init__(self) -> None:
        self.marked: list[str] = []

    def get(self, pk: str) -> StatusItem | None:
        return None

    def mark_exhausted(self, ref: ObjectRef, message: str) -> bool:
        if "throttled" in ref.key:
            raise TransientError("DynamoDB throttled the write")
        self.marked.append(ref.key)
        return True


def _record(message_id: str, key: str | None) -> dict[str, Any]:
    body = (
        json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {
                            "bucket": {"name": "docs"},
                            "object": {"key": key, "size": 10, "eTag": "abc"},
                        },
                    }
                ]
            }
        )
        if key
        else "not an event"
    )
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "5", "SentTimestamp": "1573251510774"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pagedrop-dlq",
        "awsRegion": "us-east-1",
    }


def test_only_the_record_whose_marking_failed_is_reported() -> None:
    # Given a batch: a document, a document whose write is throttled, and a poison body
    store = FakeStore()
    event = {
        "Records": [
            _record("id-ok", "input/a.pdf"),
            _record("id-throttled", "input/throttled.pdf"),
            _record("id-poison", None),
        ]
    }
    # When the function handles it
    response = dlq.handle_event(event, store)  # type: ignore[arg-type]
    # Then exactly the failed record is listed, by its messageId, in Lambda's shape
    assert response == {"batchItemFailures": [{"itemIdentifier": "id-throttled"}]}
    assert json.loads(json.dumps(response)) == response
    assert store.marked == ["input/a.pdf"]


def test_a_batch_that_failed_entirely_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the Lambda entry point on a batch whose every write is throttled
    monkeypatch.setattr(dlq, "_store", FakeStore)
    monkeypatch.setattr(dlq, "_metrics", dlq.Metrics.disabled)
    event = {"Records": [_record("id-1", "input/throttled-1.pdf"), _record("id-2", "throttled")]}
    # When it runs
    response = dlq.lambda_handler(event, None)
    # Then both records are listed (and come back), and the invocation itself succeeds
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "id-1"}, {"itemIdentifier": "id-2"}]
    }


def test_a_batch_that_succeeded_lists_no_failures() -> None:
    response = dlq.handle_event({"Records": [_record("id-ok", "input/a.pdf")]}, FakeStore())  # type: ignore[arg-type]
    assert response == {"batchItemFailures": []}
