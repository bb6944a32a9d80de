"""A worker killed outright (SIGKILL) mid-document: the next worker resumes, nothing doubles.

A real ``python -m handler worker`` process converts a multi-page scan with short timings
(visibility and lease 10 s, heartbeat 2 s) and is killed with SIGKILL, either after some
pages are checkpointed or before any page is written. The message reappears once its
visibility runs out, a second worker (in this process) finishes the document, and its
outputs are compared with those of an uninterrupted run of the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from handler.aws import Clients
from handler.documents.pages import PageInput
from handler.engines import registry
from handler.engines.base import PageResult
from handler.settings import Settings
from handler.worker.build import build_worker, status_store
from tests.conftest import upload
from tests.integration.processes import (
    SHORT_TIMINGS,
    keys_under,
    log_tail,
    queue_counts,
    scanned_pdf,
    short_timings,
    start_worker,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAGES = 5
# Generous bounds (two busy cores): the first pages, including the process start and the OCR
# model's first load, and the message's return after the kill (visibility 10 s).
FIRST_PAGES_BOUND_S = 90
REAPPEAR_BOUND_S = 40


class RecordingEngine:
    """The real OCR engine, noting every page it is asked to convert."""

    def __init__(self, inner: Any, seen: list[int]) -> None:
        self.name = inner.name
        self._inner = inner
        self._seen = seen

    def convert(self, page: PageInput) -> PageResult:
        self._seen.append(page.number)
        result: PageResult = self._inner.convert(page)
        return result


def _versions(
    clients: Clients, settings: Settings, prefix: str
) -> dict[str, list[tuple[str, str]]]:
    """Every stored version (id, last modified) of every key under ``prefix``."""
    listing = clients.s3.list_object_versions(Bucket=settings.bucket, Prefix=prefix)
    found: dict[str, list[tuple[str, str]]] = {}
    for version in listing.get("Versions", []):
        found.setdefault(version["Key"], []).append(
            (version["VersionId"], version["LastModified"].isoformat())
        )
    return found


def _get(clients: Clients, settings: Settings, key: str) -> bytes:
    body: bytes = clients.s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
    return body


def _by_position(elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Elements with ``element_id``/``parent_id`` replaced by their index in the document
    (the ids hash the source version, which differs between two uploads of the same bytes)."""
    index = {e["element_id"]: i for i, e in enumerate(elements)}
    out = []
    for element in elements:
        copy = json.loads(json.dumps(element))
        copy["element_id"] = index[element["element_id"]]
        if "parent_id" in copy["metadata"]:
            copy["metadata"]["parent_id"] = index[copy["metadata"]["parent_id"]]
        out.append(copy)
    return out


def _checkpointed(clients: Clients, settings: Settings, pages_prefix: str) -> list[int]:
    return sorted(
        int(k.rsplit("/", 1)[-1].removesuffix(".json"))
        for k in keys_under(clients, settings, pages_prefix)
        if k.endswith(".json")
    )


@pytest.mark.parametrize("kill_after_pages", [2, 0], ids=["after-pages", "before-any-page"])
def test_a_killed_worker_is_resumed_from_its_checkpoints(
    stack_settings: Settings,
    clients: Clients,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kill_after_pages: int,
) -> None:
    # Given a worker process (short timings) converting a 5-page scan
    settings = short_timings(stack_settings)
    store = status_store(settings, clients)
    clients.sqs.purge_queue(QueueUrl=settings.queue_url)  # the stack's s3:TestEvent
    pdf = scanned_pdf(tmp_path / "scan.pdf", PAGES)
    key = upload(clients, settings, pdf, "crash/scan.pdf")
    pk = f"{settings.bucket}/{key}"
    out = f"{settings.output_prefix}crash/scan.pdf/"
    log = tmp_path / "worker.log"
    process = start_worker(settings, log, SHORT_TIMINGS)

    def ready_to_kill() -> bool:
        item = store.get(pk)
        if item is None or item.raw["status"] != "PROCESSING":
            return False
        done = _checkpointed(clients, settings, out + "pages/")
        return len(done) >= kill_after_pages if kill_after_pages else not done

    try:
        wait_for(ready_to_kill, FIRST_PAGES_BOUND_S, "the worker to start the document", 0.05)
        # When it is killed outright: no shutdown code runs, nothing is handed back
        process.kill()
        process.wait(timeout=10)
        killed_at = time.monotonic()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    checkpointed = _checkpointed(clients, settings, out + "pages/")
    before = _versions(clients, settings, out)
    if kill_after_pages:
        assert kill_after_pages <= len(checkpointed) < PAGES, log_tail(log)
    else:
        assert checkpointed == [], log_tail(log)
    item = store.get(pk)
    assert item is not None and item.raw["status"] == "PROCESSING" and item.attempt == 1

    # Then the message reappears once its visibility runs out (not before the lease ends)
    wait_for(lambda: queue_counts(clients, settings) == (1, 0), REAPPEAR_BOUND_S, "the message")
    reappeared_s = time.monotonic() - killed_at
    wait_for(lambda: time.time() > item.lease_until, REAPPEAR_BOUND_S, "the lease to run out")

    # And a second worker finishes it, converting only the pages not checkpointed
    converted: list[int] = []
    real_factory = registry.FACTORIES["rapidocr"]
    monkeypatch.setitem(
        registry.FACTORIES, "rapidocr", lambda s: RecordingEngine(real_factory(s), converted)
    )
    stats = build_worker(settings, clients).run(max_idle_polls=1)
    assert stats.outcomes == {"SUCCEEDED": 1}
    assert sorted(converted) == [n for n in range(1, PAGES + 1) if n not in checkpointed]
    item = store.get(pk)
    assert item is not None and item.raw["status"] == "SUCCEEDED"
    assert item.attempt == 2 and int(item.raw["pages_done"]) == PAGES
    assert queue_counts(clients, settings) == (0, 0)
    assert queue_counts(clients, settings, settings.dlq_url) == (0, 0)

    # The checkpointed pages were not written again: each still has its one version
    after = _versions(clients, settings, out)
    for number in checkpointed:
        for suffix in ("md", "json"):
            page = f"{out}pages/{number:04d}.{suffix}"
            assert after[page] == before[page] and len(after[page]) == 1, page
    manifest = json.loads(_get(clients, settings, out + "manifest.json"))
    assert [p["page"] for p in manifest["pages"] if p.get("resumed")] == checkpointed
    assert manifest["attempt"] == 2 and manifest["status"] == "SUCCEEDED"
    assert len(after[out + "manifest.json"]) == 1  # one set of outputs, written once
    head = clients.s3.head_object(Bucket=settings.bucket, Key=key)
    assert manifest["source"]["version_id"] == head["VersionId"]
    for output in manifest["outputs"]:
        data = _get(clients, settings, output["key"])
        assert len(data) == output["bytes"], output["key"]
        assert hashlib.sha256(data).hexdigest() == output["sha256"], output["key"]

    # And its outputs equal those of an uninterrupted run of the same bytes
    upload(clients, settings, pdf, "reference/scan.pdf")
    reference_stats = build_worker(settings, clients).run(max_idle_polls=1)
    assert reference_stats.outcomes == {"SUCCEEDED": 1}
    ref_out = f"{settings.output_prefix}reference/scan.pdf/"
    assert _get(clients, settings, out + "document.md") == _get(
        clients, settings, ref_out + "document.md"
    )
    elements = json.loads(_get(clients, settings, out + "elements.json"))
    reference = json.loads(_get(clients, settings, ref_out + "elements.json"))
    assert elements and _by_position(elements) == _by_position(reference)
    # The ids are the resumed document's own: those of its page checkpoints, all of which
    # name this source version, and none of the other upload's
    page_ids = []
    for number in range(1, PAGES + 1):
        json_key = f"{out}pages/{number:04d}.json"
        response = clients.s3.get_object(Bucket=settings.bucket, Key=json_key)
        assert response["Metadata"]["pagedrop-source-version"] == head["VersionId"]
        page_ids += [e["element_id"] for e in json.loads(response["Body"].read())]
    ids = [e["element_id"] for e in elements]
    assert ids == page_ids and len(set(ids)) == len(ids)
    assert not set(ids) & {e["element_id"] for e in reference}
    print(f"message visible again {reappeared_s:.1f} s after the kill; pages {checkpointed}")
