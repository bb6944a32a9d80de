"""Hostile inputs through the real worker: broken, lying and oversized files, hostile keys.

Each one must end in a clear final state (a correct result where the file is readable,
otherwise FAILED with its category and a sentence a person understands) within a bounded
time, the same worker must go on to convert the next document, and nothing may be written
outside the worker's temporary folder (locally) or outside the output prefix (in S3).

The files are made here: truncated PDFs, PDFs whose page tree lies, images whose headers
declare gigapixels, a cut JPEG, random bytes and HTML named ``.pdf``. A multi-gigabyte object
is simulated by its size as the HEAD reports it (a botocore hook), not by uploading it.
"""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from handler.aws import Clients
from handler.settings import Settings
from handler.storage.keys import LONGEST_OUTPUT_NAME, MAX_KEY_BYTES
from handler.worker.build import status_store
from tests.conftest import drain, read_outputs
from tests.hostile_files import (
    jpeg_cut_short,
    pdf_claiming_pages,
    png_declaring,
    random_bytes,
    text_pdf,
    tiff_declaring,
)

pytestmark = pytest.mark.integration

# Generous: every case here ends in well under a second on this machine (2 cores, shared);
# a reader that tried to load ten million pages or decode ten gigapixels would not.
PER_DOCUMENT_BOUND_S = 30.0
GIB = 1024**3
OUTPUT_NAMES = {"document.md", "elements.json", "manifest.json", "pages/0001.md", "pages/0001.json"}


SOURCE_PAGES = 8
SOURCE = text_pdf(SOURCE_PAGES, "Truncated")


def _cut(fraction: float) -> bytes:
    return SOURCE[: int(len(SOURCE) * fraction)]


# -- cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile file and the final state it must reach."""

    name: str
    data: bytes
    status: str
    category: str | None = None
    says: tuple[str, ...] = ()  # phrases the error message must contain
    pages_failed: tuple[int, ...] = ()  # for PARTIAL: the pages marked failed


TRUNCATED_PAGE = "its content is missing (the file may be truncated)"

CASES = [
    # Truncated PDFs. The generated source keeps each page's objects together, the object
    # table at the end (85% of the file): a cut loses the pages after it, or only the table.
    Case("header-only.pdf", SOURCE[:9], "FAILED", "corrupt", ("PDF is damaged",)),
    Case("cut-at-10-percent.pdf", _cut(0.10), "FAILED", "corrupt", ("PDF is damaged",)),
    Case("cut-at-50-percent.pdf", _cut(0.50), "PARTIAL", pages_failed=(5, 6, 7, 8)),
    Case("cut-at-90-percent.pdf", _cut(0.90), "SUCCEEDED"),
    # Page trees that lie. MuPDF refuses a count larger than the file's object table, so ten
    # million pages is "damaged"; a count that fits the table is over the page limit. Neither
    # loads a page: each ends in milliseconds.
    Case(
        "claims-10-million-pages.pdf",
        pdf_claiming_pages(10_000_000, table_entries=8),
        "FAILED",
        "corrupt",
        ("PDF is damaged",),
    ),
    Case(
        "claims-5000-pages.pdf",
        pdf_claiming_pages(5000, table_entries=6000),
        "FAILED",
        "too_large",
        ("5000 pages", "limit is 2000 pages"),
    ),
    # Decompression bombs: sizes come from the headers; nothing is decoded.
    Case(
        "bomb-100000x100000.png",
        png_declaring(100_000, 100_000),
        "FAILED",
        "too_large",
        ("decompression bomb",),
    ),
    Case(
        "over-the-pixel-limit.png",
        png_declaring(10_000, 9_000),
        "FAILED",
        "too_large",
        ("10000 x 9000 pixels", "90.0 megapixels", "limit is 80.0 megapixels"),
    ),
    Case(
        "bomb-100000x100000.tif",
        tiff_declaring(100_000, 100_000),
        "FAILED",
        "too_large",
        ("decompression bomb",),
    ),
    Case(
        "cut-short.jpg",
        jpeg_cut_short(),
        "FAILED",
        "corrupt",
        ("1 of 1 pages could not be converted", "damaged or truncated"),
    ),
    # Not documents at all, whatever their names say; and nothing.
    Case("random-bytes.pdf", random_bytes(), "FAILED", "unsupported", ("not a PDF",)),
    Case(
        "web-page.pdf",
        b"<!DOCTYPE html>\n<html><body><h1>Quarterly report</h1></body></html>\n",
        "FAILED",
        "unsupported",
        ("not a PDF",),
    ),
    Case(
        "notes.pdf", b"Just some notes, not a PDF.\n" * 40, "FAILED", "unsupported", ("not a PDF",)
    ),
    Case("zero-bytes.pdf", b"", "FAILED", "corrupt", ("empty (0 bytes)",)),
]


# -- watching the worker ---------------------------------------------------------------------


WRITE_OPERATIONS = frozenset(
    {"PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload"}
)


@dataclass
class S3Calls:
    """What the worker asked of S3, in order (recorded by botocore hooks on its client)."""

    writes: list[tuple[str, str]] = field(default_factory=list)  # (operation, key)
    heads: list[str] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    temp_seen: set[str] = field(default_factory=set)  # names in the temp folder while reading


def _watch(s3: Any, temp: Path) -> S3Calls:
    calls = S3Calls()

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name == "DeleteObjects":
            calls.writes.extend((name, o["Key"]) for o in params["Delete"]["Objects"])
        elif name in WRITE_OPERATIONS:
            calls.writes.append((name, params["Key"]))
        elif name == "HeadObject":
            calls.heads.append(params["Key"])
        elif name == "GetObject":
            calls.gets.append(params["Key"])
            calls.temp_seen.update(os.listdir(temp))

    s3.meta.events.register("before-parameter-build.s3", record)
    return calls


@dataclass(frozen=True)
class Confined:
    temp: Path  # the worker's temporary folder (TMPDIR)
    cwd: Path  # its current directory


@pytest.fixture
def confined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Confined]:
    """Run the worker with TMPDIR and the current directory at two empty folders of its own."""
    temp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    temp.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile reads TMPDIR again
    monkeypatch.chdir(cwd)
    yield Confined(temp, cwd)


def _assert_confined(confined: Confined, calls: S3Calls, settings: Settings) -> None:
    """Nothing left in the temporary folder, nothing in the current one, and every S3 write
    under the output prefix; and the worker did use the temporary folder."""
    assert Path.cwd() == confined.cwd
    assert list(confined.cwd.iterdir()) == []
    assert list(confined.temp.iterdir()) == []
    assert any(name.startswith("pagedrop-") for name in calls.temp_seen), calls.temp_seen
    outside = [(op, key) for op, key in calls.writes if not key.startswith(settings.output_prefix)]
    assert outside == []


# -- helpers ---------------------------------------------------------------------------------


def _put(clients: Clients, settings: Settings, relative: str, data: bytes) -> str:
    key = settings.input_prefix + relative
    clients.s3.put_object(Bucket=settings.bucket, Key=key, Body=data)
    return key


def _item(clients: Clients, settings: Settings, key: str) -> dict[str, Any]:
    item = status_store(settings, clients).get(f"{settings.bucket}/{key}")
    assert item is not None, f"no status item for {key!r}"
    return item.raw


def _seconds(item: dict[str, Any]) -> float:
    started = datetime.fromisoformat(item["started_at"])
    return (datetime.fromisoformat(item["finished_at"]) - started).total_seconds()


def _assert_queue_empty(clients: Clients, settings: Settings) -> None:
    attrs = clients.sqs.get_queue_attributes(QueueUrl=settings.queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def _assert_good(clients: Clients, settings: Settings, key: str, label: str) -> None:
    item = _item(clients, settings, key)
    assert item["status"] == "SUCCEEDED", (key, item.get("error"))
    assert f"{label} page 1." in read_outputs(clients, settings, key)["document.md"].decode()


# -- tests -----------------------------------------------------------------------------------


def test_hostile_files_end_in_a_clear_final_state_and_the_worker_goes_on(
    stack_settings: Settings, clients: Clients, confined: Confined
) -> None:
    # Given every hostile file, each followed by a good document, in one queue
    order: list[tuple[str, Case | None]] = []
    for n, case in enumerate(CASES):
        order.append((_put(clients, stack_settings, f"hostile/{case.name}", case.data), case))
        good = text_pdf(1, f"Good {n}")
        order.append((_put(clients, stack_settings, f"good/{n}.pdf", good), None))
    calls = _watch(clients.s3, confined.temp)
    # When one worker drains the queue
    stats = drain(stack_settings, clients)
    # Then each hostile file reached its final state, quickly, with a sentence that says why
    for key, case in order:
        if case is None:
            continue
        item = _item(clients, stack_settings, key)
        assert item["status"] == case.status, (case.name, item.get("error"))
        assert _seconds(item) < PER_DOCUMENT_BOUND_S, case.name
        outputs = read_outputs(clients, stack_settings, key)
        if case.status == "FAILED":
            error = item["error"]
            assert error["category"] == case.category, (case.name, error)
            assert error["message"].endswith("."), error["message"]
            for phrase in case.says:
                assert phrase in error["message"], (case.name, error["message"])
            assert "manifest.json" not in outputs, case.name
            continue
        manifest = json.loads(outputs["manifest.json"])
        failed = tuple(p["page"] for p in manifest["pages"] if p["status"] == "failed")
        assert failed == case.pages_failed, case.name
        markdown = outputs["document.md"].decode()
        for number in range(1, SOURCE_PAGES + 1):
            # A page is either converted with its text or marked as lost; never silently blank
            if number in failed:
                assert f"Page {number} of the PDF is damaged: {TRUNCATED_PAGE}" in markdown
            else:
                assert f"Truncated page {number}." in markdown, (case.name, number)
    # ... and after each of them the same worker converted the next, good, document
    for n, (key, case) in enumerate(order):
        if case is None:
            _assert_good(clients, stack_settings, key, f"Good {n // 2}")
    processed = [key for key in calls.heads if key in dict(order)]
    assert processed == [key for key, _ in order]  # one HEAD each, in upload order
    assert stats.outcomes.get("error", 0) == 0  # type: ignore[attr-defined]
    _assert_queue_empty(clients, stack_settings)
    _assert_confined(confined, calls, stack_settings)


def test_a_multi_gigabyte_object_fails_too_large_without_being_downloaded(
    stack_settings: Settings, clients: Clients, confined: Confined
) -> None:
    # Given an object whose HEAD reports 5 GiB (a hook on the worker's S3 client rewrites the
    # size of that one key: the bytes are small), and a good document after it
    huge = _put(clients, stack_settings, "huge/scan.pdf", text_pdf(1, "Huge"))
    good = _put(clients, stack_settings, "after/good.pdf", text_pdf(1, "After"))

    def remember_key(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["test-key"] = params["Key"]

    def report_five_gib(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("test-key") == huge:
            parsed["ContentLength"] = 5 * GIB

    clients.s3.meta.events.register("before-parameter-build.s3.HeadObject", remember_key)
    clients.s3.meta.events.register("after-call.s3.HeadObject", report_five_gib)
    calls = _watch(clients.s3, confined.temp)
    # When a worker drains the queue
    drain(stack_settings, clients)
    # Then the huge one is FAILED/too_large with its size in the sentence, and not one GET
    # was made for it; the next document is converted
    item = _item(clients, stack_settings, huge)
    assert item["status"] == "FAILED"
    assert item["error"]["category"] == "too_large"
    assert item["error"]["message"] == "The file is 5.0 GB; the limit is 512.0 MB."
    assert huge in calls.heads
    assert huge not in calls.gets
    assert int(item["size"]) == 5 * GIB
    _assert_good(clients, stack_settings, good, "After")
    _assert_queue_empty(clients, stack_settings)
    _assert_confined(confined, calls, stack_settings)


# -- hostile keys ----------------------------------------------------------------------------

# The relative part of each key (after the input prefix). S3 keys are literal strings: "..",
# "." and "//" are not path steps, and NFC and NFD spellings of one word are two keys. moto
# (through werkzeug's routing) cannot store a key with a newline, so that one is not here;
# real S3 accepts any UTF-8, and botocore asks for URL-encoded listings so that characters
# XML 1.0 cannot carry (0x01, 0x7f, ...) come back intact.
HOSTILE_KEYS = {
    "dot-dot": "../../etc/passwd.pdf",
    "dot-dot-inside": "a/../../b.pdf",
    "dot": "./c.pdf",
    "double-slash": "d//e.pdf",
    "leading-slash": "/abs.pdf",
    "backslashes": "..\\..\\windows.pdf",
    "percent-escapes": "%2e%2e/%2F%00.pdf",
    "tab": "tab\there.pdf",
    "carriage-return": "cr\rhere.pdf",
    "control-01": "ctl\x01here.pdf",
    "nul": "nul\x00here.pdf",
    "delete": "del\x7fhere.pdf",
    "nfc": unicodedata.normalize("NFC", "café/résumé.pdf"),
    "nfd": unicodedata.normalize("NFD", "café/résumé.pdf"),
    "emoji": "📄 report 😀/👩‍👩‍👧.pdf",
    "rtl": "עברית/تقرير.pdf",
    "rtl-override": "invoice\u202efdp.exe.pdf",
    "zero-width": "zero\u200bwidth\ufeff.pdf",
    "plus-and-spaces": "a+b  c .pdf",
}


def _longest_relative(settings: Settings) -> int:
    """The longest relative key (ASCII) whose outputs' keys still fit S3's 1,024 bytes."""
    longest_output = len(settings.output_prefix) + len("/") + len(LONGEST_OUTPUT_NAME)
    return MAX_KEY_BYTES - longest_output


def test_hostile_keys_end_in_a_final_state_with_outputs_at_their_literal_path(
    stack_settings: Settings, clients: Clients, confined: Confined
) -> None:
    # Given a good document under each hostile key, one whose outputs just fit S3's key
    # length, one a byte too long for its outputs, one at S3's limit, and a "folder" object
    fits = "long/" + "f" * (_longest_relative(stack_settings) - len("long/") - 4) + ".pdf"
    too_long = fits[:-4] + "g.pdf"
    at_limit = "limit/" + "h" * (MAX_KEY_BYTES - len(stack_settings.input_prefix) - 10) + ".pdf"
    assert len((stack_settings.input_prefix + at_limit).encode()) == MAX_KEY_BYTES
    good = {name: relative for name, relative in HOSTILE_KEYS.items()}
    good["fits"] = fits
    keys = {
        name: _put(clients, stack_settings, relative, text_pdf(1, f"Key {name}"))
        for name, relative in good.items()
    }
    failing = {
        name: _put(clients, stack_settings, relative, text_pdf(1, name))
        for name, relative in {"too-long": too_long, "at-limit": at_limit}.items()
    }
    folder = _put(clients, stack_settings, "folder/", b"")
    calls = _watch(clients.s3, confined.temp)
    # When one worker drains the queue
    stats = drain(stack_settings, clients)
    # Then every document under a hostile key is converted, its outputs exactly under the
    # output prefix plus the key's remainder, and its manifest names the key as it is
    expected_keys = set(keys.values()) | set(failing.values()) | {folder}
    for name, key in keys.items():
        item = _item(clients, stack_settings, key)
        assert item["status"] == "SUCCEEDED", (name, item.get("error"))
        prefix = stack_settings.output_prefix + key[len(stack_settings.input_prefix) :] + "/"
        assert item["output_prefix"] == prefix
        outputs = read_outputs(clients, stack_settings, key)
        assert set(outputs) == OUTPUT_NAMES, name
        manifest = json.loads(outputs["manifest.json"])
        assert manifest["source"]["key"] == key, name
        assert f"Key {name} page 1." in outputs["document.md"].decode(), name
        elements = json.loads(outputs["elements.json"])
        assert {e["metadata"]["filename"] for e in elements} == {key.rsplit("/", 1)[-1]}
        expected_keys |= {prefix + output for output in OUTPUT_NAMES}
    # ... the NFC and NFD spellings are two documents with two sets of outputs
    assert keys["nfc"] != keys["nfd"]
    # ... a key too long for its outputs is FAILED/unsupported with the bytes to cut
    for name, key in failing.items():
        item = _item(clients, stack_settings, key)
        assert item["status"] == "FAILED", name
        assert item["error"]["category"] == "unsupported"
        message = item["error"]["message"]
        assert message.startswith("The object's key is too long") and message.endswith(".")
    assert (
        "1 byte shorter." in _item(clients, stack_settings, failing["too-long"])["error"]["message"]
    )
    # ... a folder marker is not a document: no status, nothing written
    assert status_store(stack_settings, clients).get(f"{stack_settings.bucket}/{folder}") is None
    assert stats.outcomes.get("ignored") == 1  # type: ignore[attr-defined]
    # ... and nothing else is in the bucket, nothing was written anywhere else
    listed = clients.s3.get_paginator("list_objects_v2").paginate(Bucket=stack_settings.bucket)
    assert {o["Key"] for page in listed for o in page.get("Contents", [])} == expected_keys
    _assert_queue_empty(clients, stack_settings)
    _assert_confined(confined, calls, stack_settings)


def test_a_shorter_new_version_under_a_key_with_a_control_character_replaces_the_old(
    stack_settings: Settings, clients: Clients
) -> None:
    # Given a 3-page document under a key with a control character, converted, then
    # overwritten by a 1-page version (its stale pages 2 and 3 must be deleted)
    relative = "ctl\x01doc.pdf"
    key = _put(clients, stack_settings, relative, text_pdf(3, "Old"))
    drain(stack_settings, clients)
    assert _item(clients, stack_settings, key)["status"] == "SUCCEEDED"
    _put(clients, stack_settings, relative, text_pdf(1, "New"))
    # When the new version is converted
    drain(stack_settings, clients)
    # Then it succeeds and only its own outputs are left
    item = _item(clients, stack_settings, key)
    assert item["status"] == "SUCCEEDED", item
    assert set(read_outputs(clients, stack_settings, key)) == OUTPUT_NAMES
