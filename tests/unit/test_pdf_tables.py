"""Tables on the text layer: found from ruling lines, kept only when they look like tables."""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path

import pymupdf
import pytest

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.documents.pages import PageInput
from handler.engines.base import Element, ElementType, PageResult
from handler.engines.pdf_tables import CellBox, FoundTable, is_table, page_art, ruled_regions
from handler.engines.table_html import grid_cells
from handler.engines.text_layer import TextLayerEngine
from handler.outputs.markdown import element_markdown
from tests.unit.table_elements import grid as table_grid
from tests.unit.table_elements import tables as page_tables

DATA = Path(__file__).parent.parent / "data"
BORN_DIGITAL = DATA / "born_digital"
LIMITS = Limits(max_bytes=50_000_000, max_pages=100, max_pixels_per_page=40_000_000)
ENGINE = TextLayerEngine()
REPORT = BORN_DIGITAL / "docling__redp5110_sampled.pdf"

HEADER = ["Region", "Units", "Revenue"]
ROWS = [["North", "120", "4,310"], ["South", "95", "3,002"], ["West", "143", "5,120"]]


def _pages(path: Path, dpi: int = 72) -> Iterator[tuple[PageInput, PageResult]]:
    with open_document(path, LIMITS, dpi=dpi, filename=path.name) as doc:
        for page in doc.pages():
            yield page, ENGINE.convert(page)


def _one_page(path: Path, dpi: int = 72) -> PageResult:
    ((_, result),) = list(_pages(path, dpi))
    return result


def _words_and_result(path: Path, number: int) -> tuple[list[str], PageResult]:
    """The words PyMuPDF finds on one page, and the engine's result for it."""
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        for page in doc.pages():
            if page.number == number:
                assert page.pdf_page is not None
                words = [w[4] for w in page.pdf_page.get_text("words")]
                return words, ENGINE.convert(page)
    raise AssertionError(f"no page {number}")


def _ruled_table(
    page: pymupdf.Page,
    top: float,
    rows: Sequence[Sequence[str]],
    widths: Sequence[float],
    *,
    left: float = 72,
    row_height: float = 20,
) -> None:
    """Cells of text in a grid of ruling lines, placed in the displayed page's coordinates
    (on a page with a /Rotate the text is turned with it, so it reads across)."""
    to_page = page.derotation_matrix
    xs = [left]
    for width in widths:
        xs.append(xs[-1] + width)
    bottom = top + len(rows) * row_height
    for r in range(len(rows) + 1):
        y = top + r * row_height
        page.draw_line(pymupdf.Point(xs[0], y) * to_page, pymupdf.Point(xs[-1], y) * to_page)
    for x in xs:
        page.draw_line(pymupdf.Point(x, top) * to_page, pymupdf.Point(x, bottom) * to_page)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            at = pymupdf.Point(xs[c] + 4, top + r * row_height + 14) * to_page
            page.insert_text(at, text, fontsize=10, rotate=page.rotation)


def _save(doc: pymupdf.Document, path: Path) -> Path:
    doc.save(path)
    doc.close()
    return path


def _report_page(tmp_path: Path, rotation: int = 0) -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 80), "Sales by region", fontsize=18)
    page.insert_textbox(
        pymupdf.Rect(72, 100, 540, 140),
        "The table below shows the units sold and the revenue of every region this year.",
        fontsize=10,
    )
    page.insert_text((72, 165), "Table 1. Sales by region", fontsize=10)
    _ruled_table(page, 175, [HEADER, *ROWS], [150, 100, 120])
    page.insert_textbox(
        pymupdf.Rect(72, 280, 540, 320),
        "Revenue grew in every region except the south, where fewer units were sold.",
        fontsize=10,
    )
    page.set_rotation(rotation)
    return _save(doc, tmp_path / f"report-{rotation}.pdf")


def test_a_ruled_table_is_one_table_element_in_reading_order(tmp_path: Path) -> None:
    # given a page with a paragraph, a captioned ruled table and a paragraph below it
    result = _one_page(_report_page(tmp_path))
    # then the table is one element, between the paragraphs, with its caption before it
    kinds = [e.type for e in result.elements]
    assert kinds == [
        ElementType.TITLE,
        ElementType.NARRATIVE_TEXT,
        ElementType.FIGURE_CAPTION,
        ElementType.TABLE,
        ElementType.NARRATIVE_TEXT,
    ]
    (table,) = page_tables(result)
    assert table_grid(table) == [HEADER, *ROWS]
    assert table.text == "\n".join(" ".join(row) for row in [HEADER, *ROWS])
    assert table.text_as_html is not None and table.text_as_html.startswith(
        "<table><thead><tr><th>Region</th>"
    )
    # and its words are not also paragraphs
    others = " ".join(e.text for e in result.elements if e.type is not ElementType.TABLE)
    assert "4,310" not in others and "Revenue grew" in others
    # and its box is the grid's (points = pixels at 72 DPI)
    assert table.bbox == pytest.approx((72, 175, 442, 255), abs=1.5)


def test_a_table_on_a_landscape_page_reads_along_its_rows(tmp_path: Path) -> None:
    # given a portrait page shown in landscape (/Rotate 90) with a table across it
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.set_rotation(90)
    page.insert_text(
        pymupdf.Point(72, 80) * page.derotation_matrix, "Landscape results", fontsize=14, rotate=90
    )
    _ruled_table(page, 100, [HEADER, *ROWS], [250, 150, 200])
    path = _save(doc, tmp_path / "landscape.pdf")
    # when converted at 144 DPI
    result = _one_page(path, dpi=144)
    # then the table reads along its rows, and its box is in the displayed page's pixels
    (table,) = page_tables(result)
    assert table_grid(table) == [HEADER, *ROWS]
    assert (result.width, result.height) == (1584, 1224)
    assert table.bbox == pytest.approx((144, 200, 1344, 360), abs=3)
    assert result.elements[0].text == "Landscape results"


def test_a_cropped_landscape_page_is_left_unsearched_and_unchanged(tmp_path: Path) -> None:
    # the finder rewrites a rotated page's media box while it runs, which would drop a
    # crop box: PyMuPDF's finder leaves such pages alone, so the page is not modified, and
    # the table comes from its horizontal rules and aligned cells (text_tables)
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.set_rotation(90)
    _ruled_table(page, 100, [HEADER, *ROWS], [250, 150, 200])
    page.set_cropbox(pymupdf.Rect(10, 10, 602, 782))
    path = _save(doc, tmp_path / "cropped.pdf")
    with open_document(path, LIMITS, dpi=72, filename=path.name) as opened:
        page_input = next(opened.pages())
        assert page_input.pdf_page is not None
        crop = page_input.pdf_page.cropbox
        result = ENGINE.convert(page_input)
        assert page_input.pdf_page.cropbox == crop
    (table,) = page_tables(result)
    assert table_grid(table) == [HEADER, *ROWS]
    assert "4,310" not in " ".join(e.text for e in result.elements if e is not table)


def test_a_sideways_page_reads_its_table_along_the_rows(tmp_path: Path) -> None:
    # given a page printed sideways on the displayed page (its text runs downwards):
    # PyMuPDF's finder would read the table down its columns, so it is not asked; the
    # table comes from the text turned upright (text_tables), every word once
    result = _one_page(_report_page(tmp_path, rotation=90))
    (table,) = page_tables(result)
    assert table_grid(table) == [HEADER, *ROWS]
    others = " ".join(e.text for e in result.elements if e is not table)
    assert "4,310" not in others and "Revenue grew" in others


def test_merged_header_cells_become_spans(tmp_path: Path) -> None:
    # given a table whose top row has one cell over two columns ("Sales" over Units and
    # Revenue): no ruling line between those two columns in the top row
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    xs, top, height = [72, 222, 322, 442], 100, 20
    for r in range(5):
        page.draw_line((xs[0], top + r * height), (xs[-1], top + r * height), width=0.5)
    for x in (xs[0], xs[1], xs[3]):
        page.draw_line((x, top), (x, top + 4 * height), width=0.5)
    page.draw_line((xs[2], top + height), (xs[2], top + 4 * height), width=0.5)
    rows = [["Region", "Sales", ""], ["", "Units", "Revenue"], *ROWS[:2]]
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            if text:
                page.insert_text((xs[c] + 4, top + r * height + 14), text, fontsize=10)
    result = _one_page(_save(doc, tmp_path / "spans.pdf"))
    # then "Sales" spans two columns and both top rows are header rows
    (table,) = page_tables(result)
    assert table.text_as_html is not None
    assert '<th colspan="2">Sales</th>' in table.text_as_html
    assert table.text_as_html.count("<tr>", 0, table.text_as_html.index("</thead>")) == 2
    # and the markdown keeps the HTML (a pipe table cannot span)
    assert element_markdown(_as_dict(table)) == table.text_as_html


def test_a_header_row_above_the_rules_joins_the_table(tmp_path: Path) -> None:
    # given a table whose header row sits above its top rule, and a caption above that
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 72), "Table 4: Sales by region and quarter", fontsize=10)
    for x, text in zip((76, 226, 326), HEADER, strict=True):
        page.insert_text((x, 94), text, fontsize=10)
    _ruled_table(page, 100, ROWS, [150, 100, 120])
    result = _one_page(_save(doc, tmp_path / "header-above.pdf"))
    # then the header row is the table's first (header) row, the caption stays a caption
    (table,) = page_tables(result)
    assert table_grid(table) == [HEADER, *ROWS]
    assert table.text_as_html is not None and "<thead><tr><th>Region</th>" in table.text_as_html
    assert [e.type for e in result.elements] == [ElementType.FIGURE_CAPTION, ElementType.TABLE]
    assert table.bbox[1] < 90  # the box takes in the header row


def test_two_text_columns_are_not_a_table(tmp_path: Path) -> None:
    # given prose in two columns, once without any lines and once with a rule between the
    # columns and rules above and below them (a common magazine layout)
    words = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. " * 12
    for ruled in (False, True):
        doc = pymupdf.open()
        page = doc.new_page(width=612, height=792)
        page.insert_textbox(pymupdf.Rect(72, 100, 296, 600), words, fontsize=10)
        page.insert_textbox(pymupdf.Rect(316, 100, 540, 600), words, fontsize=10)
        if ruled:
            page.draw_line((72, 95), (540, 95))
            page.draw_line((306, 95), (306, 600))
            page.draw_line((72, 600), (540, 600))
        result = _one_page(_save(doc, tmp_path / f"columns-{ruled}.pdf"))
        # then no table, and the text is there as paragraphs
        assert not page_tables(result)
        assert sum(e.type is ElementType.NARRATIVE_TEXT for e in result.elements) >= 2


def test_a_grid_of_prose_boxes_is_not_a_table(tmp_path: Path) -> None:
    # given a newsletter page: four ruled boxes of prose, two by two
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    prose = "The club met on Tuesday and planned the summer fair for every member. " * 5
    for y in (100, 350, 600):
        page.draw_line((72, y), (540, y))
    for x in (72, 306, 540):
        page.draw_line((x, 100), (x, 600))
    for x0, y0 in ((76, 104), (310, 104), (76, 354), (310, 354)):
        page.insert_textbox(pymupdf.Rect(x0, y0, x0 + 226, y0 + 240), prose, fontsize=10)
    result = _one_page(_save(doc, tmp_path / "boxes.pdf"))
    assert not page_tables(result)
    assert sum(e.text.startswith("The club met") for e in result.elements) == 4


def test_a_ruled_box_around_prose_is_not_a_table(tmp_path: Path) -> None:
    # given a note box: a title bar and a paragraph, each in a ruled cell, beside a
    # narrow cell with an icon letter (a grid of 2 x 2 cells, one holding a paragraph)
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    prose = "Remember to back up the database before you change the access rules. " * 6
    for y in (100, 120, 260):
        page.draw_line((72, y), (540, y))
    for x in (72, 100, 540):
        page.draw_line((x, 100), (x, 260))
    page.insert_text((80, 114), "!", fontsize=10)
    page.insert_text((106, 114), "Note", fontsize=10)
    page.insert_textbox(pymupdf.Rect(106, 124, 536, 256), prose, fontsize=10)
    result = _one_page(_save(doc, tmp_path / "note.pdf"))
    assert not page_tables(result)
    assert any(e.text.startswith("Remember to back up") for e in result.elements)


def test_a_grid_of_empty_cells_is_not_a_table(tmp_path: Path) -> None:
    # given a chart's gridlines with its labels outside the grid
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    _ruled_table(page, 200, [[""] * 5] * 5, [60] * 5, left=100)
    page.insert_text((100, 320), "0     10     20     30     40", fontsize=8)
    page.insert_text((100, 190), "Quarterly volume", fontsize=10)
    result = _one_page(_save(doc, tmp_path / "chart.pdf"))
    assert not page_tables(result)


def _found(texts: Sequence[Sequence[str]], spans: Sequence[CellBox] = ()) -> FoundTable:
    """A found table of 20 x 10 pt cells holding ``texts`` (one line each); ``spans``
    replace the plain cells they cover."""
    n_rows, n_cols = len(texts), len(texts[0])
    covered = {
        (r, c)
        for cell in spans
        for r in range(cell.row, cell.row + cell.rowspan)
        for c in range(cell.col, cell.col + cell.colspan)
    }
    cells = [
        CellBox((c * 20.0, r * 10.0, c * 20.0 + 20, r * 10.0 + 10), r, c)
        for r in range(n_rows)
        for c in range(n_cols)
        if (r, c) not in covered
    ]
    table = FoundTable((0, 0, n_cols * 20.0, n_rows * 10.0), [*cells, *spans], n_rows, n_cols)
    table.texts = {
        (cell.row, cell.col): [texts[cell.row][cell.col]]
        for cell in table.cells
        if texts[cell.row][cell.col]
    }
    return table


def test_what_a_found_table_must_look_like() -> None:
    assert is_table(_found([["a", "b"], ["1", "2"]]))
    assert not is_table(_found([["a", "b", "c"]]))  # one row
    assert not is_table(_found([["a"], ["b"], ["c"]]))  # one column
    sparse = [["a", "", "", ""], ["", "", "", ""], ["", "", "b", ""], ["", "", "", ""]]
    assert not is_table(_found(sparse))  # mostly empty
    assert not is_table(_found([["a", "b"], ["", ""]]))  # text in one row only
    # a frame made mostly of merged cells (a diagram drawn with boxes)
    merged = [CellBox((0, 0, 60, 20), 0, 0, 2, 3), CellBox((0, 20, 60, 40), 2, 0, 2, 3)]
    texts = [["box one", "", ""], ["", "", ""], ["box two", "", ""], ["", "", "x"]]
    assert not is_table(_found(texts, merged))
    # a ruled box around a paragraph: one cell holds most of the text, over many lines
    boxed = _found([["Note", "i"], ["", "x"]])
    boxed.texts[(1, 0)] = ["Remember to back up the database before you change it."] * 6
    assert not is_table(boxed)
    wordy = _found([["word " * 45, "word " * 45], ["word " * 45, "word " * 45]])
    assert not is_table(wordy)  # prose columns, not cells


def test_pages_without_grid_lines_skip_the_table_finder(tmp_path: Path) -> None:
    # the finder costs tens of milliseconds: pages whose line art cannot draw a grid of
    # two rows by two columns never reach it
    doc = pymupdf.open()
    text_only = doc.new_page()
    text_only.insert_text((72, 72), "Only text here", fontsize=10)
    one_box = doc.new_page()
    one_box.draw_rect(pymupdf.Rect(72, 72, 300, 200))
    rules = doc.new_page()
    for y in (100, 140, 180):  # rules without verticals (a booktabs table): not searched
        rules.draw_line((72, y), (400, y))
    grid = doc.new_page()
    _ruled_table(grid, 100, [HEADER, *ROWS], [150, 100, 120])
    assert [len(ruled_regions(page_art(page))) for page in doc] == [0, 0, 0, 1]


def test_icdar_table_cells_match_the_ground_truth() -> None:
    # ICDAR 2013 table competition page eu-002: cells with their row, column and text
    truth = ET.parse(BORN_DIGITAL / "gt" / "icdar2013__eu-002-str.xml")
    cells = [
        (int(c.attrib["start-row"]), int(c.attrib["start-col"]), _norm(c.findtext("content")))
        for c in truth.iter("cell")
    ]
    result = _one_page(BORN_DIGITAL / "icdar2013__eu-002.pdf")
    (table,) = page_tables(result)
    ours = {(c.row, c.col): _norm(c.text) for c in grid_cells(table_grid(table))}
    found = sum(ours.get((row, col)) == text for row, col, text in cells)
    assert len(cells) == 33
    assert found / len(cells) >= 0.95
    # the caption above it and the chart caption are captions
    captions = [e.text for e in result.elements if e.type is ElementType.FIGURE_CAPTION]
    assert "Table 3 - European ABCP issuance" in captions


def test_report_tables_are_found_and_layout_frames_are_not() -> None:
    # pages with ruling lines: four ruled tables (pages 8, 9, 11, 12), and line art the
    # finder takes for tables but that is not one: a code diagram (page 10), a figure of
    # boxes (page 11), the back cover's frame (page 18)
    with open_document(REPORT, LIMITS, dpi=72, filename=REPORT.name) as doc:
        tables = {
            page.number: page_tables(ENGINE.convert(page))
            for page in doc.pages()
            if page.number in (8, 9, 10, 11, 12, 18)
        }
    assert {n: len(t) for n, t in tables.items()} == {8: 1, 9: 1, 10: 0, 11: 1, 12: 1, 18: 0}
    grid = table_grid(tables[12][0])
    assert grid[0] == ["Global variable", "Type", "Description"]
    assert grid[1] == [
        "CLIENT_HOST",
        "VARCHAR(255)",
        "Host name of the current client as returned by the system",
    ]
    assert len(grid) == 10
    columns = table_grid(tables[8][0])
    assert columns[3][2] == (
        "Usage setting: • ALLOWED: The user profile is allowed to use the function. "
        "• DENIED: The user profile is not allowed to use the function."
    )
    usage = table_grid(tables[9][0])
    assert usage[0][:3] == ["User action", "*JOBCTL", "QIBM_DB_SECADM"]
    assert usage[1] == ["SET CURRENT DEGREE (SQL statement)", "X", "", "X", "", ""]


def test_paper_table_with_a_grouped_header() -> None:
    # arXiv 2305.03393 page 9: "TEDs" spans three columns over simple / complex / all,
    # and the other header cells span both header rows
    result = _one_page(BORN_DIGITAL / "docling__2305.03393v1-pg9.pdf")
    (table,) = page_tables(result)
    html = table.text_as_html
    assert html is not None
    head = html[: html.index("</thead>")]
    assert head.count("<tr>") == 2
    assert '<th colspan="3">TEDs</th>' in head
    assert '<th rowspan="2"># enc-layers</th>' in head
    assert "<th>simple</th><th>complex</th><th>all</th>" in head
    grid = table_grid(table)
    assert len(grid) == 6 and len(grid[0]) == 8
    assert grid[2] == [
        *("6", "6", "OTSL HTML"),
        *("0.965 0.969", "0.934 0.927", "0.955 0.955", "0.88 0.857", "2.73 5.39"),
    ]
    captions = [e for e in result.elements if e.type is ElementType.FIGURE_CAPTION]
    assert [c.text[:8] for c in captions] == ["Table 1."]


@pytest.mark.parametrize(
    ("name", "page_number"),
    [("icdar2013__eu-002.pdf", 1), ("docling__redp5110_sampled.pdf", 9)],
)
def test_every_word_of_a_table_page_is_kept_once(name: str, page_number: int) -> None:
    raw_words, result = _words_and_result(BORN_DIGITAL / name, page_number)
    words = [_nfkc(w) for w in raw_words]
    text = _nfkc(" ".join(e.text for e in result.elements))
    for word in words:
        stem = word[:-1] if word.endswith("-") and len(word) > 1 else word
        assert stem in text, f"{word!r} is missing"
    # each character once: as many come out as went in (hyphen repair may drop a few)
    chars_in = sum(len(w) for w in words)
    assert chars_in - 5 <= len(text.replace(" ", "").replace("\n", "")) <= chars_in


def test_a_simple_table_is_a_pipe_table_in_markdown(tmp_path: Path) -> None:
    (table,) = page_tables(_one_page(_report_page(tmp_path)))
    assert element_markdown(_as_dict(table)) == (
        "| Region | Units | Revenue |\n"
        "| --- | --- | --- |\n"
        "| North | 120 | 4,310 |\n"
        "| South | 95 | 3,002 |\n"
        "| West | 143 | 5,120 |"
    )


def test_markdown_table_cells_that_look_like_tags_stay_visible() -> None:
    html = "<table><thead><tr><th>Clause</th></tr></thead><tbody>"
    html += "<tr><td>ON &lt;table name&gt;</td></tr></tbody></table>"
    element = {
        "type": "Table",
        "text": "Clause\nON <table name>",
        "metadata": {"text_as_html": html},
    }
    assert element_markdown(element) == "| Clause |\n| --- |\n| ON &lt;table name> |"


def test_a_table_without_html_is_its_text_in_markdown() -> None:
    element = {"type": "Table", "text": "a b\nc d", "metadata": {}}
    assert element_markdown(element) == "a b\nc d"


def _as_dict(element: Element) -> dict[str, object]:
    return {
        "type": element.type.value,
        "text": element.text,
        "metadata": {"text_as_html": element.text_as_html},
    }


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)
