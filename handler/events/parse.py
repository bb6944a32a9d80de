"""Parse one SQS message body into frozen object references (DESIGN §1 step 2).

Accepted shapes, each handled by its own small function:

- the S3 event notification (``Records[].s3``), keys URL-encoded;
- the EventBridge ``Object Created`` event from ``aws.s3`` (``detail.object``), keys plain;
- either of them inside an SNS ``Notification`` envelope (``Message`` is a JSON string);
- ``s3:TestEvent``, bare or inside an SNS envelope.

Anything else raises :class:`PoisonMessage` with a one-sentence reason. Events that are not
object creations (``ObjectRemoved:*``, ``Object Deleted``, ...) are understood and yield no refs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import unquote_plus

from handler.errors import PoisonMessage
from handler.events.model import ObjectRef, ParsedMessage

MAX_BODY_BYTES = 1024 * 1024  # SQS message size limit (1 MiB since 2025)

JsonObject = Mapping[str, object]

# EventBridge ``detail.reason`` -> the S3 notification's event name for the same operation.
_EVENTBRIDGE_REASONS = {
    "PutObject": "ObjectCreated:Put",
    "PostObject": "ObjectCreated:Post",
    "CopyObject": "ObjectCreated:Copy",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}


def parse_body(body: str) -> ParsedMessage:
    """Parse an SQS message body; raise :class:`PoisonMessage` if it is no accepted shape."""
    document = _load_object(body, "The message body")
    if document.get("Type") == "Notification" and "Message" in document:
        document = _unwrap_sns(document)
    return _parse_event(document)


def _parse_event(document: JsonObject) -> ParsedMessage:
    if document.get("Event") == "s3:TestEvent":
        return ParsedMessage(is_test_event=True)
    if "Records" in document:
        return ParsedMessage(refs=_s3_notification_refs(document))
    if document.get("source") == "aws.s3" and "detail-type" in document:
        return ParsedMessage(refs=_eventbridge_refs(document))
    raise PoisonMessage(
        "The body is neither an S3 notification, an EventBridge S3 event, an SNS envelope "
        "of one, nor an s3:TestEvent."
    )


def _load_object(text: object, what: str) -> JsonObject:
    if not isinstance(text, str):
        raise PoisonMessage(f"{what} is not a string.")
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_BODY_BYTES:
        raise PoisonMessage(f"{what} is larger than {MAX_BODY_BYTES} bytes.")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise PoisonMessage(f"{what} is not valid JSON.") from None
    if not isinstance(value, dict):
        raise PoisonMessage(f"{what} is JSON but not an object.")
    return value


def _unwrap_sns(envelope: JsonObject) -> JsonObject:
    return _load_object(envelope["Message"], "The SNS envelope's Message")


def _s3_notification_refs(document: JsonObject) -> tuple[ObjectRef, ...]:
    records = document["Records"]
    if not isinstance(records, list) or not records:
        raise PoisonMessage("Records is not a non-empty list.")
    refs = (_s3_record_ref(record, f"Record {i}") for i, record in enumerate(records))
    return tuple(ref for ref in refs if ref is not None)


def _s3_record_ref(record: object, where: str) -> ObjectRef | None:
    if not isinstance(record, Mapping):
        raise PoisonMessage(f"{where} is not an object.")
    if record.get("eventSource") != "aws:s3":
        raise PoisonMessage(f"{where} has eventSource {record.get('eventSource')!r}, not 'aws:s3'.")
    event_name = _text(record, "eventName", where)
    s3 = _object(record, "s3", where)
    bucket = _text(_object(s3, "bucket", where), "name", f"{where} bucket")
    obj = _object(s3, "object", where)
    key = _decode_key(_text(obj, "key", f"{where} object"), where)
    if not event_name.startswith("ObjectCreated:"):
        return None
    return ObjectRef(
        bucket=bucket,
        key=key,
        size=_size(obj, "size", where),
        etag=_etag(_optional_text(obj, "eTag", where)),
        version_id=_version_id(_optional_text(obj, "versionId", where)),
        sequencer=_optional_text(obj, "sequencer", where),
        event_time=_optional_text(record, "eventTime", where),
        event_name=event_name,
        source="s3",
    )


def _eventbridge_refs(event: JsonObject) -> tuple[ObjectRef, ...]:
    where = "The EventBridge event"
    detail = _object(event, "detail", where)
    bucket = _text(_object(detail, "bucket", where), "name", f"{where} bucket")
    obj = _object(detail, "object", where)
    key = _text(obj, "key", f"{where} object")
    if event.get("detail-type") != "Object Created":
        return ()
    etag = _optional_text(obj, "etag", where) or _optional_text(obj, "eTag", where)  # moto: eTag
    reason = _optional_text(detail, "reason", where)
    ref = ObjectRef(
        bucket=bucket,
        key=key,
        size=_size(obj, "size", where),
        etag=_etag(etag),
        version_id=_version_id(_optional_text(obj, "version-id", where)),
        sequencer=_optional_text(obj, "sequencer", where),
        event_time=_optional_text(event, "time", where),
        event_name=_EVENTBRIDGE_REASONS.get(reason or "", "ObjectCreated:*"),
        source="eventbridge",
    )
    return (ref,)


# Read-only field accessors: each names the field and where it was missing or malformed.


def _object(parent: JsonObject, name: str, where: str) -> JsonObject:
    value = parent.get(name)
    if not isinstance(value, Mapping):
        raise PoisonMessage(f"{where} has no {name!r} object.")
    return value


def _text(parent: JsonObject, name: str, where: str) -> str:
    value = _optional_text(parent, name, where)
    if not value:
        raise PoisonMessage(f"{where} has no {name!r}.")
    return value


def _optional_text(parent: JsonObject, name: str, where: str) -> str | None:
    value = parent.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PoisonMessage(f"{where} has a {name!r} that is not a string.")
    return value


def _size(parent: JsonObject, name: str, where: str) -> int | None:
    value = parent.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PoisonMessage(f"{where} has a {name!r} that is not a non-negative integer.")
    return value


def _decode_key(raw: str, where: str) -> str:
    try:
        return unquote_plus(raw, errors="strict")
    except UnicodeDecodeError:
        raise PoisonMessage(f"{where} has a key whose escapes are not UTF-8.") from None


def _etag(value: str | None) -> str | None:
    stripped = (value or "").strip('"')
    return stripped or None


def _version_id(value: str | None) -> str | None:
    # "null" is the version id of an object written while versioning was off or suspended; it
    # names no particular content (each overwrite is "null" again), so it is no version at all.
    return None if value in (None, "", "null") else value
