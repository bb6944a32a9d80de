"""Tables on OCR pages: where they are, and their cells (for the rapidocr engine).

Two kinds of evidence find a table, each strict enough that body text stays text (a
missed table still reads as paragraphs; a false one garbles them):

- **Ruled tables.** Horizontal and vertical rules (:mod:`handler.engines.ocr_rulings`)
  that touch each other, or horizontal rules stacked with the same left and right ends
  and no full-width prose between them (booktabs), outline a region. Its lines become a
  grid (:func:`handler.engines.ocr_table_grid.build_grid`); a region whose grid has fewer
  than two columns (a framed paragraph), whose lines are prose, or which holds much ink
  that is neither text nor rule (a chart's bars) is no table.
- **Unruled tables.** Within one page column, at least ``MIN_UNRULED_ROWS`` consecutive
  rows of two or more short boxes whose gaps line up into columns, with a column of
  numbers. A numbered list, "label:" forms, a table of contents with dot leaders and
  columns of prose do not qualify.

Each table becomes one ``Table`` element (:meth:`OcrTable.element`) with ``text_as_html``
from :mod:`handler.engines.table_html`; its lines are not also paragraphs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from handler.engines.base import BBox, Element, ElementType
from handler.engines.ocr_rulings import Ruling
from handler.engines.ocr_table_grid import Grid, build_grid, is_number
from handler.engines.table_html import grid_html, grid_text

if TYPE_CHECKING:
    from handler.engines.ocr_layout import OcrLine

#: Fewest rows of an unruled table (two aligned rows are as often a pair of captions).
MIN_UNRULED_ROWS = 3
#: Share of a column's filled cells that must be numbers to count as a numeric column.
NUMERIC_COLUMN_SHARE = 0.6
#: Least share of a table's positions holding text (or covered by a span), and of its rows
#: holding two cells or more.
MIN_FILL = 0.4
#: Most cells below the header that may span columns.
MAX_SPANNING_SHARE = 0.25
#: A line of at least this many words, wider than ``PROSE_WIDTH_SHARE`` of its table or
#: page column, is prose, not a cell.
PROSE_WORDS = 6
PROSE_WIDTH_SHARE = 0.5
#: Share of a ruled region's area that may be solid ink outside its text lines and rules:
#: a clean table has none; a screenshot's icons reach 0.25%, a chart's bars far more;
#: scan noise is removed before counting (measured: a rendered, then noised and skewed,
#: table page stays at 0).
MAX_STRAY_INK = 0.0015
#: Unruled rows further apart than this, in line heights (bottom to top), end a table.
MAX_ROW_GAP = 2.0
#: Horizontal rules stacked into one booktabs table end within this many line heights of
#: each other on both sides.
RULE_END_TOLERANCE = 1.5

#: (region, boxes) -> share of the region that is ink outside the boxes
StrayInk = Callable[[BBox, Sequence[BBox]], float]

_LEADERS_RE = re.compile(r"(?:[.·…_]\s*){3,}\S{0,6}$")
_ENUM_RE = re.compile(r"^\(?(?:\d{1,3}|[a-z]|[ivx]{1,5})[.)]$", re.IGNORECASE)
_SECTION_RE = re.compile(r"^(?:\d+(?:\.\d+)+\.?|(?:chapter|part|appendix|section)\b)", re.I)
_ROMAN_RE = re.compile(r"^[ivxlc]{1,7}$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OcrTable:
    """A table found on an OCR page: its box, grid and the indices of its OCR lines."""

    bbox: BBox
    grid: Grid
    members: frozenset[int]
    score: float

    def element(self) -> Element:
        cells = self.grid.cells
        return Element(
            ElementType.TABLE,
            grid_text(cells),
            self.bbox,
            text_as_html=grid_html(cells, self.grid.header_rows),
            prob=round(self.score, 4),
        )


def find_tables(
    lines: Sequence[OcrLine],
    line_h: float,
    *,
    rulings: Sequence[Ruling] = (),
    stray_ink: StrayInk | None = None,
    gutters: Sequence[tuple[float, float]] = (),
) -> list[OcrTable]:
    """Tables among ``lines`` (boxes in page pixels; ``line_h`` the median line height).

    ``rulings`` are the page's rules in the same pixels; ``stray_ink(bbox, boxes)`` gives
    the share of ``bbox`` that is ink outside ``boxes`` (when None, not checked);
    ``gutters`` are the page's column gutters (an unruled table lies within one column).
    """
    tables: list[OcrTable] = []
    taken: set[int] = set()
    for bbox, rules in ruled_regions(rulings, lines, line_h):
        idx = [i for i, ln in enumerate(lines) if i not in taken and _inside(ln, bbox, line_h)]
        chosen = [lines[i] for i in idx]
        grid = build_grid(chosen, bbox, rules, line_h) if chosen else None
        ruled_columns = any(not r.horizontal for r in rules) and grid is not None and grid.ruled
        if grid is None or not plausible(grid, numbers_needed=not ruled_columns):
            continue
        if stray_ink is not None:
            boxes = [ln.bbox for ln in chosen] + [_rule_box(r, line_h) for r in rules]
            if stray_ink(bbox, boxes) > MAX_STRAY_INK:
                continue
        tables.append(_table(bbox, grid, idx, lines))
        taken.update(idx)
    for idx in unruled_candidates(lines, taken, line_h, gutters):
        chosen = [lines[i] for i in idx]
        x0, y0 = min(ln.x0 for ln in chosen), min(ln.y0 for ln in chosen)
        bbox = (x0, y0, max(ln.x1 for ln in chosen), max(ln.y1 for ln in chosen))
        grid = build_grid(chosen, bbox, (), line_h)
        if grid is not None and len(grid.cells) >= MIN_UNRULED_ROWS and plausible(grid):
            tables.append(_table(bbox, grid, idx, lines))
            taken.update(idx)
    return tables


def _table(bbox: BBox, grid: Grid, idx: Sequence[int], lines: Sequence[OcrLine]) -> OcrTable:
    score = float(np.mean([lines[i].score for i in idx]))
    return OcrTable(bbox, grid, frozenset(idx), score)


# -- ruled regions -------------------------------------------------------------------------------


def ruled_regions(
    rulings: Sequence[Ruling], lines: Sequence[OcrLine], line_h: float
) -> list[tuple[BBox, list[Ruling]]]:
    """Regions outlined by rules, top to bottom, each with every rule inside it.

    Rules are grouped when a horizontal and a vertical one touch, or when two horizontal
    ones end at the same places with no prose line between them. A group is a candidate
    with two horizontal rules at least (a frame, a lattice, booktabs' top and bottom).
    """
    tol = 0.3 * line_h
    rules = list(rulings)
    parent = list(range(len(rules)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(rules):
        for j in range(i + 1, len(rules)):
            b = rules[j]
            if a.horizontal != b.horizontal:
                linked = _touch(a, b, tol)
            elif a.horizontal:
                linked = _stacked(a, b, lines, line_h)
            else:
                linked = False
            if linked:
                parent[root(i)] = root(j)
    groups: dict[int, list[Ruling]] = {}
    for i, r in enumerate(rules):
        groups.setdefault(root(i), []).append(r)
    regions = []
    for group in groups.values():
        if sum(r.horizontal for r in group) < 2:
            continue
        bbox = _rules_box(group)
        inside = [r for r in rules if _rule_inside(r, bbox, tol)]
        regions.append((bbox, inside))
    return sorted(regions, key=lambda reg: reg[0][1])


def _touch(a: Ruling, b: Ruling, tol: float) -> bool:
    h, v = (a, b) if a.horizontal else (b, a)
    return h.lo - tol <= v.pos <= h.hi + tol and v.lo - tol <= h.pos <= v.hi + tol


def _stacked(a: Ruling, b: Ruling, lines: Sequence[OcrLine], line_h: float) -> bool:
    """Two horizontal rules of one booktabs table: the same ends, no prose between them."""
    ends = RULE_END_TOLERANCE * line_h
    if abs(a.lo - b.lo) > ends or abs(a.hi - b.hi) > ends or abs(a.pos - b.pos) < line_h:
        return False
    top, bottom = sorted((a.pos, b.pos))
    width = min(a.hi, b.hi) - max(a.lo, b.lo)
    between = [ln for ln in lines if top < ln.cy < bottom and a.lo - ends < ln.cx < a.hi + ends]
    return bool(between) and not any(_is_prose(ln, width) for ln in between)


def _rules_box(rules: Sequence[Ruling]) -> BBox:
    xs: list[float] = []
    ys: list[float] = []
    for r in rules:
        if r.horizontal:
            xs += [r.lo, r.hi]
            ys.append(r.pos)
        else:
            ys += [r.lo, r.hi]
            xs.append(r.pos)
    return (min(xs), min(ys), max(xs), max(ys))


def _rule_inside(r: Ruling, bbox: BBox, tol: float) -> bool:
    x0, y0, x1, y1 = bbox
    if r.horizontal:
        return y0 - tol <= r.pos <= y1 + tol and r.lo >= x0 - tol and r.hi <= x1 + tol
    return x0 - tol <= r.pos <= x1 + tol and r.lo >= y0 - tol and r.hi <= y1 + tol


def _rule_box(r: Ruling, line_h: float) -> BBox:
    half = max(r.thickness, 0.1 * line_h)  # the rule and its anti-aliased edges
    if r.horizontal:
        return (r.lo, r.pos - half, r.hi, r.pos + half)
    return (r.pos - half, r.lo, r.pos + half, r.hi)


def _inside(ln: OcrLine, bbox: BBox, line_h: float) -> bool:
    """Whether a line lies in the region: its centre inside, most of its width too."""
    x0, y0, x1, y1 = bbox
    pad = 0.2 * line_h
    if not (x0 - pad <= ln.cx <= x1 + pad and y0 - pad <= ln.cy <= y1 + pad):
        return False
    return min(x1, ln.x1) - max(x0, ln.x0) >= 0.6 * (ln.x1 - ln.x0)


# -- unruled tables ------------------------------------------------------------------------------


def unruled_candidates(
    lines: Sequence[OcrLine],
    taken: set[int],
    line_h: float,
    gutters: Sequence[tuple[float, float]],
) -> list[list[int]]:
    """Runs of at least ``MIN_UNRULED_ROWS`` consecutive rows of two or more cell-like boxes
    within one page column (line indices); a lone-box row may sit inside a run (a section
    label) but not end it."""
    cuts = sorted((lo + hi) / 2 for lo, hi in gutters)
    segments: dict[int, list[int]] = {}
    for i, ln in enumerate(lines):
        if i in taken or any(ln.x0 < c < ln.x1 for c in cuts):
            continue
        segments.setdefault(sum(c < ln.cx for c in cuts), []).append(i)
    runs: list[list[int]] = []
    for idx in segments.values():
        width = max(lines[i].x1 for i in idx) - min(lines[i].x0 for i in idx)
        run: list[list[int]] = []
        for row in _index_rows(lines, idx):
            prose = any(_is_prose(lines[i], width) for i in row)
            near = bool(run) and _row_gap(lines, run[-1], row) <= MAX_ROW_GAP * line_h
            if len(row) >= 2 and not prose and (near or not run):
                run.append(row)
            elif len(row) == 1 and not prose and near and len(run[-1]) >= 2:
                run.append(row)  # a lone label inside a run (kept if a row of cells follows)
            else:
                _close_run(run, runs)
                run = [row] if len(row) >= 2 and not prose else []
        _close_run(run, runs)
    return runs


def _close_run(run: list[list[int]], runs: list[list[int]]) -> None:
    while run and len(run[-1]) < 2:
        run.pop()
    if len(run) >= MIN_UNRULED_ROWS:
        runs.append(sorted(i for row in run for i in row))


def _index_rows(lines: Sequence[OcrLine], idx: Sequence[int]) -> list[list[int]]:
    rows: list[list[int]] = []
    for i in sorted(idx, key=lambda i: lines[i].cy):
        ln = lines[i]
        if rows:
            last = [lines[j] for j in rows[-1]]
            top = min(o.y0 for o in last)
            bottom = max(o.y1 for o in last)
            if min(bottom, ln.y1) - max(top, ln.y0) >= 0.5 * (ln.y1 - ln.y0):
                rows[-1].append(i)
                continue
        rows.append([i])
    return rows


def _row_gap(lines: Sequence[OcrLine], above: Sequence[int], below: Sequence[int]) -> float:
    return min(lines[i].y0 for i in below) - max(lines[i].y1 for i in above)


def plausible(grid: Grid, *, numbers_needed: bool = True) -> bool:
    """Whether a grid is a table rather than text that happens to line up.

    Most positions filled, most rows with two cells or more, few cells spanning columns
    below the header (a page layout cut into columns is all spans), not every column
    prose, no sign of a numbered list, a "label:" form or a table of contents; and, when
    ``numbers_needed`` (no vertical rules drew the columns), a column of numbers.
    """
    cells = grid.cells
    n_rows, n_cols = len(cells), len(cells[0])
    filled = sum(1 for row in cells for t in row if t is None or t)
    rows_with_cells = sum(sum(1 for t in row if t) >= 2 for row in cells)
    if filled < MIN_FILL * n_rows * n_cols or rows_with_cells < max(2, MIN_FILL * n_rows):
        return False
    body = [p for p in grid.pieces if p.row >= grid.header_rows]
    if sum(p.cols > 1 for p in body) > MAX_SPANNING_SHARE * len(body):
        return False
    columns = [[t for row in cells if (t := row[c])] for c in range(n_cols)]
    if all(_is_prose_column(col) for col in columns if col):
        return False
    if _is_list_form_or_contents(columns):
        return False
    return not numbers_needed or any(_is_numeric_column(col) for col in columns[1:])


def _is_prose_column(texts: Sequence[str]) -> bool:
    return sum(len(t.split()) >= PROSE_WORDS for t in texts) >= 0.5 * len(texts)


def _is_numeric_column(texts: Sequence[str]) -> bool:
    numbers = sum(is_number(t) for t in texts)
    return numbers >= MIN_UNRULED_ROWS and numbers >= NUMERIC_COLUMN_SHARE * len(texts)


def _is_list_form_or_contents(columns: Sequence[Sequence[str]]) -> bool:
    """A numbered list whose markers the detector boxed apart, "label: value" lines of a
    form, or a table of contents (entries with section numbers or dot leaders, then
    ascending page numbers)."""
    first, last = columns[0], columns[-1]
    if not first:
        return False
    share = 1 / len(first)
    if len(columns) == 2 and share * sum(bool(_ENUM_RE.match(t)) for t in first) >= 0.6:
        return True
    if share * sum(t.rstrip().endswith(":") for t in first) >= 0.5:
        return True
    pages = [_page_number(t) for t in last]
    if len(pages) >= MIN_UNRULED_ROWS and all(p is not None for p in pages):
        arabic = [p for p in pages if p is not None and p >= 0]
        ascending = all(a <= b for a, b in itertools.pairwise(arabic))
        entries = [t for col in columns[:-1] for t in col]
        headed = sum(bool(_SECTION_RE.match(t) or _LEADERS_RE.search(t)) for t in entries)
        if ascending and headed >= 0.5 * len(first):
            return True
    return False


def _page_number(text: str) -> int | None:
    """The page number a table-of-contents entry ends with (-1 for a roman one), or None."""
    t = text.strip().lstrip(".· ")
    if t.isdigit() and len(t) <= 4:
        return int(t)
    return -1 if _ROMAN_RE.match(t) else None


# -- shared --------------------------------------------------------------------------------------


def _is_prose(ln: OcrLine, width: float) -> bool:
    return len(ln.text.split()) >= PROSE_WORDS and ln.x1 - ln.x0 >= PROSE_WIDTH_SHARE * width
