"""The DLQ function marks documents whose retries ran out FAILED/exhausted."""

from __future__ import annotations

import json

import pytest

from handler.aws import Clients
from handler.events.model import ObjectRef
from handler.lambdas import dlq
from handler.settings import Settings
from handler.status.model import Status
from handler.worker.build import status_store
from tests.conftest import LOCAL_AWS_ENV

pytestmark = pytest.mark.integration


def _s3_body(bucket: str, key: str, etag: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {"key": key, "size": 10, "eTag": etag},
                    },
                }
            ]
        }
    )


def _lambda_record(body: str, receives: int = 5) -> dict:
    """An SQS record in the shape Lambda delivers it."""
    return {
        "messageId": "11d6ee51-4cc7-4302-9e22-7cd8afdaadf5",
        "receiptHandle": "AQEBBX8nesZEXmkhsmZeyIE8iQAMig7qw",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receives),
            "SentTimestamp": "1573251510774",
            "SenderId": "AIDAIO23YVJENQZJOL4VO",
            "ApproximateFirstReceiveTimestamp": "1573251510774",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pagedrop-dlq",
        "awsRegion": "us-east-1",
    }


def test_lambda_handler_marks_a_stuck_document_exhausted(
    stack_settings: Settings, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a document left PROCESSING by a worker that kept failing
    store = status_store(stack_settings, clients)
    ref = ObjectRef(bucket=stack_settings.bucket, key="input/stuck.pdf", etag="abc")
    assert store.claim(ref, "w1", "output/stuck.pdf/").claim is not None
    for name, value in {
        "PAGEDROP_TABLE_NAME": stack_settings.table_name,
        "PAGEDROP_ENDPOINT_URL": str(stack_settings.endpoint_url),
        **LOCAL_AWS_ENV,
    }.items():
        monkeypatch.setenv(name, value)
    dlq._store.cache_clear()
    # When its message reaches the DLQ function, along with a poison body
    event = {
        "Records": [
            _lambda_record(_s3_body(ref.bucket, ref.key, "abc")),
            _lambda_record("not json"),
        ]
    }
    response = dlq.lambda_handler(event, None)
    dlq._store.cache_clear()
    # Then it is FAILED/exhausted, and no record is reported as a batch failure
    assert response == {"batchItemFailures": []}
    item = store.get(ref.pk)
    assert item is not None and item.raw["status"] == "FAILED"
    assert item.raw["error"]["category"] == "exhausted"
    assert "5 receives" in item.raw["error"]["message"]


def test_a_finished_document_is_not_overwritten(stack_settings: Settings, clients: Clients) -> None:
    store = status_store(stack_settings, clients)
    ref = ObjectRef(bucket=stack_settings.bucket, key="input/done.pdf", etag="abc")
    claim = store.claim(ref, "w1", "out/").claim
    assert claim is not None
    store.complete(claim, Status.SUCCEEDED, pages_done=1, pages_total=1, engines=["text-layer"])
    assert dlq.mark_exhausted(_s3_body(ref.bucket, ref.key, "abc"), 3, store) == 0
    item = store.get(ref.pk)
    assert item is not None and item.raw["status"] == "SUCCEEDED"
