"""Text-layer headings beyond font size: italic and other-font headings, code listings and
drawn figures that are no headings, titles wrapped over two sizes."""

from __future__ import annotations

import functools
from pathlib import Path

import pymupdf

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.engines.base import ElementType, PageResult
from handler.engines.text_layer import TextLayerEngine

DATA = Path(__file__).parent.parent / "data"
BORN_DIGITAL = DATA / "born_digital"
LIMITS = Limits(max_bytes=50_000_000, max_pages=100, max_pixels_per_page=40_000_000)
ENGINE = TextLayerEngine()
WORDS = (
    "The spring keeps the locking and load carrying sections such a distance apart that "
    "the two sets of threads are out of phase or spaced so that a bolt must push the "
    "locking section outward against the force of the spring to engage the threads."
)


def _convert(path: Path) -> dict[int, PageResult]:
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        return {page.number: ENGINE.convert(page) for page in doc.pages()}


def _one(doc: pymupdf.Document, tmp_path: Path) -> PageResult:
    path = tmp_path / "page.pdf"
    doc.save(path)
    doc.close()
    ((result),) = _convert(path).values()
    return result


def _titles(result: PageResult) -> list[tuple[str, int | None]]:
    return [(e.text, e.level) for e in result.elements if e.type is ElementType.TITLE]


def _texts(result: PageResult, kind: ElementType) -> list[str]:
    return [e.text for e in result.elements if e.type is kind]


def _lines(page: pymupdf.Page, y: float, lines: list[tuple[str, str]], *, x: float = 72) -> float:
    """Lines of (font, text) in 10 pt, 12 pt apart; returns the next line's baseline."""
    for font, text in lines:
        page.insert_text((x, y), text, fontname=font, fontsize=10)
        y += 12
    return y


def _paragraph(page: pymupdf.Page, y: float, *, indent: float = 0) -> float:
    """Three lines of body text (Times), the first indented by ``indent``."""
    page.insert_text((72 + indent, y), WORDS[:70], fontname="tiro", fontsize=10)
    return _lines(page, y + 12, [("tiro", WORDS[70:140]), ("tiro", WORDS[140:])])


def test_a_standalone_italic_line_introducing_text_is_a_heading(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 60), "Self-locking nuts", fontname="tibo", fontsize=16)
    y = _paragraph(page, 90) + 14
    # an italic heading in the body size, then its paragraph
    y = _paragraph(page, _lines(page, y, [("tiit", "Boots Self-Locking Nut")])) + 14
    # an italic caption, an italic sentence, an italic paragraph: no headings
    y = _paragraph(page, _lines(page, y, [("tiit", "Figure 7 The nut and its spring")])) + 14
    y = _paragraph(page, _lines(page, y, [("tiit", "The nut is shown turned.")])) + 14
    italic = [("tiit", WORDS[:70]), ("tiit", WORDS[70:140]), ("tiit", WORDS[140:])]
    y = _paragraph(page, _lines(page, y, italic)) + 14
    # two italic lines (a dedication): the first introduces no body text
    verse = [("tiit", "In memory of"), ("tiit", "my grandfather, who made the first of these nuts")]
    y = _paragraph(page, _lines(page, y, verse)) + 14
    # a paragraph whose first line is italic and runs on into regular type
    _lines(page, y, [("tiit", WORDS[:70]), ("tiro", WORDS[70:140]), ("tiro", WORDS[140:])])
    result = _one(doc, tmp_path)
    assert _titles(result) == [("Self-locking nuts", 1), ("Boots Self-Locking Nut", 2)]


def test_a_slightly_larger_line_in_another_font_introducing_text_is_a_heading(
    tmp_path: Path,
) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    y = _paragraph(page, 60) + 16
    # "(1) ..." half a point larger than the body, in Helvetica: a numbered subheading
    page.insert_text((72, y), "(1) Background of the study", fontname="helv", fontsize=10.5)
    y = _paragraph(page, y + 14, indent=10) + 16
    # the same in the body's font, and a bulleted line: list items
    page.insert_text((72, y), "(2) Scope of the study", fontname="tiro", fontsize=10.5)
    y = _paragraph(page, y + 14, indent=10) + 16
    page.insert_text((72, y), "\u00b7 First point of the study", fontname="helv", fontsize=10.5)
    _paragraph(page, y + 14, indent=10)
    result = _one(doc, tmp_path)
    assert _titles(result) == [("(1) Background of the study", 1)]
    items = _texts(result, ElementType.LIST_ITEM)
    assert [item.split(" of the study")[0] for item in items] == ["(2) Scope", "\u00b7 First point"]


def test_code_lines_are_never_titles_and_keep_their_line_breaks(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    y = _paragraph(page, 60) + 20
    # a listing in Courier set larger than the body (as large as a heading would be)
    for depth, text in [(0, "CREATE TABLE orders ("), (4, "id INTEGER,"), (0, ");")]:
        x = 72 + depth * 0.6 * 12
        page.insert_text((x, y), text, fontname="cour", fontsize=12)
        y += 14
    _paragraph(page, y + 10)
    result = _one(doc, tmp_path)
    assert _titles(result) == []
    (code,) = _texts(result, ElementType.UNCATEGORIZED_TEXT)
    assert code == "CREATE TABLE orders (\n    id INTEGER,\n);"


def test_a_typewritten_page_has_paragraphs_not_code(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    _lines(page, 72, [("cour", WORDS[:60]), ("cour", WORDS[60:120]), ("cour", WORDS[120:180])])
    result = _one(doc, tmp_path)
    assert _texts(result, ElementType.UNCATEGORIZED_TEXT) == []
    assert len(_texts(result, ElementType.NARRATIVE_TEXT)) == 1


def test_labels_of_a_drawn_figure_are_not_titles(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    # a heading on a dark banner (one shape): still a heading
    page.draw_rect(pymupdf.Rect(66, 40, 300, 64), color=None, fill=(0.1, 0.2, 0.4))
    page.insert_text((72, 58), "System overview", fontname="hebo", fontsize=16, color=(1, 1, 1))
    y = _paragraph(page, 90) + 20
    # a diagram: rounded boxes joined by slanted arrows, labelled in large bold type
    boxes = [pymupdf.Rect(72 + 120 * i, y, 172 + 120 * i, y + 40) for i in range(4)]
    for i, box in enumerate(boxes):
        page.draw_rect(box, color=(0, 0, 0), fill=(0.8, 0.9, 1), radius=0.2)
        page.insert_text((box.x0 + 8, box.y0 + 25), f"STAGE {i + 1}", fontname="hebo", fontsize=13)
        if i:
            page.draw_line((boxes[i - 1].x1, box.y0 + 10), (box.x0, box.y0 + 30))
    for box in boxes:
        low = pymupdf.Rect(box.x0, box.y1 + 30, box.x1, box.y1 + 70)
        page.draw_rect(low, color=(0, 0, 0), fill=(1, 0.9, 0.8), radius=0.2)
        page.draw_line((box.x0 + 20, box.y1), (low.x0 + 60, low.y0))
    _paragraph(page, y + 140)
    result = _one(doc, tmp_path)
    assert _titles(result) == [("System overview", 1)]
    assert "STAGE 2" in " ".join(_texts(result, ElementType.NARRATIVE_TEXT))


def test_a_title_set_smaller_on_its_second_line_is_one_title(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 80), "Row and Column Access Control", fontname="hebo", fontsize=22)
    page.insert_text((72, 104), "Support in IBM DB2 for i", fontname="hebo", fontsize=20)
    _paragraph(page, 140)
    result = _one(doc, tmp_path)
    assert _titles(result) == [("Row and Column Access Control Support in IBM DB2 for i", 1)]


@functools.cache
def _report_page(number: int) -> PageResult:
    path = BORN_DIGITAL / "docling__redp5110_sampled.pdf"
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        page = next(p for p in doc.pages() if p.number == number)
        return ENGINE.convert(page)


def test_corpus_headings() -> None:
    # the FAA handbook page: three italic headings in the body size
    (amt,) = _convert(BORN_DIGITAL / "docling__amt_handbook_sample.pdf").values()
    assert [text for text, _ in _titles(amt)] == [
        "Boots Self-Locking Nut",
        "Stainless Steel Self-Locking Nut",
        "Elastic Stop Nut",
    ]
    # the Korean report: "(n) ..." subheadings half a size up, in the sans-serif face
    (korean,) = _convert(BORN_DIGITAL / "docling__normal_4pages-p3.pdf").values()
    assert [text[:3] for text, _ in _titles(korean)] == [
        "(4)",
        "문제점",
        "(1)",
        "(2)",
        "(3)",
        "(4)",
    ]
    # the Redbook's syntax diagram (keywords larger than the body): labels, not headings
    assert _titles(_report_page(10)) == [("Column mask", 1)]
    assert "FOR ROWS" in " ".join(e.text for e in _report_page(10).elements)
