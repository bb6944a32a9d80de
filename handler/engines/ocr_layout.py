"""From OCR text lines to typed elements in reading order (for the rapidocr engine).

:func:`lines_to_elements` finds tables (:mod:`handler.engines.ocr_tables`) and figures
(:mod:`handler.engines.ocr_figures`), orders the other lines column by column
(:mod:`handler.engines.ocr_columns`), joins pieces of one printed line that the detector cut
apart, groups consecutive lines into blocks (paragraphs, list items, titles), gives each
block a type and marks the captions of tables and figures (:mod:`handler.engines.captions`).
Titles come from line height and position: OCR has no font sizes, so a line's box height
over the body's (``_body_height``) stands in for them. The text-layer engine
has its own rules for this (:mod:`handler.engines.paragraphs`, :mod:`handler.engines.text_lines`,
:mod:`handler.engines.reading_order`): they work on PDF points, font sizes and bold flags,
which OCR does not give, and differ in detail (see :func:`_join_lines`), so only the box
union is shared.
"""

from __future__ import annotations

import functools
import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from handler.engines.base import BBox, Element, ElementType, PageResult
from handler.engines.captions import mark_captions, starts_like_caption
from handler.engines.ocr_columns import box_gutters, read_by_columns
from handler.engines.ocr_figures import find_figures
from handler.engines.ocr_rulings import PageInk
from handler.engines.ocr_tables import find_tables
from handler.engines.paragraphs import join_lines
from handler.engines.text_lines import union


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised text line, in layout pixels of the (righted) page."""

    text: str
    score: float
    x0: float
    y0: float
    x1: float
    y1: float
    height: float  # across the line, so a slightly skewed line is not counted as taller

    @classmethod
    def from_quad(cls, quad: Any, text: str, score: float) -> OcrLine:
        """From a detector box: 4 points clockwise from the top-left."""
        q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
        height = (float(np.linalg.norm(q[3] - q[0])) + float(np.linalg.norm(q[2] - q[1]))) / 2
        x0, y0 = q.min(axis=0)
        x1, y1 = q.max(axis=0)
        return cls(text, float(score), float(x0), float(y0), float(x1), float(y1), height)

    @property
    def bbox(self) -> BBox:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2


def lines_to_elements(
    lines: Sequence[OcrLine],
    width: int,
    height: int,
    *,
    gutters: Sequence[tuple[float, float]] | None = None,
    ink: PageInk | None = None,
) -> list[Element]:
    """Group OCR lines into typed elements in reading order.

    ``gutters`` are the page's column gutters as x-ranges (the engine finds them from the
    ink; when None they are found from the line boxes); ``ink`` is the page's ink and
    rules (:class:`~handler.engines.ocr_rulings.PageInk`), without which only unruled
    tables are found and no figures. Tables (:func:`~handler.engines.ocr_tables.find_tables`)
    and figures (:func:`~handler.engines.ocr_figures.find_figures`) become one ``Table`` or
    ``Image`` element each, take their lines out of the text flow and their place in it.
    Lines are ordered column by column (:func:`~handler.engines.ocr_columns.read_by_columns`),
    pieces of one printed line are joined, consecutive lines with the same left edge (or a
    first-line / hanging indent), the same text size and no blank-line gap form one block;
    a line that starts like a caption starts a block. A block becomes a ``PageNumber`` (a
    lone number above or below all other text, or near the page's top or bottom edge), a
    ``Title`` (see :func:`_classify_block`; levels from ``TITLE_RATIOS``), a ``ListItem``
    (bullet or enumeration; a bullet glyph is dropped from the text) or ``NarrativeText``;
    the text next to a table or figure that starts like a caption becomes its
    ``FigureCaption``. ``prob`` is the mean recognition score of the block's lines; boxes
    are clamped to the ``width`` x ``height`` page.
    """
    lines = [ln for ln in lines if ln.text.strip()]
    if not lines:
        return []
    median_h = statistics.median(ln.height for ln in lines) or 1.0
    if gutters is None:
        gutters = box_gutters(lines, median_h)
    tables = find_tables(
        lines,
        median_h,
        rulings=ink.rulings if ink is not None else (),
        stray_ink=ink.stray_ink if ink is not None else None,
        gutters=gutters,
    )
    body_h = _body_height(lines)
    placed: list[_Placed] = list(tables)
    if ink is not None:
        in_tables = set().union(*(t.members for t in tables)) if tables else set()
        boxes = [t.bbox for t in tables]
        placed += find_figures(lines, ink, body_h, taken=boxes, skip=in_tables, gutters=gutters)
    flow, placed_of = _flow_with_placed(lines, placed, median_h)
    order = read_by_columns(flow, gutters)
    ordered = _merge_row_fragments([flow[i] for i in order], median_h)
    text_span = union([ln.bbox for ln in lines])
    blocks = _rejoin_first_lines(_blocks(ordered, median_h), body_h)
    page = _Page(width, height, text_span, body_h)
    elements: list[Element] = []
    for i, block in enumerate(blocks):
        if len(block) == 1 and id(block[0]) in placed_of:
            element = placed_of[id(block[0])].element()
            element.bbox = _clamp(element.bbox, width, height)
            elements.append(element)
            continue
        text = _join_lines([ln.text for ln in block])
        alone = _stands_alone(block, blocks[i - 1] if i else None, blocks[i + 1 : i + 2], body_h)
        kind, level, text = _classify_block(block, text, page, alone)
        bbox = _clamp(union([ln.bbox for ln in block]), width, height)
        prob = float(np.mean([ln.score for ln in block]))
        elements.append(Element(kind, text, bbox, level=level, prob=round(prob, 4)))
    mark_captions(elements, height)
    return elements


class _Placed(Protocol):
    """A table or a figure: a box that takes the place of its lines in the flow."""

    @property
    def bbox(self) -> BBox: ...

    @property
    def members(self) -> frozenset[int]: ...

    @property
    def score(self) -> float: ...

    def element(self) -> Element: ...


def _flow_with_placed(
    lines: list[OcrLine], placed: Sequence[_Placed], median_h: float
) -> tuple[list[OcrLine], dict[int, _Placed]]:
    """The lines outside tables and figures, plus one stand-in line for each of those
    (empty text, its box) so that it takes its place in reading order; by ``id``."""
    members = set().union(*(p.members for p in placed)) if placed else set()
    flow = [ln for i, ln in enumerate(lines) if i not in members]
    placed_of: dict[int, _Placed] = {}
    for item in placed:
        stand_in = OcrLine("", item.score, *item.bbox, median_h)
        flow.append(stand_in)
        placed_of[id(stand_in)] = item
    return flow, placed_of


def _clamp(bbox: BBox, width: int, height: int) -> BBox:
    x0, y0, x1, y1 = bbox
    return (
        min(max(0.0, x0), float(width)),
        min(max(0.0, y0), float(height)),
        min(max(0.0, x1), float(width)),
        min(max(0.0, y1), float(height)),
    )


def page_text(result: PageResult) -> str:
    """The page's text, one element per paragraph, in reading order."""
    return "\n\n".join(el.text for el in result.elements)


def _merge_row_fragments(lines: list[OcrLine], median_h: float) -> list[OcrLine]:
    """Join consecutive pieces of one printed line that the detector cut apart."""
    out: list[OcrLine] = []
    for ln in lines:
        if out and ln.text and out[-1].text:  # a table's stand-in (no text) stays apart
            prev = out[-1]
            overlap = min(prev.y1, ln.y1) - max(prev.y0, ln.y0)
            gap = ln.x0 - prev.x1
            if (
                overlap > 0.6 * min(prev.height, ln.height)
                and -0.5 * median_h < gap < 2.5 * median_h
                and max(prev.height, ln.height) < 1.3 * min(prev.height, ln.height)
            ):
                n_prev, n_ln = len(prev.text), len(ln.text)
                out[-1] = OcrLine(
                    f"{prev.text} {ln.text}",
                    (prev.score * n_prev + ln.score * n_ln) / max(1, n_prev + n_ln),
                    min(prev.x0, ln.x0),
                    min(prev.y0, ln.y0),
                    max(prev.x1, ln.x1),
                    max(prev.y1, ln.y1),
                    max(prev.height, ln.height),
                )
                continue
        out.append(ln)
    return out


# -- blocks and their types --------------------------------------------------------------------

# Not the text layer's patterns (handler.engines.text_lines), which differ: here a bullet
# glyph needs no space after it, enumerations are told apart from bullets, and a page
# number may read "Seite 3 von 9" or "p. 4".
_BULLET_GLYPHS = "•●○◦▪▫■□‣\u2043∙·◆◇►▶➢✓✔❖"
_DASHES = "\u2013\u2014"  # en and em dash
_BULLET_RE = re.compile(rf"^(?:[{_BULLET_GLYPHS}]\s*|[-{_DASHES}*+]\s+)(?=\S)")
_ENUM_RE = re.compile(r"^(?:\(?\d{1,3}[.)]|\(?[a-z][)]|\([a-z]\)|\(?[ivx]{1,5}[.)])\s+\S")
_PAGE_NUMBER_RE = re.compile(
    rf"^(?:page\s*|seite\s*|p\.\s*)?[-{_DASHES}(\[]?\s*(?:\d{{1,4}}|[ivxlc]{{1,6}})\s*[-{_DASHES})\]]?"
    r"(?:\s*(?:/|of|von)\s*\d{1,4})?$",
    re.IGNORECASE,
)
_SENTENCE_END = tuple('.!?:;"”»)')

#: Line height relative to the body's (``_body_height``) from which a short block is a
#: heading of each level (1 = top). Box heights of body lines vary by about 10% with their
#: letters (ascenders, descenders, accents), so the lowest step also needs a blank gap
#: above and below (``STANDALONE_GAP``); the higher ones are clear on their own.
TITLE_RATIOS = (1.8, 1.35, 1.18)
TITLE_MAX_LINES = 3
TITLE_MAX_CHARS = 120
TITLE_MIN_LETTERS = 0.5  # share of non-space characters (and two at least): not a formula,
# a number row, a lone initial or a logo's letter
#: A blank gap above and below a line, in body line heights (consecutive lines' boxes
#: nearly touch; a blank line leaves about one line height).
STANDALONE_GAP = 0.6
#: A line ending within this many body line heights of its paragraph's right edge is full.
FULL_LINE_SLACK = 1.5
#: A paragraph's first line may be indented by up to this many body line heights.
PARAGRAPH_INDENT = 4.0


def _is_bullet(text: str) -> bool:
    return bool(_BULLET_RE.match(text))


def _is_enumeration(text: str) -> bool:
    return bool(_ENUM_RE.match(text))


def _join_lines(texts: Sequence[str]) -> str:
    """A block's lines as one text, joined as the text layer joins them (hyphenation
    across a line break repaired: "ent-" + "falten" -> "entfalten")."""
    return functools.reduce(join_lines, (t.strip() for t in texts), "")


def _blocks(lines: list[OcrLine], median_h: float) -> list[list[OcrLine]]:
    """Consecutive lines (in reading order) grouped into paragraphs / blocks."""
    pitches = [
        b.cy - a.cy for a, b in itertools.pairwise(lines) if 0.5 < (b.cy - a.cy) / median_h < 3
    ]
    pitch = statistics.median(pitches) if pitches else 1.2 * median_h
    tol = 0.8 * median_h
    blocks: list[list[OcrLine]] = []
    for ln in lines:
        block = blocks[-1] if blocks else None
        if block is None or not _continues_block(block, ln, pitch, tol, median_h):
            blocks.append([ln])
        else:
            block.append(ln)
    return blocks


def _continues_block(
    block: list[OcrLine], ln: OcrLine, pitch: float, tol: float, median_h: float
) -> bool:
    prev = block[-1]
    first = block[0]
    if not ln.text or not prev.text:
        return False  # a table's stand-in is a block of its own
    step = ln.cy - prev.cy
    size = max(1.0, min(prev.height, ln.height) / median_h)  # larger type, wider pitch
    if step <= 0.3 * min(prev.height, ln.height) or step > 1.45 * pitch * size:
        return False  # same row (a separate cell) or a blank-line gap
    if max(prev.height, ln.height) > 1.3 * min(prev.height, ln.height):
        return False  # different text size
    x0 = min(b.x0 for b in block)
    x1 = max(b.x1 for b in block)
    if min(x1, ln.x1) - max(x0, ln.x0) <= 0:
        return False  # not below the block
    if _is_bullet(ln.text) or starts_like_caption(ln.text):
        return False
    finished = prev.text.rstrip().endswith(_SENTENCE_END)
    if _is_enumeration(ln.text) and finished:
        return False
    right = max(x1, ln.x1)
    short = right - prev.x1 > max(4 * median_h, 0.25 * (right - x0))
    if short and finished and (ln.text[:1].isupper() or ln.text[:1].isdigit()):
        return False  # the previous line ended a paragraph
    centred = abs(ln.cx - prev.cx) < tol and abs(ln.x0 - prev.x0) > tol
    if len(block) == 1:
        indent = first.x0 - ln.x0
        if -tol < indent < PARAGRAPH_INDENT * max(first.height, median_h):
            return True  # same left edge, or the first line was indented
        is_item = _is_bullet(first.text) or _is_enumeration(first.text)
        return is_item or centred  # hanging indent of a list item; centred lines
    left = statistics.median(b.x0 for b in block[1:])
    return abs(ln.x0 - left) < tol or centred


@dataclass(frozen=True, slots=True)
class _Page:
    width: int
    height: int
    text_span: BBox  # the box around all text
    body_h: float  # body text line height


def _body_height(lines: Sequence[OcrLine]) -> float:
    """The body text's line height: the median line height weighted by characters, so
    that many short labels (a table, a chart) do not set it."""
    by_height = sorted((ln.height, len(ln.text)) for ln in lines)
    half = sum(n for _, n in by_height) / 2
    seen = 0
    for h, n in by_height:
        seen += n
        if seen >= half:
            return h or 1.0
    return by_height[-1][0] or 1.0


def _rejoin_first_lines(blocks: list[list[OcrLine]], body_h: float) -> list[list[OcrLine]]:
    """A lone tall line that runs on into the paragraph right below it (a capital or an
    accent made its box taller) is that paragraph's first line, not a title."""
    out: list[list[OcrLine]] = []
    for block in blocks:
        prev = out[-1] if out else None
        if prev is not None and len(prev) == 1 and _runs_into(prev[0], block, body_h):
            out[-1] = prev + block
        else:
            out.append(block)
    return out


def _runs_into(line: OcrLine, block: list[OcrLine], body_h: float) -> bool:
    first = block[0]
    if not line.text or not first.text or line.height < TITLE_RATIOS[-1] * body_h:
        return False
    if first.height >= TITLE_RATIOS[-1] * body_h:
        return False  # the block below is tall too: a title of several lines
    tight = first.y0 - line.y1 < STANDALONE_GAP * body_h
    aligned = -0.8 * body_h < line.x0 - first.x0 < PARAGRAPH_INDENT * body_h
    full = line.x1 >= max(ln.x1 for ln in block) - FULL_LINE_SLACK * body_h
    ends = line.text.rstrip().endswith(_SENTENCE_END)
    return tight and aligned and full and not ends


def _stands_alone(
    block: list[OcrLine],
    before: list[OcrLine] | None,
    after: Sequence[list[OcrLine]],
    body_h: float,
) -> bool:
    """Whether a blank gap (or nothing) lies above and below the block in its column."""
    x0, y0, x1, y1 = union([ln.bbox for ln in block])

    def gap(other: list[OcrLine] | None, below: bool) -> float:
        if other is None:
            return float("inf")
        ox0, oy0, ox1, oy1 = union([ln.bbox for ln in other])
        if min(x1, ox1) - max(x0, ox0) <= 0:
            return float("inf")  # the next block in reading order is in another column
        return oy0 - y1 if below else y0 - oy1

    return (
        gap(before, False) >= STANDALONE_GAP * body_h
        and gap(after[0] if after else None, True) >= STANDALONE_GAP * body_h
    )


def _classify_block(
    block: list[OcrLine], text: str, page: _Page, alone: bool
) -> tuple[ElementType, int | None, str]:
    """The block's type, title level and text (a bullet glyph dropped).

    Checked in this order: a page number; a title clearly taller than the body
    (``TITLE_RATIOS``' first two steps, before list items: a large "2. Results" is a
    heading); a list item; a title only a little taller than the body (the last step),
    which must stand alone between blank gaps; body text.
    """
    block_h = statistics.median(ln.height for ln in block)
    x0, y0, x1, y1 = union([ln.bbox for ln in block])
    span = page.text_span
    outermost = y0 <= span[1] or y1 >= span[3]  # nothing above it, or below
    near_edge = y1 < 0.12 * page.height or y0 > 0.88 * page.height
    in_margin = (outermost or near_edge) and (x1 - x0) < 0.3 * page.width
    if len(block) == 1 and in_margin and _PAGE_NUMBER_RE.match(text):
        return ElementType.PAGE_NUMBER, None, text
    level = _title_level(block_h / page.body_h, len(block), text)
    if level is not None and level < len(TITLE_RATIOS):
        return ElementType.TITLE, level, text
    if _is_bullet(text):
        return ElementType.LIST_ITEM, None, _BULLET_RE.sub("", text, count=1)
    if _is_enumeration(text):
        return ElementType.LIST_ITEM, None, text
    if level is not None and alone and not text.endswith(_SENTENCE_END[:2]):
        return ElementType.TITLE, level, text
    return ElementType.NARRATIVE_TEXT, None, text


def _title_level(ratio: float, n_lines: int, text: str) -> int | None:
    """The heading level a block of this height (relative to the body) would have, or None
    when it is no title: too low, too long, ending like a clause, mostly not letters."""
    letters = sum(c.isalpha() for c in text)
    if (
        n_lines > TITLE_MAX_LINES
        or len(text) > TITLE_MAX_CHARS
        or text.endswith((",", ";"))
        or letters < max(2, TITLE_MIN_LETTERS * len(text.replace(" ", "")))
    ):
        return None
    return next((level for level, low in enumerate(TITLE_RATIOS, 1) if ratio >= low), None)
