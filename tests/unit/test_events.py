"""Parsing SQS bodies into object references (DESIGN §1 step 2)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from handler.errors import PoisonMessage
from handler.events.model import ObjectRef, ParsedMessage, sequencer_key
from handler.events.parse import MAX_BODY_BYTES, parse_body

FIXTURES = Path(__file__).resolve().parent.parent / "events"
BUCKET = "pagedrop-docs-123456789012"

AWS_PUT = ObjectRef(
    bucket=BUCKET,
    key="input/reports/q3-2026.pdf",
    size=482133,
    etag="0c3a1e4f7b9d2a6e8f1c5b3d7a9e2f4c",
    version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko",
    sequencer="0055AED6DCD90281E5",
    event_time="2026-11-20T09:15:02.482Z",
    event_name="ObjectCreated:Put",
    source="s3",
)
AWS_EVENTBRIDGE_PUT = ObjectRef(
    bucket=BUCKET,
    key="input/a b+c/résumé.pdf",
    size=5120,
    etag="e2fc714c4727ee9395f324cd2e7f331f",
    version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
    sequencer="617f08299329d189",
    event_time="2026-11-20T09:15:02Z",
    event_name="ObjectCreated:Put",
    source="eventbridge",
)
TEST_EVENT = ParsedMessage(is_test_event=True)
NOTHING = ParsedMessage()

EXPECTED: dict[str, ParsedMessage] = {
    "s3_put.json": ParsedMessage(refs=(AWS_PUT,)),
    "sns_s3_put.json": ParsedMessage(refs=(AWS_PUT,)),
    "s3_multi_record.json": ParsedMessage(
        refs=(
            ObjectRef(
                bucket=BUCKET,
                key="input/scans/page-001.png",
                size=1048576,
                etag="9b2cf535f27731c974343645a3985328",
                version_id="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
                sequencer="0062E99A88DC407460",
                event_time="2026-11-20T09:15:02.482Z",
                event_name="ObjectCreated:Put",
            ),
            ObjectRef(
                bucket=BUCKET,
                key="input/books/manual.pdf",
                size=73400320,
                etag="d8e8fca2dc0f896fd7cb4cb0031ba249-9",
                version_id="Vh0bDqQ6nq6G9cS6Zh2w9pAm8nzVmKdr",
                sequencer="0062E99A88DC40746A",
                event_time="2026-11-20T09:15:03.007Z",
                event_name="ObjectCreated:CompleteMultipartUpload",
            ),
            # the third record is ObjectRemoved:Delete and yields nothing
            ObjectRef(
                bucket=BUCKET,
                key="input/copies/invoice 7.pdf",
                size=20480,
                etag="5d41402abc4b2a76b9719d911017c592",
                version_id=None,
                sequencer="0062E99A88DC4074A0",
                event_time="2026-11-20T09:15:04.120Z",
                event_name="ObjectCreated:Copy",
            ),
        )
    ),
    "s3_encoded_keys.json": ParsedMessage(
        refs=(
            ObjectRef(
                bucket=BUCKET,
                key="input/a b+c/résumé.pdf",
                size=5120,
                etag="e2fc714c4727ee9395f324cd2e7f331f",
                sequencer="0061A1B2C3D4E5F601",
                event_time="2026-11-20T09:15:02.482Z",
            ),
            ObjectRef(
                bucket=BUCKET,
                key="input/moto-style/file name.pdf",
                size=4,
                etag="098f6bcd4621d373cade4e832627b4f6",  # arrived quoted
                sequencer="0061A1B2C3D4E5F602",
                event_time="2026-11-20T09:15:02.482Z",
            ),
            ObjectRef(
                bucket=BUCKET,
                key="input/日本語/100% done (final).pdf",
                size=77,
                etag="ad0234829205b9033196ba818f7a872b",
                sequencer="0061A1B2C3D4E5F6030",
                event_time="2026-11-20T09:15:02.482Z",
                event_name="ObjectCreated:Post",
            ),
        )
    ),
    "s3_test_event.json": TEST_EVENT,
    "sns_s3_test_event.json": TEST_EVENT,
    "moto_test_event.json": TEST_EVENT,
    "s3_object_removed.json": NOTHING,
    "eventbridge_object_created.json": ParsedMessage(refs=(AWS_EVENTBRIDGE_PUT,)),
    "sns_eventbridge_object_created.json": ParsedMessage(refs=(AWS_EVENTBRIDGE_PUT,)),
    # moto: no versionId, no sequencer, "/" encoded as %2F
    "moto_s3_put.json": ParsedMessage(
        refs=(
            ObjectRef(
                bucket="pagedrop-bucket",
                key="input/a b+c/résumé.pdf",
                size=18,
                etag="c79682aae4c5ce4fa57a7f15badd002d",
                version_id=None,
                sequencer=None,
                event_time="2026-11-21T11:45:46.046Z",
                event_name="ObjectCreated:Put",
                source="s3",
            ),
        )
    ),
    # moto: "eTag" instead of "etag", reason "ObjectCreated", a constant sequencer
    "moto_eventbridge_put.json": ParsedMessage(
        refs=(
            ObjectRef(
                bucket="pagedrop-eb",
                key="input/a b+c/résumé.pdf",
                size=18,
                etag="c79682aae4c5ce4fa57a7f15badd002d",
                version_id="c8e6cad8-6981-4d26-88d5-fde0b3e16258",
                sequencer="617f08299329d189",
                event_time="2026-11-21T11:45:47Z",
                event_name="ObjectCreated:*",
                source="eventbridge",
            ),
        )
    ),
    # unversioned bucket: moto sends version-id "null", which names no version
    "moto_eventbridge_put_unversioned.json": ParsedMessage(
        refs=(
            ObjectRef(
                bucket="pagedrop-eb",
                key="input/a b+c/résumé.pdf",
                size=14,
                etag="183b148a9dae94a7844a8351b1fc2d59",
                version_id=None,
                sequencer="617f08299329d189",
                event_time="2026-11-21T11:44:42Z",
                event_name="ObjectCreated:*",
                source="eventbridge",
            ),
        )
    ),
    # moto emits "Object Tags Added" after every put
    "moto_eventbridge_tags_added.json": NOTHING,
}


def read_fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def s3_body(*records: object) -> str:
    return json.dumps({"Records": list(records)})


def s3_record(**object_fields: object) -> dict[str, object]:
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "bucket-1"}, "object": {"key": "input/x.pdf", **object_fields}},
    }


# --- fixtures ---------------------------------------------------------------------------------


def test_every_fixture_has_an_expectation() -> None:
    # given the fixture folder / when listed / then each file is covered by EXPECTED
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_expected_refs(name: str) -> None:
    # given a real-shaped body
    body = read_fixture(name)
    # when it is parsed
    parsed = parse_body(body)
    # then exactly the expected references come out, in order
    assert parsed == EXPECTED[name]


def test_refs_are_frozen() -> None:
    # given a parsed reference
    (ref,) = parse_body(read_fixture("s3_put.json")).refs
    # when someone tries to change it / then it refuses
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.key = "input/other.pdf"  # type: ignore[misc]


def test_eventbridge_reason_maps_to_s3_event_name() -> None:
    # given EventBridge events for each creating operation
    event = json.loads(read_fixture("eventbridge_object_created.json"))
    names = {}
    for reason in ("PutObject", "PostObject", "CopyObject", "CompleteMultipartUpload"):
        event["detail"]["reason"] = reason
        # when parsed
        (ref,) = parse_body(json.dumps(event)).refs
        names[reason] = ref.event_name
    # then the event names match the S3 notification's
    assert names == {
        "PutObject": "ObjectCreated:Put",
        "PostObject": "ObjectCreated:Post",
        "CopyObject": "ObjectCreated:Copy",
        "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
    }


def test_eventbridge_object_deleted_yields_nothing() -> None:
    # given an EventBridge "Object Deleted" event
    event = json.loads(read_fixture("eventbridge_object_created.json"))
    event["detail-type"] = "Object Deleted"
    event["detail"]["reason"] = "DeleteObject"
    # when parsed / then it is understood but names nothing to convert
    assert parse_body(json.dumps(event)) == ParsedMessage()


def test_eventbridge_key_is_not_url_decoded() -> None:
    # given an EventBridge key that looks URL-encoded
    event = json.loads(read_fixture("eventbridge_object_created.json"))
    event["detail"]["object"]["key"] = "input/a+b%2Bc.pdf"
    # when parsed
    (ref,) = parse_body(json.dumps(event)).refs
    # then it is kept literally
    assert ref.key == "input/a+b%2Bc.pdf"


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("input/a+b.pdf", "input/a b.pdf"),
        ("input/a%2Bb.pdf", "input/a+b.pdf"),
        ("input%2Fsub%2Fc.pdf", "input/sub/c.pdf"),
        ("input/r%C3%A9sum%C3%A9.pdf", "input/résumé.pdf"),
        ("input/%25.pdf", "input/%.pdf"),
    ],
)
def test_s3_keys_are_unquote_plus_decoded(raw: str, decoded: str) -> None:
    # given a notification with an encoded key / when parsed / then the key is decoded
    (ref,) = parse_body(s3_body(s3_record(key=raw))).refs
    assert ref.key == decoded


def test_optional_object_fields_may_be_missing() -> None:
    # given a record whose object has only a key
    (ref,) = parse_body(s3_body(s3_record())).refs
    # then only the key and bucket are set
    assert (ref.bucket, ref.key, ref.size, ref.etag, ref.version_id, ref.sequencer) == (
        "bucket-1",
        "input/x.pdf",
        None,
        None,
        None,
        None,
    )


def test_zero_byte_object_keeps_size_zero() -> None:
    # given a zero-byte object (it must reach the filter, which fails it clearly)
    (ref,) = parse_body(s3_body(s3_record(size=0))).refs
    assert ref.size == 0


# --- poison -----------------------------------------------------------------------------------


def _without(path: tuple[str, ...]) -> str:
    record = s3_record(size=1)
    node: dict[str, object] = record
    for part in path[:-1]:
        node = node[part]  # type: ignore[assignment]
    del node[path[-1]]
    return s3_body(record)


POISON = {
    "not json": "hello",
    "empty": "",
    "truncated json": '{"Records": [',
    "json array": "[]",
    "json string": '"Records"',
    "json null": "null",
    "json number": "42",
    "empty object": "{}",
    "unknown shape": '{"foo": {"bar": 1}}',
    "records not a list": '{"Records": {"s3": {}}}',
    "records empty": '{"Records": []}',
    "record not an object": '{"Records": ["x"]}',
    "record from another service": s3_body({**s3_record(), "eventSource": "aws:sns"}),
    "record without eventName": _without(("eventName",)),
    "record without s3": _without(("s3",)),
    "record without bucket name": _without(("s3", "bucket", "name")),
    "record without bucket": _without(("s3", "bucket")),
    "record without key": _without(("s3", "object", "key")),
    "record with empty key": s3_body(s3_record(key="")),
    "removed record without key": s3_body(
        {
            "eventSource": "aws:s3",
            "eventName": "ObjectRemoved:Delete",
            "s3": {"bucket": {"name": "b-1"}, "object": {}},
        }
    ),
    "key with non-utf8 escape": s3_body(s3_record(key="input/%FF.pdf")),
    "key not a string": s3_body(s3_record(key=7)),
    "size a string": s3_body(s3_record(size="12")),
    "size negative": s3_body(s3_record(size=-1)),
    "size boolean": s3_body(s3_record(size=True)),
    "etag a number": s3_body(s3_record(eTag=12)),
    "sns message not json": json.dumps({"Type": "Notification", "Message": "not json"}),
    "sns message not a string": json.dumps({"Type": "Notification", "Message": {"Records": []}}),
    "sns message of unknown shape": json.dumps({"Type": "Notification", "Message": '{"a": 1}'}),
    "sns subscription confirmation": json.dumps(
        {"Type": "SubscriptionConfirmation", "Message": "You have chosen to subscribe"}
    ),
    "eventbridge without detail": json.dumps({"source": "aws.s3", "detail-type": "Object Created"}),
    "eventbridge without key": json.dumps(
        {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": "b-1"}, "object": {"size": 3}},
        }
    ),
    "eventbridge without bucket name": json.dumps(
        {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {}, "object": {"key": "input/x.pdf"}},
        }
    ),
    "eventbridge from another service": json.dumps(
        {"source": "aws.ec2", "detail-type": "Object Created", "detail": {}}
    ),
    "deeply nested": "[" * 200_000 + "]" * 200_000,
}


@pytest.mark.parametrize("body", list(POISON.values()), ids=list(POISON))
def test_poison_bodies_raise_with_a_reason(body: str) -> None:
    # given a body that is none of the accepted shapes / when parsed / then it is poison
    with pytest.raises(PoisonMessage) as caught:
        parse_body(body)
    # and the reason is one readable sentence
    reason = caught.value.reason
    assert reason and reason.endswith(".") and "\n" not in reason and len(reason) < 200


def test_oversized_body_is_poison_even_if_valid() -> None:
    # given a valid notification padded past the SQS size limit
    record = s3_record(size=1)
    record["padding"] = "x" * MAX_BODY_BYTES
    body = s3_body(record)
    # when parsed / then it is poison, for its size
    with pytest.raises(PoisonMessage, match="larger than"):
        parse_body(body)


def test_body_just_under_the_limit_parses() -> None:
    # given a valid notification padded to exactly the limit
    record = s3_record(size=1)
    record["padding"] = ""
    filler = MAX_BODY_BYTES - len(s3_body(record).encode())
    record["padding"] = "x" * filler
    body = s3_body(record)
    assert len(body.encode()) == MAX_BODY_BYTES
    # when parsed / then it is accepted
    assert len(parse_body(body).refs) == 1


def test_poison_reason_names_the_missing_field() -> None:
    with pytest.raises(PoisonMessage, match="bucket"):
        parse_body(_without(("s3", "bucket", "name")))
    with pytest.raises(PoisonMessage, match="'key'"):
        parse_body(_without(("s3", "object", "key")))


# --- sequencers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("0055AED6DCD90281E5", "0055AED6DCD90281E6"),
        ("0055AED6DCD90281E5", "0055AED6DCD90281F0"),
        ("FF", "0100"),  # longer with leading zeros is larger: string order would say otherwise
        ("9", "10"),
        ("0055AED6DCD90281E5", "0055AED6DCD90281E50"),  # one more digit
        ("0062e99a88dc407460", "0062E99A88DC40746A"),  # case does not matter
    ],
)
def test_sequencer_key_orders_after_left_padding(older: str, newer: str) -> None:
    # given two sequencers of one key / when compared / then the later one is larger
    older_key, newer_key = sequencer_key(older), sequencer_key(newer)
    assert older_key is not None and newer_key is not None
    assert older_key < newer_key
    # and it is exactly the order of zero-padded strings compared character by character
    width = max(len(older), len(newer))
    assert older.upper().zfill(width) < newer.upper().zfill(width)


def test_sequencer_key_equal_after_padding() -> None:
    assert sequencer_key("00ABC") == sequencer_key("ABC")


@pytest.mark.parametrize("value", [None, "", "not-hex"])
def test_sequencer_key_of_missing_or_bad_sequencer_is_none(value: str | None) -> None:
    assert sequencer_key(value) is None
