"""convert_pages with a batching engine: pages in flight, results in page order, failures."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.engines.base import BatchingEngine
from handler.engines.registry import FACTORIES, EngineSet
from handler.errors import BadInput, DocumentTimeout, ErrorCategory, TransientError
from handler.outputs.elements import SourceContext
from handler.outputs.writer import PageOutput
from handler.settings import Settings
from handler.worker.convert import ConvertOptions, Interrupted, convert_pages
from tests.batching_fakes import SlowBatcher
from tests.conftest import DATA

LIMITS = Limits(max_bytes=10**8, max_pages=100, max_pixels_per_page=10**8)
SCAN = DATA / "scanned" / "docling__ocr_test.pdf"


def _run(
    path: Path,
    engine: SlowBatcher,
    monkeypatch: pytest.MonkeyPatch,
    *,
    requested: str = "vlm",
    deadline_s: float = 60,
    should_stop=lambda: False,
) -> tuple[list[PageOutput], list[int]]:
    monkeypatch.setitem(FACTORIES, "vlm", lambda settings: engine)
    engines = EngineSet(Settings(ocr_engine="vlm"))
    order: list[int] = []
    with open_document(path, LIMITS, dpi=72, filename=path.name) as document:
        source = SourceContext(path.name, document.type.mime, "v1")
        options = ConvertOptions(requested, time.monotonic() + deadline_s, deadline_s)
        outputs = convert_pages(
            document.pages(list(range(1, document.page_count + 1))),
            engines,
            source,
            options,
            lambda output: order.append(output.page_number),
            should_stop,
        )
    return outputs, order


def _many_pages(tmp_path: Path, count: int) -> Path:
    import pymupdf

    out = pymupdf.open()
    for number in range(1, count + 1):
        page = out.new_page()
        page.insert_text((72, 300), f"Body text of page {number}, long enough to be read.")
    path = tmp_path / "many.pdf"
    out.save(path)
    return path


def test_the_fake_is_a_batching_engine() -> None:
    assert isinstance(SlowBatcher(), BatchingEngine)


def test_pages_are_in_flight_together_and_come_out_in_page_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = SlowBatcher(max_in_flight=3)
    engine.finish_first = {4, 6}  # later pages finish before earlier ones
    outputs, order = _run(_many_pages(tmp_path, 8), engine, monkeypatch)
    assert order == list(range(1, 9))
    assert [o.page_number for o in outputs] == order
    assert all(o.engine == "vlm" and not o.error for o in outputs)
    assert "page 5 read by the batcher" in outputs[4].markdown
    assert engine.peak == 3  # never more than max_in_flight, and more than one at a time
    assert engine.drawn_on == {threading.current_thread().name}  # the document's thread


def test_a_bad_page_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = SlowBatcher()
    engine.fail[2] = BadInput(ErrorCategory.CORRUPT, "the page could not be read")
    outputs, _ = _run(_many_pages(tmp_path, 3), engine, monkeypatch)
    assert [bool(o.error) for o in outputs] == [False, True, False]
    assert outputs[1].error == "the page could not be read"


def test_a_transient_fault_fails_the_document_for_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = SlowBatcher()
    engine.fail[2] = TransientError("GPU out of memory even one page at a time")
    with pytest.raises(TransientError):
        _run(_many_pages(tmp_path, 4), engine, monkeypatch)


def test_a_stop_request_is_seen_while_pages_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = SlowBatcher(max_in_flight=50, delay_s=5)
    stop_at = time.monotonic() + 0.3
    started = time.monotonic()
    with pytest.raises(Interrupted):
        _run(
            _many_pages(tmp_path, 4),
            engine,
            monkeypatch,
            should_stop=lambda: time.monotonic() > stop_at,
        )
    assert time.monotonic() - started < 3  # not after the 5 s pages


def test_the_deadline_holds_while_pages_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = SlowBatcher(max_in_flight=50, delay_s=5)
    with pytest.raises(DocumentTimeout):
        _run(_many_pages(tmp_path, 2), engine, monkeypatch, deadline_s=0.5)


def test_auto_mode_batches_only_the_pages_that_need_ocr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a document of a born-digital page, a scanned page, and a born-digital page
    import pymupdf

    mixed = pymupdf.open()
    with pymupdf.open(SCAN) as scan:
        picture = scan[0].get_pixmap(dpi=150)
    for number in (1, 2, 3):
        page = mixed.new_page()
        if number == 2:
            page.insert_image(page.rect, pixmap=picture)
        else:
            page.insert_text((72, 300), f"Body text of page {number}, long enough to be read.")
    path = tmp_path / "mixed.pdf"
    mixed.save(path)
    # When it is converted in auto mode, then only the scan went to the batching engine
    outputs, order = _run(path, SlowBatcher(), monkeypatch, requested="auto")
    assert order == [1, 2, 3]
    assert [o.engine for o in outputs] == ["text-layer", "vlm", "text-layer"]


def test_release_memory_reaches_the_built_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = SlowBatcher()
    monkeypatch.setitem(FACTORIES, "vlm", lambda settings: engine)
    engines = EngineSet(Settings(ocr_engine="vlm"))
    engines.release_memory()
    assert engine.released == 0  # not built yet: nothing to release
    engines.get("vlm")
    engines.get("text-layer")  # an engine without release_memory is skipped
    engines.release_memory()
    assert engine.released == 1
