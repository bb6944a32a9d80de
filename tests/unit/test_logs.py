"""JSON log lines carry the document they belong to, from any module and the heartbeat thread."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from handler import logs
from handler.status.store import Claim
from handler.worker.heartbeat import Heartbeat


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """The root logger configured to write JSON lines into a buffer (restored afterwards)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure("DEBUG", stream=stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_in_a_document_context_carries_its_ids(lines: io.StringIO) -> None:
    # Given lines from two modules inside a document's context, and one outside it
    with logs.document_context("bucket/input/a.pdf", "v1"):
        logging.getLogger("handler.storage.objects").info("downloading")
        logging.getLogger("some.library").debug("a library's line")
    logging.getLogger("handler.worker.loop").info("idle")
    # Then the two inside carry pk, version and the correlation id; the other none
    inside, library, outside = _records(lines)
    for record in (inside, library):
        assert record["pk"] == "bucket/input/a.pdf"
        assert record["version"] == "v1"
        assert record["correlation_id"] == "bucket/input/a.pdf@v1"
    assert library["logger"] == "some.library"
    assert "correlation_id" not in outside


def test_another_thread_carries_the_ids_only_when_it_binds_them(lines: io.StringIO) -> None:
    # Given a context captured in one thread
    with logs.document_context("bucket/k", "v2"):
        captured = logs.current_document()

        def work(bind: bool) -> None:
            with logs.bound(captured if bind else None):
                logging.getLogger("worker.thread").info("bound" if bind else "unbound")

        # When two threads log, one re-binding it
        for bind in (True, False):
            thread = threading.Thread(target=work, args=(bind,))
            thread.start()
            thread.join()
    # Then only the one that bound it carries the ids (context variables do not cross threads)
    bound, unbound = _records(lines)
    assert bound["correlation_id"] == "bucket/k@v2"
    assert "correlation_id" not in unbound


class _Sqs:
    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]]}


class _Status:
    def heartbeat(self, claim: Claim) -> None:
        pass


def test_the_heartbeat_thread_logs_with_the_document_it_extends(lines: io.StringIO) -> None:
    # Given a heartbeat whose claim was set inside the document's context
    heartbeat = Heartbeat(
        _Sqs(),
        "queue-url",
        _Status(),
        interval_s=60,
        visibility_timeout_s=300,  # type: ignore[arg-type]
    )
    with logs.document_context("bucket/k", "v3"):
        heartbeat.set_claim(Claim(pk="bucket/k", token="t", attempt=2, worker="w"))
    # When it beats from its own thread
    thread = threading.Thread(target=heartbeat.beat)
    thread.start()
    thread.join()
    # Then its line carries the document's correlation id
    (record,) = [r for r in _records(lines) if r["message"] == "lease extended"]
    assert record["correlation_id"] == "bucket/k@v3"
    assert record["attempt"] == 2


def test_a_version_less_document_is_named_by_its_key() -> None:
    assert logs.correlation_id("bucket/k", "") == "bucket/k"
