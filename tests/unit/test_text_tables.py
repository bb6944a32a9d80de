"""Text-layer tables without vertical rules (booktabs, unruled), and what stays text."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pymupdf
import pytest

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.engines import text_tables
from handler.engines.base import ElementType, PageResult
from handler.engines.text_layer import TextLayerEngine
from tests.unit.table_elements import grid as table_grid
from tests.unit.table_elements import tables as page_tables

DATA = Path(__file__).parent.parent / "data"
BORN_DIGITAL = DATA / "born_digital"
LIMITS = Limits(max_bytes=50_000_000, max_pages=100, max_pixels_per_page=40_000_000)
ENGINE = TextLayerEngine()

HEADER = ["Country", "Population", "Area", "Capital"]
ROWS = [
    ["Austria", "8.9", "83,879", "Vienna"],
    ["Belgium", "11.5", "30,689", "Brussels"],
    ["Denmark", "5.8", "42,951", "Copenhagen"],
    ["Finland", "5.5", "338,424", "Helsinki"],
]
COLUMNS = [72, 190, 290, 390]  # left edges of the cells, points
LOREM = (
    "Lorem ipsum dolor sit amet, consectetuer adipiscing elit. Ut purus elit, vestibulum "
    "ut, placerat ac, adipiscing vitae, felis. Curabitur dictum gravida mauris. Nam arcu "
    "libero, nonummy eget, consectetuer id, vulputate a, magna. Donec vehicula augue eu "
    "neque. Pellentesque habitant morbi tristique senectus et netus et malesuada fames ac "
    "turpis egestas. Mauris ut leo. Cras viverra metus rhoncus sem."
)


def _convert(doc: pymupdf.Document, tmp_path: Path) -> PageResult:
    path = tmp_path / "page.pdf"
    doc.save(path)
    doc.close()
    with open_document(path, LIMITS, dpi=72, filename=path.name) as opened:
        ((result),) = [ENGINE.convert(page) for page in opened.pages()]
    return result


def _rows(
    page: pymupdf.Page, top: float, rows: Sequence[Sequence[str]], xs: Sequence[float]
) -> None:
    for r, row in enumerate(rows):
        for x, text in zip(xs, row, strict=True):
            page.insert_text((x, top + 14 * r), text, fontsize=10)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", unicodedata.normalize("NFKC", text))


def _every_word_once(result: PageResult, page_words: list[str]) -> None:
    out = _words(" ".join(e.text for e in result.elements))
    assert sorted(out) == sorted(page_words)


def _booktabs_page() -> tuple[pymupdf.Document, list[str]]:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 120), LOREM, fontsize=10)
    page.insert_text((72, 140), "Table 1: Four countries", fontsize=10)
    page.draw_line((72, 148), (470, 148), width=0.8)  # top rule
    _rows(page, 160, [HEADER], COLUMNS)
    page.draw_line((72, 165), (470, 165), width=0.5)  # mid rule
    _rows(page, 177, ROWS, COLUMNS)
    page.draw_line((72, 225), (470, 225), width=0.8)  # bottom rule
    page.insert_textbox(pymupdf.Rect(72, 240, 540, 300), LOREM, fontsize=10)
    words = _words(" ".join(w[4] for w in page.get_text("words")))
    return doc, words


def test_a_booktabs_table_is_one_table_with_its_header(tmp_path: Path) -> None:
    # given a table ruled only above, below and under its header row (LaTeX booktabs)
    doc, words = _booktabs_page()
    # when the page is converted
    result = _convert(doc, tmp_path)
    # then it is one Table with its rows and columns, the header row as such
    (table,) = page_tables(result)
    assert table_grid(table) == [HEADER, *ROWS]
    assert table.text_as_html is not None and table.text_as_html.startswith("<table><thead>")
    # between the paragraphs, with its caption before it
    kinds = [e.type for e in result.elements]
    assert kinds == [
        ElementType.NARRATIVE_TEXT,
        ElementType.FIGURE_CAPTION,
        ElementType.TABLE,
        ElementType.NARRATIVE_TEXT,
    ]
    # and every word of the page comes out once
    _every_word_once(result, words)


def test_an_unruled_table_with_a_column_of_numbers_is_a_table(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 120), LOREM, fontsize=10)
    _rows(page, 150, [HEADER, *ROWS], COLUMNS)
    result = _convert(doc, tmp_path)
    (table,) = page_tables(result)
    assert table_grid(table) == [HEADER, *ROWS]


def test_the_corpus_booktabs_table_matches_its_latex_source() -> None:
    # pysf__multicolumn.pdf page 3: pdfLaTeX booktabs table (gt/pysf__multicolumn.tex)
    path = BORN_DIGITAL / "pysf__multicolumn.pdf"
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        page = next(p for p in doc.pages() if p.number == 3)
        assert page.pdf_page is not None
        words = _words(" ".join(w[4] for w in page.pdf_page.get_text("words")))
        result = ENGINE.convert(page)
    (table,) = page_tables(result)
    assert table_grid(table) == [
        ["Country", "Population (millions)", "Area (km2)", "Capital", "Official Language"],
        ["Austria", "8.9", "83,879", "Vienna", "German"],
        ["Belgium", "11.5", "30,689", "Brussels", "Dutch, French, German"],
        ["Czech Republic", "10.7", "78,866", "Prague", "Czech"],
        ["Denmark", "5.8", "42,951", "Copenhagen", "Danish"],
        ["Finland", "5.5", "338,424", "Helsinki", "Finnish, Swedish"],
    ]
    captions = [e.text for e in result.elements if e.type is ElementType.FIGURE_CAPTION]
    assert captions == ["Table 1: EU Countries Information"]
    _every_word_once(result, words)


def _two_columns(page: pymupdf.Page) -> None:
    page.insert_textbox(pymupdf.Rect(72, 72, 296, 700), LOREM * 3, fontsize=10)
    page.insert_textbox(pymupdf.Rect(316, 72, 540, 700), LOREM * 3, fontsize=10)


@pytest.mark.parametrize(
    "rows",
    [
        # a numbered list whose markers stand apart from their text
        [["1.", "Apples"], ["2.", "Pears"], ["3.", "Plums"], ["4.", "Cherries"]],
        # a form of labels and values
        [["Name:", "Jane Doe"], ["Born:", "1970"], ["Phone:", "555 0100"], ["Code:", "42"]],
        # a table of contents
        [
            ["1.1 Introduction", "3"],
            ["1.2 Methods", "7"],
            ["1.3 Results", "12"],
            ["1.4 Discussion", "19"],
        ],
        # aligned words without a column of numbers
        [["alpha", "beta", "gamma"], ["delta", "epsilon", "zeta"], ["eta", "theta", "iota"]],
    ],
    ids=["numbered-list", "form", "contents", "no-numbers"],
)
def test_aligned_text_that_is_no_table_stays_text(tmp_path: Path, rows: list[list[str]]) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 120), LOREM, fontsize=10)
    _rows(page, 150, rows, [72, 300, 420][: len(rows[0])])
    result = _convert(doc, tmp_path)
    assert not page_tables(result)


def test_two_columns_of_prose_stay_text(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    _two_columns(page)
    result = _convert(doc, tmp_path)
    assert not page_tables(result)
    assert {e.type for e in result.elements} == {ElementType.NARRATIVE_TEXT}


def test_a_code_listing_between_two_rules_stays_text(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 120), LOREM, fontsize=10)
    page.draw_line((72, 140), (470, 140))
    code = [
        ["def area(w, h):", "# the area"],
        ["    s = w * h", "# multiply"],
        ["    print(s)", "# show it"],
        ["    return s", "# done"],
    ]
    _rows(page, 156, code, [72, 300])
    page.draw_line((72, 205), (470, 205))
    result = _convert(doc, tmp_path)
    assert not page_tables(result)


def test_a_chart_with_labels_and_values_is_no_table(tmp_path: Path) -> None:
    # given a bar chart drawn as vector graphics: a label, a bar and its value on each row,
    # labels and values in columns as in a table
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 120), LOREM, fontsize=10)
    for r, (label, value) in enumerate([("North", 120), ("South", 95), ("East", 60), ("West", 80)]):
        y = 150 + 16 * r
        page.insert_text((72, y), label, fontsize=10)
        page.draw_rect(pymupdf.Rect(150, y - 10, 150 + 2 * value, y), color=None, fill=(0, 0, 1))
        page.insert_text((420, y), str(value), fontsize=10)
    result = _convert(doc, tmp_path)
    assert not page_tables(result)


def test_pages_without_aligned_rows_skip_the_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the search costs milliseconds: prose between a header and a footer rule, and two
    # columns of prose, never reach it
    def fail(*_args: object, **_kwargs: object) -> list[object]:
        raise AssertionError("the table search ran")

    monkeypatch.setattr(text_tables, "find_tables", fail)
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.draw_line((72, 50), (540, 50))
    page.insert_textbox(pymupdf.Rect(72, 60, 540, 700), LOREM * 4, fontsize=10)
    page.draw_line((72, 740), (540, 740))
    _two_columns(doc.new_page(width=612, height=792))
    path = tmp_path / "prose.pdf"
    doc.save(path)
    with open_document(path, LIMITS, dpi=72, filename=path.name) as opened:
        for page_input in opened.pages():
            ENGINE.convert(page_input)
