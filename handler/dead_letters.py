"""Operating the dead-letter queue: what is in it, what ran out of retries, and the redrive.

Two kinds of dead letter reach an operator. Messages still in the DLQ: poison bodies, or
messages the DLQ function has not consumed yet. And documents the function marked
``FAILED``/``exhausted`` (it consumes their messages): their status item keeps the bucket,
key, version id, ETag, sequencer and size, which is all an S3 event needs, so after a fix
such a document is re-queued as a synthesized S3 event. The claim rule lets a
``FAILED``/``exhausted`` version be claimed again (:func:`handler.status.model.decide_claim`).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from handler.errors import ErrorCategory, PoisonMessage
from handler.events.model import ObjectRef
from handler.events.parse import parse_body
from handler.status.model import Status, StatusItem, utc_now_iso
from handler.status.store import StatusStore

# SQS quotas (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/
# quotas-messages.html): 10 entries per batch call, 1 MiB per batch request.
SQS_BATCH_MAX = 10
SQS_BATCH_MAX_BYTES = 1024 * 1024
PEEK_VISIBILITY_S = 30  # a listed message is hidden at most this long (made visible at once)
MOVE_VISIBILITY_S = 60  # a message being moved is hidden while it is sent and deleted
RECEIVE_WAIT_S = 1  # short long-polls: the DLQ is read until a receive comes back empty
FAILED_ITEMS_READ_MAX = 100_000  # FAILED items read at most to find the exhausted ones

REASON_ATTRIBUTE = "pagedrop-reason"  # set by the worker on a poison body
REDRIVE_ATTRIBUTE = "pagedrop-redrive"  # set on what a redrive sends: "dlq" or "exhausted"
OWN_ATTRIBUTE_PREFIX = "pagedrop-"  # the worker's notes on a dead letter; not sent back
BODY_EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message in the DLQ, as a listing shows it."""

    message_id: str
    receive_count: int
    refs: tuple[ObjectRef, ...]  # the documents it names; none for a poison body
    reason: str | None  # the worker's ``pagedrop-reason``, or why the body does not parse
    body_excerpt: str
    sent_at: str | None  # SQS's SentTimestamp, ISO-8601 UTC

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(ref.key for ref in self.refs)


@dataclass(frozen=True, slots=True)
class ExhaustedDocument:
    """A document marked ``FAILED``/``exhausted``, with what re-creates its S3 event."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    sequencer: str | None
    size: int | None
    version: str  # the status item's version token (VersionId, else ETag)
    message: str
    failed_at: str

    @classmethod
    def from_item(cls, item: StatusItem) -> ExhaustedDocument:
        raw = item.raw
        bucket, _, key = str(raw["pk"]).partition("/")
        size = int(raw.get("size", -1))
        error = raw.get("error") or {}
        return cls(
            bucket=str(raw.get("bucket") or bucket),
            key=str(raw.get("key") or key),
            version_id=str(raw.get("version_id") or "") or None,
            etag=str(raw.get("etag") or "") or None,
            sequencer=str(raw.get("sequencer") or "") or None,
            size=size if size >= 0 else None,
            version=item.version,
            message=str(error.get("message", "")),
            failed_at=str(raw.get("finished_at") or raw.get("updated_at") or ""),
        )

    def event_body(self, region: str, now: float) -> str:
        """The S3 notification that would have announced this version (keys URL-encoded).

        Fields the item does not know are left out: the worker then converts the key's
        current version, as for an event that names none.
        """
        obj: dict[str, Any] = {"key": quote_plus(self.key, safe="/")}
        optional = {
            "size": self.size,
            "eTag": self.etag,
            "versionId": self.version_id,
            "sequencer": self.sequencer,
        }
        obj.update({name: value for name, value in optional.items() if value is not None})
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": utc_now_iso(now),
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "pagedrop-redrive",
                "bucket": {"name": self.bucket},
                "object": obj,
            },
        }
        return json.dumps({"Records": [record]})


@dataclass(slots=True)
class RedriveReport:
    """What a redrive did (or, with ``dry_run``, would do)."""

    dry_run: bool
    moved: list[DeadLetter] = field(default_factory=list)
    requeued: list[ExhaustedDocument] = field(default_factory=list)
    skipped: list[ExhaustedDocument] = field(default_factory=list)  # a moved message names it
    failures: list[str] = field(default_factory=list)  # one sentence each


class DeadLetters:
    """The DLQ and the exhausted documents of one stack; clients are injected."""

    def __init__(
        self,
        sqs: Any,
        store: StatusStore,
        *,
        queue_url: str,
        dlq_url: str,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sqs = sqs
        self._store = store
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._region = region
        self._clock = clock

    # -- listing -----------------------------------------------------------------------

    def peek(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` messages in the DLQ, left there (each listing counts as a receive)."""
        held: list[dict[str, Any]] = []
        try:
            for batch in self._receive_batches(limit, PEEK_VISIBILITY_S):
                held.extend(batch)
        finally:
            self._make_visible(held)
        return [_dead_letter(message) for message in held]

    def exhausted(self, limit: int) -> list[ExhaustedDocument]:
        """Up to ``limit`` documents ``FAILED``/``exhausted``, most recent first."""
        failed = self._store.list_by_status(Status.FAILED, limit=FAILED_ITEMS_READ_MAX)
        wanted = (i for i in failed if i.error_category == ErrorCategory.EXHAUSTED.value)
        return [ExhaustedDocument.from_item(item) for item in itertools.islice(wanted, limit)]

    # -- redrive -----------------------------------------------------------------------

    def redrive(self, *, limit: int, exhausted: bool, dry_run: bool = False) -> RedriveReport:
        """Send up to ``limit`` DLQ messages back to the work queue (send, then delete); with
        ``exhausted``, re-queue exhausted documents too, within the same ``limit``."""
        report = RedriveReport(dry_run=dry_run)
        if dry_run:
            report.moved = self.peek(limit)
        else:
            self._move(limit, report)
        if exhausted and not report.failures and len(report.moved) < limit:
            for document in self.exhausted(limit - len(report.moved)):
                if any(_names(letter, document) for letter in report.moved):
                    report.skipped.append(document)
                else:
                    report.requeued.append(document)
            if not dry_run:
                self._requeue(report)
        return report

    def _move(self, limit: int, report: RedriveReport) -> None:
        for batch in self._receive_batches(limit, MOVE_VISIBILITY_S):
            try:
                sent, failures = self._send(
                    (f"message {m['MessageId']}", m["Body"], _forwarded_attributes(m))
                    for m in batch
                )
            except Exception:
                self._make_visible(batch)  # a copy already sent is a duplicate: harmless
                raise
            report.failures.extend(failures)
            moved = [m for m in batch if f"message {m['MessageId']}" in sent]
            self._make_visible([m for m in batch if m not in moved])
            report.failures.extend(self._delete(moved))
            report.moved.extend(_dead_letter(message) for message in moved)
            if failures:
                return  # what failed would be received again: stop here

    def _requeue(self, report: RedriveReport) -> None:
        now = self._clock()
        by_id = {f"s3://{doc.bucket}/{doc.key}": doc for doc in report.requeued}
        sent, failures = self._send(
            (i, doc.event_body(self._region, now), _redrive_attribute("exhausted"))
            for i, doc in by_id.items()
        )
        report.requeued = [doc for i, doc in by_id.items() if i in sent]
        report.failures.extend(failures)

    # -- SQS ---------------------------------------------------------------------------

    def _receive_batches(self, limit: int, visibility_s: int) -> Iterator[list[dict[str, Any]]]:
        """Batches from the DLQ until ``limit`` messages or an empty receive.

        Received messages stay hidden for ``visibility_s``, so no message comes twice.
        """
        seen = 0
        while seen < limit:
            response = self._sqs.receive_message(
                QueueUrl=self._dlq_url,
                MaxNumberOfMessages=min(SQS_BATCH_MAX, limit - seen),
                WaitTimeSeconds=RECEIVE_WAIT_S,
                VisibilityTimeout=visibility_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            )
            messages = list(response.get("Messages", []))
            if not messages:
                return
            seen += len(messages)
            yield messages

    def _send(
        self, entries: Iterable[tuple[str, str, dict[str, Any]]]
    ) -> tuple[set[str], list[str]]:
        """Send (what, body, attributes) to the work queue in batches; what was sent, and a
        sentence for each failure (``what`` names the entry in it)."""
        sent: set[str] = set()
        failures: list[str] = []
        for batch in _size_batches(list(entries)):
            response = self._sqs.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(n), "MessageBody": body, "MessageAttributes": attributes}
                    for n, (_, body, attributes) in enumerate(batch)
                ],
            )
            ids = [entry_id for entry_id, _, _ in batch]
            sent.update(ids[int(ok["Id"])] for ok in response.get("Successful", []))
            failures.extend(
                f"Could not send {ids[int(bad['Id'])]} to the work queue: {bad.get('Message')}."
                for bad in response.get("Failed", [])
            )
        return sent, failures

    def _delete(self, messages: list[dict[str, Any]]) -> list[str]:
        failures: list[str] = []
        for start in range(0, len(messages), SQS_BATCH_MAX):
            batch = messages[start : start + SQS_BATCH_MAX]
            response = self._sqs.delete_message_batch(
                QueueUrl=self._dlq_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
                ],
            )
            failures.extend(
                f"Message {batch[int(bad['Id'])]['MessageId']} was sent to the work queue but "
                f"could not be deleted from the DLQ ({bad.get('Message')}); the worker treats "
                "the second copy as a duplicate."
                for bad in response.get("Failed", [])
            )
        return failures

    def _make_visible(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_BATCH_MAX):
            batch = messages[start : start + SQS_BATCH_MAX]
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._dlq_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for n, m in enumerate(batch)
                ],
            )


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    body = str(message.get("Body", ""))
    attributes = message.get("MessageAttributes") or {}
    reason = (attributes.get(REASON_ATTRIBUTE) or {}).get("StringValue")
    refs: tuple[ObjectRef, ...] = ()
    try:
        refs = parse_body(body).refs
    except PoisonMessage as exc:
        reason = reason or exc.reason
    system = message.get("Attributes") or {}
    sent_ms = system.get("SentTimestamp")
    return DeadLetter(
        message_id=str(message["MessageId"]),
        receive_count=int(system.get("ApproximateReceiveCount", 0)),
        refs=refs,
        reason=reason,
        body_excerpt=body[:BODY_EXCERPT_CHARS],
        sent_at=utc_now_iso(int(sent_ms) / 1000) if sent_ms else None,
    )


def _names(letter: DeadLetter, document: ExhaustedDocument) -> bool:
    """Whether a moved message names this version (re-queueing it would only repeat it)."""
    return any(
        ref.bucket == document.bucket
        and ref.key == document.key
        and (
            ref.version_id == document.version_id
            if ref.version_id
            else bool(ref.etag) and ref.etag == document.etag
        )
        for ref in letter.refs
    )


def _forwarded_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """The sender's message attributes; the worker's own notes are dropped."""
    kept = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in (message.get("MessageAttributes") or {}).items()
        if not name.startswith(OWN_ATTRIBUTE_PREFIX)
    }
    return {**kept, **_redrive_attribute("dlq")}


def _redrive_attribute(origin: str) -> dict[str, Any]:
    return {REDRIVE_ATTRIBUTE: {"DataType": "String", "StringValue": origin}}


def _size_batches(
    entries: list[tuple[str, str, dict[str, Any]]],
) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """Entries grouped within SQS's per-batch count and byte limits (a big body goes alone)."""
    batch: list[tuple[str, str, dict[str, Any]]] = []
    size = 0
    for entry in entries:
        entry_size = len(entry[1].encode("utf-8", errors="surrogatepass")) + len(
            json.dumps(entry[2])
        )
        if batch and (len(batch) == SQS_BATCH_MAX or size + entry_size > SQS_BATCH_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        yield batch
