"""The rapidocr engine: line grouping and reading order, then OCR of real scans."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.documents.pages import PageInput
from handler.engines.base import ElementType, PageResult
from handler.engines.ocr_columns import cut_at_gutters, find_gutters
from handler.engines.ocr_layout import OcrLine, lines_to_elements, page_text
from handler.engines.rapidocr_engine import (
    DEFAULT_MAX_SIDE,
    DEFAULT_MIN_DPI,
    DEFAULT_TARGET_DPI,
    RapidOcrEngine,
    default_threads,
)
from handler.errors import EngineUnavailable
from handler.quality import cer

DATA = Path(__file__).resolve().parent.parent / "data" / "scanned"
LIMITS = Limits(max_bytes=64 * 1024 * 1024, max_pages=10, max_pixels_per_page=50_000_000)
TARGET_CER = 0.03  # the target for clean scans
SENTENCE = (
    "Docling bundles PDF document conversion to JSON and Markdown in an easy self contained package"
)


def _line(
    text: str, x0: float, y0: float, x1: float, h: float = 30.0, score: float = 0.9
) -> OcrLine:
    return OcrLine(text, score, x0, y0, x1, y0 + h, h)


def _para(texts: list[str], x0: float, y0: float, x1: float, pitch: float = 36.0) -> list[OcrLine]:
    return [_line(t, x0, y0 + i * pitch, x1) for i, t in enumerate(texts)]


# -- grouping and reading order (no OCR) ---------------------------------------------------------


def test_paragraph_lines_are_joined_and_hyphenation_repaired() -> None:
    lines = _para(
        [
            "The detector finds lines of text and the engine",
            "groups them into para-",
            "graphs of Text.",
        ],
        100,
        100,
        1000,
    )
    (el,) = lines_to_elements(lines, 1200, 1600)
    assert el.type is ElementType.NARRATIVE_TEXT
    assert (
        el.text
        == "The detector finds lines of text and the engine groups them into paragraphs of Text."
    )
    assert el.bbox == (100, 100, 1000, 100 + 2 * 36 + 30)
    assert el.prob == pytest.approx(0.9)


def test_hyphen_before_capital_is_kept() -> None:
    lines = _para(
        [
            "Garten- und Gemüse- und Obstbau sind in der ganzen Stadt-",
            "Verwaltung wichtig und gut.",
        ],
        100,
        100,
        1000,
    )
    (el,) = lines_to_elements(lines, 1200, 1600)
    assert "Stadt-Verwaltung" in el.text


def test_blank_line_gap_and_short_last_line_split_paragraphs() -> None:
    lines = [
        _line("First paragraph runs across the whole width here", 100, 100, 1000),
        _line("and ends", 100, 136, 1000),
        # a blank line
        _line("Second paragraph after a blank line runs along", 100, 208, 1000),
        _line("for two lines of the page.", 100, 244, 500),  # short, ends a sentence
        _line("Third one follows the short line directly and", 100, 280, 1000),
        _line("ends too.", 100, 316, 300),
    ]
    elements = lines_to_elements(lines, 1200, 1600)
    assert [e.text.split()[0] for e in elements] == ["First", "Second", "Third"]


def test_two_columns_are_read_one_after_the_other() -> None:
    title = [_line("A Big Title", 100, 50, 700, h=70)]
    left = _para([f"left column line {i} text" for i in range(5)], 100, 200, 560)
    right = _para([f"right column line {i} text" for i in range(5)], 640, 200, 1100)
    footer = [
        _line("a full width closing paragraph below both columns of the page", 100, 420, 1100)
    ]
    lines = right + footer + left + title  # the detector's order does not matter
    elements = lines_to_elements(lines, 1200, 1600)
    assert [e.type for e in elements] == [
        ElementType.TITLE,
        ElementType.NARRATIVE_TEXT,
        ElementType.NARRATIVE_TEXT,
        ElementType.NARRATIVE_TEXT,
    ]
    assert elements[0].level == 1
    assert elements[1].text.startswith("left column line 0") and elements[1].text.endswith(
        "line 4 text"
    )
    assert elements[2].text.startswith("right column line 0")
    assert elements[3].text.startswith("a full width")


def test_list_items_and_page_number() -> None:
    lines = [
        _line("Things to check:", 100, 100, 600),
        _line("• the first item", 100, 136, 600),
        _line("• the second item which wraps onto", 100, 172, 900),
        _line("a second line", 130, 208, 500),
        _line("1. a numbered item", 100, 260, 700),
        _line("- 12 -", 580, 1540, 640),
        _line("7", 1100, 40, 1120),  # above all other text
    ]
    elements = lines_to_elements(lines, 1200, 1600)
    assert [(e.type, e.text) for e in elements] == [
        (ElementType.PAGE_NUMBER, "7"),
        (ElementType.NARRATIVE_TEXT, "Things to check:"),
        (ElementType.LIST_ITEM, "the first item"),
        (ElementType.LIST_ITEM, "the second item which wraps onto a second line"),
        (ElementType.LIST_ITEM, "1. a numbered item"),
        (ElementType.PAGE_NUMBER, "- 12 -"),
    ]


def test_lone_number_mid_page_is_text_and_fragments_of_a_row_join() -> None:
    lines = [
        _line("A paragraph across the page above the pieces of one row", 100, 600, 1000),
        _line("Total", 100, 700, 250),
        _line("amount due", 265, 702, 500),  # a gap narrower than a gutter
        _line("42", 100, 800, 140),
        _line("Another paragraph across the page below the lone number", 100, 900, 1000),
    ]
    elements = lines_to_elements(lines, 1200, 1600)
    assert [e.text for e in elements] == [
        "A paragraph across the page above the pieces of one row",
        "Total amount due",
        "42",
        "Another paragraph across the page below the lone number",
    ]
    assert all(e.type is not ElementType.PAGE_NUMBER for e in elements)


def test_gutters_are_found_from_line_coverage() -> None:
    cover = np.zeros(100, dtype=np.int32)
    cover[10:45] = 12  # left column: 12 lines with ink
    cover[45:55] = 1  # the gutter: only a title crosses it
    cover[55:90] = 10  # right column
    assert find_gutters(cover, min_width=5) == [(45, 55)]
    assert find_gutters(cover, min_width=11) == []  # too narrow
    assert find_gutters(cover, min_width=5, min_lines=11) == []  # too few lines on the right
    single = np.zeros(100, dtype=np.int32)
    single[10:90] = 12
    single[40:42] = 3  # a word gap shared by a few lines is no gutter
    assert find_gutters(single, min_width=2) == []


def test_lines_are_cut_at_gutters_without_ink() -> None:
    ink = np.zeros(100, dtype=bool)
    ink[5:40] = True
    ink[60:95] = True
    box = (100, 10, 200, 40)  # pixel columns 100..199
    assert cut_at_gutters(box, ink, [(140, 160)], pad=2) == [(103, 10, 142, 40), (158, 10, 197, 40)]
    assert cut_at_gutters(box, ink, [(300, 320)], pad=2) == [box]  # crosses no gutter
    inked = ink.copy()
    inked[48:52] = True  # ink in the gutter's middle: a title, not two columns
    assert cut_at_gutters(box, inked, [(140, 160)], pad=2) == [box]
    reaching = np.zeros(100, dtype=bool)
    reaching[5:40] = True  # a box that reaches into the gutter with no ink there: trimmed
    assert cut_at_gutters(box, reaching, [(140, 160)], pad=2) == [(103, 10, 142, 40)]


def test_boxes_are_clamped_to_the_page() -> None:
    (el,) = lines_to_elements([_line("edge text", -5, -3, 1300)], 1200, 1600)
    assert el.bbox[:3] == (0, 0, 1200)
    assert lines_to_elements([], 100, 100) == []


def test_missing_rapidocr_is_engine_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # import fails
    page = PageInput(
        number=1,
        layout_width=20,
        layout_height=10,
        dpi=200,
        scale=1.0,
        render=lambda: np.full((10, 20, 3), 255, dtype=np.uint8),
    )
    with pytest.raises(EngineUnavailable, match="rapidocr"):
        RapidOcrEngine().convert(page)


# -- the size OCR reads a page at (no OCR) --------------------------------------------------------


def _pdf_input(
    width: int,
    height: int,
    dpi: int,
    source_dpi: float | None = None,
    calls: list[float] | None = None,
) -> PageInput:
    """A PDF page's input (layout ``width`` x ``height`` at ``dpi``) that records renders."""
    log = calls if calls is not None else []

    def render() -> np.ndarray:
        log.append(1.0)
        return np.full((height, width, 3), 255, dtype=np.uint8)

    def render_at(factor: float) -> np.ndarray:
        log.append(factor)
        w, h = max(1, round(width * factor)), max(1, round(height * factor))
        return np.full((h, w, 3), 255, dtype=np.uint8)

    return PageInput(
        number=1,
        layout_width=width,
        layout_height=height,
        dpi=dpi,
        scale=dpi / 72,
        render=render,
        pdf_page=object(),  # stands for a pymupdf page: only "is a PDF page" is asked
        render_at=render_at,
        scan_dpi=lambda: source_dpi,
    )


def test_ocr_scale_rule() -> None:
    engine = RapidOcrEngine(target_dpi=200, max_side=2000, min_dpi=150)
    # a letter page at 200 DPI is 2200 pixels high: the side cap, 182 DPI
    assert engine.ocr_scale(_pdf_input(1700, 2200, 200)) == pytest.approx(2000 / 2200)
    # an A3 page would go down to 121 DPI under the cap: the floor keeps 150
    assert engine.ocr_scale(_pdf_input(2339, 3307, 200)) == pytest.approx(150 / 200)
    # a page opened at 300 DPI is read at the target, however it was opened
    assert engine.ocr_scale(_pdf_input(1275, 1650, 300)) == pytest.approx(200 / 300)
    # a 120-DPI scan in a PDF is not drawn finer than its own pixels...
    assert engine.ocr_scale(_pdf_input(1700, 2200, 200, source_dpi=120)) == pytest.approx(0.6)
    # ... a 600-DPI one gains nothing over the target; never above the layout size
    assert engine.ocr_scale(_pdf_input(1700, 2200, 200, 600)) == pytest.approx(2000 / 2200)
    assert engine.ocr_scale(_pdf_input(850, 1100, 100)) == 1.0
    uncapped = RapidOcrEngine(target_dpi=200, max_side=2000, cap_at_source=False)
    assert uncapped.ocr_scale(_pdf_input(1700, 2200, 200, 120)) == pytest.approx(2000 / 2200)


def test_ocr_scale_of_images_is_the_side_cap_only() -> None:
    engine = RapidOcrEngine(target_dpi=200, max_side=2000)
    photo = PageInput(1, 3068, 4660, 600, 1.0, lambda: np.zeros((1, 1, 3), np.uint8))
    small = PageInput(1, 1024, 800, 300, 1.0, lambda: np.zeros((1, 1, 3), np.uint8))
    assert engine.ocr_scale(photo) == pytest.approx(2000 / 4660)
    assert engine.ocr_scale(small) == 1.0  # its stated 300 DPI does not shrink it


def test_convert_draws_the_page_once_at_the_size_it_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = RapidOcrEngine(target_dpi=200, max_side=2000)
    calls: list[float] = []
    seen: list[tuple[int, ...]] = []

    def read(image: np.ndarray) -> object:
        seen.append(image.shape)
        return _nothing(image)

    monkeypatch.setattr(engine, "_read", read)
    result = engine.convert(_pdf_input(2550, 3300, 300, calls=calls))
    assert calls == [pytest.approx(2000 / 3300)]  # drawn once, small; never at 300 DPI
    assert seen == [(2000, round(2550 * 2000 / 3300), 3)]
    assert (result.width, result.height) == (2550, 3300)  # boxes stay in layout pixels


def _nothing(image: np.ndarray) -> object:
    from handler.engines.rapidocr_engine import _Reading

    return _Reading(0, image, [], [], [], [])


# -- real scans ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> RapidOcrEngine:
    return RapidOcrEngine()


def _convert(engine: RapidOcrEngine, path: Path, dpi: int = 150) -> tuple[PageResult, PageInput]:
    with open_document(path, LIMITS, dpi=dpi, filename=path.name) as doc:
        page = next(doc.pages())
        return engine.convert(page), page


def _assert_well_formed(result: PageResult, page: PageInput) -> None:
    assert result.engine == "rapidocr"
    assert result.page_number == 1
    assert (result.width, result.height) == (page.layout_width, page.layout_height)
    assert result.elements
    for el in result.elements:
        x0, y0, x1, y1 = el.bbox
        assert 0 <= x0 < x1 <= result.width, el
        assert 0 <= y0 < y1 <= result.height, el
        assert el.prob is not None and 0.5 <= el.prob <= 1.0
        assert el.text.strip()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tess__phototest", "tess__eurotext"])
def test_scans_meet_the_cer_target(engine: RapidOcrEngine, name: str) -> None:
    result, page = _convert(engine, DATA / f"{name}.tif")
    _assert_well_formed(result, page)
    reference = (DATA / "gt" / f"{name}.txt").read_text(encoding="utf-8")
    assert cer(page_text(result), reference) <= TARGET_CER  # measured: 0.0% and 0.5%


@pytest.mark.slow
def test_phototest_reading_order_and_paragraphs(engine: RapidOcrEngine) -> None:
    result, _ = _convert(engine, DATA / "tess__phototest.tif")
    words = page_text(result).split()
    assert words[:4] == ["This", "is", "a", "lot"]
    assert words[-3:] == ["the", "lazy", "fox."]
    assert [e.type for e in result.elements] == [ElementType.NARRATIVE_TEXT] * 2
    assert result.elements[0].text.endswith("of file format.")
    assert result.elements[1].text.startswith("The quick brown dog")
    # top to bottom
    assert result.elements[0].bbox[1] < result.elements[1].bbox[1]


@pytest.mark.slow
def test_image_only_pdf(engine: RapidOcrEngine) -> None:
    result, page = _convert(engine, DATA / "docling__ocr_test.pdf")
    _assert_well_formed(result, page)
    assert page_text(result) == SENTENCE


@pytest.mark.slow
def test_large_pdf_page_is_scaled_down_and_boxes_scaled_back(engine: RapidOcrEngine) -> None:
    small, small_page = _convert(engine, DATA / "docling__ocr_test.pdf", dpi=150)
    large, large_page = _convert(engine, DATA / "docling__ocr_test.pdf", dpi=300)
    # the target resolution, or less where that would pass the side cap, never below the floor
    longest = max(large_page.layout_width, large_page.layout_height)
    expected = max(min(DEFAULT_TARGET_DPI / 300, DEFAULT_MAX_SIDE / longest), DEFAULT_MIN_DPI / 300)
    assert engine.ocr_scale(large_page) == pytest.approx(expected)
    assert engine.ocr_scale(large_page) < 1.0
    assert engine.ocr_scale(small_page) == 1.0
    assert page_text(large) == page_text(small)
    _assert_well_formed(large, large_page)
    assert np.allclose(np.array(large.elements[0].bbox) / 2, small.elements[0].bbox, atol=8)


@pytest.mark.slow
def test_two_columns_with_a_narrow_gutter(engine: RapidOcrEngine, tmp_path: Path) -> None:
    """The detector runs lines across a narrow gutter; the engine cuts and re-reads them."""
    import pymupdf

    left = "Alpha column opens here. " + " ".join(
        ["The left column carries this sentence about rivers and hills."] * 6
    )
    right = "Bravo column opens here. " + " ".join(
        ["The right column talks about trains and harbours at night."] * 6
    )
    gutter = 8  # points
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((72, 80), "A Two Column Test Page", fontsize=20)
    width = (595 - 144 - gutter) / 2
    page.insert_textbox(pymupdf.Rect(72, 110, 72 + width, 500), left, fontsize=11, align=3)
    page.insert_textbox(pymupdf.Rect(523 - width, 110, 523, 500), right, fontsize=11, align=3)
    path = tmp_path / "two_columns.pdf"
    doc.save(path)
    doc.close()
    result, page_input = _convert(engine, path, dpi=200)
    _assert_well_formed(result, page_input)
    kinds = [e.type for e in result.elements]
    assert kinds == [ElementType.TITLE, ElementType.NARRATIVE_TEXT, ElementType.NARRATIVE_TEXT]
    assert result.elements[0].text == "A Two Column Test Page"
    assert cer(result.elements[1].text, left) <= 0.01
    assert cer(result.elements[2].text, right) <= 0.01


@pytest.mark.slow
def test_latex_two_column_page_reads_column_by_column(engine: RapidOcrEngine) -> None:
    """A real two-column page whose gutter the detector runs lines across (FACTS)."""
    path = DATA.parent / "born_digital" / "pysf__multicolumn.pdf"
    with open_document(path, LIMITS, dpi=150, filename=path.name) as doc:
        page = next(doc.pages([1]))
        result = engine.convert(page)
    _assert_well_formed(result, page)
    texts = [e.text for e in result.elements]
    assert result.elements[0].type is ElementType.TITLE
    assert texts[0] == "Two-Column Document with Lorem Ipsum"

    def first(prefix: str) -> int:
        return next(i for i, t in enumerate(texts) if t.startswith(prefix))

    # the left column to its end, then the right column from its top
    assert first("Abstract") < first("This is a sample document") < first("Lorem ipsum dolor")
    assert first("Nulla malesuada") < first("pellentesque ante") < first("Fusce mauris")
    assert result.elements[-1].type is ElementType.PAGE_NUMBER
    assert texts[-1] == "1"
    # no element of the body mixes the columns
    middle = page.layout_width / 2
    for el in result.elements[first("Abstract") : -1]:
        assert el.bbox[2] < middle + 20 or el.bbox[0] > middle - 20, el


@pytest.mark.slow
def test_blank_page_has_no_elements(engine: RapidOcrEngine) -> None:
    page = PageInput(
        number=3,
        layout_width=400,
        layout_height=300,
        dpi=200,
        scale=1.0,
        render=lambda: np.full((300, 400, 3), 255, dtype=np.uint8),
    )
    result = engine.convert(page)
    assert result.elements == []
    assert (result.page_number, result.width, result.height) == (3, 400, 300)


def test_the_ocr_thread_count_comes_from_the_settings() -> None:
    from handler.engines.registry import EngineSet
    from handler.settings import Settings

    engine = EngineSet(Settings(ocr_threads=1)).get("rapidocr")
    assert getattr(engine, "threads", None) == 1
    default = EngineSet(Settings()).get("rapidocr")
    assert getattr(default, "threads", None) == default_threads()
