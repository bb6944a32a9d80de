"""The dead-letter queue function: mark documents whose retries ran out FAILED/exhausted.

Runs as a Lambda function on the DLQ (partial batch failures reported), or as a plain
function over messages read from the DLQ (``pagedrop`` locally and in tests).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from handler.errors import PoisonMessage
from handler.events.parse import parse_body
from handler.status.store import StatusStore

log = logging.getLogger(__name__)

EXHAUSTED_MESSAGE = (
    "Processing failed on every attempt (the message reached the dead-letter queue after "
    "{receives} receives); see the worker logs for the cause, then redrive it."
)


def mark_exhausted(body: str, receive_count: int | str, store: StatusStore) -> int:
    """Mark every document a dead message names; returns how many items were written."""
    try:
        parsed = parse_body(body)
    except PoisonMessage as exc:
        log.warning("poison message in the DLQ (nothing to mark): %s", exc.reason)
        return 0
    message = EXHAUSTED_MESSAGE.format(receives=receive_count or "several")
    return sum(1 for ref in parsed.refs if store.mark_exhausted(ref, message))


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


def _record_handler(record: SQSRecord) -> None:
    receives = record.attributes.approximate_receive_count
    mark_exhausted(record.body, receives, _store())


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (SQS event source with ReportBatchItemFailures)."""
    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event=event, record_handler=_record_handler, processor=processor, context=context
    )
    return dict(response)
