"""Reading order of boxes on a page: a recursive XY-cut that prefers columns.

``reading_order(boxes)`` returns the indices of ``boxes`` in reading order:

1. If a vertical gutter (at least ``MIN_GUTTER`` wide, with no box crossing it) splits the
   boxes into columns that are each at least ``MIN_COLUMN_WIDTH`` wide, the columns are
   read one after another (left to right, or right to left for right-to-left pages), each
   ordered recursively. Narrower "columns" (bullets, labels, numbers) join a neighbour.
   Not when the boxes form a grid (a table): all of them short (``ROW_MAX_HEIGHT``), at
   least ``GRID_ALIGNED_SHARE`` of them starting level with a box in another column, and
   fewer than ``FULL_LINE_SHARE`` of them as wide as their column (lines of prose that
   happen to be one box each fill their column; table cells mostly do not). A grid is
   read row by row.
2. Otherwise, if the narrow boxes (at most ``NARROW_SHARE`` of the region wide) form
   columns with a gutter between them, each column holding boxes at least
   ``MIN_COLUMN_HEIGHT_SHARE`` of the region tall, the boxes that cross a gutter
   (full-width titles, figures, captions) are "spanners": they cut the region into
   sections, and each section's columns are read before the spanner below it. This
   handles a figure that spans both columns while one column's text runs on beside it.
3. Otherwise the boxes are cut into horizontal bands at every vertical gap. Consecutive
   bands that share a column gutter are merged again before recursing (two columns that
   both happen to have a paragraph break at the same height stay two columns), so a
   full-width title above two columns is read first, then column 1, then column 2.
   Bands that look like table rows (every box starts at the same height and the band is
   at most ``ROW_MAX_HEIGHT`` tall) are not merged: a table is read row by row.
4. Boxes that no cut separates are sorted top to bottom, then along the line.

Units are those of the boxes (PDF points for the text-layer engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

Box = tuple[float, float, float, float]  # x0, y0, x1, y1, y grows downwards

MIN_GUTTER = 7.0  # narrowest gap between two columns
MIN_COLUMN_WIDTH = 72.0  # narrowest column; narrower groups join their neighbour
Y_OVERLAP_TOLERANCE = 1.0  # boxes overlapping by less than this are still cut apart
LINE_TOLERANCE = 3.0  # tops closer than this count as the same line
ROW_MAX_HEIGHT = 30.0  # tallest band that can be a table row
GRID_ALIGNED_SHARE = 0.6
FULL_LINE_SHARE = 0.6
FULL_LINE_WIDTH = 0.85  # of the column's width
NARROW_SHARE = 0.6
MIN_COLUMN_HEIGHT_SHARE = 0.25


def reading_order(boxes: Sequence[Box], *, rtl: bool = False) -> list[int]:
    """Indices of ``boxes`` in reading order (see the module docstring)."""
    return _order(list(range(len(boxes))), boxes, rtl)


def _order(idx: list[int], boxes: Sequence[Box], rtl: bool) -> list[int]:
    if len(idx) <= 1:
        return list(idx)
    columns = _columns(idx, boxes)
    if columns is not None and not _grid(columns, boxes):
        if rtl:
            columns.reverse()
        return [i for column in columns for i in _order(column, boxes, rtl)]
    sections = _sections(idx, boxes)
    if sections is not None:
        return [i for section in sections for i in _order(section, boxes, rtl)]
    bands = _bands(idx, boxes)
    groups = _merge_bands(bands, boxes) if bands is not None else None
    if groups is None or len(groups) < 2:
        return _sorted(idx, boxes, rtl)
    return [i for group in groups for i in _order(group, boxes, rtl)]


def _columns(idx: list[int], boxes: Sequence[Box]) -> list[list[int]] | None:
    """Split into columns at vertical gutters, or None when there is no real gutter."""
    by_x = sorted(idx, key=lambda i: boxes[i][0])
    clusters: list[list[int]] = [[by_x[0]]]
    extents: list[list[float]] = [[boxes[by_x[0]][0], boxes[by_x[0]][2]]]
    for i in by_x[1:]:
        x0, x1 = boxes[i][0], boxes[i][2]
        if x0 - extents[-1][1] >= MIN_GUTTER:
            clusters.append([i])
            extents.append([x0, x1])
        else:
            clusters[-1].append(i)
            extents[-1][1] = max(extents[-1][1], x1)
    while len(clusters) > 1:
        narrow = [k for k, (x0, x1) in enumerate(extents) if x1 - x0 < MIN_COLUMN_WIDTH]
        if not narrow:
            break
        k = narrow[0]
        left_gap = extents[k][0] - extents[k - 1][1] if k > 0 else float("inf")
        right_gap = extents[k + 1][0] - extents[k][1] if k + 1 < len(extents) else float("inf")
        j = k - 1 if left_gap <= right_gap else k + 1
        a, b = min(j, k), max(j, k)
        clusters[a] += clusters.pop(b)
        extents[a] = [min(extents[a][0], extents[b][0]), max(extents[a][1], extents[b][1])]
        extents.pop(b)
    return clusters if len(clusters) > 1 else None


def _grid(columns: list[list[int]], boxes: Sequence[Box]) -> bool:
    """The columns are the columns of a table rather than of text."""
    count = sum(len(column) for column in columns)
    if count < 4 or any(boxes[i][3] - boxes[i][1] > ROW_MAX_HEIGHT for c in columns for i in c):
        return False
    aligned = full = 0
    for k, column in enumerate(columns):
        left = min(boxes[i][0] for i in column)
        width = max(boxes[i][2] for i in column) - left
        others = [boxes[i][1] for j, c in enumerate(columns) if j != k for i in c]
        for i in column:
            aligned += any(abs(boxes[i][1] - top) <= LINE_TOLERANCE for top in others)
            full += boxes[i][2] - boxes[i][0] >= FULL_LINE_WIDTH * width
    return aligned >= GRID_ALIGNED_SHARE * count and full < FULL_LINE_SHARE * count


def _sections(idx: list[int], boxes: Sequence[Box]) -> list[list[int]] | None:
    """Columns of the narrow boxes, cut into sections by the boxes crossing a gutter."""
    x0 = min(boxes[i][0] for i in idx)
    x1 = max(boxes[i][2] for i in idx)
    y0 = min(boxes[i][1] for i in idx)
    y1 = max(boxes[i][3] for i in idx)
    narrow = [i for i in idx if boxes[i][2] - boxes[i][0] <= NARROW_SHARE * (x1 - x0)]
    columns = _columns(narrow, boxes) if len(narrow) > 1 else None
    if columns is None:
        return None
    for column in columns:
        if sum(boxes[i][3] - boxes[i][1] for i in column) < MIN_COLUMN_HEIGHT_SHARE * (y1 - y0):
            return None
    extents = sorted((min(boxes[i][0] for i in c), max(boxes[i][2] for i in c)) for c in columns)
    gutters = [(a[1], b[0]) for a, b in pairwise(extents)]
    spanners = sorted(
        (i for i in idx if any(boxes[i][0] < g1 and boxes[i][2] > g0 for g0, g1 in gutters)),
        key=lambda i: (boxes[i][1], boxes[i][0]),
    )
    if not spanners:
        return None
    spanning = set(spanners)
    sections: list[list[int]] = [[] for _ in range(len(spanners) + 1)]
    middles = [(boxes[i][1] + boxes[i][3]) / 2 for i in spanners]
    for i in idx:
        if i not in spanning:
            middle = (boxes[i][1] + boxes[i][3]) / 2
            sections[sum(m < middle for m in middles)].append(i)
    result: list[list[int]] = []
    for k, section in enumerate(sections):
        if section:
            result.append(section)
        if k < len(spanners):
            result.append([spanners[k]])
    return result


def _bands(idx: list[int], boxes: Sequence[Box]) -> list[list[int]] | None:
    """Split into horizontal bands at vertical gaps, or None when there is none."""
    by_y = sorted(idx, key=lambda i: boxes[i][1])
    bands: list[list[int]] = [[by_y[0]]]
    bottom = boxes[by_y[0]][3]
    for i in by_y[1:]:
        y0, y1 = boxes[i][1], boxes[i][3]
        if y0 >= bottom - Y_OVERLAP_TOLERANCE:
            bands.append([i])
            bottom = y1
        else:
            bands[-1].append(i)
            bottom = max(bottom, y1)
    return bands if len(bands) > 1 else None


def _merge_bands(bands: list[list[int]], boxes: Sequence[Box]) -> list[list[int]]:
    groups = [list(bands[0])]
    group_split = _columns(groups[0], boxes) is not None
    last_row = _row_like(bands[0], boxes)
    for band in bands[1:]:
        band_split = _columns(band, boxes) is not None
        band_row = _row_like(band, boxes)
        merged = groups[-1] + band
        if (
            (group_split or band_split)
            and not (last_row or band_row)
            and _columns(merged, boxes) is not None
        ):
            groups[-1] = merged
            group_split = True
        else:
            groups.append(list(band))
            group_split = band_split
        last_row = band_row
    return groups


def _row_like(band: list[int], boxes: Sequence[Box]) -> bool:
    tops = [boxes[i][1] for i in band]
    bottom = max(boxes[i][3] for i in band)
    return (
        len(band) > 1
        and max(tops) - min(tops) <= LINE_TOLERANCE
        and bottom - min(tops) <= ROW_MAX_HEIGHT
    )


def _sorted(idx: list[int], boxes: Sequence[Box], rtl: bool) -> list[int]:
    def key(i: int) -> tuple[float, float]:
        x0, y0, x1, _ = boxes[i]
        return (round(y0 / LINE_TOLERANCE), -x1 if rtl else x0)

    return sorted(idx, key=key)
