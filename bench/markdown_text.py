"""Reading markdown the way a benchmark needs it: plain text, headings and tables.

Every system's output goes through the same functions, so no system gains from the
markdown dialect it writes (pipe tables or HTML, ``**bold**`` or not, escaped characters).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

Grid = list[list[str]]  # rows of cell texts; a position a span covers holds ""

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$")
_RULE = re.compile(r"^\s*([-*_=])(\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^\s*(>\s?)+")
_BULLET = re.compile(r"^\s*[-+*]\s+")
_TABLE_ROW = re.compile(r"^\s*\|")
_DELIMITER_ROW = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_HTML_TABLE = re.compile(r"<table\b.*?</table>", re.DOTALL | re.IGNORECASE)
_CELL_END = re.compile(r"</t[dh]>|<br\s*/?>", re.IGNORECASE)
_ROW_END = re.compile(r"</tr>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_CODE_SPAN = re.compile(r"`+")
_MATH_FENCE = re.compile(r"\$\$")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def plain_text(markdown: str) -> str:
    """The text a reader sees: markdown syntax, HTML tags and comments removed.

    Table rows become one line each (cells separated by spaces), headings and list items
    lose their markers, emphasis and escapes are undone, entities decoded.
    """
    lines: list[str] = []
    in_fence = False
    for line in _COMMENT.sub(" ", markdown).splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:  # code is text as it stands
            lines.append(line)
            continue
        if _RULE.match(line):
            continue
        if _TABLE_ROW.match(line):
            if _DELIMITER_ROW.match(line):
                continue
            line = " ".join(pipe_cells(line))
        else:
            heading = _HEADING.match(line)
            if heading:
                line = heading.group(2) or ""
            line = _BULLET.sub("", _QUOTE.sub("", line))
        lines.append(line)
    return _inline_text("\n".join(lines))


def headings(markdown: str) -> list[tuple[int, str]]:
    """ATX headings (``#`` to ``######``) outside code blocks, as (level, plain text)."""
    found: list[tuple[int, str]] = []
    in_fence = False
    for line in _COMMENT.sub(" ", markdown).splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else _HEADING.match(line)
        if match and (text := _inline_text(match.group(2) or "").strip()):
            found.append((len(match.group(1)), text))
    return found


def tables(markdown: str) -> list[Grid]:
    """Every table in the markdown: pipe tables and HTML ``<table>`` blocks, as grids."""
    grids = [g for block in _HTML_TABLE.findall(markdown) if (g := html_table_grid(block))]
    rows: list[list[str]] = []
    in_table = False
    for line in [*_HTML_TABLE.sub("\n", markdown).splitlines(), ""]:
        if _TABLE_ROW.match(line):
            if _DELIMITER_ROW.match(line):
                in_table = True  # a pipe table needs its delimiter row
            else:
                rows.append([_inline_text(c).strip() for c in pipe_cells(line)])
            continue
        if in_table and (grid := _drop_empty_rows(rows)):
            grids.append(grid)
        rows, in_table = [], False
    return grids


def pipe_cells(line: str) -> list[str]:
    """The cells of one pipe-table row, escaped pipes kept as text."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.strip().replace("\\|", "|") for cell in _UNESCAPED_PIPE.split(body)]


def html_table_grid(table_html: str) -> Grid | None:
    """The grid of one HTML table, spans expanded (the covered positions hold "")."""
    parser = _TableParser()
    parser.feed(table_html)
    parser.close()
    placed: dict[tuple[int, int], str] = {}
    for r, row in enumerate(parser.rows):
        c = 0
        for text, rowspan, colspan in row:
            while (r, c) in placed:
                c += 1
            for dr in range(rowspan):
                for dc in range(colspan):
                    placed[(r + dr, c + dc)] = text if dr == dc == 0 else ""
            c += colspan
    if not placed:
        return None
    n_rows = max(r for r, _ in placed) + 1
    n_cols = max(c for _, c in placed) + 1
    return _drop_empty_rows(
        [[placed.get((r, c), "") for c in range(n_cols)] for r in range(n_rows)]
    )


def _inline_text(text: str) -> str:
    text = _ROW_END.sub("\n", text)
    text = _CELL_END.sub(" ", text)
    text = _TAG.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _CODE_SPAN.sub("", _MATH_FENCE.sub("", text))
    return html.unescape(_ESCAPE.sub(r"\1", text))


def _drop_empty_rows(rows: Grid) -> Grid:
    return [row for row in rows if any(cell.strip() for cell in row)]


MAX_SPAN = 1000  # a larger rowspan/colspan is a broken attribute


class _TableParser(HTMLParser):
    """Rows of (text, rowspan, colspan) of the outermost table; nested tables are flattened."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, int, int]]] = []
        self._cell: list[str] | None = None
        self._spans = (1, 1)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            if not self.rows:
                self.rows.append([])
            named = dict(attrs)
            self._cell = []
            self._spans = (_span(named.get("rowspan")), _span(named.get("colspan")))
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append((" ".join("".join(self._cell).split()), *self._spans))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _span(value: str | None) -> int:
    try:
        span = int((value or "1").strip())
    except ValueError:
        return 1
    return span if 1 <= span <= MAX_SPAN else 1
