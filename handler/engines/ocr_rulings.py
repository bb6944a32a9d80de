"""Ruling lines of a page image: the long thin strokes that frame and divide tables.

Table borders are runs of ink much longer than any glyph stroke and much thinner than a
text line. :func:`find_rulings` keeps, from the page's ink mask, horizontal and vertical
runs at least ``min_length`` pixels long (a morphological opening with a line-shaped
kernel), then drops blobs that are too thick on average to be a rule (filled bars of a
chart, shaded boxes, photos). The rules come back as :class:`Ruling` segments;
:mod:`handler.engines.ocr_tables` builds tables from them and the OCR lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Minimum length of a horizontal rule, in median text-line heights: longer than any
#: glyph or word gap, shorter than the narrowest table column that still gets a rule.
H_RULE_MIN_LINES = 2.5
#: Minimum length of a vertical rule, in median text-line heights: a table row or two,
#: taller than a glyph stroke or a bracket in body text (about 0.8 of a line box).
V_RULE_MIN_LINES = 1.2
#: Thickest rule, as a share of the median line height (a 2 pt rule is about 0.15 of a
#: 10 pt line box); thicker blobs are filled shapes.
MAX_THICKNESS_SHARE = 0.3
#: Collinear pieces of one rule broken by scanning noise are joined across gaps up to this
#: share of the median line height.
JOIN_GAP_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Ruling:
    """One rule: ``pos`` is its centre across (y of a horizontal rule, x of a vertical one),
    ``lo``..``hi`` its extent along, ``thickness`` its mean thickness, all in pixels."""

    horizontal: bool
    pos: float
    lo: float
    hi: float
    thickness: float

    @property
    def length(self) -> float:
        return self.hi - self.lo

    def scaled(self, sx: float, sy: float) -> Ruling:
        """The same rule in a page scaled by ``sx`` across and ``sy`` down."""
        across, along = (sy, sx) if self.horizontal else (sx, sy)
        return Ruling(
            self.horizontal,
            self.pos * across,
            self.lo * along,
            self.hi * along,
            self.thickness * across,
        )


def ink_mask(image: np.ndarray, *, light: bool = False) -> np.ndarray:
    """Ink pixels of a BGR (or grey) page by Otsu's threshold.

    ``light`` moves the threshold halfway from Otsu's towards white, so that grey rules
    (often lighter than the text) count as ink too.
    """
    import cv2  # a rapidocr dependency

    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    threshold, mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if light:
        return np.asarray(gray < (threshold + 255) / 2)
    return np.asarray(mask > 0)


def find_rulings(dark: np.ndarray, line_height: float) -> list[Ruling]:
    """Horizontal and vertical rules in an ink mask (True = ink); ``line_height`` is the
    page's median text-line height in pixels (it sets every length threshold)."""
    if dark.size == 0 or line_height <= 0:
        return []
    max_thick = max(3.0, MAX_THICKNESS_SHARE * line_height)
    join_gap = JOIN_GAP_SHARE * line_height
    found: list[Ruling] = []
    for horizontal, min_lines in ((True, H_RULE_MIN_LINES), (False, V_RULE_MIN_LINES)):
        min_len = max(11, round(min_lines * line_height)) | 1  # odd: the opening stays centred
        pieces = _runs(dark, horizontal, min_len, max_thick)
        found.extend(_join_collinear(pieces, join_gap, max_thick))
    return found


def _runs(dark: np.ndarray, horizontal: bool, min_len: int, max_thick: float) -> list[Ruling]:
    """Thin connected runs of ink at least ``min_len`` long in one direction."""
    import cv2  # a rapidocr dependency

    # no closing first to bridge breaks in scanned rules: it also joins the feet of bold
    # letters into runs; broken rules are joined after the opening instead
    mask = dark.astype(np.uint8)
    shape = (min_len, 1) if horizontal else (1, min_len)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, shape)
    opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    # outer contours, not connected components: the opened mask holds few blobs, and
    # labelling every pixel of the page costs ten times more
    contours, _ = cv2.findContours(opened, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out: list[Ruling] = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        length = w if horizontal else h
        area = int(np.count_nonzero(opened[y : y + h, x : x + w]))
        thickness = area / max(1, length)  # a slightly skewed rule has a taller box, not more ink
        if length < min_len or thickness > max_thick:
            continue
        if horizontal:
            out.append(Ruling(True, y + h / 2, float(x), float(x + w), float(thickness)))
        else:
            out.append(Ruling(False, x + w / 2, float(y), float(y + h), float(thickness)))
    return out


def _join_collinear(pieces: Sequence[Ruling], gap: float, tol: float) -> list[Ruling]:
    """Pieces on one line (centres within ``tol``) whose ends are at most ``gap`` apart,
    joined into one rule."""
    out: list[Ruling] = []
    for piece in sorted(pieces, key=lambda r: (round(r.pos / max(1.0, tol)), r.lo)):
        for i, prev in enumerate(out):
            apart = max(prev.lo, piece.lo) - min(prev.hi, piece.hi)  # negative: overlapping
            if abs(prev.pos - piece.pos) <= tol and apart <= gap:
                total = prev.length + piece.length
                out[i] = Ruling(
                    prev.horizontal,
                    (prev.pos * prev.length + piece.pos * piece.length) / total,
                    min(prev.lo, piece.lo),
                    max(prev.hi, piece.hi),
                    (prev.thickness * prev.length + piece.thickness * piece.length) / total,
                )
                break
        else:
            out.append(piece)
    return out


@dataclass(frozen=True, slots=True)
class PageInk:
    """A page's ink for the layout step, from the image OCR read.

    ``dark`` is its ink mask (:func:`ink_mask`), ``light`` the mask that also counts pale
    ink (grey rules, tinted chart areas); ``sx``/``sy`` are layout pixels per mask pixel.
    ``rulings`` and ``text_boxes`` (every box the detector found text in, read or not)
    are in layout pixels.
    """

    dark: np.ndarray
    light: np.ndarray
    sx: float
    sy: float
    rulings: list[Ruling]
    text_boxes: list[tuple[float, float, float, float]]

    @classmethod
    def of_image(
        cls,
        image: np.ndarray,
        dark: np.ndarray,
        layout_size: tuple[int, int],
        line_height: float,
        text_quads: Sequence[Any] = (),
    ) -> PageInk:
        """From the BGR image OCR read, its ink mask (:func:`ink_mask`), the layout size
        (width, height), the median line height and the detector's text boxes (quads),
        both in image pixels."""
        img_h, img_w = image.shape[:2]
        sx, sy = layout_size[0] / img_w, layout_size[1] / img_h
        light = ink_mask(image, light=True)
        rulings = [r.scaled(sx, sy) for r in find_rulings(light, line_height)]
        boxes = []
        for quad in text_quads:
            q = np.asarray(quad, dtype=np.float64).reshape(-1, 2)
            x0, y0 = q.min(axis=0)
            x1, y1 = q.max(axis=0)
            boxes.append((float(x0 * sx), float(y0 * sy), float(x1 * sx), float(y1 * sy)))
        return cls(dark, light, sx, sy, rulings, boxes)

    def stray_ink(self, bbox: tuple[float, float, float, float], boxes: Sequence[Any]) -> float:
        """Share of ``bbox`` (layout pixels) that is solid ink outside every one of ``boxes``.

        Specks and strokes up to two pixels thick (scan noise, the part of a slightly
        skewed rule outside its box) are not counted: an opening removes them first.
        """
        import cv2  # a rapidocr dependency

        x0, y0, x1, y1 = self.to_mask(bbox)
        if x1 <= x0 or y1 <= y0:
            return 0.0
        region = self.dark[y0:y1, x0:x1].astype(np.uint8)
        for box in [*boxes, *self.text_boxes]:
            bx0, by0, bx1, by1 = self.to_mask(box)
            region[max(0, by0 - y0) : max(0, by1 - y0), max(0, bx0 - x0) : max(0, bx1 - x0)] = 0
        solid = cv2.morphologyEx(region, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        return float(solid.mean())

    def to_mask(self, box: Sequence[float]) -> tuple[int, int, int, int]:
        """A layout-pixel box as a mask-pixel box (x0, y0, x1, y1), clamped to the mask."""
        h, w = self.dark.shape[:2]
        x0 = min(max(0, int(box[0] / self.sx)), w)
        y0 = min(max(0, int(box[1] / self.sy)), h)
        x1 = min(max(0, int(np.ceil(box[2] / self.sx))), w)
        y1 = min(max(0, int(np.ceil(box[3] / self.sy))), h)
        return x0, y0, x1, y1
