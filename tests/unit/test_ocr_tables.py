"""Tables on OCR pages: rules from ink, grids from line boxes, and text that must stay text.

Everything here runs on plain line boxes and synthetic masks (no OCR); the slow test at the
end reads a rendered table page with the real engine and scores it against the ICDAR 2013
ground truth.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.engines.base import ElementType
from handler.engines.ocr_layout import OcrLine, lines_to_elements
from handler.engines.ocr_rulings import PageInk, Ruling, find_rulings
from handler.engines.ocr_table_grid import build_grid, is_number
from handler.engines.ocr_tables import find_tables
from handler.engines.rapidocr_engine import RapidOcrEngine
from handler.engines.table_html import grid_cells, html_grid

H = 30.0  # line box height of the synthetic pages
DATA = Path(__file__).resolve().parent.parent / "data" / "born_digital"


def _line(text: str, x0: float, y0: float, x1: float, h: float = H) -> OcrLine:
    return OcrLine(text, 0.95, x0, y0, x1, y0 + h, h)


def _hrule(y: float, x0: float, x1: float, thickness: float = 2.0) -> Ruling:
    return Ruling(True, y, x0, x1, thickness)


def _vrule(x: float, y0: float, y1: float) -> Ruling:
    return Ruling(False, x, y0, y1, 2.0)


def _lattice(xs: Sequence[float], ys: Sequence[float]) -> list[Ruling]:
    """A full grid of rules through the given column and row boundaries."""
    return [_hrule(y, xs[0], xs[-1]) for y in ys] + [_vrule(x, ys[0], ys[-1]) for x in xs]


def _cell_lines(rows: Sequence[Sequence[str]], xs: Sequence[float], ys: Sequence[float]):
    """One line per non-empty cell, centred in the lattice cell."""
    lines = []
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            if text:
                cx = (xs[c] + xs[c + 1]) / 2
                cy = (ys[r] + ys[r + 1]) / 2
                w = 14 * len(text)
                lines.append(_line(text, cx - w / 2, cy - H / 2, cx + w / 2))
    return lines


def _table_elements(lines, rulings=(), width=1600, height=2000):
    ink = _ink(rulings, width, height) if rulings else None
    return lines_to_elements(lines, width, height, ink=ink)


def _ink(rulings: Sequence[Ruling], width: int, height: int) -> PageInk:
    blank = np.zeros((height, width), dtype=bool)
    return PageInk(blank, blank, 1.0, 1.0, list(rulings), [])


def _grid(html: str | None) -> list[list[str | None]]:
    assert html is not None
    parsed = html_grid(html)
    assert parsed is not None
    return parsed[0]


# -- rules from ink --------------------------------------------------------------------------------


def test_rules_are_long_thin_runs_of_ink() -> None:
    dark = np.zeros((400, 600), dtype=bool)
    dark[100:102, 50:550] = True  # a table rule
    dark[50:350, 300:302] = True  # a column rule
    dark[200:260, 80:200] = True  # a filled bar: too thick
    dark[300:330, 400:520:6] = True  # glyph strokes: too short
    dark[150, 350:380] = True  # an underline shorter than the shortest rule
    found = find_rulings(dark, line_height=30)
    horizontal = [(r.pos, r.lo, r.hi) for r in found if r.horizontal]
    vertical = [(r.pos, r.lo, r.hi) for r in found if not r.horizontal]
    assert horizontal == [(101.0, 50.0, 550.0)]
    assert vertical == [(301.0, 50.0, 350.0)]


def test_a_broken_scanned_rule_is_joined() -> None:
    dark = np.zeros((200, 800), dtype=bool)
    dark[100:102, 50:400] = True
    dark[100:102, 408:750] = True  # an 8-pixel break
    (rule,) = find_rulings(dark, line_height=30)
    assert (rule.lo, rule.hi) == (50.0, 750.0)


# -- ruled grids -----------------------------------------------------------------------------------


def test_lattice_table_becomes_one_table_element_in_reading_order() -> None:
    xs, ys = [200, 500, 700, 900], [300, 350, 400, 450]
    rows = [["", "2023", "2024"], ["Revenue", "12.5", "13.1"], ["Costs", "8.0", ""]]
    lines = [
        _line("A paragraph above the table that runs across the page width here.", 200, 200, 1400),
        *_cell_lines(rows, xs, ys),
        _line("A paragraph below the table that also runs across the width.", 200, 500, 1400),
    ]
    elements = _table_elements(lines, _lattice(xs, ys))
    assert [e.type for e in elements] == [
        ElementType.NARRATIVE_TEXT,
        ElementType.TABLE,
        ElementType.NARRATIVE_TEXT,
    ]
    table = elements[1]
    assert _grid(table.text_as_html) == [
        ["", "2023", "2024"],
        ["Revenue", "12.5", "13.1"],
        ["Costs", "8.0", ""],
    ]
    assert table.text_as_html is not None and table.text_as_html.startswith("<table><thead>")
    assert table.text == "2023 2024\nRevenue 12.5 13.1\nCosts 8.0"
    assert table.bbox == (200, 300, 900, 450)


def test_header_over_sub_columns_spans_them_where_the_rule_stops() -> None:
    # "Scores" sits over three sub-columns whose rules start below it
    top, mid, bottom = 100, 200, 340
    rules = [
        _hrule(top, 100, 750),
        _hrule(150, 300, 750),  # under "Scores" only
        _hrule(mid, 100, 750),
        _hrule(270, 100, 750),
        _hrule(bottom, 100, 750),
        _vrule(300, top, bottom),
        _vrule(450, 150, bottom),
        _vrule(600, 150, bottom),
    ]
    lines = [
        _line("Model", 150, 135, 250),
        _line("Scores", 480, 110, 570),
        _line("a", 365, 160, 385),
        _line("b", 515, 160, 535),
        _line("c", 665, 160, 685),
        _line("Base", 150, 220, 230),
        _line("0.91", 345, 220, 405),
        _line("0.82", 495, 220, 555),
        _line("0.77", 645, 220, 705),
        _line("Large", 150, 290, 240),
        _line("0.95", 345, 290, 405),
        _line("0.88", 495, 290, 555),
        _line("0.81", 645, 290, 705),
    ]
    (table,) = find_tables(lines, H, rulings=rules)
    assert table.grid.cells == [
        ["Model", "Scores", None, None],
        [None, "a", "b", "c"],
        ["Base", "0.91", "0.82", "0.77"],
        ["Large", "0.95", "0.88", "0.81"],
    ]
    assert table.grid.header_rows == 2
    html = table.element().text_as_html
    assert html is not None
    assert '<th rowspan="2">Model</th><th colspan="3">Scores</th>' in html


def test_a_span_the_grid_form_cannot_express_is_left_out() -> None:
    # "Kind" is centred beside two header rows, but in the second row the cell to its
    # left starts a cell of its own: table_html would widen that one instead
    xs = [100, 250, 400, 550]
    rules = [_hrule(100, 100, 550), _hrule(180, 100, 550), _hrule(230, 100, 550)]
    rules += [_vrule(x, 100, 230) for x in xs]
    lines = [
        _line("#", 165, 105, 185), _line("Kind", 290, 125, 360), _line("TED", 440, 105, 520),
        _line("layers", 130, 145, 220), _line("all", 450, 145, 500),
        _line("6", 165, 190, 185), _line("OTSL", 290, 190, 360), _line("0.88", 450, 190, 510),
    ]  # fmt: skip
    (table,) = find_tables(lines, H, rulings=rules)
    assert table.grid.cells == [["#", "Kind", "TED"], ["layers", "", "all"], ["6", "OTSL", "0.88"]]


def test_label_centred_beside_two_rows_spans_them() -> None:
    xs = [100, 250, 400, 550]
    rules = [
        _hrule(100, 100, 550),
        _hrule(150, 100, 550),
        _hrule(230, 100, 550),  # a pair of rows between rules, no rule inside
        _hrule(310, 100, 550),
        *[_vrule(x, 100, 310) for x in xs],
    ]
    lines = [
        _line("Size", 140, 110, 210),
        _line("Kind", 290, 110, 360),
        _line("Score", 440, 110, 520),
        _line("6", 165, 175, 185),  # centred beside "OTSL" and "HTML"
        _line("OTSL", 290, 155, 360),
        _line("0.88", 450, 155, 510),
        _line("HTML", 290, 192, 360),
        _line("0.86", 450, 192, 510),
        _line("4", 165, 255, 185),
        _line("OTSL", 290, 235, 360),
        _line("0.85", 450, 235, 510),
        _line("HTML", 290, 272, 360),
        _line("0.84", 450, 272, 510),
    ]
    (table,) = find_tables(lines, H, rulings=rules)
    assert table.grid.cells == [
        ["Size", "Kind", "Score"],
        ["6", "OTSL", "0.88"],
        [None, "HTML", "0.86"],
        ["4", "OTSL", "0.85"],
        [None, "HTML", "0.84"],
    ]
    cells = grid_cells(table.grid.cells)
    assert [(c.text, c.rowspan) for c in cells if c.rowspan > 1] == [("6", 2), ("4", 2)]


def test_box_run_across_a_column_rule_is_split_at_its_word_gap() -> None:
    xs, ys = [100, 300, 500, 700], [100, 150, 200, 250]
    rows = [["Item", "Q1", "Q2"], ["Apples", "", ""], ["Pears", "7.5", "8.25"]]
    lines = [ln for ln in _cell_lines(rows, xs, ys)]
    lines.append(_line("12.5 13.75", 340, 160, 470 + 200))  # one box over two cells
    (table,) = find_tables(lines, H, rulings=_lattice(xs, ys))
    assert table.grid.cells[1] == ["Apples", "12.5", "13.75"]


def test_wrapped_lines_in_a_ruled_row_are_one_cell() -> None:
    xs, ys = [100, 300, 900], [100, 150, 260, 310]
    lines = [
        _line("Name", 150, 110, 230),
        _line("Meaning", 500, 110, 620),
        _line("USAGE", 150, 115 + 45, 240),
        _line("Usage setting: the profile may use the", 320, 160, 880),
        _line("function, or it may not.", 320, 195, 700),
        _line("TYPE", 150, 270, 220),
        _line("Type of profile.", 320, 270, 560),
    ]
    (table,) = find_tables(lines, H, rulings=_lattice(xs, ys))
    assert table.grid.cells == [
        ["Name", "Meaning"],
        ["USAGE", "Usage setting: the profile may use the function, or it may not."],
        ["TYPE", "Type of profile."],
    ]


def test_booktabs_table_takes_its_header_from_the_rule_under_it() -> None:
    rules = [_hrule(95, 100, 700), _hrule(140, 100, 700), _hrule(290, 100, 700)]
    lines = [
        _line("Method", 110, 105, 220),
        _line("F1", 420, 105, 460),
        _line("Time", 600, 105, 680),
    ]
    rows = [("ours", "91.2", "3.1"), ("base", "88.0", "4.5"), ("old", "80.4", "9.0"),
            ("tiny", "75.9", "1.2")]  # fmt: skip
    for i, (name, f1, t) in enumerate(rows):
        y = 150 + 35 * i
        lines += [_line(name, 110, y, 180), _line(f1, 420, y, 480), _line(t, 620, y, 670)]
    (table,) = find_tables(lines, H, rulings=rules)
    assert table.grid.header_rows == 1
    assert table.grid.cells[0] == ["Method", "F1", "Time"]
    assert table.grid.cells[-1] == ["tiny", "75.9", "1.2"]


# -- unruled tables --------------------------------------------------------------------------------


def test_unruled_table_with_a_column_of_numbers() -> None:
    lines = [_line("Country", 100, 100, 230), _line("Share", 600, 100, 680),
             _line("Growth", 800, 100, 900)]  # fmt: skip
    data = [("France", "21.4%", "1.2"), ("Germany", "30.1%", "-0.4"), ("Italy", "12.0%", "0.8"),
            ("Spain", "9.7%", "2.3")]  # fmt: skip
    for i, (name, share, growth) in enumerate(data):
        y = 140 + 40 * i
        lines += [_line(name, 100, y, 100 + 16 * len(name)), _line(share, 600, y, 690),
                  _line(growth, 820, y, 880)]  # fmt: skip
    (element,) = lines_to_elements(lines, 1200, 1600)
    assert element.type is ElementType.TABLE
    assert _grid(element.text_as_html) == [
        ["Country", "Share", "Growth"],
        ["France", "21.4%", "1.2"],
        ["Germany", "30.1%", "-0.4"],
        ["Italy", "12.0%", "0.8"],
        ["Spain", "9.7%", "2.3"],
    ]
    assert element.text_as_html is not None and "<thead>" in element.text_as_html


def test_two_columns_of_body_text_stay_text() -> None:
    words = "the river runs past the old mill and into the valley below the hills"
    left = [_line(f"{i} {words}", 100, 100 + 36 * i, 560) for i in range(8)]
    right = [_line(f"{words} {i}", 640, 100 + 36 * i, 1100) for i in range(8)]
    elements = lines_to_elements(left + right, 1200, 1600)
    assert ElementType.TABLE not in {e.type for e in elements}


def test_numbered_list_with_markers_boxed_apart_stays_text() -> None:
    lines = []
    for i in range(1, 6):
        y = 100 + 40 * i
        lines += [_line(f"{i}.", 100, y, 130), _line(f"Step number {i} of the recipe", 160, y, 600)]
    amounts = []  # a numbered list of amounts: a column of numbers, still a list
    for i in range(1, 6):
        y = 400 + 40 * i
        amounts += [_line(f"{i}.", 100, y, 130), _line(f"{20 * i}.50", 400, y, 480)]
    for group in (lines, amounts):
        elements = lines_to_elements(group, 1200, 1600)
        assert ElementType.TABLE not in {e.type for e in elements}


def test_label_value_form_stays_text() -> None:
    pairs = [("Invoice no.:", "20451"), ("Date:", "12.03.2024"), ("Amount:", "1 250.00"),
             ("Due:", "30"), ("Account:", "4711")]  # fmt: skip
    lines = []
    for i, (label, value) in enumerate(pairs):
        y = 100 + 40 * i
        lines += [_line(label, 100, y, 100 + 15 * len(label)), _line(value, 400, y, 540)]
    elements = lines_to_elements(lines, 1200, 1600)
    assert ElementType.TABLE not in {e.type for e in elements}


def test_table_of_contents_stays_text() -> None:
    entries = [("1.1 Security fundamentals . . .", "2"), ("1.2 Current state of security", "2"),
               ("1.3 Security controls", "3"), ("2.1 Roles", "8"),
               ("2.2 Separation of duties", "10")]  # fmt: skip
    lines = []
    for i, (entry, page) in enumerate(entries):
        y = 100 + 40 * i
        lines += [_line(entry, 150, y, 150 + 14 * len(entry)), _line(page, 1100, y, 1130)]
    elements = lines_to_elements(lines, 1200, 1600)
    assert ElementType.TABLE not in {e.type for e in elements}


def test_framed_paragraph_ruled_columns_of_prose_and_code_listing_stay_text() -> None:
    frame = _lattice([100, 1100], [100, 300])
    para = [
        _line("Note: a framed paragraph is a text box, not a table, however many", 120, 120, 1080),
        _line("lines it has and however its words happen to line up.", 120, 160, 900),
    ]
    # a newsletter: two columns of prose in a frame with a rule between them
    columns = _lattice([100, 600, 1100], [350, 560])
    prose = "the council met again on tuesday to discuss the plans for"
    newsletter = [_line(f"{prose} {i}", 110, 360 + 36 * i, 590) for i in range(5)]
    newsletter += [_line(f"{i} {prose}", 610, 360 + 36 * i, 1090) for i in range(5)]
    listing_rules = [_hrule(700, 100, 1100), _hrule(900, 100, 1100)]
    listing = [
        _line("SELECT", 110, 710, 210), _line("function_id,", 300, 710, 480),
        _line("user_name", 300, 745, 440),
        _line("FROM", 110, 780, 180), _line("function_usage", 300, 780, 510),
        _line("WHERE", 110, 815, 200), _line("usage = 'ALLOWED'", 300, 815, 560),
    ]  # fmt: skip
    rules = [*frame, *columns, *listing_rules]
    elements = _table_elements(para + newsletter + listing, rules)
    assert ElementType.TABLE not in {e.type for e in elements}


def test_chart_with_gridlines_is_no_table() -> None:
    # a grid of lines with a value in each cell, and bars: ink that is neither text nor rule
    xs, ys = [200, 450, 700, 950], [100, 200, 300, 400]
    rows = [["30", "45", "60"], ["20", "35", "50"], ["10", "25", "40"]]
    lines = _cell_lines(rows, xs, ys)
    rules = _lattice(xs, ys)
    height, width = 1000, 1200
    dark = np.zeros((height, width), dtype=bool)
    dark[220:400, 250:330] = True  # bars
    dark[180:400, 500:580] = True
    dark[130:400, 760:840] = True
    ink = PageInk(dark, dark, 1.0, 1.0, rules, [])
    assert find_tables(lines, H, rulings=rules, stray_ink=ink.stray_ink) == []
    assert len(find_tables(lines, H, rulings=rules)) == 1  # the same grid without the bars


def test_numbers_are_told_from_words() -> None:
    assert all(is_number(t) for t in ["12", "-4.5%", "(12)", "1 103", "€ 3,50", "0.88"])
    assert not any(is_number(t) for t in ["Q1", "2.1 Roles", "VARCHAR(30)", "n/a", ""])


def test_grid_needs_two_columns_and_two_rows() -> None:
    lines = [_line("just one line in a box", 120, 120, 500)]
    assert build_grid(lines, (100, 100, 600, 200), _lattice([100, 600], [100, 200]), H) is None


# -- a real page -----------------------------------------------------------------------------------


def _ground_truth_cells(path: Path) -> list[tuple[int, int, str]]:
    root = ET.parse(path).getroot()
    return [
        (int(cell.get("start-row", -1)), int(cell.get("start-col", -1)),
         " ".join((cell.findtext("content") or "").split()))
        for cell in root.iter("cell")
    ]  # fmt: skip


@pytest.fixture(scope="module")
def engine() -> RapidOcrEngine:
    return RapidOcrEngine()


def _scan(engine: RapidOcrEngine, pdf: Path, tmp_path: Path):
    """A PDF's first page rendered at 200 DPI and read as a scanned image."""
    import pymupdf

    with pymupdf.open(pdf) as doc:
        png = tmp_path / f"{pdf.stem}.png"
        doc[0].get_pixmap(dpi=200).save(png)
    limits = Limits(max_bytes=64 * 1024 * 1024, max_pages=1, max_pixels_per_page=50_000_000)
    with open_document(png, limits, dpi=200, filename=png.name) as page_doc:
        return engine.convert(next(page_doc.pages()))


@pytest.mark.slow
def test_rendered_icdar_table_page_cells(engine: RapidOcrEngine, tmp_path: Path) -> None:
    """The ICDAR 2013 eu-002 page read as a scan: the share of ground-truth cells found at
    the right row and column with the right text."""
    result = _scan(engine, DATA / "icdar2013__eu-002.pdf", tmp_path)
    tables = [e for e in result.elements if e.type is ElementType.TABLE]
    assert len(tables) == 1
    cells = grid_cells(_grid(tables[0].text_as_html))
    found = {(c.row, c.col, " ".join(c.text.split())) for c in cells}
    truth = _ground_truth_cells(DATA / "gt" / "icdar2013__eu-002-str.xml")
    share = sum(cell in found for cell in truth) / len(truth)
    assert share >= 0.9  # measured: 1.0 (33 of 33 cells)
    caption = next(e for e in result.elements if e.text.startswith("Table 3"))
    assert caption.type is ElementType.FIGURE_CAPTION
    # the table's lines are not also paragraphs; the chart below it is an image
    assert not any(e.text in {"Q1", "166.7"} for e in result.elements if e is not tables[0])
    assert [e.type for e in result.elements].count(ElementType.IMAGE) == 1


@pytest.mark.slow
def test_rendered_paper_table_with_spans(engine: RapidOcrEngine, tmp_path: Path) -> None:
    """A booktabs-like table with column rules, a header over sub-columns and labels
    beside pairs of rows (docling's 2305.03393v1 page 9) read as a scan."""
    result = _scan(engine, DATA / "docling__2305.03393v1-pg9.pdf", tmp_path)
    (table,) = [e for e in result.elements if e.type is ElementType.TABLE]
    grid = _grid(table.text_as_html)
    assert len(grid[0]) == 8 and len(grid) == 10
    assert grid[0][3:6] == ["TEDs", None, None]
    assert grid[2][:3] == ["6", "6", "OTSL"] and grid[3][:3] == [None, None, "HTML"]
    assert table.text_as_html is not None and table.text_as_html.count("<tr>") == 10
    paragraphs = [e for e in result.elements if e.type is ElementType.NARRATIVE_TEXT]
    assert any("We picked the model parameter" in e.text for e in paragraphs)
