"""Figures drawn as vector graphics on a text-layer page (for the text-layer engine).

A diagram or a chart drawn with the page's line art carries text of its own: labels,
callouts, the keywords of a syntax diagram, often in a larger or bolder type than the
body. That text is the figure's, never a heading (:func:`handler.engines.text_lines.classify`).

A drawn figure is a group of at least ``MIN_FIGURE_SHAPES`` shapes
(:func:`handler.engines.pdf_tables.shapes`: coloured fills, curves, slanted lines) that
touch each other (within ``FIGURE_JOIN_GAP``), at least ``MIN_FIGURE_SIDE`` wide and tall
and at most ``MAX_FIGURE_PAGE_SHARE`` of the page: a banner behind a heading is a shape or
two, a page-wide decoration is no figure. A shape covering ``BACKGROUND_PAGE_SHARE`` of
the page is its background and joins nothing.
"""

from __future__ import annotations

import pymupdf

from handler.engines.pdf_tables import PageArt, shapes
from handler.engines.text_space import Frame

Box = tuple[float, float, float, float]  # x0, y0, x1, y1

MIN_FIGURE_SHAPES = 8
FIGURE_JOIN_GAP = 3.0  # points between two shapes of one figure, at most
MIN_FIGURE_SIDE = 36.0  # points (half an inch)
MAX_FIGURE_PAGE_SHARE = 0.5
BACKGROUND_PAGE_SHARE = 0.85
MAX_SHAPES = 5000  # beyond, the page is a map or a plan: no figure is singled out


def drawn_figures(art: PageArt, frame: Frame) -> list[Box]:
    """Boxes (text space) of the figures drawn on the page (see the module docstring)."""
    page = frame.rect
    page_area = max(page.width * page.height, 1e-9)
    boxes: list[Box] = []
    for box in shapes(art):
        r = pymupdf.Rect(box) * frame.to_text
        if r.width * r.height < BACKGROUND_PAGE_SHARE * page_area:
            boxes.append((r.x0, r.y0, r.x1, r.y1))
    if len(boxes) < MIN_FIGURE_SHAPES or len(boxes) > MAX_SHAPES:
        return []
    figures = []
    for box, count in _groups(boxes):
        width, height = box[2] - box[0], box[3] - box[1]
        if (
            count >= MIN_FIGURE_SHAPES
            and min(width, height) >= MIN_FIGURE_SIDE
            and width * height <= MAX_FIGURE_PAGE_SHARE * page_area
        ):
            figures.append(box)
    return figures


class FigureAreas:
    """The page's drawn figures, found on the first question (most pages never ask: only
    a would-be title is checked)."""

    def __init__(self, art: PageArt, frame: Frame) -> None:
        self._art, self._frame = art, frame
        self._figures: list[Box] | None = None

    def holds(self, box: Box) -> bool:
        """The centre of ``box`` (text space) lies in a drawn figure."""
        if self._figures is None:
            self._figures = drawn_figures(self._art, self._frame)
        x = (box[0] + box[2]) / 2
        y = (box[1] + box[3]) / 2
        return any(f[0] <= x <= f[2] and f[1] <= y <= f[3] for f in self._figures)


def _groups(boxes: list[Box]) -> list[tuple[Box, int]]:
    """Boxes merged while they touch: each group's box and how many boxes it holds."""
    groups: list[tuple[Box, int]] = []
    for box in sorted(boxes, key=lambda b: (b[1], b[0])):
        merged, count = box, 1
        rest = []
        for group, n in groups:
            if _touch(group, merged):
                merged = _union(group, merged)
                count += n
            else:
                rest.append((group, n))
        groups = [*rest, (merged, count)]
    # a merge can make a group reach one it passed before: merge until nothing touches
    changed = True
    while changed:
        changed = False
        out: list[tuple[Box, int]] = []
        for group, n in groups:
            for k, (other, m) in enumerate(out):
                if _touch(group, other):
                    out[k] = (_union(group, other), n + m)
                    changed = True
                    break
            else:
                out.append((group, n))
        groups = out
    return groups


def _touch(a: Box, b: Box) -> bool:
    gap = FIGURE_JOIN_GAP
    return a[0] <= b[2] + gap and b[0] <= a[2] + gap and a[1] <= b[3] + gap and b[1] <= a[3] + gap


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
