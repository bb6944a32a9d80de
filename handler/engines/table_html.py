"""Tables as a grid of cell texts, and the forms the outputs need: HTML, plain text, pipe table.

Every engine that finds a table (the text layer's table finder, OCR table structure, the
GPU engines' HTML) meets here, so ``text_as_html`` and the markdown look the same whichever
engine read the page.

A grid is a list of rows, each a list of cells. A cell is its text, or ``None`` where the
cell to its left (or, failing that, above) spans over it; that is how PyMuPDF's
``Table.extract()`` reports merged cells.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

Grid = Sequence[Sequence[str | None]]


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    row: int
    col: int
    rowspan: int = 1
    colspan: int = 1


def grid_cells(grid: Grid) -> list[Cell]:
    """The cells of ``grid`` with their spans; covered positions (``None``) join a neighbour.

    A ``None`` extends the nearest real cell to its left in the same row; a ``None`` in the
    first column (or after another row-spanning gap) extends the cell above.
    """
    rows = [list(r) for r in grid]
    width = max((len(r) for r in rows), default=0)
    owner: dict[tuple[int, int], tuple[int, int]] = {}  # covered position -> its cell
    spans: dict[tuple[int, int], list[int]] = {}  # cell -> [rowspan, colspan]
    for r, row in enumerate(rows):
        row += [None] * (width - len(row))
        for c, text in enumerate(row):
            if text is not None:
                spans[(r, c)] = [1, 1]
                owner[(r, c)] = (r, c)
                continue
            left = owner.get((r, c - 1)) if c > 0 else None
            above = owner.get((r - 1, c)) if r > 0 else None
            if left is not None and left[0] == r:
                spans[left][1] = max(spans[left][1], c - left[1] + 1)
                owner[(r, c)] = left
            elif above is not None:
                spans[above][0] = max(spans[above][0], r - above[0] + 1)
                owner[(r, c)] = above
            elif left is not None:
                owner[(r, c)] = left
            else:  # an empty corner with nothing to join: a cell of its own
                spans[(r, c)] = [1, 1]
                owner[(r, c)] = (r, c)
                rows[r][c] = ""
    return [
        Cell(_clean(rows[r][c] or ""), r, c, rowspan, colspan)
        for (r, c), (rowspan, colspan) in sorted(spans.items())
    ]


def grid_html(grid: Grid, header_rows: int = 0) -> str:
    """``<table>`` with ``<thead>`` for the first ``header_rows`` rows and spans as attributes."""
    cells = grid_cells(grid)
    by_row: dict[int, list[Cell]] = {}
    for cell in cells:
        by_row.setdefault(cell.row, []).append(cell)
    n_rows = len(grid)
    parts = ["<table>"]
    for section, rows in (("thead", range(header_rows)), ("tbody", range(header_rows, n_rows))):
        if not rows:
            continue
        tag = "th" if section == "thead" else "td"
        parts.append(f"<{section}>")
        for r in rows:
            row_cells = "".join(_cell_html(c, tag) for c in by_row.get(r, []))
            parts.append(f"<tr>{row_cells}</tr>")
        parts.append(f"</{section}>")
    parts.append("</table>")
    return "".join(parts)


def grid_text(grid: Grid) -> str:
    """The table's text as ``unstructured`` gives it: cells in reading order, one row a line."""
    lines = [" ".join(_clean(c) for c in row if c and _clean(c)) for row in grid]
    return "\n".join(line for line in lines if line)


def html_grid(table_html: str) -> tuple[list[list[str | None]], int] | None:
    """Parse a ``<table>`` back into a grid (spans as ``None``) and its header row count.

    Returns None when the HTML holds no table or nested tables (kept as HTML then).
    """
    parser = _TableParser()
    try:
        parser.feed(table_html)
        parser.close()
    except ValueError:  # malformed span attributes
        return None
    if parser.nested or not parser.rows:
        return None
    grid: dict[tuple[int, int], str | None] = {}
    for r, row in enumerate(parser.rows):
        c = 0
        for text, rowspan, colspan in row:
            while (r, c) in grid:
                c += 1
            for dr in range(rowspan):
                for dc in range(colspan):
                    grid[(r + dr, c + dc)] = text if dr == dc == 0 else None
            c += colspan
    n_rows = max(r for r, _ in grid) + 1
    n_cols = max(c for _, c in grid) + 1
    rows = [[grid.get((r, c), "") for c in range(n_cols)] for r in range(n_rows)]
    return rows, parser.header_rows


def pipe_table(grid: Grid, header_rows: int = 1) -> str | None:
    """A GitHub pipe table, or None when the grid cannot be one (spans, or several header rows).

    A pipe table has exactly one header row; a grid without one gets an empty header so the
    data rows stay data.
    """
    if not grid or any(cell is None for row in grid for cell in row) or header_rows > 1:
        return None
    width = max(len(row) for row in grid)
    rows = [[_pipe_cell(c or "") for c in row] + [""] * (width - len(row)) for row in grid]
    header = rows[0] if header_rows == 1 else [""] * width
    body = rows[1:] if header_rows == 1 else rows
    lines = [_pipe_row(header), _pipe_row(["---"] * width), *(_pipe_row(r) for r in body)]
    return "\n".join(lines)


def _cell_html(cell: Cell, tag: str) -> str:
    attrs = ""
    if cell.rowspan > 1:
        attrs += f' rowspan="{cell.rowspan}"'
    if cell.colspan > 1:
        attrs += f' colspan="{cell.colspan}"'
    return f"<{tag}{attrs}>{html.escape(cell.text, quote=False)}</{tag}>"


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _pipe_cell(text: str) -> str:
    return _clean(text).replace("\\", "\\\\").replace("|", "\\|")


def _pipe_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


class _TableParser(HTMLParser):
    """Rows of (text, rowspan, colspan) from the first table; notes nested tables."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, int, int]]] = []
        self.header_rows = 0
        self.nested = False
        self._depth = 0
        self._in_head = False
        self._cell: list[str] | None = None
        self._spans = (1, 1)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._depth += 1
            self.nested = self.nested or self._depth > 1
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self._depth == 1:
            self.rows.append([])
            if self._in_head:
                self.header_rows += 1
        elif tag in ("td", "th") and self._depth == 1 and self.rows:
            named = dict(attrs)
            self._cell = []
            self._spans = (_span(named.get("rowspan")), _span(named.get("colspan")))
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._depth -= 1
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append((_clean("".join(self._cell)), *self._spans))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


MAX_SPAN = 1000  # a span beyond this is a broken attribute, not a table


def _span(value: str | None) -> int:
    if not value:
        return 1
    span = int(value.strip())
    if not 1 <= span <= MAX_SPAN:
        raise ValueError(f"span {span} out of range")
    return span
