"""Lines of a PDF page's text layer, and what kind of line each is (for the text-layer engine).

``page_blocks(raw_blocks, frame)`` reads ``get_text("dict")`` blocks (:func:`read_text`)
into blocks of :class:`Line` in text space (:class:`Frame`: PDF points on the displayed
page, turned so that most text runs left to right); PyMuPDF's lines that lie on one row
(justified text with wide gaps, superscripts, right-to-left runs) are joined into one
line, in PyMuPDF's (logical) order.
Then ``classify(blocks, sizes, frame.rect, in_figure)`` marks every line as body text, a
title (with a level), a list-item start, a page number or code:

- The body font size is the size most characters on the page have (rounded to 0.5 pt);
  the body font is the font most characters in that size have.
- Code is a line mostly in a monospaced font (PyMuPDF's monospace flag, or a name like
  Courier, Consolas, ...Mono) on a page whose text is mostly not monospaced (on a
  typewritten page every line is): never a title or a list item, whatever its size.
- A title is a line at least ``TITLE_SIZE_RATIO`` times the body size (and at most
  ``TITLE_MAX_CHARS`` long), or a standalone bold line in about the body size
  (:func:`_bold_heading`: entirely bold, at most ``BOLD_TITLE_MAX_CHARS``, not ending in
  ``.``, ``!``, ``,`` or ``;``; starting its block or following a title or a finished
  sentence; not the bold first line of a paragraph that wraps on below it), or a line
  set apart by weaker signs that introduces body text (:func:`_styled_heading`: entirely
  italic, or ``STYLED_SIZE_RATIO`` larger than the body in another font; the bold rule's
  length and endings, no caption; followed within a line height by a line in the body's
  own type that it does not run into). Text inside a figure drawn on the page
  (``in_figure``, :mod:`handler.engines.text_figures`) is never a title. Levels
  1..``MAX_TITLE_LEVEL`` rank the larger title sizes of the page from the largest; bold
  and italic body-size titles come one level below them.
- A list item starts with a bullet (•, ▪, -, *, an en dash, …) or a number or letter marker
  (``1.``, ``2)``, ``a)``, ``(iv)``) followed by a space. A bullet drawn as a glyph of its
  own (often an unmapped symbol) is joined to the text beside it, as "•"; one or two
  unmapped glyphs (U+FFFD, private use, control) starting a line are such a bullet too.
- A page number is a line that is just a number (``12``, ``- 12 -``, ``xi``,
  ``Page 3 of 9``) in the top or bottom ``MARGIN_SHARE`` of the page, or the top-most or
  bottom-most line of the page within its outer ``OUTER_SHARE``.

Titles are checked before list items (a large "2. Results" is a heading), list items
before bold titles (a bold "1. Step" is a list item); a numbered item ("(1) ...") in an
italic or larger other type that introduces body text is a heading.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pymupdf

from handler.engines.captions import starts_like_caption
from handler.engines.text_space import Frame

Box = tuple[float, float, float, float]

# Ligatures expanded, whitespace normalised, U+FFFD for glyphs without Unicode (no CID
# codes passed off as characters), no image data in the dict (images come from
# get_image_info), nothing outside the page.
TEXT_FLAGS = pymupdf.TEXT_MEDIABOX_CLIP

TITLE_SIZE_RATIO = 1.15
TITLE_MAX_CHARS = 200
BOLD_TITLE_MAX_CHARS = 80
BOLD_TITLE_MIN_SIZE_RATIO = 0.95
# A line this much larger than the body in another font stands apart from it (a "(1) ..."
# subheading one point above the body), though not enough for a title by size alone.
STYLED_SIZE_RATIO = 1.05
INTRO_GAP = 1.0  # line heights between a styled heading and the body text it introduces
SAME_SIZE = 0.5  # points: sizes this close are one size (sizes are rounded to 0.5 pt)
PARAGRAPH_INDENT = 0.8  # font sizes of first-line indent that start a new paragraph
MAX_TITLE_LEVEL = 3
MARGIN_SHARE = 0.08
OUTER_SHARE = 0.2
BULLET_JOIN_GAP = 24.0  # points between a lone bullet glyph and its text
# A line is code when this share of its characters is monospaced (an inline `name` in a
# prose line is not).
MONO_SHARE = 0.8
WRAP_SLACK = 2.0  # font sizes short of a block's edge a line spanning the block may end
SENTENCE_ENDS = (".", "!", "?", ":")
# A bold line ending like a sentence or a clause is emphasis, not a heading ("?" is
# allowed: headings ask questions).
BOLD_TITLE_BAD_ENDS = (".", "!", ",", ";")

BULLET_CHARS = "•●▪■◦‣○∙·\u2043\u2013\u2014-*➢►▸▶✓✔❖◆◇□"
_BULLET_RE = re.compile(
    rf"^(?:[{re.escape(BULLET_CHARS)}]|\(?(?:\d{{1,3}}|[a-zA-Z]|[ivxIVX]{{1,4}})\)|\d{{1,3}}\.)\s"
)
_PAGE_NUMBER_RE = re.compile(
    "^(?:page\\s+)?[-\u2013\u2014(\\[]?\\s*(?:\\d{1,4}|[ivxlcdm]{1,7})\\s*[-\u2013\u2014)\\]]?"
    r"(?:\s*(?:of|/)\s*\d{1,4})?$",
    re.IGNORECASE,
)
_NUMBERED_RE = re.compile(r"^\(?(?:\d{1,3}|[a-zA-Z]|[ivxIVX]{1,4})[.)]\s")
_UNMAPPED_BULLET_RE = re.compile("^[\ufffd\ue000-\uf8ff\x00-\x1f]{1,2} ?(?=\\w)")
_BOLD_NAME_RE = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
_ITALIC_NAME_RE = re.compile(r"italic|oblique", re.IGNORECASE)
# Monospaced families whose fonts may lack PyMuPDF's monospace flag.
_MONO_NAME_RE = re.compile(r"mono|courier|consol|menlo|typewriter|code", re.IGNORECASE)
_SUBSET_RE = re.compile(r"^[A-Z]{6}\+")  # the subset tag of an embedded font's name
_IDENTITY = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
FONT_CACHE_SIZE = 1024  # font names remembered (subset tags make each document's new)
_ITALIC_FLAG = 2
_MONO_FLAG = 8
_BOLD_FLAG = 16
_GLYPH_CATS = {"So", "Co", "Cc"}  # symbols, private use (Symbol/Wingdings), controls


class LineKind(Enum):
    BODY = "body"
    TITLE = "title"
    BULLET = "bullet"
    PAGE_NUMBER = "page-number"
    CODE = "code"


@dataclass(slots=True)
class Line:
    text: str
    bbox: tuple[float, float, float, float]  # text-space points
    size: float  # the size most of its characters have
    bold: bool  # every character bold
    kind: LineKind = LineKind.BODY
    level: int | None = None
    italic: bool = False  # every character italic
    mono: bool = False  # most characters monospaced (``MONO_SHARE``)
    font: str = ""  # the font most of its characters have (subset tag removed)


@dataclass(slots=True)
class Block:
    lines: list[Line] = field(default_factory=list)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return union([line.bbox for line in self.lines])


def union(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def read_text(pdf_page: Any, *, chars: bool = False) -> list[dict[str, Any]]:
    """The page's ``get_text("dict")`` blocks, or ``"rawdict"`` blocks (each character with
    its box) when ``chars``."""
    return list(pdf_page.get_text("rawdict" if chars else "dict", flags=TEXT_FLAGS)["blocks"])


def page_blocks(
    raw_blocks: list[dict[str, Any]], frame: Frame
) -> tuple[list[Block], Counter[float]]:
    """The text blocks of ``get_text("dict")`` blocks in text space (empty lines dropped),
    and the page's font sizes by character count."""
    sizes: Counter[float] = Counter()
    blocks = []
    for raw in raw_blocks:
        block = Block()
        for raw_line in raw.get("lines", ()):
            line = _line(raw_line, frame.to_text, sizes)
            if line is None:
                continue
            if block.lines and same_row(block.lines[-1], line, frame.rect):
                block.lines[-1] = join_row(block.lines[-1], line)
            else:
                block.lines.append(line)
        if block.lines:
            blocks.append(block)
    _join_lone_bullets(blocks)
    for block in blocks:
        for line in block.lines:
            line.text = clean_line_text(line.text)
    return [b for b in blocks if b.lines], sizes


def clean_line_text(text: str) -> str:
    """A line's text with a bullet drawn as unmapped glyphs at its start read as "•"."""
    return _UNMAPPED_BULLET_RE.sub("• ", text)


def same_row(a: Line, b: Line, page: Any) -> bool:
    """``b`` is on ``a``'s row, beside it (either side), not above or below; a page number
    beside a running header or footer (in the top or bottom margin of ``page``, the text
    space rectangle) stays apart."""
    if _PAGE_NUMBER_RE.match(a.text) or _PAGE_NUMBER_RE.match(b.text):
        margin = MARGIN_SHARE * page.height
        if a.bbox[3] <= page.y0 + margin or a.bbox[1] >= page.y1 - margin:
            return False
    overlap = min(a.bbox[3], b.bbox[3]) - max(a.bbox[1], b.bbox[1])
    lower = min(a.bbox[3] - a.bbox[1], b.bbox[3] - b.bbox[1])
    beside = b.bbox[0] >= a.bbox[2] - 1 or b.bbox[2] <= a.bbox[0] + 1
    return overlap >= 0.5 * lower and beside


def join_row(a: Line, b: Line) -> Line:
    """One line from two pieces of a row, ``a`` first (logical order)."""
    longer = a if len(a.text) >= len(b.text) else b
    return Line(
        f"{a.text} {b.text}",
        union([a.bbox, b.bbox]),
        longer.size,
        a.bold and b.bold,
        italic=a.italic and b.italic,
        mono=a.mono and b.mono,
        font=longer.font,
    )


def _line(raw: dict[str, Any], matrix: Any, sizes: Counter[float]) -> Line | None:
    spans = [s for s in raw["spans"] if s["text"]]
    text = " ".join("".join(s["text"] for s in spans).split())
    if not text:
        return None
    weights: Counter[float] = Counter()
    fonts: Counter[str] = Counter()
    bold = italic = True
    mono = 0
    for span in spans:
        chars = len(span["text"].strip())
        if not chars:
            continue
        size = round(span["size"] * 2) / 2
        weights[size] += chars
        font, named_bold, named_italic, named_mono = _font_style(span["font"])
        fonts[font] += chars
        flags = span["flags"]
        bold = bold and bool(flags & _BOLD_FLAG or named_bold)
        italic = italic and bool(flags & _ITALIC_FLAG or named_italic)
        mono += chars if flags & _MONO_FLAG or named_mono else 0
    sizes.update(weights)
    if tuple(matrix) == _IDENTITY:  # most pages: no need for PyMuPDF's (slow) Rect * Matrix
        x0, y0, x1, y1 = raw["bbox"]
        box = (x0, y0, x1, y1)
    else:
        rect = pymupdf.Rect(raw["bbox"]) * matrix
        box = (rect.x0, rect.y0, rect.x1, rect.y1)
    if not weights:
        return Line(text, box, 0.0, False)
    return Line(
        text,
        box,
        weights.most_common(1)[0][0],
        bold,
        italic=italic,
        mono=mono >= MONO_SHARE * weights.total(),
        font=fonts.most_common(1)[0][0],
    )


@functools.lru_cache(maxsize=FONT_CACHE_SIZE)
def _font_style(name: str) -> tuple[str, bool, bool, bool]:
    """A font's name without its subset tag, and whether the name says bold, italic,
    monospaced (fonts whose flags do not say so); a page has a few fonts, many spans."""
    font = _SUBSET_RE.sub("", name)
    return (
        font,
        bool(_BOLD_NAME_RE.search(font)),
        bool(_ITALIC_NAME_RE.search(font)),
        bool(_MONO_NAME_RE.search(font)),
    )


def _is_lone_glyph(text: str) -> bool:
    """A single bullet-like glyph (not "-" or "*": those stand alone in table cells)."""
    if len(text) != 1 or text in "-*":
        return False
    return text in BULLET_CHARS or text == "\ufffd" or unicodedata.category(text) in _GLYPH_CATS


def _join_lone_bullets(blocks: list[Block]) -> None:
    """A bullet drawn apart from its text (its own line or block) joins that text as "•"."""
    lines = [line for block in blocks for line in block.lines]
    joined: set[int] = set()
    for marker in lines:
        if not _is_lone_glyph(marker.text):
            continue
        target = _text_right_of(marker, [x for x in lines if id(x) not in joined])
        if target is None:
            continue
        glyph = marker.text if marker.text in BULLET_CHARS else "•"
        target.text = f"{glyph} {target.text}"
        target.bbox = union([marker.bbox, target.bbox])
        joined.add(id(marker))
    for block in blocks:
        block.lines = [line for line in block.lines if id(line) not in joined]


def _text_right_of(marker: Line, lines: list[Line]) -> Line | None:
    _, my0, mx1, my1 = marker.bbox
    middle = (my0 + my1) / 2
    best = None
    for line in lines:
        x0, y0, _, y1 = line.bbox
        if line is marker or not (y0 <= middle <= y1) or not 0 <= x0 - mx1 <= BULLET_JOIN_GAP:
            continue
        if _is_lone_glyph(line.text):
            continue
        if best is None or x0 < best.bbox[0]:
            best = line
    return best


def body_size(sizes: Counter[float]) -> float:
    return sizes.most_common(1)[0][0] if sizes else 0.0


def classify(
    blocks: list[Block],
    sizes: Counter[float],
    page: Any,
    in_figure: Callable[[Box], bool] | None = None,
) -> None:
    """Set ``kind`` and ``level`` of every line (see the module docstring); ``page`` is
    the page's rectangle in text space; ``in_figure(box)`` tells whether a box lies in a
    figure drawn on the page (its text is labels, never a title)."""
    body = body_size(sizes)
    lines = [line for block in blocks for line in block.lines]
    if not lines:
        return
    top = min(line.bbox[1] for line in lines)
    bottom = max(line.bbox[3] for line in lines)
    style = _body_style(lines, body)
    for block in blocks:
        edges = (min(x.bbox[0] for x in block.lines), max(x.bbox[2] for x in block.lines))
        for i, line in enumerate(block.lines):
            previous = block.lines[i - 1] if i else None
            following = block.lines[i + 1] if i + 1 < len(block.lines) else None
            line.kind = _kind(line, previous, body, page, top, bottom)
            if line.kind is not LineKind.PAGE_NUMBER and line.mono and not style.mono:
                line.kind = LineKind.CODE  # never a title or a list item
            elif _heading_by_style(line, previous, following, edges, lines, style):
                line.kind = LineKind.TITLE
            if line.kind is LineKind.TITLE and in_figure is not None and in_figure(line.bbox):
                line.kind = LineKind.BODY  # a label of a drawn figure
    _set_levels(lines, body)


def _heading_by_style(
    line: Line,
    previous: Line | None,
    following: Line | None,
    edges: tuple[float, float],
    lines: list[Line],
    style: _BodyStyle,
) -> bool:
    """A body line or list item that its type makes a heading (bold, else italic or a
    larger other font)."""
    if line.kind is LineKind.BODY and _bold_heading(line, previous, following, edges, style.size):
        return True
    return line.kind in (LineKind.BODY, LineKind.BULLET) and _styled_heading(
        line, previous, following, lines, style
    )


@dataclass(frozen=True, slots=True)
class _BodyStyle:
    """The type most of a page's text is set in."""

    size: float
    font: str  # the font with the most characters in the body size
    mono: bool  # most of the text is monospaced (a typewritten page: no line is code)


def _body_style(lines: list[Line], body: float) -> _BodyStyle:
    fonts: Counter[str] = Counter()
    mono = total = 0
    for line in lines:
        chars = len(line.text)
        total += chars
        mono += chars if line.mono else 0
        if abs(line.size - body) <= SAME_SIZE:
            fonts[line.font] += chars
    font = fonts.most_common(1)[0][0] if fonts else ""
    return _BodyStyle(body, font, mono > 0.5 * total)


def _styled_heading(
    line: Line,
    previous: Line | None,
    following: Line | None,
    lines: list[Line],
    style: _BodyStyle,
) -> bool:
    """A short line set apart from the body by its type, that stands alone and
    introduces body text: a heading.

    Set apart: entirely italic in (about) the body size, or at least
    ``STYLED_SIZE_RATIO`` times the body size in another font than the body's. These are
    weaker signs than bold (italic marks captions, quotes and verse too), so the line must
    also be followed, within ``INTRO_GAP`` line heights, by a line of body text (the
    body's font and size, upright and regular) that it does not run into: the body line
    starts a paragraph (indented) or is longer (a paragraph whose first line is italic
    runs as wide as the next). ``following`` is the next line of its block, else the
    nearest line below it on the page (``lines``). A caption ("Figure 3 ...") is never
    one; a list item is one only when numbered ("(1) ...", "2. ..."), not bulleted.
    """
    text, body = line.text, style.size
    if not (
        body
        and len(text) <= BOLD_TITLE_MAX_CHARS
        and any(ch.isalnum() for ch in text)
        and not text.endswith(BOLD_TITLE_BAD_ENDS)
        and not starts_like_caption(text)
    ):
        return False
    if line.kind is LineKind.BULLET and not _NUMBERED_RE.match(text):
        return False
    italic = line.italic and line.size >= body * BOLD_TITLE_MIN_SIZE_RATIO
    larger = line.size >= body * STYLED_SIZE_RATIO and line.font != style.font
    if not (italic or larger):
        return False
    if not (
        previous is None or previous.kind is LineKind.TITLE or previous.text.endswith(SENTENCE_ENDS)
    ):
        return False
    below = following or _line_below(line, lines)
    if below is None or not _is_body_text(below, style):
        return False
    height = line.bbox[3] - line.bbox[1]
    if below.bbox[1] - line.bbox[3] > INTRO_GAP * height:
        return False
    indented = below.bbox[0] > line.bbox[0] + PARAGRAPH_INDENT * below.size
    return indented or line.bbox[2] < below.bbox[2] - WRAP_SLACK * line.size


def _is_body_text(line: Line, style: _BodyStyle) -> bool:
    return (
        line.font == style.font
        and abs(line.size - style.size) <= SAME_SIZE
        and not (line.bold or line.italic)
    )


def _line_below(line: Line, lines: list[Line]) -> Line | None:
    """The nearest line starting below ``line`` that overlaps it horizontally."""
    best = None
    for other in lines:
        if other.bbox[1] < line.bbox[3] - SAME_SIZE or other is line:
            continue
        if min(other.bbox[2], line.bbox[2]) <= max(other.bbox[0], line.bbox[0]):
            continue
        if best is None or other.bbox[1] < best.bbox[1]:
            best = other
    return best


def _kind(
    line: Line, previous: Line | None, body: float, page: Any, top: float, bottom: float
) -> LineKind:
    text = line.text
    _, y0, _, y1 = line.bbox
    if _PAGE_NUMBER_RE.match(text):
        height = max(page.height, 1e-9)
        y0, y1 = (y0 - page.y0) / height, (y1 - page.y0) / height  # 0 top .. 1 bottom
        in_margin = y1 <= MARGIN_SHARE or y0 >= 1 - MARGIN_SHARE
        first = line.bbox[1] <= top + 0.5 and y1 <= OUTER_SHARE
        last = line.bbox[3] >= bottom - 0.5 and y0 >= 1 - OUTER_SHARE
        if in_margin or first or last:
            return LineKind.PAGE_NUMBER
    has_word = any(ch.isalnum() for ch in text)
    if has_word and body and line.size >= body * TITLE_SIZE_RATIO and len(text) <= TITLE_MAX_CHARS:
        return LineKind.TITLE
    if _BULLET_RE.match(text):
        return LineKind.BULLET
    return LineKind.BODY


def _bold_heading(
    line: Line,
    previous: Line | None,
    following: Line | None,
    edges: tuple[float, float],
    body: float,
) -> bool:
    """A short, standalone, entirely bold line in (about) the body size: a heading.

    Standalone: it starts its block, follows a title or a line that ends a sentence, and
    does not run across the block's full width into a non-bold line below (the bold
    first sentence of a paragraph). It does not end like a sentence or a clause.
    """
    text = line.text
    if not (
        line.bold
        and body
        and line.size >= body * BOLD_TITLE_MIN_SIZE_RATIO
        and len(text) <= BOLD_TITLE_MAX_CHARS
        and any(ch.isalnum() for ch in text)
        and not text.endswith(BOLD_TITLE_BAD_ENDS)
    ):
        return False
    if not (
        previous is None or previous.kind is LineKind.TITLE or previous.text.endswith(SENTENCE_ENDS)
    ):
        return False
    slack = WRAP_SLACK * line.size
    full_width = line.bbox[0] <= edges[0] + slack and line.bbox[2] >= edges[1] - slack
    return following is None or following.bold or not full_width


def _set_levels(lines: list[Line], body: float) -> None:
    large = sorted(
        {line.size for line in lines if line.kind is LineKind.TITLE and line.size > body},
        reverse=True,
    )
    rank = {size: min(i + 1, MAX_TITLE_LEVEL) for i, size in enumerate(large)}
    below = min(len(large), MAX_TITLE_LEVEL) + 1  # bold titles in the body size
    for line in lines:
        if line.kind is LineKind.TITLE:
            line.level = rank.get(line.size, below)
