"""Running headers and footers: text repeated across pages at the same place.

One page cannot tell a running header from a heading; the document can. After all pages
are converted, short elements lying wholly in the top or bottom band of their page are
grouped by their text with digits masked ("Page 3 of 12" and "Page 4 of 12" are the same
line) and by where they sit. A group seen on enough pages is page furniture: it becomes
``Header`` (top band) or ``Footer`` (bottom band), or ``PageNumber`` when it is only a
number. Furniture stays in ``elements.json`` with its type; the markdown leaves it out of
the body (:data:`handler.outputs.markdown.FURNITURE`).

Single-page documents are left as the engine typed them: there is nothing to compare.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from handler.engines.base import ElementType

BAND_SHARE = 0.15  # top and bottom share of the page height where furniture lives
MAX_FURNITURE_CHARS = 200  # a running header is a line or two, never a paragraph
MIN_PAGES = 2  # a line seen on one page only is not "running"
# Pages a line must repeat on: a fixed count, not a share of the document, because
# mirrored (odd/even) headers, per-chapter running titles and a copyright line on chapter
# openings each cover only a few pages of a long document. The band, the length limit and
# the position check keep body text out.
MIN_REPEATS = 3
SHORT_DOCUMENT_PAGES = 5  # up to this many pages, two repeats are enough
POSITION_TOLERANCE = 0.03  # share of the page height the repeats may drift by
SLOT_TOLERANCE = 0.005  # a non-repeating line must sit this close to repeated furniture
CANDIDATE_TYPES = frozenset(
    {
        ElementType.TITLE.value,
        ElementType.NARRATIVE_TEXT.value,
        ElementType.UNCATEGORIZED_TEXT.value,
        ElementType.LIST_ITEM.value,
        ElementType.PAGE_NUMBER.value,
        ElementType.HEADER.value,
        ElementType.FOOTER.value,
    }
)

_DIGITS = re.compile(r"\d+")
_ROMAN = re.compile(r"^(?=[ivxlcdm])m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})$")
_PAGE_WORDS = re.compile(
    r"^(?:page|p\.|seite|pagina|página|стр\.?)?\s*#(?:\s*(?:of|/|von|de)\s*#)?$"
)


@dataclass(frozen=True, slots=True)
class _Spot:
    page: int  # index into the pages list
    index: int  # index into that page's elements
    top: bool  # in the top band (else the bottom band)
    centre: float  # vertical centre as a share of the page height
    key: str  # masked, normalised text
    outermost: bool  # nothing else on the page lies between it and the page's edge


def mark_furniture(pages: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Return copies of the pages' element dicts with running headers and footers retyped.

    ``pages`` holds each page's elements (converted pages only, in page order). Elements
    that are not furniture are returned unchanged (the same objects).
    """
    if len(pages) < MIN_PAGES:
        return pages
    needed = MIN_PAGES if len(pages) <= SHORT_DOCUMENT_PAGES else MIN_REPEATS
    candidates = list(_candidates(pages))
    groups: dict[tuple[bool, str], list[_Spot]] = {}
    for spot in candidates:
        groups.setdefault((spot.top, spot.key), []).append(spot)
    furniture: list[_Spot] = []
    for spots in groups.values():
        repeated = _same_place(spots)
        if len({s.page for s in repeated}) >= needed:
            furniture += repeated
    furniture += _in_slots(candidates, furniture)
    marked = [list(elements) for elements in pages]
    for spot in furniture:
        element = copy.deepcopy(marked[spot.page][spot.index])
        _retype(element, _furniture_type(spot))
        marked[spot.page][spot.index] = element
    return marked


def _candidates(pages: list[list[dict[str, Any]]]) -> Iterable[_Spot]:
    for p, elements in enumerate(pages):
        boxes = [_relative_box(element) for element in elements]
        for i, element in enumerate(elements):
            box = boxes[i]
            if box is None or element.get("type") not in CANDIDATE_TYPES:
                continue
            text = str(element.get("text", ""))
            if not text.strip() or len(text) > MAX_FURNITURE_CHARS:
                continue
            y0, y1 = box
            top, bottom = y1 <= BAND_SHARE, y0 >= 1 - BAND_SHARE
            if not (top or bottom):
                continue
            others = [b for j, b in enumerate(boxes) if b is not None and j != i]
            if top:
                outermost = not any(b[1] <= y0 for b in others)
            else:
                outermost = not any(b[0] >= y1 for b in others)
            yield _Spot(p, i, top, (y0 + y1) / 2, _mask(text), outermost)


def _in_slots(candidates: list[_Spot], furniture: list[_Spot]) -> list[_Spot]:
    """Lines that do not repeat but sit where furniture repeats: a running chapter title
    that changes with each chapter, seen once in a sampled document. Only the line
    nearest the page's edge qualifies, and only at a tightly matching height."""
    taken = {(s.page, s.index) for s in furniture}
    slots = [(s.top, s.centre) for s in furniture]
    return [
        spot
        for spot in candidates
        if spot.outermost
        and (spot.page, spot.index) not in taken
        and any(top == spot.top and abs(c - spot.centre) <= SLOT_TOLERANCE for top, c in slots)
    ]


def _same_place(spots: list[_Spot]) -> list[_Spot]:
    """The largest set of ``spots`` whose vertical centres lie within the tolerance,
    at most one per page (the same line twice on one page is content, not furniture)."""
    ordered = sorted(spots, key=lambda s: s.centre)
    best: list[_Spot] = []
    start = 0
    for end in range(len(ordered)):
        while ordered[end].centre - ordered[start].centre > POSITION_TOLERANCE:
            start += 1
        window = ordered[start : end + 1]
        one_per_page = list({s.page: s for s in reversed(window)}.values())
        if len(one_per_page) > len(best):
            best = one_per_page
    return best


def _furniture_type(spot: _Spot) -> ElementType:
    if _PAGE_WORDS.match(spot.key):
        return ElementType.PAGE_NUMBER
    return ElementType.HEADER if spot.top else ElementType.FOOTER


def _retype(element: dict[str, Any], kind: ElementType) -> None:
    element["type"] = kind.value
    metadata = element.get("metadata", {})
    metadata.pop("category_depth", None)  # a heading level means nothing on furniture
    metadata.pop("parent_id", None)


def _mask(text: str) -> str:
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    if _ROMAN.match(text):  # front matter numbers its pages i, ii, iii...
        return "#"
    return _DIGITS.sub("#", text)


def _relative_box(element: dict[str, Any]) -> tuple[float, float] | None:
    coordinates = element.get("metadata", {}).get("coordinates") or {}
    points = coordinates.get("points")
    height = coordinates.get("layout_height")
    if not points or not height:
        return None
    ys = [float(point[1]) for point in points]
    return min(ys) / height, max(ys) / height
