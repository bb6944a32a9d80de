"""The cell grid of one table region on an OCR page (for :mod:`handler.engines.ocr_tables`).

:func:`build_grid` turns the OCR lines inside a table region, and the rules found there
(:mod:`handler.engines.ocr_rulings`), into rows, columns and cells:

- **Columns** are cut at the region's inner vertical rules. A region without any is cut
  at gaps that no line (or at most a few spanning lines) crosses: :func:`text_gaps`.
  A separator is *present* along the stretches of y where it divides cells: a rule
  where it is drawn, a text gap everywhere but across its spanning lines.
- **Rows** are the text rows: lines whose boxes overlap vertically.
- **Cells.** A line that crosses a present separator is a detector box that ran across
  two cells: it is split at the word gap nearest the separator (a line with no such gap
  stays one spanning cell). A line spreads over neighbouring columns whose separator is
  absent at its row (a header centred over sub-columns, under a rule that stops short)
  while nothing else in its row sits there.
- **Ruled bands.** Between two horizontal rules across the table, rows in which only one
  column continues are wrapped lines of one row's cells, so they are merged. A line alone
  in its columns between the rules above and below it, and centred between the first and
  last rows there (a label beside two rows), spans those rows.
- **Header rows**: those above the first rule across the table when rules divide only
  some rows, or the first row when the rule under it is heavier than the others, or the
  first row when it holds labels over columns of numbers.

Grids use :mod:`handler.engines.table_html`'s form: ``None`` where a spanning cell covers
a position. That form cannot cover a position whose left neighbour starts a cell in the
same row (it would widen that cell instead); such a span is cut short there.
"""

from __future__ import annotations

import functools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from handler.engines.base import BBox
from handler.engines.ocr_rulings import Ruling
from handler.engines.paragraphs import join_lines

if TYPE_CHECKING:
    from handler.engines.ocr_layout import OcrLine

#: Narrowest gap between two columns of an unruled table, in line heights (a word space
#: is about a third of one; the detector keeps a phrase in one box).
MIN_COLUMN_GAP = 0.6
#: Lines that may cross a text gap (spanning titles inside the table), as a share of rows.
GAP_CROSSERS_SHARE = 0.1
#: Rows overlapping by this share of the lower line height are one row; a label centred
#: between two rows overlaps each by about half and stays apart.
ROW_OVERLAP = 0.6
#: A horizontal rule covering this share of the table's columns separates bands of rows.
FULL_RULE_SHARE = 0.8
#: Where a separator falls in a box's text must be a space within this share of the text
#: length, or the box is not split there.
SPLIT_SLACK = 0.25
#: A header deeper than this many rows is not a header but ruled groups of rows.
MAX_HEADER_ROWS = 3
#: In a table with a rule under every row, a rule under the first row this many times
#: heavier than the others marks a header.
HEADER_RULE_WEIGHT = 1.4
_YEAR_RE = re.compile(r"^\s*(?:1[89]|20)\d\d\s*$")
_NUMBER_RE = re.compile(r"^[(\[]?[-+\u2212\u2013]?[$€£¥]?\s?\d[\d.,'\s]*%?[)\]]?$")


@dataclass(slots=True)
class Separator:
    """A column boundary at ``x``; ``spans`` are the y-ranges where it divides cells."""

    x: float
    spans: list[tuple[float, float]]

    def present(self, y: float) -> bool:
        return any(lo <= y <= hi for lo, hi in self.spans)


@dataclass(slots=True)
class Piece:
    """A line, or the part of one, in the grid: its text, box, row and columns."""

    text: str
    x0: float
    x1: float
    y0: float
    y1: float
    row: int = 0
    rows: int = 1
    col: int = 0
    cols: int = 1

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass(slots=True)
class Grid:
    """A table's cells (``None`` under a span) and how many of its rows are a header."""

    cells: list[list[str | None]]
    header_rows: int
    pieces: list[Piece] = field(default_factory=list)
    ruled: bool = False  # columns cut at vertical rules (else at text gaps)


def is_number(text: str) -> bool:
    """A cell that is a number, an amount or a share ("1 103", "-4.5%", "(12)", "€ 3,50")."""
    return bool(_NUMBER_RE.match(text.strip()))


def build_grid(
    lines: Sequence[OcrLine], bbox: BBox, rules: Sequence[Ruling], line_h: float
) -> Grid | None:
    """The grid of the table in ``bbox`` holding ``lines``, or None when it has fewer than
    two columns or two rows."""
    if not lines:
        return None
    tol = 0.3 * line_h
    seps = rule_separators(rules, bbox, tol)
    ruled = bool(seps)
    seps = seps or text_gaps(lines, bbox, line_h)
    rows = _rows(lines)
    if not seps or len(rows) < 2:
        return None
    row_cy = [statistics.median(ln.cy for ln in row) for row in rows]
    edges = [bbox[0], *(s.x for s in seps), bbox[2]]
    pieces: list[Piece] = []
    for r, row in enumerate(rows):
        row_pieces = [p for ln in sorted(row, key=lambda ln: ln.x0) for p in _split(ln, seps)]
        for p in row_pieces:
            p.row = r
            p.col, p.cols = _columns_of(p, edges)
        pieces.extend(row_pieces)
    _spread(pieces, seps, edges, row_cy)
    horizontal = [h for h in rules if h.horizontal]
    n_rows = _merge_wrapped_rows(pieces, len(rows), row_cy, horizontal, edges)
    row_cy = _row_centres(pieces, n_rows)
    _span_rows(pieces, n_rows, row_cy, horizontal, edges, tol)
    header = _header_rows(pieces, n_rows, row_cy, horizontal, edges)
    n_rows, n_cols, header = _compact(pieces, n_rows, len(edges) - 1, header)
    if n_rows < 2 or n_cols < 2:
        return None
    return Grid(_cells(pieces, n_rows, n_cols), header, pieces, ruled)


# -- columns -------------------------------------------------------------------------------------


def rule_separators(rules: Sequence[Ruling], bbox: BBox, tol: float) -> list[Separator]:
    """Column separators at the inner vertical rules of ``bbox`` (rules at the same x joined)."""
    x0, _, x1, _ = bbox
    inner = sorted(
        (r for r in rules if not r.horizontal and x0 + 2 * tol < r.pos < x1 - 2 * tol),
        key=lambda r: r.pos,
    )
    seps: list[Separator] = []
    for r in inner:
        span = (r.lo - tol, r.hi + tol)
        if seps and r.pos - seps[-1].x <= tol:
            seps[-1].spans.append(span)
        else:
            seps.append(Separator(r.pos, [span]))
    return seps


def text_gaps(lines: Sequence[OcrLine], bbox: BBox, line_h: float) -> list[Separator]:
    """Column separators at vertical gaps between the lines' boxes.

    A gap is at least ``MIN_COLUMN_GAP`` line heights wide, has lines on both sides, and is
    crossed by no line or, in a table of many rows, by a few (``GAP_CROSSERS_SHARE``): those
    become cells spanning it, so the separator is absent across them.
    """
    x0, y0, x1, y1 = bbox
    left = int(np.floor(min(x0, *(ln.x0 for ln in lines))))
    width = int(np.ceil(max(x1, *(ln.x1 for ln in lines)))) - left + 1
    cover = np.zeros(width, dtype=np.int32)
    for ln in lines:
        cover[int(ln.x0) - left : int(np.ceil(ln.x1)) - left] += 1
    n_rows = len(_rows(lines))
    allowed = int(GAP_CROSSERS_SHARE * n_rows) if n_rows >= 10 else 0
    low = cover <= allowed
    seps: list[Separator] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], low.astype(np.int8), [0]])))
    for lo, hi in zip(edges[::2], edges[1::2], strict=True):
        if hi - lo < MIN_COLUMN_GAP * line_h or lo == 0 or hi >= width:
            continue
        x = left + (lo + hi) / 2
        if not any(ln.x1 <= x for ln in lines) or not any(ln.x0 >= x for ln in lines):
            continue
        crossers = sorted((ln.y0, ln.y1) for ln in lines if ln.x0 < x < ln.x1)
        seps.append(Separator(x, _complement(crossers, y0 - line_h, y1 + line_h)))
    return seps


def _complement(
    holes: list[tuple[float, float]], lo: float, hi: float
) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    start = lo
    for a, b in holes:
        if a > start:
            spans.append((start, a))
        start = max(start, b)
    if start < hi:
        spans.append((start, hi))
    return spans


def _columns_of(p: Piece, edges: Sequence[float]) -> tuple[int, int]:
    """First column and column count of a piece: the columns holding a fair part of it."""
    hits = []
    for c in range(len(edges) - 1):
        a, b = edges[c], edges[c + 1]
        overlap = min(b, p.x1) - max(a, p.x0)
        if overlap > 0.3 * min(b - a, p.x1 - p.x0):
            hits.append(c)
    if not hits:  # outside every column: the nearest one
        cx = (p.x0 + p.x1) / 2
        c = min(range(len(edges) - 1), key=lambda i: abs((edges[i] + edges[i + 1]) / 2 - cx))
        return c, 1
    return hits[0], hits[-1] - hits[0] + 1


def _split(ln: OcrLine, seps: Sequence[Separator]) -> list[Piece]:
    """The line as pieces, cut at the present separators it crosses where its text has a
    word gap (the text is assumed to run evenly across the box)."""
    pieces = [Piece(ln.text.strip(), ln.x0, ln.x1, ln.y0, ln.y1)]
    margin = 0.1 * (ln.x1 - ln.x0)
    for sep in seps:
        if not (ln.x0 + margin < sep.x < ln.x1 - margin and sep.present(ln.cy)):
            continue
        last = pieces[-1]
        if not last.x0 < sep.x < last.x1:
            continue
        share = (sep.x - last.x0) / (last.x1 - last.x0)
        at = _space_near(last.text, share)
        if at is None:
            continue
        left, right = last.text[:at].rstrip(), last.text[at:].lstrip()
        pieces[-1:] = [
            Piece(left, last.x0, sep.x, last.y0, last.y1),
            Piece(right, sep.x, last.x1, last.y0, last.y1),
        ]
    return pieces


def _space_near(text: str, share: float) -> int | None:
    """Index of the space nearest ``share`` of the way through ``text`` (within
    ``SPLIT_SLACK``), or None."""
    target = share * len(text)
    spaces = [i for i, ch in enumerate(text) if ch == " " and 0 < i < len(text) - 1]
    if not spaces:
        return None
    best = min(spaces, key=lambda i: abs(i - target))
    return best if abs(best - target) <= SPLIT_SLACK * len(text) + 1 else None


def _spread(
    pieces: list[Piece], seps: Sequence[Separator], edges: Sequence[float], row_cy: Sequence[float]
) -> None:
    """Widen pieces over neighbouring columns that no separator divides from them at their
    row and that hold nothing else in the row."""
    for p in pieces:
        taken = {
            c for q in pieces if q is not p and q.row == p.row for c in range(q.col, q.col + q.cols)
        }
        y = row_cy[p.row]
        while p.col > 0 and not seps[p.col - 1].present(y) and p.col - 1 not in taken:
            p.col -= 1
            p.cols += 1
        while (
            p.col + p.cols < len(edges) - 1
            and not seps[p.col + p.cols - 1].present(y)
            and p.col + p.cols not in taken
        ):
            p.cols += 1


# -- rows ----------------------------------------------------------------------------------------


def _rows(lines: Sequence[OcrLine]) -> list[list[OcrLine]]:
    """Lines grouped into text rows, top to bottom; a line joins a row when it overlaps the
    row's line nearest to it in x (a skewed scan drifts along a row)."""
    rows: list[list[OcrLine]] = []
    for ln in sorted(lines, key=lambda ln: ln.cy):
        for row in reversed(rows[-3:]):
            near = min(row, key=lambda o: max(0.0, o.x0 - ln.x1, ln.x0 - o.x1))
            overlap = min(near.y1, ln.y1) - max(near.y0, ln.y0)
            if overlap >= ROW_OVERLAP * min(near.y1 - near.y0, ln.y1 - ln.y0):
                row.append(ln)
                break
        else:
            rows.append([ln])
    return rows


def _row_centres(pieces: Sequence[Piece], n_rows: int) -> list[float]:
    centres = []
    for r in range(n_rows):
        own = [p.cy for p in pieces if p.row == r and p.rows == 1]
        anyp = [p.cy for p in pieces if p.row == r]
        centres.append(statistics.median(own or anyp) if (own or anyp) else 0.0)
    return centres


def _rule_between(
    rules: Sequence[Ruling], y_top: float, y_bottom: float, x_lo: float, x_hi: float
) -> bool:
    """Whether a horizontal rule lies between two heights across the x-range's middle."""
    mid = (x_lo + x_hi) / 2
    return any(y_top < h.pos < y_bottom and h.lo <= mid <= h.hi for h in rules)


def _full_rule_between(
    rules: Sequence[Ruling], y_top: float, y_bottom: float, edges: Sequence[float]
) -> bool:
    n_cols = len(edges) - 1
    crossed = sum(
        _rule_between(rules, y_top, y_bottom, edges[c], edges[c + 1]) for c in range(n_cols)
    )
    return crossed >= FULL_RULE_SHARE * n_cols


def _rule_weight(
    rules: Sequence[Ruling], y_top: float, y_bottom: float, edges: Sequence[float]
) -> float:
    """Thickness of the heaviest rule across the table between two heights."""
    width = edges[-1] - edges[0]
    return max(
        (h.thickness for h in rules if y_top < h.pos < y_bottom and h.length >= 0.5 * width),
        default=0.0,
    )


def _merge_wrapped_rows(
    pieces: list[Piece],
    n_rows: int,
    row_cy: Sequence[float],
    rules: Sequence[Ruling],
    edges: Sequence[float],
) -> int:
    """Rows between two rules across the table in which at most one column holds lines on
    more than one row are wrapped cell text: merged into one row. Returns the row count."""
    bounds = [
        r for r in range(n_rows - 1) if _full_rule_between(rules, row_cy[r], row_cy[r + 1], edges)
    ]
    if not bounds:
        return n_rows
    closed_top = _full_rule_between(rules, -np.inf, row_cy[0], edges)
    closed_bottom = _full_rule_between(rules, row_cy[-1], np.inf, edges)
    new_row: dict[int, int] = {}
    start = out = 0
    for end in [*bounds, n_rows - 1]:
        band = range(start, end + 1)
        multi = sum(
            len({p.row for p in pieces if p.row in band and p.col <= c < p.col + p.cols}) > 1
            for c in range(len(edges) - 1)
        )
        closed = (start > 0 or closed_top) and (end < n_rows - 1 or closed_bottom)
        wrapped = closed and multi <= 1
        for r in band:
            new_row[r] = out
            out += not wrapped
        out += wrapped
        start = end + 1
    for p in pieces:
        p.row = new_row[p.row]
    return out


def _span_rows(
    pieces: list[Piece],
    n_rows: int,
    row_cy: Sequence[float],
    rules: Sequence[Ruling],
    edges: Sequence[float],
    tol: float,
) -> None:
    """A piece alone in its columns between the rules above and below it, and centred
    between the first and last rows there, is a label of all those rows: it spans them
    (a row left with nothing but such labels is then dropped)."""
    for p in pieces:
        band = _band(p, n_rows, row_cy, rules, edges)
        if len(band) < 2:
            continue
        beside = any(
            q is not p and q.row in band and q.col < p.col + p.cols and p.col < q.col + q.cols
            for q in pieces
        )
        middle = (row_cy[band[0]] + row_cy[band[-1]]) / 2
        if not beside and abs(p.cy - middle) <= tol:
            p.row, p.rows = band[0], len(band)


def _band(
    p: Piece, n_rows: int, row_cy: Sequence[float], rules: Sequence[Ruling], edges: Sequence[float]
) -> list[int]:
    """Rows between the nearest rules above and below the piece across its columns; just
    its own row when no rule closes the band on both sides."""
    lo, hi = edges[p.col], edges[p.col + p.cols]
    top = bottom = p.row
    while top > 0 and not _rule_between(rules, row_cy[top - 1], row_cy[top], lo, hi):
        top -= 1
    while bottom < n_rows - 1 and not _rule_between(
        rules, row_cy[bottom], row_cy[bottom + 1], lo, hi
    ):
        bottom += 1
    closed_above = _rule_between(rules, -np.inf, row_cy[top], lo, hi)
    closed_below = _rule_between(rules, row_cy[bottom], np.inf, lo, hi)
    if not (closed_above and closed_below):
        return [p.row]
    return list(range(top, bottom + 1))


def _header_rows(
    pieces: Sequence[Piece],
    n_rows: int,
    row_cy: Sequence[float],
    rules: Sequence[Ruling],
    edges: Sequence[float],
) -> int:
    """How many rows are a header.

    The rows above the first rule across the table, when rules divide some rows but not
    all (booktabs, a ruled header over unruled groups of rows); else the first row when it
    holds no number while most cells below it (past the first column) do.
    """
    ruled = [
        r for r in range(n_rows - 1) if _full_rule_between(rules, row_cy[r], row_cy[r + 1], edges)
    ]
    if ruled and len(ruled) < n_rows - 1 and ruled[0] + 1 <= MAX_HEADER_ROWS:
        return ruled[0] + 1
    if len(ruled) >= 3 and ruled[0] == 0:
        # every row ruled: a header rule stands out by its weight
        weights = [_rule_weight(rules, row_cy[r], row_cy[r + 1], edges) for r in ruled]
        if weights[0] >= HEADER_RULE_WEIGHT * statistics.median(weights[1:]):
            return 1
    first = [p for p in pieces if p.row == 0]
    body = [p for p in pieces if p.row > 0 and p.col > 0]
    if not first or not body or sum(is_number(p.text) for p in body) < 0.5 * len(body):
        return 0
    return int(all(_labels_column(p, pieces) for p in first))


def _labels_column(head: Piece, pieces: Sequence[Piece]) -> bool:
    """Whether a first-row cell reads as a column label: not a number, or a year above a
    column of other numbers."""
    if not is_number(head.text):
        return True
    below = [p.text for p in pieces if p.row > 0 and p.col == head.col]
    return bool(_YEAR_RE.match(head.text)) and not any(_YEAR_RE.match(t) for t in below)


def _compact(pieces: list[Piece], n_rows: int, n_cols: int, header: int) -> tuple[int, int, int]:
    """Drop rows and columns where no cell starts (a separator drawn twice, a row whose
    labels now span others); spans shrink with them. Returns the new row and column counts
    and header row count."""
    rows = sorted({p.row for p in pieces})
    cols = sorted({p.col for p in pieces})
    row_at = {r: i for i, r in enumerate(rows)}
    col_at = {c: i for i, c in enumerate(cols)}
    for p in pieces:
        p.rows = sum(p.row <= r < p.row + p.rows for r in rows)
        p.cols = sum(p.col <= c < p.col + p.cols for c in cols)
        p.row, p.col = row_at[p.row], col_at[p.col]
    return len(rows), len(cols), sum(r < header for r in rows)


# -- cells ---------------------------------------------------------------------------------------


def _cells(pieces: Sequence[Piece], n_rows: int, n_cols: int) -> list[list[str | None]]:
    """The grid: each cell's pieces joined in reading order, ``None`` under its span."""
    groups: dict[tuple[int, int], list[Piece]] = {}
    for p in sorted(pieces, key=lambda p: (p.row, p.y0, p.x0)):
        groups.setdefault((p.row, p.col), []).append(p)
    grid: list[list[str | None]] = [[""] * n_cols for _ in range(n_rows)]
    owner: dict[tuple[int, int], tuple[int, int]] = {}
    for (r, c), ps in sorted(groups.items()):
        grid[r][c] = _cell_text(ps)
        rows = max(p.rows for p in ps)
        cols = max(p.cols for p in ps)
        for dr in range(rows):
            for dc in range(cols):
                at = (r + dr, c + dc)
                if (dr or dc) and at not in groups and at not in owner:
                    owner[at] = (r, c)
    for r, c in owner:
        grid[r][c] = None
    return _expressible(grid, owner)


def _cell_text(pieces: Sequence[Piece]) -> str:
    """A cell's pieces: side by side with a space, line under line joined as a paragraph."""
    lines: list[list[Piece]] = []
    for p in pieces:
        last = lines[-1][-1] if lines else None
        if last is not None and min(last.y1, p.y1) - max(last.y0, p.y0) > 0.5 * (p.y1 - p.y0):
            lines[-1].append(p)
        else:
            lines.append([p])
    texts = [" ".join(q.text for q in sorted(line, key=lambda q: q.x0)) for line in lines]
    return functools.reduce(join_lines, texts, "")


def _expressible(
    grid: list[list[str | None]], owner: dict[tuple[int, int], tuple[int, int]]
) -> list[list[str | None]]:
    """The grid with every ``None`` that ``table_html.grid_cells`` would give to another cell
    than intended turned into an empty cell.

    ``grid_cells`` gives a ``None`` to the cell on its left when that cell starts in the same
    row, else to the cell above: a position under a row-spanning cell whose left neighbour
    is a cell of the lower row cannot be covered, so the span stops above it.
    """
    got: dict[tuple[int, int], tuple[int, int]] = {}
    for r, row in enumerate(grid):
        for c, text in enumerate(row):
            if text is not None:
                got[(r, c)] = (r, c)
                continue
            left = got.get((r, c - 1)) if c > 0 else None
            above = got.get((r - 1, c)) if r > 0 else None
            reads: tuple[int, int] | None = left
            if left is None or left[0] != r:
                reads = above if above is not None else left
            if reads is not None and reads == owner.get((r, c)):
                got[(r, c)] = reads
            else:
                row[c] = ""
                got[(r, c)] = (r, c)
    return grid
