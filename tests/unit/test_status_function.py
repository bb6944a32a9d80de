"""The status function without AWS: request parsing, answers, the item's public view and
which stored version of each output a link pins."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from handler.lambdas import status
from handler.lambdas.status import StatusRequest, StatusService, answer
from handler.outputs import links
from handler.outputs.links import OutputsUnavailable, published_outputs
from handler.status import report
from handler.status.model import StatusItem
from handler.status.report import Place
from handler.status.summary import item_summary

BUCKET = "docs"
PLACE = Place(BUCKET, "input/", "output/")
T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
PREFIX = "output/a.pdf/"


def _event(raw_query: str | None, method: str = "GET", params: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "rawPath": "/",
        "queryStringParameters": params,
        "requestContext": {"http": {"method": method, "path": "/"}},
    }
    if raw_query is not None:
        event["rawQueryString"] = raw_query
    return event


@dataclass
class FakeStore:
    items: dict[str, dict[str, Any]]

    def get(self, pk: str) -> StatusItem | None:
        raw = self.items.get(pk)
        return StatusItem(raw) if raw else None


class FakeS3:
    """Versions per key, newest first: (version id, last modified, bytes)."""

    def __init__(self, versions: dict[str, list[tuple[str, datetime, bytes]]]) -> None:
        self.versions = versions

    def get_paginator(self, name: str) -> FakeS3:
        assert name == "list_object_versions"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
        rows = [
            {"Key": key, "VersionId": vid, "LastModified": when, "Size": len(data)}
            for key, history in sorted(self.versions.items())
            if key.startswith(Prefix)
            for vid, when, data in history
        ]
        return [{"Versions": rows}]

    def get_object(self, Bucket: str, Key: str, VersionId: str = "") -> dict[str, Any]:
        data = next(d for v, _, d in self.versions[Key] if v == VersionId)
        return {"Body": io.BytesIO(data)}

    def list_objects_v2(self, Bucket: str, Prefix: str, MaxKeys: int) -> dict[str, Any]:
        keys = sorted(k for k in self.versions if k.startswith(Prefix))[:MaxKeys]
        return {"Contents": [{"Key": k} for k in keys]}

    def generate_presigned_url(self, op: str, Params: dict[str, str], ExpiresIn: int) -> str:
        return f"https://signed/{Params['Key']}?versionId={Params.get('VersionId')}&e={ExpiresIn}"


def _item(status_: str, **extra: Any) -> dict[str, Any]:
    return {
        "pk": f"{BUCKET}/input/a.pdf",
        "bucket": BUCKET,
        "key": "input/a.pdf",
        "status": status_,
        "version_id": "src-v1",
        "etag": "e1",
        "size": Decimal(10),
        "pages_done": Decimal(2),
        "pages_total": Decimal(2),
        "engine": ["text-layer"],
        "attempt": Decimal(1),
        "started_at": "2026-11-01T12:00:00.000000Z",
        "finished_at": "2026-11-01T12:00:02.500000Z",
        "output_prefix": PREFIX,
        "lease_token": "secret",
        "rev": Decimal(3),
        **extra,
    }


def _manifest(source_version: str, outputs: list[tuple[str, bytes]]) -> bytes:
    return json.dumps(
        {
            "source": {"bucket": BUCKET, "key": "input/a.pdf", "version_id": source_version},
            "timings": {"total_s": 2.5},
            "outputs": [{"key": k, "bytes": len(d), "sha256": f"sha-{k}"} for k, d in outputs],
        }
    ).encode()


def _service(store: FakeStore, s3: FakeS3) -> StatusService:
    return StatusService(store, s3, PLACE, link_expiry_s=900)  # type: ignore[arg-type]


def _body(reply: dict[str, Any]) -> Any:
    return json.loads(reply["body"])


# -- the request -------------------------------------------------------------------------


def test_the_raw_query_is_decoded_once() -> None:
    request = StatusRequest.from_event(_event("key=input%2Fx%2Fa+b%2Bc.pdf&offset=5"))
    assert (request.method, request.key, request.offset) == ("GET", "input/x/a b+c.pdf", "5")


def test_without_a_raw_query_the_parameters_are_read() -> None:
    request = StatusRequest.from_event(_event(None, params={"pk": f"{BUCKET}/input/a.pdf"}))
    assert request.document_key(BUCKET) == "input/a.pdf"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "no document"),
        ("key=", "no document"),
        ("key=input/a.pdf&key=input/b.pdf", "give key once"),
        ("key=input/a.pdf&pk=docs/input/a.pdf", "not both"),
        ("pk=other/input/a.pdf", "serves s3://docs"),
        ("key=elsewhere/a.pdf", "not under the input prefix"),
        ("key=input/", "names a folder"),
        ("key=input/a.pdf&offset=-1", "whole number"),
    ],
)
def test_bad_requests_are_400_with_the_reason(query: str, message: str) -> None:
    reply = answer(StatusRequest.from_event(_event(query)), _service(FakeStore({}), FakeS3({})))
    assert reply["statusCode"] == 400
    assert message in _body(reply)["message"]


def test_other_methods_are_405() -> None:
    reply = answer(
        StatusRequest.from_event(_event("key=input/a.pdf", "DELETE")),
        _service(FakeStore({}), FakeS3({})),
    )
    assert (reply["statusCode"], reply["headers"]["allow"]) == (405, "GET")


# -- answers -----------------------------------------------------------------------------


def test_an_unknown_key_is_404_and_an_uploaded_one_queued() -> None:
    s3 = FakeS3({"input/a.pdf.bak": [("v", T0, b"x")], "input/b.pdf": [("v", T0, b"x")]})
    service = _service(FakeStore({}), s3)
    assert answer(StatusRequest("GET", key="input/a.pdf"), service)["statusCode"] == 404
    reply = answer(StatusRequest("GET", key="input/b.pdf"), service)
    assert (reply["statusCode"], _body(reply)["status"]) == (200, "QUEUED")


def test_a_document_in_progress_has_its_status_and_no_links() -> None:
    item = _item("PROCESSING", pages_done=Decimal(1))
    del item["finished_at"]
    store = FakeStore({item["pk"]: item})
    reply = answer(StatusRequest("GET", key="input/a.pdf"), _service(store, FakeS3({})))
    body = _body(reply)
    assert (body["status"], body["pages_done"], body["engines"]) == (
        "PROCESSING",
        1,
        ["text-layer"],
    )
    assert "outputs" not in body and "lease_token" not in body and "rev" not in body


def test_a_finished_document_links_every_output_of_its_version() -> None:
    item = _item("SUCCEEDED")
    outputs = [(PREFIX + "document.md", b"# md"), (PREFIX + "elements.json", b"[]")]
    s3 = FakeS3(
        {
            PREFIX + "manifest.json": [("m1", T0, _manifest("src-v1", outputs))],
            **{key: [("o-" + key[-4:], T0 - timedelta(seconds=1), data)] for key, data in outputs},
        }
    )
    reply = answer(
        StatusRequest("GET", key="input/a.pdf"), _service(FakeStore({item["pk"]: item}), s3)
    )
    body = _body(reply)
    assert reply["statusCode"] == 200 and reply["headers"]["cache-control"] == "no-store"
    assert body["timings"] == {"total_s": 2.5} and body["duration_s"] == 2.5
    assert [(o["name"], o["version_id"], o["bytes"]) for o in body["outputs"]] == [
        ("document.md", "o-t.md", 4),
        ("elements.json", "o-json", 2),
    ]
    assert body["outputs"][0]["url"].endswith("versionId=o-t.md&e=900")
    assert body["manifest"]["version_id"] == "m1" and body["next_offset"] is None
    assert body["links_expire_at"].endswith("Z")


def test_many_outputs_are_linked_a_page_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "LINKS_PER_ANSWER", 2)
    item = _item("PARTIAL")
    outputs = [(f"{PREFIX}pages/000{n}.md", b"p") for n in range(1, 6)]
    s3 = FakeS3(
        {
            PREFIX + "manifest.json": [("m1", T0, _manifest("src-v1", outputs))],
            **{key: [("v", T0, data)] for key, data in outputs},
        }
    )
    service = _service(FakeStore({item["pk"]: item}), s3)
    first = _body(answer(StatusRequest("GET", key="input/a.pdf"), service))
    last = _body(answer(StatusRequest("GET", key="input/a.pdf", offset="4"), service))
    assert (len(first["outputs"]), first["next_offset"], first["outputs_total"]) == (2, 2, 5)
    assert ([o["name"] for o in last["outputs"]], last["next_offset"]) == (["pages/0005.md"], None)


def test_replaced_outputs_are_409() -> None:
    item = _item("SUCCEEDED")
    s3 = FakeS3({PREFIX + "manifest.json": [("m2", T0, _manifest("src-v2", []))]})
    reply = answer(
        StatusRequest("GET", key="input/a.pdf"), _service(FakeStore({item["pk"]: item}), s3)
    )
    assert reply["statusCode"] == 409


def test_an_internal_failure_is_logged_and_answered_without_details(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> StatusService:
        raise RuntimeError("AccessDenied on arn:aws:dynamodb:...:table/secret")

    monkeypatch.setattr(status, "_service", broken)

    @dataclass
    class Context:
        aws_request_id: str = "req-1"

    with caplog.at_level(logging.ERROR, logger="handler.lambdas.status"):
        reply = status.handler(_event("key=input/a.pdf"), Context())
    assert reply["statusCode"] == 500
    assert _body(reply) == {"message": "internal error", "request_id": "req-1"}
    assert "AccessDenied" in caplog.text


def test_the_function_presigns_with_sigv4(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore presigns with SigV2 in us-east-1 unless told otherwise (no KMS, no 7 days)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PAGEDROP_REGION": "us-east-1",
        "PAGEDROP_BUCKET": BUCKET,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PAGEDROP_ENDPOINT_URL", raising=False)
    status._service.cache_clear()
    try:
        service = status._service()
        url = service.s3.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "output/a"}, ExpiresIn=60
        )
    finally:
        status._service.cache_clear()
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert service.link_expiry_s == status.LINK_EXPIRY_DEFAULT_S == 900


# -- the item's view and the pinning rule --------------------------------------------------


def test_the_summary_is_json_and_leaves_bookkeeping_out() -> None:
    raw = _item("FAILED", error={"category": "exhausted", "message": "m"}, size=Decimal(-1))
    del raw["finished_at"]
    summary = item_summary(StatusItem(raw), T0)
    json.dumps(summary)
    assert summary["error"] == {"category": "exhausted", "message": "m"}
    assert summary["duration_s"] is None  # FAILED without a finish of ours
    assert "size" not in summary and "lease_token" not in summary


def test_each_link_pins_the_output_the_manifest_listed() -> None:
    # Given an output rewritten after the manifest, and an older write of another size
    key = PREFIX + "document.md"
    s3 = FakeS3(
        {
            PREFIX + "manifest.json": [("m1", T0, _manifest("src-v1", [(key, b"right")]))],
            key: [
                ("newer", T0 + timedelta(seconds=5), b"newer"),
                ("right", T0, b"right"),
                ("older-other-size", T0 - timedelta(seconds=5), b"old"),
            ],
        }
    )
    out = published_outputs(
        s3, BUCKET, PREFIX, version_id="src-v1", etag=None, expires_s=60, now=T0
    )
    assert [link.version_id for link in out.links] == ["right"]


def test_an_older_manifest_of_the_version_asked_for_is_found() -> None:
    key = PREFIX + "document.md"
    s3 = FakeS3(
        {
            PREFIX + "manifest.json": [
                ("m2", T0, _manifest("src-v2", [(key, b"two")])),
                ("m1", T0 - timedelta(seconds=9), _manifest("src-v1", [(key, b"one!")])),
            ],
            key: [("d2", T0, b"two"), ("d1", T0 - timedelta(seconds=9), b"one!")],
        }
    )
    out = published_outputs(
        s3, BUCKET, PREFIX, version_id="src-v1", etag=None, expires_s=60, now=T0
    )
    assert (out.manifest_link.version_id, out.links[0].version_id) == ("m1", "d1")


def test_a_manifest_entry_outside_the_prefix_is_not_signed() -> None:
    s3 = FakeS3(
        {
            PREFIX + "manifest.json": [
                ("m1", T0, _manifest("src-v1", [("input/secret.pdf", b"x")]))
            ],
        }
    )
    out = published_outputs(
        s3, BUCKET, PREFIX, version_id="src-v1", etag=None, expires_s=60, now=T0
    )
    assert (out.links, out.total) == ([], 0)


def test_a_gone_output_makes_the_outputs_unavailable() -> None:
    key = PREFIX + "document.md"
    s3 = FakeS3({PREFIX + "manifest.json": [("m1", T0, _manifest("src-v1", [(key, b"x")]))]})
    with pytest.raises(OutputsUnavailable):
        published_outputs(s3, BUCKET, PREFIX, version_id="src-v1", etag=None, expires_s=60, now=T0)


@pytest.mark.parametrize("seconds", [0, links.MAX_EXPIRY_S + 1])
def test_link_expiry_is_bounded(seconds: int) -> None:
    with pytest.raises(ValueError, match="link expiry"):
        links.check_expiry(seconds)


def test_a_manifest_matches_by_etag_without_version_ids() -> None:
    assert links.describes({"version_id": None, "etag": '"e1"'}, None, "e1")
    assert not links.describes({"version_id": "v2", "etag": "e1"}, "v1", "e1")
