"""Figures on OCR pages: photos, charts, diagrams and screenshots as ``Image`` elements.

A figure is a large region of ink that is not text: :func:`find_figures` removes the
detector's text boxes (read or not: text in a script the recogniser does not know is still
text), and the tables from the page's ink mask (pale ink included), closes what is
left over about a line height (a chart's bars, axes and legend swatches become one blob;
isolated specks stay small) and keeps blobs at least ``MIN_SIDE_LINES`` line heights on
each side, ``MIN_AREA_SHARE`` of the page and with ``MIN_INK_SHARE`` of their box inked,
``MIN_SOLID_SHARE`` by ink that is no ruling line (rules join a chart's bars and a
diagram's boxes, but a frame with nothing but text inside is no figure).
Text lines lying inside a figure (a chart's labels, a screenshot's words), and short
lines just beside it (axis ticks, a legend), are its text and leave the paragraph flow,
unless they are running text: a region holding prose or wrapped lines is a text box on
a tinted background, not a figure.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from handler.engines.base import BBox, Element, ElementType
from handler.engines.captions import starts_like_caption

if TYPE_CHECKING:
    from handler.engines.ocr_layout import OcrLine
    from handler.engines.ocr_rulings import PageInk, Ruling

#: Smallest figure side, in body line heights (smaller ink blobs are logos' letters,
#: bullets, signatures' strokes; a 3-line-high icon row is no figure either).
MIN_SIDE_LINES = 4.0
#: Smallest figure area, as a share of the page.
MIN_AREA_SHARE = 0.015
#: Least share of a figure's box that is non-text ink (a sparse line chart has about 3%).
MIN_INK_SHARE = 0.02
#: Least share of a figure's box that is ink other than text and rules (a frame around
#: text has none; line art, icons and bars have some).
MIN_SOLID_SHARE = 0.005
#: Longest side of a figure's largest connected piece of ink, in line heights (dot
#: leaders of a table of contents are many specks).
MIN_PART_LINES = 1.5
#: Non-text ink closer than this many line heights is one figure.
JOIN_LINES = 1.0
#: A region with this many prose lines inside, or this many lines wrapped from the line
#: above, is a text box on a tinted background, not a figure.
MAX_PROSE_LINES = 2
MAX_WRAPPED_LINES = 5
#: Short lines (at most ``LABEL_MAX_WORDS`` words) within ``LABEL_GAP_LINES`` line heights
#: of a figure are its labels; ``LABEL_STEPS`` rounds let a row or column of them join.
LABEL_MAX_WORDS = 4
LABEL_GAP_LINES = 1.0
LABEL_STEPS = 4
LABEL_MAX_HEIGHT = 1.3  # body line heights; a taller line is a heading
#: Working resolution: the mask is reduced by this factor first (figures are large).
_REDUCE = 4
_CELL_SHARE = 3 / _REDUCE**2
_PROSE_WORDS = 6


Rect = tuple[int, int, int, int]  # x, y, width, height in reduced-mask pixels


@dataclass(frozen=True, slots=True)
class OcrFigure:
    """A figure found on an OCR page: its box, text and the indices of its OCR lines."""

    bbox: BBox
    text: str
    members: frozenset[int]
    score: float

    def element(self) -> Element:
        return Element(ElementType.IMAGE, self.text, self.bbox, prob=round(self.score, 4))


def find_figures(
    lines: Sequence[OcrLine],
    ink: PageInk,
    body_h: float,
    *,
    taken: Sequence[BBox] = (),
    skip: frozenset[int] | set[int] = frozenset(),
    gutters: Sequence[tuple[float, float]] = (),
) -> list[OcrFigure]:
    """Figures on the page whose ``ink`` this is; ``lines``, ``taken`` (table boxes) and
    ``gutters`` (the page's column gutters, x-ranges) in layout pixels, ``body_h`` the body
    line height in layout pixels; lines whose indices are in ``skip`` (a table's) are
    never a figure's. A blob that holds prose is cut at the gutters it crosses (figures
    in two columns joined across a narrow gutter) and each part judged again."""
    blobs = _Blobs(lines, ink, body_h, taken)
    cuts = [(lo + hi) / 2 / blobs.sx for lo, hi in gutters]
    queue = [(rect, False) for rect in blobs.rects]
    figures: list[OcrFigure] = []
    used: set[int] = set(skip)
    while queue:
        rect, was_cut = queue.pop(0)
        box = blobs.layout_box(rect)
        if not blobs.large_and_inked(rect, box):
            continue
        inside = [i for i, ln in enumerate(lines) if i not in used and _within(ln, box)]
        if _holds_text([lines[i] for i in inside], body_h):
            if not was_cut:
                queue += [(part, True) for part in blobs.cut(rect, cuts)]
            continue
        inside += _labels_around(box, lines, used | set(inside), body_h)
        figures.append(_figure(box, inside, lines))
        used.update(inside)
    return sorted(_overlapping_joined(figures, lines), key=lambda f: (f.bbox[1], f.bbox[0]))


class _Blobs:
    """The page's non-text ink, reduced by ``_REDUCE``: ``small`` with rules, ``solid``
    without, ``closed`` (blobs joined over ``JOIN_LINES``) and its blobs' ``rects``
    (x, y, w, h in reduced pixels, overlapping ones merged)."""

    def __init__(
        self, lines: Sequence[OcrLine], ink: PageInk, body_h: float, taken: Sequence[BBox]
    ) -> None:
        import cv2  # a rapidocr dependency

        mask_h, mask_w = ink.light.shape[:2]
        stray = ink.light.astype(np.uint8)  # pale ink too: tinted bars and areas of a chart
        pad = 0.15 * body_h  # detector boxes hug the glyphs; anti-aliased edges stick out
        for x0, y0, x1, y1 in [*(ln.bbox for ln in lines), *ink.text_boxes, *taken]:
            bx0, by0, bx1, by1 = ink.to_mask((x0 - pad, y0 - pad, x1 + pad, y1 + pad))
            stray[by0:by1, bx0:bx1] = 0
        width, height = max(1, mask_w // _REDUCE), max(1, mask_h // _REDUCE)
        self.small = _reduce(stray, width, height)
        for rule in ink.rulings:
            bx0, by0, bx1, by1 = ink.to_mask(_rule_box(rule, body_h))
            stray[by0:by1, bx0:bx1] = 0
        self.solid = _reduce(stray, width, height)  # without rules: what a frame lacks
        join = max(1, round(JOIN_LINES * body_h / ink.sy / _REDUCE)) | 1  # odd: centred
        self.closed = cv2.morphologyEx(
            self.small.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((join, join), np.uint8)
        )
        contours, _ = cv2.findContours(self.closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        self.sx, self.sy = ink.sx * mask_w / width, ink.sy * mask_h / height  # layout/reduced
        rects: list[Rect] = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if max(w * self.sx, h * self.sy) >= MIN_PART_LINES * body_h:  # specks: never
                rects.append((x, y, w, h))
        self.rects = _merged(rects)
        self.page_area = mask_w * ink.sx * mask_h * ink.sy
        self.body_h = body_h

    def layout_box(self, rect: Rect) -> BBox:
        x, y, w, h = rect
        return (x * self.sx, y * self.sy, (x + w) * self.sx, (y + h) * self.sy)

    def large_and_inked(self, rect: Rect, box: BBox) -> bool:
        x, y, w, h = rect
        if min(box[2] - box[0], box[3] - box[1]) < MIN_SIDE_LINES * self.body_h:
            return False
        if (box[2] - box[0]) * (box[3] - box[1]) < MIN_AREA_SHARE * self.page_area:
            return False
        crop = self.small[y : y + h, x : x + w]
        if crop.mean() < MIN_INK_SHARE:
            return False
        if self.solid[y : y + h, x : x + w].mean() < MIN_SOLID_SHARE:
            return False  # rules and text only: a frame around text, a form
        return self._largest_part(crop) >= MIN_PART_LINES * self.body_h

    def _largest_part(self, crop: np.ndarray) -> float:
        """Longest side (layout pixels) of the largest connected piece of ink in a crop:
        dot leaders and specks are many tiny pieces, a figure has large ones."""
        import cv2  # a rapidocr dependency

        count, _, stats, _ = cv2.connectedComponentsWithStats(crop.astype(np.uint8), connectivity=8)
        if count <= 1:
            return 0.0
        sides = np.maximum(
            stats[1:, cv2.CC_STAT_WIDTH] * self.sx, stats[1:, cv2.CC_STAT_HEIGHT] * self.sy
        )
        return float(sides.max())

    def cut(self, rect: Rect, cuts: Sequence[float]) -> list[Rect]:
        """The parts of a blob between the cuts (x, reduced pixels) inside it, each shrunk
        to its ink."""
        x, y, w, h = rect
        inner = sorted(int(c) for c in cuts if x < c < x + w)
        if not inner:
            return []
        parts: list[Rect] = []
        for lo, hi in itertools.pairwise([x, *inner, x + w]):
            ys, xs = np.nonzero(self.small[y : y + h, lo:hi])
            if xs.size:
                x0, y0 = lo + int(xs.min()), y + int(ys.min())
                parts.append((x0, y0, lo + int(xs.max()) + 1 - x0, y + int(ys.max()) + 1 - y0))
        return parts


def _overlapping_joined(figures: list[OcrFigure], lines: Sequence[OcrLine]) -> list[OcrFigure]:
    """Figures whose boxes overlap (once grown by their labels) joined into one."""
    out = list(figures)
    joined = True
    while joined:
        joined = False
        for i, j in itertools.combinations(range(len(out)), 2):
            a, b = out[i], out[j]
            if _near(a.bbox, b.bbox, -1.0):  # overlapping, not merely touching
                box = (
                    min(a.bbox[0], b.bbox[0]),
                    min(a.bbox[1], b.bbox[1]),
                    max(a.bbox[2], b.bbox[2]),
                    max(a.bbox[3], b.bbox[3]),
                )
                out[i] = _figure(box, sorted(a.members | b.members), lines)
                del out[j]
                joined = True
                break
    return out


def _reduce(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A mask shrunk to ``width`` x ``height``: a cell is set when ``_CELL_SHARE`` of its
    pixels are (a one-pixel line through it is; a lone speck of scan noise is not)."""
    import cv2  # a rapidocr dependency

    shrunk = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return np.asarray(shrunk >= _CELL_SHARE)


def _merged(rects: list[Rect]) -> list[Rect]:
    """Rectangles (x, y, w, h) that overlap merged until none does."""
    boxes = [(x, y, x + w, y + h) for x, y, w, h in rects]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if _near(boxes[i], boxes[j], 0.0):
                    a, b = boxes[i], boxes[j]
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes]


def _near(a: Sequence[float], b: Sequence[float], gap: float) -> bool:
    return a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]


def _rule_box(rule: Ruling, body_h: float) -> BBox:
    half = rule.thickness + 0.1 * body_h  # the rule and its anti-aliased edges
    if rule.horizontal:
        return (rule.lo, rule.pos - half, rule.hi, rule.pos + half)
    return (rule.pos - half, rule.lo, rule.pos + half, rule.hi)


def _labels_around(box: BBox, lines: Sequence[OcrLine], used: set[int], body_h: float) -> list[int]:
    """Short lines just outside a figure (a chart's axis ticks, legend and labels), taken
    in steps so that a column of ticks joins one by one; never a caption or prose."""
    x0, y0, x1, y1 = box
    near = LABEL_GAP_LINES * body_h
    found: list[int] = []
    for _ in range(LABEL_STEPS):
        added = False
        for i, ln in enumerate(lines):
            if i in used or i in found or len(ln.text.split()) > LABEL_MAX_WORDS:
                continue
            if starts_like_caption(ln.text) or ln.height > LABEL_MAX_HEIGHT * body_h:
                continue  # a caption, or a heading
            beside = ln.y1 > y0 and ln.y0 < y1 and (x0 - near < ln.x1 and ln.x0 < x1 + near)
            over = ln.x1 > x0 and ln.x0 < x1 and (y0 - near < ln.y1 and ln.y0 < y1 + near)
            if beside or over:
                found.append(i)
                x0, y0 = min(x0, ln.x0), min(y0, ln.y0)
                x1, y1 = max(x1, ln.x1), max(y1, ln.y1)
                added = True
        if not added:
            break
    return found


def _figure(box: BBox, inside: Sequence[int], lines: Sequence[OcrLine]) -> OcrFigure:
    members = [lines[i] for i in inside]
    x0 = min([box[0], *(ln.x0 for ln in members)])
    y0 = min([box[1], *(ln.y0 for ln in members)])
    x1 = max([box[2], *(ln.x1 for ln in members)])
    y1 = max([box[3], *(ln.y1 for ln in members)])
    ordered = sorted(members, key=lambda ln: (round(ln.cy / max(1.0, ln.height)), ln.x0))
    text = " ".join(ln.text.strip() for ln in ordered)
    score = float(np.mean([ln.score for ln in members])) if members else 1.0
    return OcrFigure((x0, y0, x1, y1), text, frozenset(inside), score)


def _within(ln: OcrLine, box: BBox) -> bool:
    """Whether most of a line's box lies inside ``box``."""
    w = min(box[2], ln.x1) - max(box[0], ln.x0)
    h = min(box[3], ln.y1) - max(box[1], ln.y0)
    return w > 0 and h > 0 and w * h >= 0.6 * (ln.x1 - ln.x0) * (ln.y1 - ln.y0)


def _holds_text(inside: Sequence[OcrLine], body_h: float) -> bool:
    """Whether the lines inside a region are running text (a text box on a tinted or
    coloured background), not a figure's labels: ``MAX_PROSE_LINES`` lines of prose, or
    ``MAX_WRAPPED_LINES`` lines that continue the line above them (a lowercase start,
    the same left edge, the next line down)."""
    if sum(len(ln.text.split()) >= _PROSE_WORDS for ln in inside) >= MAX_PROSE_LINES:
        return True
    wrapped = 0
    for ln in inside:
        if not ln.text[:1].islower():
            continue
        wrapped += any(
            abs(above.x0 - ln.x0) < 0.5 * body_h and 0 < ln.cy - above.cy < 1.6 * body_h
            for above in inside
        )
    return wrapped >= MAX_WRAPPED_LINES
