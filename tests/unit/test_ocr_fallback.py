"""After OCR, a PDF page keeps its text layer when OCR read much less than the layer offers."""

from __future__ import annotations

from pathlib import Path

import pytest

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.documents.pages import PageInput
from handler.engines.base import Element, ElementType, PageResult
from handler.engines.registry import FACTORIES, EngineSet
from handler.outputs.elements import SourceContext
from handler.settings import Settings
from handler.worker.convert import convert_page
from tests.conftest import DATA

LIMITS = Limits(max_bytes=10**8, max_pages=10, max_pixels_per_page=10**8)


class ReadsOnly:
    """An OCR engine that reads the given text off any page (or nothing)."""

    name = "rapidocr"

    def __init__(self, text: str) -> None:
        self.text = text

    def convert(self, page: PageInput) -> PageResult:
        elements = [Element(ElementType.NARRATIVE_TEXT, self.text, (0, 0, 10, 10))]
        return PageResult(page.number, 100, 100, self.name, elements if self.text else [])


def _convert(path: Path, ocr_text: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(FACTORIES, "rapidocr", lambda settings: ReadsOnly(ocr_text))
    engines = EngineSet(Settings())
    with open_document(path, LIMITS, dpi=72, filename=path.name) as document:
        source = SourceContext(path.name, document.type.mime, "v1")
        [output] = [convert_page(p, engines, "auto", source) for p in document.pages([1])]
    return output.engine


HABIBI = DATA / "born_digital" / "pysf__habibi.pdf"  # a quarter of its glyphs unmapped


def test_a_garbled_text_layer_that_ocr_cannot_read_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given Arabic whose font maps a quarter of the glyphs to nothing (routed to OCR), and
    # an OCR engine that reads nothing of it
    # When the page is converted, then the text layer's result is kept
    assert _convert(HABIBI, "", monkeypatch) == "text-layer"


def test_ocr_that_reads_as_much_as_the_layer_offers_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _convert(HABIBI, "حَبيبي habibi حَبيبي", monkeypatch) == "rapidocr"


def test_a_scan_without_a_text_layer_keeps_ocr_even_when_it_reads_little(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scan = DATA / "scanned" / "docling__ocr_test.pdf"
    assert _convert(scan, "x", monkeypatch) == "rapidocr"


@pytest.mark.slow
def test_the_arabic_page_comes_out_with_its_words() -> None:
    # With the real OCR engine (its models do not read Arabic)
    engines = EngineSet(Settings())
    with open_document(HABIBI, LIMITS, dpi=200, filename=HABIBI.name) as document:
        source = SourceContext(HABIBI.name, document.type.mime, "v1")
        [output] = [convert_page(p, engines, "auto", source) for p in document.pages([1])]
    assert output.engine == "text-layer"
    assert "habibi" in output.markdown and "حَبيبي" in output.markdown
