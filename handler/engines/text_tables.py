"""Tables of a PDF page's text layer without vertical rules: booktabs and unruled tables.

PyMuPDF's finder (:mod:`handler.engines.pdf_tables`) needs a grid of lines. Tables ruled
only horizontally (booktabs: a top, a middle and a bottom rule) or not at all are found
here by the OCR path's table finder (:func:`handler.engines.ocr_tables.find_tables` and its
grid builder, :func:`handler.engines.ocr_table_grid.build_grid`), fed with the text layer
instead of OCR boxes:

- **Boxes** are the lines of ``get_text("dict")``: MuPDF starts a new line where the gap
  between two words is wide, so a table's cells come apart like the detector's boxes.
  They are taken to text space and scaled to the OCR path's 200 DPI (``GRID_SCALE``), at
  which its thresholds were set.
- **Rules** are the page's horizontal strokes (:func:`handler.engines.pdf_tables.page_art`)
  as long as the OCR path's shortest rule (``H_RULE_MIN_LINES`` line heights); only rules
  stacked with another of the same ends around a row of cells (the OCR finder's booktabs
  test), and the rules between such a pair, are passed on.
- **Stray ink** (the OCR finder's test against charts, here applied to unruled tables
  too) is the share of a region covered by images and drawn shapes narrower than
  ``ROW_SHADING_SHARE`` of it (a chart's bars and lines, icons); a shaded band across the
  table is no reason to reject it.

The same rules decide what is a table as on OCR pages: two horizontal rules with the same
ends and no prose between them outline a booktabs table; three or more rows of short
boxes whose gaps line up, with a column of numbers, form an unruled one; multi-column
prose, numbered lists, "label:" forms, tables of contents and code listings stay text.
Pages without two rows of two short boxes (:func:`_cell_rows`), or without either two
stacked rules around such a row or three such rows in a run, skip the search: they pay
for a look at their lines and rules only.

Each table is one :class:`LineTable`; its lines leave the text blocks whole (a ``dict``
line is in one table or in the text, never both).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pymupdf

from handler.engines.ocr_columns import box_gutters
from handler.engines.ocr_layout import OcrLine
from handler.engines.ocr_rulings import H_RULE_MIN_LINES, Ruling
from handler.engines.ocr_table_grid import MIN_COLUMN_GAP
from handler.engines.ocr_tables import (
    MAX_ROW_GAP,
    MAX_STRAY_INK,
    MIN_UNRULED_ROWS,
    PROSE_WIDTH_SHARE,
    PROSE_WORDS,
    RULE_END_TOLERANCE,
    find_tables,
)
from handler.engines.pdf_tables import MIN_ROWS, PageArt, shapes
from handler.engines.text_space import Frame

Box = tuple[float, float, float, float]  # x0, y0, x1, y1

#: Points to the OCR path's pixels: its thresholds were set on pages rendered at 200 DPI.
GRID_SCALE = 200 / 72
#: Rule thickness given to the grid builder, in line heights: the text layer's strokes
#: are not weighed, so every rule counts the same (no header by a heavier rule).
RULE_THICKNESS = 0.05
#: A drawn shape at least this share of a region's width wide is a shaded band (a header
#: row's background, zebra stripes), not stray ink.
ROW_SHADING_SHARE = 0.8
#: Lines no further apart than this, in line heights (top to top), sit on one row.
ROW_OVERLAP = 0.5
#: A line whose direction in text space differs from left to right by more than this
#: (sine of the angle) is rotated text: never a cell.
MAX_SLANT = 0.05


@dataclass(frozen=True, slots=True)
class LineTable:
    """A table found on the text layer's lines: its box (text-space points), cells in
    :mod:`handler.engines.table_html`'s form and header row count."""

    bbox: Box
    cells: list[list[str | None]]
    header_rows: int

    def grid(self) -> list[list[str | None]]:
        return self.cells


def find_line_tables(
    raw_blocks: list[dict[str, Any]],
    art: PageArt,
    frame: Frame,
    images: Sequence[Box] = (),
) -> tuple[list[dict[str, Any]], list[LineTable]]:
    """Booktabs and unruled tables among ``raw_blocks`` (``get_text("dict")`` blocks), and
    the blocks without their lines. ``images`` are the page's image boxes in text space."""
    lines, keys = _lines(raw_blocks, frame)
    if len(lines) < 2 * MIN_UNRULED_ROWS:  # a table has a header and 3 numbers in a column
        return raw_blocks, []
    line_h = statistics.median(ln.height for ln in lines)
    rows = _cell_rows(lines, line_h)
    if len(rows) < MIN_ROWS:
        return raw_blocks, []  # no two rows of two cells: no table
    rulings = _booktabs_rulings(art, frame, lines, line_h, rows)
    if not rulings and not _consecutive(rows, MIN_UNRULED_ROWS, MAX_ROW_GAP * line_h):
        return raw_blocks, []
    stray_ink = _StrayInk(art, frame, images)
    found = find_tables(
        lines,
        line_h,
        rulings=rulings,
        stray_ink=stray_ink,
        gutters=box_gutters(lines, line_h),
    )
    # The OCR finder weighs stray ink in ruled regions only (its figures are found
    # apart); here a chart's labels and values can line up without a rule.
    found = [t for t in found if stray_ink(t.bbox, ()) <= MAX_STRAY_INK]
    if not found:
        return raw_blocks, []
    tables = [
        LineTable(_scaled(t.bbox, 1 / GRID_SCALE), t.grid.cells, t.grid.header_rows) for t in found
    ]
    taken = {keys[i] for t in found for i in t.members}
    return _without(raw_blocks, taken), tables


def _lines(
    raw_blocks: list[dict[str, Any]], frame: Frame
) -> tuple[list[OcrLine], list[tuple[int, int]]]:
    """The dict lines as boxes in scaled text space, with their (block, line) indices;
    lines of rotated text are left out."""
    lines: list[OcrLine] = []
    keys: list[tuple[int, int]] = []
    matrix = frame.to_text
    upright = tuple(matrix) == (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    for b, block in enumerate(raw_blocks):
        for i, line in enumerate(block.get("lines", ())):
            dx, dy = line["dir"]
            if abs(dx * matrix.b + dy * matrix.d) > MAX_SLANT:  # its direction in text space
                continue
            text = " ".join("".join(s["text"] for s in line["spans"]).split())
            if not text:
                continue
            if upright:
                x0, y0, x1, y1 = line["bbox"]
            else:
                r = pymupdf.Rect(line["bbox"]) * matrix
                x0, y0, x1, y1 = r.x0, r.y0, r.x1, r.y1
            s = GRID_SCALE
            lines.append(OcrLine(text, 1.0, x0 * s, y0 * s, x1 * s, y1 * s, (y1 - y0) * s))
            keys.append((b, i))
    return lines, keys


def _cell_rows(lines: Sequence[OcrLine], line_h: float) -> list[tuple[float, float]]:
    """Rows (top, bottom) holding two short boxes or more apart by a column gap: where a
    table's rows can be. Prose lines are long; the pieces MuPDF makes of a justified
    line are closer than a column gap, so they count as one."""
    rows: list[tuple[float, float]] = []
    ordered = sorted(lines, key=lambda ln: ln.y0)
    start = 0
    for k in range(1, len(ordered) + 1):
        if k < len(ordered) and ordered[k].y0 - ordered[start].y0 <= ROW_OVERLAP * line_h:
            continue
        row = sorted(ordered[start:k], key=lambda ln: ln.x0)
        words = [len(row[0].text.split())]
        for left, right in itertools.pairwise(row):
            if right.x0 - left.x1 < MIN_COLUMN_GAP * line_h:
                words[-1] += len(right.text.split())
            else:
                words.append(len(right.text.split()))
        if sum(n < PROSE_WORDS for n in words) >= 2:
            rows.append((row[0].y0, max(ln.y1 for ln in row)))
        start = k
    return rows


def _consecutive(rows: Sequence[tuple[float, float]], count: int, max_gap: float) -> bool:
    """Whether ``count`` of ``rows`` follow each other with gaps of at most ``max_gap``
    (a lone label between two rows of cells may sit in a gap)."""
    run = 1
    for (_, bottom), (top, _) in itertools.pairwise(rows):
        run = run + 1 if top - bottom <= max_gap else 1
        if run >= count:
            return True
    return run >= count


def _booktabs_rulings(
    art: PageArt,
    frame: Frame,
    lines: Sequence[OcrLine],
    line_h: float,
    rows: Sequence[tuple[float, float]],
) -> list[Ruling]:
    """The horizontal rules (text space, scaled) that could outline a booktabs table:
    pairs of rules with the same ends, a row of cells (``rows``) and no line of prose
    between them (the OCR finder's test, done here first so that a page framed by rules
    does not pay for the search), and the rules between such a pair."""
    rules: list[Ruling] = []
    for box in (*art.horizontal, *art.vertical):
        r = pymupdf.Rect(box[0], box[1], box[2], box[3]) * frame.to_text
        x0, y0, x1, y1 = _scaled((r.x0, r.y0, r.x1, r.y1), GRID_SCALE)
        if y1 - y0 < x1 - x0 and x1 - x0 >= H_RULE_MIN_LINES * line_h:  # across text space
            rules.append(Ruling(True, (y0 + y1) / 2, x0, x1, RULE_THICKNESS * line_h))
    ends = RULE_END_TOLERANCE * line_h
    pairs = [
        (a, b)
        for i, a in enumerate(rules)
        for b in rules[i + 1 :]
        if abs(a.lo - b.lo) <= ends
        and abs(a.hi - b.hi) <= ends
        and abs(a.pos - b.pos) >= line_h
        and any(min(a.pos, b.pos) < top and bottom < max(a.pos, b.pos) for top, bottom in rows)
        and not _prose_between(a, b, lines)
    ]
    return [
        r
        for r in rules
        if any(
            min(a.pos, b.pos) <= r.pos <= max(a.pos, b.pos)
            and min(a.lo, b.lo) - ends <= r.lo
            and r.hi <= max(a.hi, b.hi) + ends
            for a, b in pairs
        )
    ]


def _prose_between(a: Ruling, b: Ruling, lines: Sequence[OcrLine]) -> bool:
    top, bottom = sorted((a.pos, b.pos))
    width = min(a.hi, b.hi) - max(a.lo, b.lo)
    return any(
        top < ln.cy < bottom
        and a.lo <= ln.cx <= a.hi
        and len(ln.text.split()) >= PROSE_WORDS
        and ln.x1 - ln.x0 >= PROSE_WIDTH_SHARE * width
        for ln in lines
    )


class _StrayInk:
    """Share of a region (scaled text space) covered by images and drawn shapes that are
    not a shaded band across it."""

    def __init__(self, art: PageArt, frame: Frame, images: Sequence[Box]) -> None:
        self._art, self._frame, self._images = art, frame, images
        self._boxes: list[Box] | None = None

    def __call__(self, region: Box, _text_boxes: Sequence[Box]) -> float:
        if self._boxes is None:  # the page's shapes are read only when a region needs them
            self._boxes = [_scaled(box, GRID_SCALE) for box in self._images]
            for box in shapes(self._art):
                r = pymupdf.Rect(box) * self._frame.to_text
                self._boxes.append(_scaled((r.x0, r.y0, r.x1, r.y1), GRID_SCALE))
        x0, y0, x1, y1 = region
        area = max((x1 - x0) * (y1 - y0), 1e-9)
        covered = 0.0
        for bx0, by0, bx1, by1 in self._boxes:
            w = min(x1, bx1) - max(x0, bx0)
            h = min(y1, by1) - max(y0, by0)
            if w > 0 and h > 0 and bx1 - bx0 < ROW_SHADING_SHARE * (x1 - x0):
                covered += w * h
        return covered / area


def _without(raw_blocks: list[dict[str, Any]], taken: set[tuple[int, int]]) -> list[dict[str, Any]]:
    out = []
    touched = {b for b, _ in taken}
    for b, block in enumerate(raw_blocks):
        if b not in touched:
            out.append(block)
            continue
        lines = [ln for i, ln in enumerate(block["lines"]) if (b, i) not in taken]
        if lines:
            out.append({**block, "lines": lines})
    return out


def _scaled(box: Sequence[float], factor: float) -> Box:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)
