"""The status function against the embedded endpoint: real conversions, real presigned links.

The function is called through its Lambda entry point with settings from the environment,
as Lambda runs it; every link is fetched over HTTP and compared with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from handler.aws import Clients
from handler.lambdas import status
from handler.settings import Settings
from tests.conftest import DATA, LOCAL_AWS_ENV, SAMPLES, drain, upload

pytestmark = pytest.mark.integration

PDF = SAMPLES / "pysf__multicolumn.pdf"
OTHER_PDF = DATA / "born_digital" / "pysf__habibi.pdf"
ENCRYPTED = DATA / "hostile" / "pypdf__r6-both-passwords.pdf"

Call = Callable[..., tuple[int, dict[str, Any]]]


def _event(query: dict[str, str], method: str = "GET") -> dict[str, Any]:
    """A Function URL request (payload format 2.0) as Lambda delivers it."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": urlencode(query),
        "headers": {"host": "abc123.lambda-url.us-east-1.on.aws"},
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.lambda-url.us-east-1.on.aws",
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1"},
            "requestId": "c7ed2e32-0a5c-4e43-9e05-6b2f0e5b1d8a",
            "routeKey": "$default",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


@pytest.fixture
def call(stack_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Call]:
    """The function with the stack's settings in its environment (a fresh cold start)."""
    env = {
        "PAGEDROP_BUCKET": stack_settings.bucket,
        "PAGEDROP_INPUT_PREFIX": stack_settings.input_prefix,
        "PAGEDROP_OUTPUT_PREFIX": stack_settings.output_prefix,
        "PAGEDROP_TABLE_NAME": stack_settings.table_name,
        "PAGEDROP_ENDPOINT_URL": str(stack_settings.endpoint_url),
        **LOCAL_AWS_ENV,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status._service.cache_clear()

    def invoke(method: str = "GET", **query: str) -> tuple[int, dict[str, Any]]:
        answer = status.handler(_event(query, method), None)
        return answer["statusCode"], json.loads(answer["body"])

    yield invoke
    status._service.cache_clear()


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return bytes(reply.read())


def test_a_converted_document_has_its_status_and_working_links(
    call: Call, stack_settings: Settings, clients: Clients
) -> None:
    # Given a converted PDF
    key = upload(clients, stack_settings, PDF, "r/paper.pdf")
    drain(stack_settings, clients)
    # When its status is asked for by key
    code, body = call(key=key)
    # Then it is SUCCEEDED, with the item's fields as the CLI shows them
    assert code == 200, body
    assert body["status"] == "SUCCEEDED"
    assert (body["pages_done"], body["pages_total"], body["engines"]) == (3, 3, ["text-layer"])
    assert body["error"] is None and body["duration_s"] >= 0
    assert body["timings"]["total_s"] > 0
    assert "lease_token" not in body and "rev" not in body
    # And a link to every output the manifest lists, each returning the listed bytes
    manifest = json.loads(_fetch(body["manifest"]["url"]))
    assert manifest["source"]["key"] == key
    listed = {entry["key"]: entry["sha256"] for entry in manifest["outputs"]}
    assert {link["key"] for link in body["outputs"]} == set(listed)
    assert body["outputs_total"] == len(listed) and body["next_offset"] is None
    for link in body["outputs"]:
        data = _fetch(link["url"])
        assert hashlib.sha256(data).hexdigest() == listed[link["key"]] == link["sha256"]
        assert link["version_id"]  # the test stack's bucket is versioned: links are pinned
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in link["url"]
    # And the same document by pk answers the same
    code, by_pk = call(pk=f"{stack_settings.bucket}/{key}")
    assert code == 200 and by_pk["status"] == "SUCCEEDED"


def test_links_keep_pointing_at_the_version_the_item_names(
    call: Call, stack_settings: Settings, clients: Clients
) -> None:
    # Given links to a converted document's outputs
    key = upload(clients, stack_settings, PDF, "v.pdf")
    drain(stack_settings, clients)
    _, first = call(key=key)
    first_md = next(link for link in first["outputs"] if link["name"] == "document.md")
    first_bytes = _fetch(first_md["url"])
    # When a new version is uploaded and converted
    upload(clients, stack_settings, OTHER_PDF, "v.pdf")
    drain(stack_settings, clients)
    _, second = call(key=key)
    # Then the new answer links the new outputs, and the old link still returns the old ones
    assert second["status"] == "SUCCEEDED" and second["version_id"] != first["version_id"]
    second_md = next(link for link in second["outputs"] if link["name"] == "document.md")
    assert _fetch(second_md["url"]) != first_bytes
    assert _fetch(first_md["url"]) == first_bytes
    # And a page the shorter new version does not have is not linked
    assert "pages/0003.md" not in {link["name"] for link in second["outputs"]}


def test_a_status_item_names_an_older_version_than_the_current_outputs(
    call: Call, stack_settings: Settings, clients: Clients
) -> None:
    # Given a converted document whose item is put back to name its first version, after a
    # second version's outputs replaced the first one's (the race the pinning is for)
    key = upload(clients, stack_settings, PDF, "race.pdf")
    drain(stack_settings, clients)
    pk = {"pk": {"S": f"{stack_settings.bucket}/{key}"}}
    first_item = clients.dynamodb.get_item(TableName=stack_settings.table_name, Key=pk)["Item"]
    upload(clients, stack_settings, OTHER_PDF, "race.pdf")
    drain(stack_settings, clients)
    clients.dynamodb.put_item(TableName=stack_settings.table_name, Item=first_item)
    # When its status is asked for
    code, body = call(key=key)
    # Then the links are to the first version's outputs
    assert code == 200, body
    manifest = json.loads(_fetch(body["manifest"]["url"]))
    assert manifest["source"]["version_id"] == first_item["version_id"]["S"]
    assert body["outputs_total"] == len(manifest["outputs"])
    assert "pages/0003.md" in {link["name"] for link in body["outputs"]}
    for link in body["outputs"]:
        assert hashlib.sha256(_fetch(link["url"])).hexdigest() == link["sha256"]


def test_outputs_that_are_gone_answer_409(
    call: Call, stack_settings: Settings, clients: Clients
) -> None:
    key = upload(clients, stack_settings, PDF, "gone.pdf")
    drain(stack_settings, clients)
    manifest_key = f"{stack_settings.output_prefix}gone.pdf/manifest.json"
    versions = clients.s3.list_object_versions(Bucket=stack_settings.bucket, Prefix=manifest_key)
    for version in versions["Versions"]:
        clients.s3.delete_object(
            Bucket=stack_settings.bucket, Key=manifest_key, VersionId=version["VersionId"]
        )
    code, body = call(key=key)
    assert code == 409 and "manifest" in body["message"]


def test_a_failed_document_has_its_error_and_no_links(
    call: Call, stack_settings: Settings, clients: Clients
) -> None:
    key = upload(clients, stack_settings, ENCRYPTED, "locked.pdf")
    drain(stack_settings, clients)
    code, body = call(key=key)
    assert code == 200, body
    assert body["status"] == "FAILED" and body["error"]["category"] == "encrypted"
    assert body["error"]["message"] and "outputs" not in body


def test_an_uploaded_document_no_worker_took_yet_is_queued(
    call: Call, stack_settings: Settings, clients: Clients
) -> None:
    key = upload(clients, stack_settings, PDF, "waiting.pdf")
    code, body = call(key=key)
    assert (code, body["status"]) == (200, "QUEUED")


def test_unknown_and_bad_requests(call: Call, stack_settings: Settings) -> None:
    assert call(key=f"{stack_settings.input_prefix}nobody/uploaded.pdf")[0] == 404
    assert call(key=f"{stack_settings.input_prefix}waiting.pdf.bak")[0] == 404
    assert call(key="elsewhere/a.pdf")[0] == 400
    assert call(key=f"{stack_settings.output_prefix}a.pdf/manifest.json")[0] == 400
    assert call(pk="another-bucket/input/a.pdf")[0] == 400
    assert call()[0] == 400
    assert call("POST", key=f"{stack_settings.input_prefix}a.pdf")[0] == 405


def test_an_internal_failure_is_500_without_details(
    call: Call, stack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a function whose table does not exist
    monkeypatch.setenv("PAGEDROP_TABLE_NAME", "no-such-table")
    status._service.cache_clear()
    # When asked for a document
    code, body = call(key=f"{stack_settings.input_prefix}a.pdf")
    # Then it answers 500 with no AWS error text in it
    assert code == 500
    assert body == {"message": "internal error", "request_id": ""}
