"""Tables of a PDF page's text layer, found from their ruling lines (PyMuPDF's table finder).

PyMuPDF's ``find_tables`` reads every character of the area it searches and guesses a
header from the text above each table (10-200 ms a page on the corpus, up to 0.5 s when a
caption sits right above a table on a dense page), so it runs only where the page's line
art could draw a grid:

1. :func:`page_art` reads the page's vector graphics once (``get_cdrawings``: about 0.3 ms
   on most pages) and keeps their axis-parallel strokes: lines, rules drawn as thin
   rectangles, and the sides of other rectangles (frames and shaded cells), collinear
   pieces joined (:func:`shapes` gives the boxes of what else it draws, for
   :mod:`handler.engines.text_tables` and :mod:`handler.engines.text_figures`).
   :func:`ruled_regions` groups crossing strokes; a group whose strokes, with its
   bounding box's sides, give at least ``MIN_GRID_LINES`` distinct rows and columns of
   lines (two rows by two columns of cells) is a region worth searching.
2. :func:`find_tables` runs the finder (strategy ``lines``) on each region with text in at
   least two of its rows and two of its columns, and keeps the geometry of what it finds:
   each cell's box, row, column and spans. A header row PyMuPDF finds above the ruled
   area (``Table.header.external``) is kept as the first row only when its words each
   fall in one column, fill at least two, and do not start like a caption.
3. :func:`fill_tables` gives each character of the text layer (``rawdict``) to the cell its
   centre lies in, so every character ends up either in one table cell or in the text
   outside the tables, never both and never neither; a cell's lines are joined like
   paragraph lines (hyphenation repaired).
4. :func:`is_table` keeps a table only when it looks like one: false positives hurt more
   than misses, so a "table" of one row or one column, one whose cells are mostly empty
   or merged (chart gridlines, diagrams), or a ruled box around prose (a note box, two
   text columns with a rule between them, a page border) stays text.

Coordinates are those of the unrotated page, like PyMuPDF's text and drawings; the finder
works on the displayed page, so its cells are moved back. Tables drawn without vertical
rules (booktabs style) or without any rules are left to :mod:`handler.engines.text_tables`
(the finder's ``text`` strategy cuts words in two on the corpus's only such table and
would take aligned prose for tables).
"""

from __future__ import annotations

import functools
import inspect
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymupdf

from handler.engines.captions import starts_like_caption
from handler.engines.paragraphs import join_lines
from handler.engines.text_lines import clean_line_text

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in unrotated page points

SNAP = 3.0  # points: strokes this close are one line (PyMuPDF's snap and join tolerance)
MIN_RULE_LENGTH = 6.0  # points: shorter strokes are glyph parts, ticks or bullets
MIN_GRID_LINES = 3  # horizontal and vertical lines a grid of 2 x 2 cells needs at least
MAX_RULES = 4000  # strokes on a page beyond which it is a map or a plan, not a table
REGION_PAD = 2.0  # points around a region, so text touching its border is searched too
WHITE = 0.95  # a fill whose every colour component is at least this is a white background

MIN_ROWS = 2
MIN_COLUMNS = 2
# Share of the grid's positions that must hold text: a grid of empty cells is a form, a
# chart's gridlines or a diagram.
MIN_FILLED_SHARE = 0.4
# Share of the grid's positions that must be cells of their own (not covered by a span):
# a grid made mostly of merged cells is a diagram or a layout frame.
MIN_REAL_CELL_SHARE = 0.5
# A ruled box around prose: one cell holds most of the table's text in a paragraph.
PROSE_CELL_SHARE = 0.5  # of the table's characters in its largest cell
PROSE_CELL_LINES = 5  # lines in that cell
MAX_MEAN_CELL_WORDS = 40  # words per filled cell: beyond, the "cells" are text columns


@dataclass(frozen=True, slots=True)
class CellBox:
    """One cell of a found table: its box and where it sits in the grid."""

    bbox: Box
    row: int
    col: int
    rowspan: int = 1
    colspan: int = 1


@dataclass(slots=True)
class FoundTable:
    """A table's geometry as the finder saw it, then its text (:func:`fill_tables`)."""

    bbox: Box
    cells: list[CellBox]
    n_rows: int
    n_cols: int
    header: list[CellBox] = field(default_factory=list)  # a header row above the rules
    texts: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # lines per cell
    header_texts: dict[int, list[str]] = field(default_factory=dict)
    header_rows: int = 0

    def grid(self) -> list[list[str | None]]:
        """Rows of cell texts, the header row above the rules first if there is one;
        ``None`` where a span covers the position (table_html's convention), ``""`` for an
        empty cell."""
        body = _span_grid(self.cells, self.n_rows, self.n_cols, self.texts)
        if not self.header:
            return body
        top = {(0, c): lines for c, lines in self.header_texts.items()}
        return _span_grid(self.header, 1, self.n_cols, top) + body

    def outer_bbox(self) -> Box:
        """The table with its header row above the rules."""
        return _union([self.bbox, *(cell.bbox for cell in self.header)])


@dataclass(frozen=True, slots=True)
class Region:
    """An area whose strokes could form a grid, with the positions of its lines."""

    bbox: Box
    rows: tuple[float, ...]  # y of its horizontal lines (and its box's top and bottom)
    cols: tuple[float, ...]  # x of its vertical lines (and its box's sides)


@dataclass(frozen=True, slots=True)
class PageArt:
    """The page's line art (``get_cdrawings``, read once), in unrotated page points.

    ``horizontal`` and ``vertical`` are its axis-parallel strokes, collinear pieces joined
    (empty on a page with more than ``MAX_RULES``: a map or a plan); ``drawings`` are the
    paths as read (:func:`shapes` finds the rest of what they draw).
    """

    horizontal: list[Box]
    vertical: list[Box]
    drawings: list[dict[str, Any]]


def page_art(pdf_page: Any) -> PageArt:
    """The line art of ``pdf_page`` (see :class:`PageArt`)."""
    drawings = pdf_page.get_cdrawings()
    horizontal, vertical = _rules(drawings)
    if len(horizontal) + len(vertical) > MAX_RULES:
        return PageArt([], [], drawings)
    return PageArt(_joined(horizontal, True), _joined(vertical, False), drawings)


def ruled_regions(art: PageArt) -> list[Region]:
    """Areas of the page whose strokes could form a grid (see the module docstring)."""
    horizontal, vertical = art.horizontal, art.vertical
    if not horizontal or not vertical:
        return []
    regions = []
    for h_rules, v_rules in _crossing_groups(horizontal, vertical):
        x0 = min(r[0] for r in h_rules + v_rules)
        y0 = min(r[1] for r in h_rules + v_rules)
        x1 = max(r[2] for r in h_rules + v_rules)
        y1 = max(r[3] for r in h_rules + v_rules)
        # The finder frames each group of strokes with its bounding box, so the box's
        # sides count as lines too (an open-sided table still has its outer columns).
        rows = _distinct([y0, y1, *(r[1] for r in h_rules)])
        cols = _distinct([x0, x1, *(r[0] for r in v_rules)])
        if len(rows) >= MIN_GRID_LINES and len(cols) >= MIN_GRID_LINES:
            box = (x0 - REGION_PAD, y0 - REGION_PAD, x1 + REGION_PAD, y1 + REGION_PAD)
            regions.append(Region(box, rows, cols))
    return regions


def _distinct(values: list[float]) -> tuple[float, ...]:
    """Sorted positions, those within ``SNAP`` of the previous one dropped."""
    out: list[float] = []
    for value in sorted(values):
        if not out or value - out[-1] > SNAP:
            out.append(value)
    return tuple(out)


def find_tables(
    pdf_page: Any, regions: Sequence[Region], raw_blocks: list[dict[str, Any]]
) -> list[FoundTable]:
    """The finder's tables in the ``regions`` that hold text (``raw_blocks``: the page's
    ``dict`` or ``rawdict`` blocks), as geometry; none where the finder fails."""
    boxes = [r.bbox for r in regions if _text_spreads(r, raw_blocks)]
    if not boxes:
        return []
    # The finder reads a page with a /Rotate as displayed: it rewrites the page while it
    # runs (content, rotation and media box, restored after), so the region goes in and
    # the cells come out in displayed coordinates, and it reads the line art itself.
    # Restoring the media box drops a crop box, which would move every coordinate of the
    # page after it: such pages are not searched. Unrotated pages are left untouched, and
    # their line art is read once for all regions.
    rotated = pdf_page.rotation != 0
    if rotated and pdf_page.cropbox != pdf_page.mediabox:
        return []
    _quiet()
    drawings = [] if rotated else pdf_page.get_drawings()
    found: list[FoundTable] = []
    for region in boxes:
        clip = pymupdf.Rect(region) * pdf_page.rotation_matrix if rotated else pymupdf.Rect(region)
        options = dict(_finder_options())
        if not rotated:
            # The finder appends to a path's items (closing paths): each call gets copies.
            options["paths"] = [
                {**p, "items": list(p["items"])} for p in drawings if _touches(region, p["rect"])
            ]
        finder = pdf_page.find_tables(clip=clip, strategy="lines", **options)
        if finder is None:  # PyMuPDF reports its own exceptions and returns None
            continue
        for table in finder.tables:
            geometry = _geometry(table)
            if geometry is None:
                continue
            if rotated:
                geometry = _unrotated(geometry, pdf_page.derotation_matrix)
            if not any(_overlap(geometry.bbox, t.bbox) for t in found):
                found.append(geometry)
    return found


def _unrotated(table: FoundTable, matrix: Any) -> FoundTable:
    """``table`` with its boxes moved from displayed to unrotated page coordinates."""

    def move(box: Box) -> Box:
        rect = pymupdf.Rect(box) * matrix
        return (rect.x0, rect.y0, rect.x1, rect.y1)

    def moved(cells: list[CellBox]) -> list[CellBox]:
        return [CellBox(move(c.bbox), c.row, c.col, c.rowspan, c.colspan) for c in cells]

    return FoundTable(
        move(table.bbox), moved(table.cells), table.n_rows, table.n_cols, moved(table.header)
    )


def _touches(region: Box, rect: Any) -> bool:
    """``rect`` (a stroke's box, possibly flat) meets ``region``."""
    return (
        rect.x0 <= region[2]
        and region[0] <= rect.x1
        and rect.y0 <= region[3]
        and region[1] <= rect.y1
    )


def _text_spreads(region: Region, raw_blocks: list[dict[str, Any]]) -> bool:
    """Text lines inside ``region`` lie in at least two of its rows and two of its
    columns (a line counts for every column it runs across): a table's text does, a
    drawing's labels mostly do not."""
    x0, y0, x1, y1 = region.bbox
    rows: set[int] = set()
    cols: set[int] = set()
    for block in raw_blocks:
        for line in block.get("lines", ()):
            bx0, by0, bx1, by1 = line["bbox"]
            middle = (by0 + by1) / 2
            if not (x0 <= (bx0 + bx1) / 2 <= x1 and y0 <= middle <= y1):
                continue
            rows.add(bisect_right(region.rows, middle))
            first = bisect_right(region.cols, bx0 + SNAP)
            cols.update(range(first, max(first, bisect_right(region.cols, bx1 - SNAP)) + 1))
    return len(rows) >= MIN_ROWS and len(cols) >= MIN_COLUMNS


def fill_tables(tables: list[FoundTable], raw_blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give the characters of ``raw_blocks`` (``rawdict`` blocks) to the cells they lie in.

    Returns the blocks without those characters, in ``dict`` form (spans with ``text``),
    for the text outside the tables. A header row above a table is kept only when no word
    of it crosses a column border and it fills at least two columns.
    """
    for table in tables:
        table.texts, table.header_texts = {}, {}
        if table.header and not _header_fits(*_header_words(table, raw_blocks)):
            table.header = []
    outers = [table.outer_bbox() for table in tables]
    pieces: dict[tuple[int, str, int, int], list[tuple[Box, str]]] = {}
    out: list[dict[str, Any]] = []
    for block in raw_blocks:
        lines = []
        for line in block.get("lines", ()):
            spans = []
            taken: dict[tuple[int, str, int, int], list[dict[str, Any]]] = {}
            for span in line["spans"]:
                kept = []
                for char in span.get("chars", ()):
                    place = _place(tables, outers, char["bbox"])
                    if place is None:
                        kept.append(char)
                    else:
                        taken.setdefault(place, []).append(char)
                if kept:
                    spans.append(_span(span, kept))
            for place, chars in taken.items():
                box = _union(c["bbox"] for c in chars)
                pieces.setdefault(place, []).append((box, "".join(c["c"] for c in chars)))
            if spans:
                lines.append({**line, "spans": spans, "bbox": _union(s["bbox"] for s in spans)})
        if lines:
            out.append({**block, "lines": lines})
    for (t, kind, row, col), found in pieces.items():
        lines_of_cell = _cell_lines(found)
        if not lines_of_cell:
            continue
        if kind == "head":
            tables[t].header_texts[col] = lines_of_cell
        else:
            tables[t].texts[(row, col)] = lines_of_cell
    for table in tables:
        table.header_rows = _header_rows(table)
    return out


def is_table(table: FoundTable) -> bool:
    """The found table looks like a table, not a layout frame (module docstring, step 4)."""
    grid = table.grid()
    n_rows = len(grid)
    n_cols = max((len(row) for row in grid), default=0)
    positions = n_rows * n_cols
    if n_rows < MIN_ROWS or n_cols < MIN_COLUMNS or not positions:
        return False
    filled = [cell for row in grid for cell in row if cell]
    real = sum(cell is not None for row in grid for cell in row)
    rows_with_text = sum(any(row) for row in grid)
    cols_with_text = sum(any(row[c] for row in grid if c < len(row)) for c in range(n_cols))
    if rows_with_text < MIN_ROWS or cols_with_text < MIN_COLUMNS:
        return False
    if len(filled) < MIN_FILLED_SHARE * positions or real < MIN_REAL_CELL_SHARE * positions:
        return False
    words = [len(cell.split()) for cell in filled]
    if sum(words) > MAX_MEAN_CELL_WORDS * len(filled):
        return False
    return not _prose_box(table)


def _prose_box(table: FoundTable) -> bool:
    """Most of the table's text is one paragraph in one cell."""
    sizes = {key: sum(len(line) for line in lines) for key, lines in table.texts.items()}
    total = sum(sizes.values())
    if not total:
        return False
    key = max(sizes, key=lambda k: sizes[k])
    return sizes[key] > PROSE_CELL_SHARE * total and len(table.texts[key]) >= PROSE_CELL_LINES


# --- strokes -> regions -------------------------------------------------------------------


def _rules(drawings: Iterable[dict[str, Any]]) -> tuple[list[Box], list[Box]]:
    """Horizontal and vertical strokes of the page's line art."""
    horizontal: list[Box] = []
    vertical: list[Box] = []

    def add(x0: float, y0: float, x1: float, y1: float) -> None:
        x0, x1 = min(x0, x1), max(x0, x1)
        y0, y1 = min(y0, y1), max(y0, y1)
        if y1 - y0 <= SNAP and x1 - x0 >= MIN_RULE_LENGTH:
            middle = (y0 + y1) / 2
            horizontal.append((x0, middle, x1, middle))
        elif x1 - x0 <= SNAP and y1 - y0 >= MIN_RULE_LENGTH:
            middle = (x0 + x1) / 2
            vertical.append((middle, y0, middle, y1))

    for path in drawings:
        for item in path.get("items", ()):
            if item[0] == "l":
                (ax, ay), (bx, by) = item[1], item[2]
                add(ax, ay, bx, by)
            elif item[0] in ("re", "qu"):
                xs = [p[0] for p in _corners(item)]
                ys = [p[1] for p in _corners(item)]
                x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
                if y1 - y0 <= SNAP or x1 - x0 <= SNAP:
                    add(x0, y0, x1, y1)  # a rule drawn as a thin rectangle
                else:  # a frame, or a shaded cell: its sides separate cells too
                    add(x0, y0, x1, y0)
                    add(x0, y1, x1, y1)
                    add(x0, y0, x0, y1)
                    add(x1, y0, x1, y1)
    return horizontal, vertical


def shapes(art: PageArt) -> list[Box]:
    """Boxes of the paths that draw more than rules: coloured fills (not white
    backgrounds) wider and taller than a rule, curves and slanted lines (a chart's bars
    and lines, icons)."""
    shapes: list[Box] = []
    for path in art.drawings:
        x0, y0, x1, y1 = path["rect"]
        if x1 - x0 <= SNAP and y1 - y0 <= SNAP:
            continue  # a dot, a bullet or a glyph part
        fill = path.get("fill")
        filled = fill is not None and min(fill, default=1.0) < WHITE
        drawn = any(item[0] == "c" or _slanted(item) for item in path.get("items", ()))
        if drawn or (filled and x1 - x0 > SNAP and y1 - y0 > SNAP):
            shapes.append((x0, y0, x1, y1))
    return shapes


def _slanted(item: tuple[Any, ...]) -> bool:
    if item[0] != "l":
        return False
    (ax, ay), (bx, by) = item[1], item[2]
    return abs(ax - bx) > SNAP and abs(ay - by) > SNAP


def _corners(item: tuple[Any, ...]) -> list[tuple[float, float]]:
    if item[0] == "re":
        x0, y0, x1, y1 = item[1]
        return [(x0, y0), (x1, y1)]
    return [tuple(p) for p in item[1]]  # a quad's four points


def _joined(rules: list[Box], horizontal: bool) -> list[Box]:
    """Collinear strokes that touch (within ``SNAP``) joined into one line."""
    axis = 1 if horizontal else 0
    rules = sorted(rules, key=lambda r: (round(r[axis] / SNAP), r[1 - axis]))
    out: list[Box] = []
    for rule in rules:
        if out:
            last = out[-1]
            same_line = round(last[axis] / SNAP) == round(rule[axis] / SNAP)
            start, end = (0, 2) if horizontal else (1, 3)
            if same_line and rule[start] <= last[end] + SNAP:
                merged = list(last)
                merged[end] = max(last[end], rule[end])
                out[-1] = (merged[0], merged[1], merged[2], merged[3])
                continue
        out.append(rule)
    return out


def _crossing_groups(
    horizontal: list[Box], vertical: list[Box]
) -> list[tuple[list[Box], list[Box]]]:
    """Horizontal and vertical lines grouped by crossing or touching (union-find)."""
    parent = list(range(len(horizontal) + len(vertical)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(len(vertical)), key=lambda j: vertical[j][0])
    xs = [vertical[j][0] for j in order]
    for i, (hx0, hy, hx1, _) in enumerate(horizontal):
        for k in range(bisect_left(xs, hx0 - SNAP), bisect_right(xs, hx1 + SNAP)):
            j = order[k]
            if vertical[j][1] - SNAP <= hy <= vertical[j][3] + SNAP:
                parent[root(i)] = root(len(horizontal) + j)
    groups: dict[int, tuple[list[Box], list[Box]]] = {}
    for i, rule in enumerate(horizontal):
        groups.setdefault(root(i), ([], []))[0].append(rule)
    for j, rule in enumerate(vertical):
        groups.setdefault(root(len(horizontal) + j), ([], []))[1].append(rule)
    return list(groups.values())


# --- finder -> geometry -------------------------------------------------------------------


@functools.cache
def _finder_options() -> dict[str, Any]:
    """Keyword arguments this PyMuPDF's finder takes: the layout model (PyMuPDF >= 1.27,
    an optional package) is not used, so results do not depend on what is installed."""
    parameters = inspect.signature(pymupdf.table.find_tables).parameters
    return {"use_layout": False} if "use_layout" in parameters else {}


@functools.cache
def _quiet() -> None:
    """PyMuPDF prints a recommendation on stdout the first time the finder runs."""
    silence = getattr(pymupdf, "no_recommend_layout", None)
    if silence is not None:
        silence()


def _geometry(table: Any) -> FoundTable | None:
    boxes = [tuple(c) for c in table.cells if c is not None]
    if not boxes:
        return None
    tops = sorted({b[1] for b in boxes})
    lefts = sorted({b[0] for b in boxes})
    cells = []
    for x0, y0, x1, y1 in boxes:
        row, col = tops.index(y0), lefts.index(x0)
        rowspan = max(1, sum(y0 <= top < y1 - SNAP / 2 for top in tops))
        colspan = max(1, sum(x0 <= left < x1 - SNAP / 2 for left in lefts))
        cells.append(CellBox((x0, y0, x1, y1), row, col, rowspan, colspan))
    found = FoundTable(tuple(table.bbox), cells, len(tops), len(lefts))
    header = getattr(table, "header", None)
    if header is not None and header.external and len(header.cells) == len(lefts):
        found.header = [
            CellBox(tuple(box), 0, c, 1, 1) for c, box in enumerate(header.cells) if box
        ]
    return found


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# --- characters -> cells ------------------------------------------------------------------


def _place(
    tables: list[FoundTable], outers: list[Box], bbox: Sequence[float]
) -> tuple[int, str, int, int] | None:
    """(table, "body" or "head", row, col) of the cell holding a character's centre."""
    x = (bbox[0] + bbox[2]) / 2
    y = (bbox[1] + bbox[3]) / 2
    for t, table in enumerate(tables):
        x0, y0, x1, y1 = outers[t]
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            continue
        for kind, cells in (("body", table.cells), ("head", table.header)):
            for cell in _cells_near(cells, x, y):
                return (t, kind, cell.row, cell.col)
    return None


def _cells_near(cells: list[CellBox], x: float, y: float) -> Iterable[CellBox]:
    for cell in cells:
        x0, y0, x1, y1 = cell.bbox
        if x0 <= x <= x1 and y0 <= y <= y1:
            yield cell
            return


def _cell_lines(pieces: list[tuple[Box, str]]) -> list[str]:
    """A cell's text lines, top to bottom, cleaned like page lines. Pieces side by side
    (a bullet glyph and its text, a line the PDF wrote in parts) are one line."""
    rows: list[tuple[Box, list[tuple[Box, str]]]] = []
    for box, text in sorted(pieces, key=lambda p: (p[0][1], p[0][0])):
        if rows and _same_row(rows[-1][0], box):
            rows[-1] = (_union([rows[-1][0], box]), [*rows[-1][1], (box, text)])
        else:
            rows.append((box, [(box, text)]))
    lines = []
    for _, row in rows:
        text = " ".join(" ".join(t.split()) for _, t in sorted(row, key=lambda p: p[0][0]))
        if text := clean_line_text(text.strip()):
            lines.append(text)
    return lines


def _same_row(a: Box, b: Box) -> bool:
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    return overlap >= 0.5 * min(a[3] - a[1], b[3] - b[1])


def _cell_text(lines: list[str]) -> str:
    text = ""
    for line in lines:
        text = join_lines(text, line)
    return text


def _header_rows(table: FoundTable) -> int:
    """Header rows of the grid: the row above the rules, else the top row, and the row
    below it too when the top row groups columns under a spanning cell."""
    if table.header:
        return 1
    if table.n_rows < MIN_ROWS:
        return 0
    grouped = any(cell.row == 0 and cell.colspan > 1 for cell in table.cells)
    return 2 if grouped and table.n_rows > MIN_ROWS else 1


def _header_words(
    table: FoundTable, raw_blocks: list[dict[str, Any]]
) -> tuple[list[set[int]], str]:
    """The columns each word of the header row above ``table`` lies in, and its text."""
    words: list[set[int]] = []
    text: list[str] = []
    for block in raw_blocks:
        for line in block.get("lines", ()):
            current: set[int] = set()
            for span in line["spans"]:
                for char in span.get("chars", ()):
                    if char["c"].isspace():
                        if current:
                            words.append(current)
                        current = set()
                        continue
                    x = (char["bbox"][0] + char["bbox"][2]) / 2
                    y = (char["bbox"][1] + char["bbox"][3]) / 2
                    for cell in _cells_near(table.header, x, y):
                        current.add(cell.col)
                        text.append(char["c"])
            if current:
                words.append(current)
            text.append(" ")
    return [w for w in words if w], " ".join("".join(text).split())


def _header_fits(words: list[set[int]], text: str) -> bool:
    """Every word in one column, at least two columns filled, and not a caption."""
    columns = set().union(*words) if words else set()
    return (
        len(columns) >= MIN_COLUMNS
        and all(len(w) == 1 for w in words)
        and not starts_like_caption(text)
    )


def _span(span: dict[str, Any], chars: list[dict[str, Any]]) -> dict[str, Any]:
    text = "".join(c["c"] for c in chars)
    rest = {k: v for k, v in span.items() if k != "chars"}
    return {**rest, "text": text, "bbox": _union(c["bbox"] for c in chars)}


def _union(boxes: Iterable[Sequence[float]]) -> Box:
    items = list(boxes)
    return (
        min(b[0] for b in items),
        min(b[1] for b in items),
        max(b[2] for b in items),
        max(b[3] for b in items),
    )


def _span_grid(
    cells: list[CellBox], n_rows: int, n_cols: int, texts: dict[tuple[int, int], list[str]]
) -> list[list[str | None]]:
    """Cells placed in a grid. A position a span covers is ``None`` where table_html reads
    it back as that span (a ``None`` extends the cell to its left in the same row, else
    the cell above), and ``""`` where it would be read as another cell's span."""
    owner: dict[tuple[int, int], CellBox] = {}
    for cell in cells:
        for r in range(cell.row, min(cell.row + cell.rowspan, n_rows)):
            for c in range(cell.col, min(cell.col + cell.colspan, n_cols)):
                owner.setdefault((r, c), cell)
    read_as: dict[tuple[int, int], tuple[int, int]] = {}  # how table_html will read it
    grid: list[list[str | None]] = []
    for r in range(n_rows):
        row: list[str | None] = []
        for c in range(n_cols):
            holder = owner.get((r, c))
            origin = (holder.row, holder.col) if holder is not None else (r, c)
            left = read_as.get((r, c - 1))
            above = read_as.get((r - 1, c))
            if holder is None:
                row.append("")
            elif origin == (r, c):
                row.append(_cell_text(texts.get((r, c), [])))
            elif left is not None and left[0] == r:  # read as the left cell's span
                row.append(None if left == origin else "")
            else:  # read as the span of the cell above
                row.append(None if above == origin else "")
            read_as[(r, c)] = origin if row[-1] is None else (r, c)
        grid.append(row)
    return grid
