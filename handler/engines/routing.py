"""Which engine a page needs: the PDF's own text layer, or OCR (DESIGN §1 step 6).

The heuristic, in order (the constants are below):

1. An image page (PNG, JPEG, TIFF, BMP, WebP: no ``pdf_page``) always needs OCR.
2. The text layer is read character by character (``Page.get_texttrace``: every glyph
   drawn, with its Unicode value and whether it is invisible, render mode 3 or opacity 0);
   whitespace does not count, nor do glyphs outside the page.
3. Fewer than ``MIN_TEXT_CHARS`` characters (a blank page, a page number only): OCR when
   the page shows something that may hold text, that is images covering at least
   ``MIN_IMAGE_SHARE`` of the page or at least ``MIN_VECTOR_PATHS`` vector paths (text
   converted to outlines); otherwise the page is blank and the text layer is used (it costs
   nothing and finds what there is).
4. Garbage: more than ``MAX_BAD_SHARE`` of the characters are U+FFFD, private-use,
   unassigned, surrogate or control characters (fonts without a Unicode mapping; OCR then
   reads the whole page rather than losing the unmapped part), or fewer than
   ``MIN_WORD_CHAR_SHARE`` of the characters other than ASCII punctuation are letters,
   digits or combining marks (glyphs mapped to symbols; ASCII punctuation is left out so
   that dot leaders of a table of contents and code listings do not count): OCR.
5. Mostly an image: images cover at least ``IMAGE_PAGE_SHARE`` of the page and there are
   fewer than ``IMAGE_PAGE_MIN_CHARS`` visible and fewer than ``MIN_TEXT_CHARS`` invisible
   characters (a scan with a stamp, a running header or a page number as real text): OCR.
   A scan with an invisible OCR layer keeps that layer (step 5 lets it through).
6. Otherwise the text layer is good: text-layer engine.

After OCR, :func:`ocr_read_less` looks back: when the text layer offered at least
``MIN_TEXT_CHARS`` letters and digits and OCR read fewer than ``OCR_MIN_READ_SHARE`` of
that many, the text layer is kept after all. Partly unmapped text in a script the OCR models
do not read (Arabic with a broken font, for one) is worth more than an empty page.

Known limits: a font whose glyphs map to the wrong letters (a shifted encoding) reads as
text; text hidden under an image counts as visible.
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from handler.documents.pages import PageInput
    from handler.engines.base import PageResult

MIN_TEXT_CHARS = 16
MIN_IMAGE_SHARE = 0.05
MIN_VECTOR_PATHS = 10
MAX_BAD_SHARE = 0.1
MIN_WORD_CHAR_SHARE = 0.5
IMAGE_PAGE_SHARE = 0.5
IMAGE_PAGE_MIN_CHARS = 200
OCR_MIN_READ_SHARE = 0.5  # of the text layer's letters and digits, else keep the text layer

_INVISIBLE_RENDER_MODE = 3
_ASCII_PUNCTUATION = frozenset(string.punctuation)
_BAD_CATEGORIES = {"Co", "Cn", "Cs", "Cc"}
_COVERAGE_GRID = 128  # image coverage is measured on a grid of this many cells a side


class PageRoute(StrEnum):
    TEXT_LAYER = "text-layer"
    OCR = "ocr"


@dataclass(frozen=True, slots=True)
class RouteDecision:
    route: PageRoute
    reason: str  # for logs: why this route


@dataclass(slots=True)
class TextStats:
    chars: int = 0  # non-whitespace characters on the page
    invisible: int = 0
    bad: int = 0  # U+FFFD, private use, unassigned, surrogates, controls
    word: int = 0  # letters, digits, combining marks
    ascii_punct: int = 0  # .,;:!?()[]{}-+=*/ and friends

    @property
    def visible(self) -> int:
        return self.chars - self.invisible


def needs_ocr(page: PageInput) -> bool:
    """True when the page must go to an OCR engine (see the module docstring)."""
    return route_page(page).route is PageRoute.OCR


def route_page(page: PageInput) -> RouteDecision:
    """Decide the engine for one page, with the reason (see the module docstring)."""
    pdf_page = page.pdf_page
    if pdf_page is None:
        return RouteDecision(PageRoute.OCR, "image page")
    stats = text_stats(pdf_page)
    if stats.chars < MIN_TEXT_CHARS:
        coverage = image_coverage(pdf_page)
        if coverage >= MIN_IMAGE_SHARE:
            return RouteDecision(
                PageRoute.OCR,
                f"almost no text ({stats.chars} characters); images cover {coverage:.0%}",
            )
        paths = len(pdf_page.get_cdrawings())
        if paths >= MIN_VECTOR_PATHS:
            return RouteDecision(
                PageRoute.OCR, f"almost no text ({stats.chars} characters); {paths} vector paths"
            )
        return RouteDecision(PageRoute.TEXT_LAYER, f"blank page ({stats.chars} characters)")
    if stats.bad > MAX_BAD_SHARE * stats.chars:
        return RouteDecision(
            PageRoute.OCR, f"garbage text layer ({stats.bad / stats.chars:.0%} unreadable)"
        )
    others = stats.chars - stats.ascii_punct
    if stats.word < MIN_WORD_CHAR_SHARE * others or others == 0:
        return RouteDecision(
            PageRoute.OCR,
            f"garbage text layer (only {stats.word / max(others, 1):.0%} letters or digits)",
        )
    coverage = image_coverage(pdf_page)
    if (
        coverage >= IMAGE_PAGE_SHARE
        and stats.visible < IMAGE_PAGE_MIN_CHARS
        and stats.invisible < MIN_TEXT_CHARS
    ):
        return RouteDecision(
            PageRoute.OCR,
            f"mostly an image ({coverage:.0%}) with {stats.visible} characters of text",
        )
    return RouteDecision(PageRoute.TEXT_LAYER, f"text layer ({stats.chars} characters)")


def ocr_read_less(page: PageInput, result: PageResult) -> bool:
    """True when OCR of a PDF page read much less than its text layer offers (see above)."""
    if page.pdf_page is None:
        return False
    offered = text_stats(page.pdf_page).word
    if offered < MIN_TEXT_CHARS:
        return False
    read = sum(unicodedata.category(char)[0] in "LNM" for e in result.elements for char in e.text)
    return read < OCR_MIN_READ_SHARE * offered


def text_stats(pdf_page: Any) -> TextStats:
    """Count the page's characters by kind (every glyph drawn on the page)."""
    stats = TextStats()
    x0, y0, x1, y1 = _unrotated_rect(pdf_page)
    for span in pdf_page.get_texttrace():
        invisible = span.get("type") == _INVISIBLE_RENDER_MODE or span.get("opacity", 1) == 0
        for unicode, _glyph, _origin, bbox in span["chars"]:
            cx = (bbox[0] + bbox[2]) / 2
            cy = (bbox[1] + bbox[3]) / 2
            if not (x0 <= cx <= x1 and y0 <= cy <= y1):
                continue
            if unicode < 0 or unicode > 0x10FFFF:
                stats.chars += 1
                stats.bad += 1
                continue
            char = chr(unicode)
            if char.isspace():
                continue
            stats.chars += 1
            stats.invisible += invisible
            category = unicodedata.category(char)
            if unicode == 0xFFFD or category in _BAD_CATEGORIES:
                stats.bad += 1
            elif category[0] in "LNM":
                stats.word += 1
            elif char in _ASCII_PUNCTUATION:
                stats.ascii_punct += 1
    return stats


def image_coverage(pdf_page: Any) -> float:
    """Share of the page (0..1) covered by images, overlaps counted once."""
    x0, y0, x1, y1 = _unrotated_rect(pdf_page)
    width, height = x1 - x0, y1 - y0
    if width <= 0 or height <= 0:
        return 0.0
    grid = np.zeros((_COVERAGE_GRID, _COVERAGE_GRID), dtype=bool)
    for info in pdf_page.get_image_info():
        bx0, by0, bx1, by1 = info["bbox"]
        c0 = _cell(bx0 - x0, width)
        c1 = _cell(bx1 - x0, width)
        r0 = _cell(by0 - y0, height)
        r1 = _cell(by1 - y0, height)
        if c1 > c0 and r1 > r0:
            grid[r0:r1, c0:c1] = True
    return float(grid.mean())


def _cell(offset: float, extent: float) -> int:
    return min(_COVERAGE_GRID, max(0, round(offset / extent * _COVERAGE_GRID)))


def _unrotated_rect(pdf_page: Any) -> tuple[float, float, float, float]:
    # Text and image positions are given on the unrotated page.
    rect = pdf_page.rect * pdf_page.derotation_matrix
    return rect.x0, rect.y0, rect.x1, rect.y1
