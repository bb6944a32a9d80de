"""The dead-letter queue function: mark documents whose retries ran out FAILED/exhausted.

Runs as a Lambda function on the DLQ (partial batch failures reported): every message it
handles is consumed (Lambda deletes it) after each document it names is marked; a record
whose marking failed is reported and comes back. A poison body names no document: it is
logged with its reason and consumed too. The status item keeps what re-creates the event,
so ``pagedrop dlq redrive --exhausted`` can retry a document after a fix. Locally the same
code runs on messages read from the DLQ (:class:`handler.local.run.DeadLetterWatcher`).
In Lambda, each document marked counts in the ``DocumentsExhausted`` metric (EMF on
stdout, which Lambda sends to CloudWatch Logs).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from handler.errors import PoisonMessage
from handler.events.model import ObjectRef
from handler.events.parse import parse_body
from handler.metrics import DOCUMENTS_EXHAUSTED, Metrics
from handler.status.store import StatusStore

log = logging.getLogger(__name__)

EXHAUSTED_MESSAGE = (
    "Processing failed on every attempt (the message reached the dead-letter queue after "
    "{receives} receives); see the worker logs for the cause, and after a fix retry it with "
    "`pagedrop dlq redrive --exhausted`."
)
POISON_LOG_CHARS = 2000  # how much of a poison body the log keeps


def mark_exhausted(body: str, receive_count: int | str, store: StatusStore) -> int:
    """Mark every document a dead message names; returns how many items were written."""
    try:
        parsed = parse_body(body)
    except PoisonMessage as exc:
        log.warning(
            "poison message in the DLQ (nothing to mark): %s; body: %r",
            exc.reason,
            body[:POISON_LOG_CHARS],
        )
        return 0
    message = EXHAUSTED_MESSAGE.format(receives=receive_count or "several")
    return sum(1 for ref in parsed.refs if store.mark_exhausted(_as_recorded(ref, store), message))


def _as_recorded(ref: ObjectRef, store: StatusStore) -> ObjectRef:
    """The event's version as the worker recorded it.

    An event without a VersionId (S3 on an unversioned bucket, moto always) names the version
    by its ETag; the worker filled the VersionId in from its HEAD, so the item's version is
    the VersionId. Same ETag: same version, and the write's condition can match.
    """
    if ref.version_id or not ref.etag:
        return ref
    item = store.get(ref.pk)
    if item is None or item.raw.get("etag") != ref.etag or not item.raw.get("version_id"):
        return ref
    return replace(ref, version_id=str(item.raw["version_id"]))


def lambda_record(message: Mapping[str, Any], source_arn: str = "") -> dict[str, Any]:
    """A message as boto3's ``receive_message`` returns it, in the shape Lambda delivers it."""
    attributes = {
        name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType")}
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": source_arn,
    }


def handle_event(
    event: dict[str, Any],
    store: StatusStore,
    context: Any = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """Mark what each record names; the partial batch response lists the records that failed."""
    metrics = metrics or Metrics.disabled()

    def record_handler(record: SQSRecord) -> None:
        marked = mark_exhausted(record.body, record.attributes.approximate_receive_count, store)
        if marked:
            metrics.count(DOCUMENTS_EXHAUSTED, marked)

    # A batch that failed entirely is reported like any other, not raised: the records
    # come back either way, and the function's error metric stays for real errors.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    try:
        response = process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        metrics.flush()
    return dict(response)


@functools.cache
def _metrics() -> Metrics:
    from handler.settings import Settings

    return Metrics.from_settings(Settings())


@functools.cache
def _store() -> StatusStore:
    from handler.aws import make_clients
    from handler.settings import Settings

    settings = Settings()
    return StatusStore(
        make_clients(settings).dynamodb,
        settings.table_name,
        lease_s=settings.lease_s,
        retention_days=settings.retention_days,
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (SQS event source with ReportBatchItemFailures)."""
    return handle_event(event, _store(), context, _metrics())
