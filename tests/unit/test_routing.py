"""Routing: which pages keep their text layer and which need OCR."""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.documents.pages import PageInput
from handler.engines.routing import PageRoute, needs_ocr, route_page, text_stats

DATA = Path(__file__).parent.parent / "data"
LIMITS = Limits(max_bytes=50_000_000, max_pages=100, max_pixels_per_page=40_000_000)
SENTENCE = "The quick brown fox jumps over the lazy dog and keeps running far away. "


def _routes(path: Path) -> list[PageRoute]:
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        return [route_page(page).route for page in doc.pages()]


def _png(size: tuple[int, int] = (100, 130), colour: int = 200) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _save(doc: pymupdf.Document, path: Path) -> Path:
    doc.save(path)
    doc.close()
    return path


def _remap_fonts(doc: pymupdf.Document, target: str) -> None:
    """Give every font a ToUnicode map sending each printable code to ``target`` (hex)."""
    entries = "\n".join(f"<{code:02X}> <{target}>" for code in range(0x21, 0x7F))
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Garbage def /CMapType 2 def\n"
        "1 begincodespacerange <00> <FF> endcodespacerange\n"
        f"94 beginbfchar\n{entries}\nendbfchar\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    ).encode()
    stream = doc.get_new_xref()
    doc.update_object(stream, "<<>>")
    doc.update_stream(stream, cmap)
    for page in doc.pages():
        for font in page.get_fonts():
            doc.xref_set_key(font[0], "ToUnicode", f"{stream} 0 R")


def _text_pdf(path: Path, *, garbage: str | None = None) -> Path:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 720), SENTENCE * 8, fontsize=11)
    if garbage is not None:
        _remap_fonts(doc, garbage)
    return _save(doc, path)


def test_born_digital_pages_use_their_text_layer() -> None:
    assert _routes(DATA / "born_digital" / "docling__2305.03393v1-pg9.pdf") == [
        PageRoute.TEXT_LAYER
    ]
    assert set(_routes(DATA / "born_digital" / "pysf__multicolumn.pdf")) == {PageRoute.TEXT_LAYER}


def test_table_of_contents_with_dot_leaders_is_not_garbage() -> None:
    path = DATA / "born_digital" / "docling__redp5110_sampled.pdf"
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        (contents,) = doc.pages([2])
        assert contents.pdf_page is not None
        assert ". . . ." in contents.pdf_page.get_text()
        assert route_page(contents).route is PageRoute.TEXT_LAYER


def test_image_only_pdf_needs_ocr() -> None:
    path = DATA / "scanned" / "docling__ocr_test.pdf"
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        page = next(doc.pages())
        decision = route_page(page)
    assert decision.route is PageRoute.OCR
    assert "images cover" in decision.reason


def test_image_pages_always_need_ocr(tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    path.write_bytes(_png())
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        page = next(doc.pages())
    assert needs_ocr(page)
    assert route_page(page).reason == "image page"


def test_clean_generated_text_uses_the_text_layer(tmp_path: Path) -> None:
    # the control for the two garbage tests below: the same page without the broken map
    assert _routes(_text_pdf(tmp_path / "clean.pdf")) == [PageRoute.TEXT_LAYER]


@pytest.mark.parametrize("target", ["FFFD", "E000"], ids=["replacement-char", "private-use"])
def test_text_layer_of_unmapped_glyphs_needs_ocr(tmp_path: Path, target: str) -> None:
    path = _text_pdf(tmp_path / "garbage.pdf", garbage=target)
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        page = next(doc.pages())
        stats = text_stats(page.pdf_page)
        decision = route_page(page)
    assert stats.chars > 300
    assert stats.bad > 0.9 * stats.chars
    assert decision.route is PageRoute.OCR
    assert "garbage" in decision.reason


def test_text_layer_of_symbols_needs_ocr(tmp_path: Path) -> None:
    path = _text_pdf(tmp_path / "symbols.pdf", garbage="00A7")  # every letter a section sign
    assert _routes(path) == [PageRoute.OCR]


def _scan_pdf(path: Path, *, visible: str = "", invisible: str = "") -> Path:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(page.rect, stream=_png())
    if invisible:
        page.insert_textbox(pymupdf.Rect(72, 72, 540, 720), invisible, render_mode=3)
    if visible:
        page.insert_text((72, 770), visible, fontsize=9)
    return _save(doc, path)


def test_scan_with_an_invisible_ocr_layer_uses_the_text_layer(tmp_path: Path) -> None:
    path = _scan_pdf(tmp_path / "ocred.pdf", invisible=SENTENCE * 4)
    assert _routes(path) == [PageRoute.TEXT_LAYER]


@pytest.mark.parametrize("visible", ["12", "CONFIDENTIAL - produced 2024 - ABC000123"])
def test_scan_with_only_a_page_number_or_stamp_needs_ocr(tmp_path: Path, visible: str) -> None:
    path = _scan_pdf(tmp_path / "stamped.pdf", visible=visible)
    assert _routes(path) == [PageRoute.OCR]


def test_page_with_text_over_a_background_image_uses_the_text_layer(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_image(page.rect, stream=_png(colour=240))
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 720), SENTENCE * 6, fontsize=11)
    assert _routes(_save(doc, tmp_path / "poster.pdf")) == [PageRoute.TEXT_LAYER]


def test_blank_page_uses_the_text_layer() -> None:
    assert _routes(DATA / "hostile" / "safedocs__PDF-NoPageContents.pdf") == [PageRoute.TEXT_LAYER]


def test_page_of_vector_outlines_without_text_needs_ocr(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    for n in range(40):  # text converted to curves looks like many small paths
        x = 72 + (n % 10) * 40
        y = 100 + (n // 10) * 30
        page.draw_bezier((x, y), (x + 10, y - 10), (x + 20, y + 10), (x + 30, y))
    assert _routes(_save(doc, tmp_path / "outlined.pdf")) == [PageRoute.OCR]


def test_route_reason_is_readable(tmp_path: Path) -> None:
    path = _text_pdf(tmp_path / "clean.pdf")
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        decision = route_page(next(doc.pages()))
    assert decision.reason.startswith("text layer (")


def test_needs_ocr_agrees_with_route_page(tmp_path: Path) -> None:
    path = _scan_pdf(tmp_path / "scan.pdf")
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        page: PageInput = next(doc.pages())
        assert needs_ocr(page) is (route_page(page).route is PageRoute.OCR) is True
