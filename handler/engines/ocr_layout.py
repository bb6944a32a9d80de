"""From OCR text lines to typed elements in reading order (for the rapidocr engine).

:func:`lines_to_elements` orders the lines column by column (:mod:`handler.engines.ocr_columns`),
joins pieces of one printed line that the detector cut apart, groups consecutive lines into
blocks (paragraphs, list items, titles) and gives each block a type. The text-layer engine
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
from typing import Any

import numpy as np

from handler.engines.base import BBox, Element, ElementType, PageResult
from handler.engines.ocr_columns import box_gutters, read_by_columns
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
) -> list[Element]:
    """Group OCR lines into typed elements in reading order.

    ``gutters`` are the page's column gutters as x-ranges (the engine finds them from the
    ink; when None they are found from the line boxes). Lines are ordered column by column
    (:func:`~handler.engines.ocr_columns.read_by_columns`), pieces of one printed line are
    joined, consecutive lines with the same left edge (or a first-line / hanging indent),
    the same text size and no blank-line gap form one block. A block becomes a
    ``PageNumber`` (a lone number above or below all other text, or near the page's top or
    bottom edge), a ``ListItem`` (bullet or enumeration; a bullet glyph is dropped from the
    text), a ``Title`` (short, lines at least 1.35 times the page's median line height;
    level 1 from 1.8 times) or ``NarrativeText``. ``prob`` is the mean recognition score of
    the block's lines; boxes are clamped to the ``width`` x ``height`` page.
    """
    lines = [ln for ln in lines if ln.text.strip()]
    if not lines:
        return []
    median_h = statistics.median(ln.height for ln in lines) or 1.0
    if gutters is None:
        gutters = box_gutters(lines, median_h)
    order = read_by_columns(lines, gutters)
    ordered = _merge_row_fragments([lines[i] for i in order], median_h)
    text_span = union([ln.bbox for ln in lines])
    elements: list[Element] = []
    for block in _blocks(ordered, median_h):
        text = _join_lines([ln.text for ln in block])
        kind, level, text = _classify_block(block, text, median_h, width, height, text_span)
        x0, y0, x1, y1 = union([ln.bbox for ln in block])
        bbox = (
            min(max(0.0, x0), float(width)),
            min(max(0.0, y0), float(height)),
            min(max(0.0, x1), float(width)),
            min(max(0.0, y1), float(height)),
        )
        prob = float(np.mean([ln.score for ln in block]))
        elements.append(Element(kind, text, bbox, level=level, prob=round(prob, 4)))
    return elements


def page_text(result: PageResult) -> str:
    """The page's text, one element per paragraph, in reading order."""
    return "\n\n".join(el.text for el in result.elements)


def _merge_row_fragments(lines: list[OcrLine], median_h: float) -> list[OcrLine]:
    """Join consecutive pieces of one printed line that the detector cut apart."""
    out: list[OcrLine] = []
    for ln in lines:
        if out:
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
    step = ln.cy - prev.cy
    if step <= 0.3 * min(prev.height, ln.height) or step > 1.45 * pitch:
        return False  # same row (a separate cell) or a blank-line gap
    if max(prev.height, ln.height) > 1.3 * min(prev.height, ln.height):
        return False  # different text size
    x0 = min(b.x0 for b in block)
    x1 = max(b.x1 for b in block)
    if min(x1, ln.x1) - max(x0, ln.x0) <= 0:
        return False  # not below the block
    if _is_bullet(ln.text):
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
        if ln.x0 < first.x0 + tol:
            return True  # same left edge, or the first line was indented
        is_item = _is_bullet(first.text) or _is_enumeration(first.text)
        return is_item or centred  # hanging indent of a list item; centred lines
    left = statistics.median(b.x0 for b in block[1:])
    return abs(ln.x0 - left) < tol or centred


def _classify_block(
    block: list[OcrLine], text: str, median_h: float, width: int, height: int, text_span: BBox
) -> tuple[ElementType, int | None, str]:
    """The block's type, title level and text (a bullet glyph dropped)."""
    block_h = statistics.median(ln.height for ln in block)
    x0, y0, x1, y1 = union([ln.bbox for ln in block])
    outermost = y0 <= text_span[1] or y1 >= text_span[3]  # nothing above it, or below
    near_edge = y1 < 0.12 * height or y0 > 0.88 * height
    in_margin = (outermost or near_edge) and (x1 - x0) < 0.3 * width
    if len(block) == 1 and in_margin and _PAGE_NUMBER_RE.match(text):
        return ElementType.PAGE_NUMBER, None, text
    if _is_bullet(text):
        return ElementType.LIST_ITEM, None, _BULLET_RE.sub("", text, count=1)
    if _is_enumeration(text):
        return ElementType.LIST_ITEM, None, text
    ratio = block_h / median_h
    if (
        ratio >= 1.35
        and len(block) <= 3
        and len(text) <= 120
        and not text.endswith((",", ";"))
        and any(c.isalpha() for c in text)
    ):
        return ElementType.TITLE, 1 if ratio >= 1.8 else 2, text
    return ElementType.NARRATIVE_TEXT, None, text
