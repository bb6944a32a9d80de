"""Columns of an OCR page: gutters, lines cut at them, reading order (for the rapidocr engine).

The detector joins the lines of two columns when the gutter between them is narrow (FACTS);
the recognised text then mixes both columns. A gutter is a run of pixel columns where
(almost) no text line has ink while enough lines have ink on both sides
(:func:`find_gutters`). With the page image at hand the coverage comes from the lines' ink
(:func:`ink_gutters`), without it from the line boxes (:func:`box_gutters`). A line box that
crosses a gutter with no ink in the gutter's middle is cut there (:func:`cut_at_gutters`).
:func:`read_by_columns` puts the lines in reading order, one column after the other.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from handler.engines.ocr_layout import OcrLine

#: Pages with fewer text lines than this are not searched for gutters.
MIN_LINES_FOR_GUTTERS = 8
_GUTTER_MIN_LINES = 4  # lines with ink on each side of a gutter
_GUTTER_LINE_WIDTH = 4  # only lines at least this many line heights wide count

PixelBox = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels, x1 and y1 exclusive


def read_by_columns(lines: Sequence[OcrLine], gutters: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of ``lines`` in reading order, cutting columns only at ``gutters`` (x-ranges);
    see :class:`_ColumnReadingOrder`."""
    return _ColumnReadingOrder(lines, gutters).order(list(range(len(lines))))


def find_gutters(
    cover: np.ndarray, *, min_width: int, min_lines: int = _GUTTER_MIN_LINES
) -> list[tuple[int, int]]:
    """Column gutters: runs ``[lo, hi)`` of pixel columns where (almost) no text line has
    ink while at least ``min_lines`` lines have ink on both sides.

    ``cover[x]`` is the number of text lines with ink in pixel column ``x``. "Almost no" is
    at most 2 lines or 15% of the emptier side's lines (a title, a footer or a page number
    may cross a gutter).
    """
    if cover.size == 0:
        return []
    left = np.maximum.accumulate(cover)
    right = np.maximum.accumulate(cover[::-1])[::-1]
    sides = np.minimum(left, right)
    low = (sides >= min_lines) & (cover <= np.maximum(2, 0.15 * sides))
    gutters: list[tuple[int, int]] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], low.astype(np.int8), [0]])))
    for lo, hi in zip(edges[::2], edges[1::2], strict=True):
        if hi - lo >= min_width:
            gutters.append((int(lo), int(hi)))
    return gutters


def ink_gutters(
    dark: np.ndarray, boxes: Sequence[PixelBox], median_h: float
) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """The ink of each line box (see :func:`_line_ink`) and the page's gutters found from
    it; ``dark`` is the page's ink mask (:func:`handler.engines.ocr_rulings.ink_mask`),
    ``median_h`` the median line box height."""
    inks = [_line_ink(dark, b) for b in boxes]
    cover = np.zeros(dark.shape[1], dtype=np.int32)
    for (x0, _, x1, _), ink in zip(boxes, inks, strict=True):
        if x1 - x0 >= _GUTTER_LINE_WIDTH * median_h:  # text lines, not labels
            cover[x0 : x0 + len(ink)] += ink
    return inks, find_gutters(cover, min_width=max(3, round(0.35 * median_h)))


def box_gutters(lines: Sequence[OcrLine], median_h: float) -> list[tuple[float, float]]:
    """Column gutters from line boxes alone (when no image is at hand): like
    :func:`find_gutters` on box coverage instead of ink coverage."""
    if not lines:
        return []
    width = int(np.ceil(max(ln.x1 for ln in lines))) + 2
    cover = np.zeros(width, dtype=np.int32)
    for ln in lines:
        if ln.x1 - ln.x0 >= _GUTTER_LINE_WIDTH * median_h:
            cover[max(0, int(ln.x0)) : int(np.ceil(ln.x1))] += 1
    found = find_gutters(cover, min_width=max(2, round(0.3 * median_h)))
    return [(float(lo), float(hi)) for lo, hi in found]


def cut_at_gutters(
    box: PixelBox, ink: np.ndarray, gutters: Sequence[tuple[int, int]], pad: int
) -> list[PixelBox]:
    """Pieces of a line box cut at every gutter centre it covers with no ink in the middle
    half of the gutter.

    Each piece is trimmed to its ink (plus ``pad`` pixels), so a box that only reaches into a
    gutter comes back as one trimmed piece; a line that crosses no gutter comes back as one
    piece, unchanged.
    """
    x0, y0, x1, y1 = box
    cuts = []
    for lo, hi in gutters:
        centre, quarter = (lo + hi) // 2, (hi - lo) // 4
        middle = ink[max(x0, lo + quarter) - x0 : max(x0, min(x1, hi - quarter)) - x0]
        if x0 < centre < x1 and not middle.any():
            cuts.append(centre)
    if not cuts:
        return [box]
    pieces = []
    for a, b in itertools.pairwise([x0, *cuts, x1]):
        cols = np.flatnonzero(ink[a - x0 : b - x0])
        if cols.size == 0:
            continue
        pieces.append(
            (max(x0, a + int(cols[0]) - pad), y0, min(x1, a + int(cols[-1]) + 1 + pad), y1)
        )
    return pieces


def is_covered_by(piece: PixelBox, other: PixelBox) -> bool:
    """Whether another line's box on the same row already holds most of ``piece`` (the
    detector's boxes can overlap: a piece cut from one may repeat the end of another)."""
    x0, y0, x1, y1 = piece
    ox0, oy0, ox1, oy1 = other
    rows = min(y1, oy1) - max(y0, oy0)
    cols = min(x1, ox1) - max(x0, ox0)
    return rows > 0.5 * (y1 - y0) and cols > 0.7 * (x1 - x0)


def axis_box(quad: Any, width: int, height: int) -> PixelBox:
    """The pixel box around a detector quad, clamped to a ``width`` x ``height`` image
    (at least one pixel wide and tall)."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    x0, y0 = np.floor(q.min(axis=0)).astype(int)
    x1, y1 = np.ceil(q.max(axis=0)).astype(int)
    x0, x1 = min(max(0, x0), width), min(max(0, x1), width)
    y0, y1 = min(max(0, y0), height), min(max(0, y1), height)
    return int(x0), int(y0), int(max(x1, x0 + 1)), int(max(y1, y0 + 1))


def _line_ink(dark: np.ndarray, box: PixelBox) -> np.ndarray:
    """Which pixel columns of the box hold ink in the line's middle rows (the detector
    pads its boxes, so the outer rows may hold the neighbouring lines' ascenders)."""
    x0, y0, x1, y1 = box
    margin = (y1 - y0) // 4
    rows = dark[y0 + margin : max(y0 + margin + 1, y1 - margin), x0:x1]
    return np.asarray(rows.any(axis=0), dtype=bool)


class _ColumnReadingOrder:
    """Reading order by recursive XY cuts on line boxes, column cuts first.

    Columns are cut only at the page's gutters (found from the ink or the boxes of many
    lines, so a stray gap between two labels is no column). A region that a gutter crosses
    from top to bottom (no line over the gutter's centre, lines on both sides) is read
    column by column. Otherwise it is cut into horizontal bands at vertical gaps, and
    consecutive bands stay together while together they can still be cut at a gutter (a
    run of two-column rows is one two-column region); a band that spans the gutter (a
    title, a wide caption, a page number in the middle) separates such regions.

    (:func:`handler.engines.reading_order.reading_order` finds gutters from gaps between
    boxes, in PDF points; OCR boxes are padded and noisy, so this one takes the gutters.)
    """

    def __init__(self, lines: Sequence[OcrLine], gutters: Sequence[tuple[float, float]]) -> None:
        self.lines = lines
        # a line crosses a gutter when it covers its centre (padded boxes reach into it)
        self.cuts = sorted((lo + hi) / 2 for lo, hi in gutters)
        # the detector pads boxes; shrink them vertically so neighbouring lines do not touch
        self.core = [(ln.y0 + 0.2 * ln.height, ln.y1 - 0.2 * ln.height) for ln in lines]

    def order(self, idx: list[int]) -> list[int]:
        if len(idx) <= 1:
            return idx
        cols = self._columns(idx)
        if len(cols) > 1:
            return [i for col in cols for i in self.order(col)]
        bands = self._bands(idx)
        groups: list[list[int]] = []
        group_split = False
        for band in bands:
            band_split = len(self._columns(band)) > 1
            if groups:
                joined = groups[-1] + band
                if len(self._columns(joined)) > 1 or (not group_split and not band_split):
                    groups[-1] = joined
                    group_split = group_split or band_split
                    continue
            groups.append(list(band))
            group_split = band_split
        if len(groups) == 1:  # one flow: no column anywhere
            return [i for band in bands for i in self._rows(band)]
        return [i for group in groups for i in self.order(group)]

    def _columns(self, idx: list[int]) -> list[list[int]]:
        cols = [idx]
        for cut in self.cuts:
            last = cols[-1]
            if any(self.lines[i].x0 < cut < self.lines[i].x1 for i in last):
                continue  # a line crosses this gutter here
            left = [i for i in last if self.lines[i].cx < cut]
            right = [i for i in last if self.lines[i].cx >= cut]
            if left and right:
                cols[-1:] = [left, right]
        return cols

    def _bands(self, idx: list[int]) -> list[list[int]]:
        order = sorted(idx, key=lambda i: self.core[i][0])
        bands: list[list[int]] = []
        bottom = -np.inf
        for i in order:
            lo, hi = self.core[i]
            if bands and lo <= bottom:
                bands[-1].append(i)
                bottom = max(bottom, hi)
            else:
                bands.append([i])
                bottom = hi
        return bands

    def _rows(self, idx: list[int]) -> list[int]:
        """Lines sorted top to bottom, lines on the same row left to right."""
        order = sorted(idx, key=lambda i: self.lines[i].cy)
        rows: list[list[int]] = []
        for i in order:
            ln = self.lines[i]
            if rows:
                last = self.lines[rows[-1][-1]]
                if abs(ln.cy - last.cy) < 0.5 * min(ln.height, last.height):
                    rows[-1].append(i)
                    continue
            rows.append([i])
        return [i for row in rows for i in sorted(row, key=lambda j: self.lines[j].x0)]
