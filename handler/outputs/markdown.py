"""Elements -> GitHub-flavoured markdown."""

from __future__ import annotations

import re
from typing import Any

from handler.engines.base import ElementType
from handler.engines.table_html import html_grid, pipe_table

# Page furniture stays in elements.json but is kept out of the markdown body.
FURNITURE = frozenset({ElementType.HEADER, ElementType.FOOTER, ElementType.PAGE_NUMBER})
MAX_HEADING_LEVEL = 6

_LIST_MARKER = re.compile(
    "^\\s*(?:[\u2022\u00b7\u25aa\u25e6\u2023\u25cf\u25cb\u25a0\u25a1*\u2013\u2014-]"
    "|\\(?\\d{1,3}[.)]|\\(?[a-zA-Z][.)])\\s+"
)
# Only what would change the document's structure is escaped, so that text stays
# searchable as it is: a line that would start a heading, quote, list or table, and
# anything that looks like an HTML tag.
_BLOCK_START = re.compile(r"^(\s*)([#>|]|[-+*](?=\s))", re.MULTILINE)
_ORDERED_START = re.compile(r"^(\s*\d+)([.)])(?=\s)", re.MULTILINE)
_HTML_TAG = re.compile(r"<(?=/?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|!--)")


def escape(text: str) -> str:
    """Escape the characters of ``text`` that markdown would read as structure."""
    text = _ORDERED_START.sub(r"\1\\\2", _BLOCK_START.sub(r"\1\\\2", text))
    return _HTML_TAG.sub("&lt;", text)


def element_markdown(element: dict[str, Any]) -> str | None:
    """One element dict as a markdown block, or None when it is not part of the body."""
    kind = ElementType(element["type"])
    text = element["text"].strip()
    metadata = element.get("metadata", {})
    if kind in FURNITURE:
        return None
    if kind is ElementType.TITLE:
        level = min(MAX_HEADING_LEVEL, int(metadata.get("category_depth", 0)) + 1)
        return f"{'#' * level} {escape(_one_line(text))}" if text else None
    if kind is ElementType.LIST_ITEM:
        match = _LIST_MARKER.match(text)
        marker = match.group(0).strip() if match else ""
        body = escape(_one_line(text[match.end() :] if match else text))
        if marker[:1].isdigit() or marker.startswith("("):
            return f"{marker.strip('()').rstrip('.)')}. {body}"
        return f"- {body}"
    if kind is ElementType.TABLE:
        return _table_markdown(metadata.get("text_as_html"), text)
    if kind is ElementType.FORMULA:
        return f"$$\n{text}\n$$" if text else None
    if kind is ElementType.UNCATEGORIZED_TEXT and "\n" in text:
        return _fenced(element["text"].strip("\n"))
    if kind is ElementType.IMAGE:
        return f"![{escape(_one_line(text))}]()" if text else "<!-- image -->"
    if kind is ElementType.FIGURE_CAPTION:
        return f"*{escape(_one_line(text))}*" if text else None
    return escape(text) if text else None


def page_markdown(elements: list[dict[str, Any]]) -> str:
    """A page's body: its elements' blocks separated by blank lines."""
    blocks = [block for e in elements if (block := element_markdown(e))]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def failed_page_markdown(page_number: int, reason: str) -> str:
    return f"> **pagedrop:** page {page_number} could not be converted ({_one_line(reason)}).\n"


def document_markdown(pages: list[tuple[int, str]]) -> str:
    """The whole document: (page number, page markdown) in order, each after a marker."""
    parts = [
        f"<!-- page {number} -->\n\n{body.strip()}\n"
        if body.strip()
        else f"<!-- page {number} -->\n"
        for number, body in pages
    ]
    return "\n".join(parts)


def _table_markdown(table_html: str | None, text: str) -> str | None:
    """A pipe table when the grid is simple (no spans, one header row at most), else the
    HTML as it is (GitHub renders both); the text when there is no HTML."""
    if not table_html:
        return escape(text) if text else None
    parsed = html_grid(table_html)
    if parsed is None:
        return table_html
    grid, header_rows = parsed
    # Cell text that looks like a tag ("<table name>") would vanish when rendered.
    cells = [[_HTML_TAG.sub("&lt;", cell) if cell else cell for cell in row] for row in grid]
    return pipe_table(cells, header_rows) or table_html


def _fenced(text: str) -> str:
    """Text whose lines matter (a code listing) as a fenced block, kept as it is; the fence
    is longer than any run of backticks inside."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
