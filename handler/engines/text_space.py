"""Text space: the displayed page turned so that most of its text runs left to right.

The text-layer engine works out lines, rows, blocks and reading order in text space, so a
landscape table printed sideways (or a page turned by its ``/Rotate``) reads like any
other page; element boxes go back to the displayed page for the output.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pymupdf


@dataclass(frozen=True, slots=True)
class Frame:
    """Text space: the displayed page turned so that most of its text runs left to right.

    Lines, rows, blocks and reading order are worked out in text space (a landscape table
    printed sideways reads like any other page); boxes go back to the displayed page for
    the output. ``rect`` is the page in text space.
    """

    to_text: Any  # pymupdf.Matrix: unrotated page -> text space
    to_display: Any  # pymupdf.Matrix: text space -> displayed page
    rect: Any  # pymupdf.Rect


def text_frame(pdf_page: Any, raw_blocks: list[dict[str, Any]]) -> Frame:
    """The page's text space, from the direction of the lines of ``get_text("dict")``
    (the direction with the most characters, in quarter turns)."""
    rotation = pdf_page.rotation_matrix
    turn = pymupdf.Matrix(1, 0, 0, 1, 0, 0)
    weights: Counter[int] = Counter()
    for raw in raw_blocks:
        for raw_line in raw.get("lines", ()):
            dx, dy = raw_line["dir"]
            x = dx * rotation.a + dy * rotation.c  # direction on the displayed page
            y = dx * rotation.b + dy * rotation.d
            angle = round(math.degrees(math.atan2(y, x)) / 90) % 4 * 90
            weights[angle] += sum(len(s["text"]) for s in raw_line["spans"])
    if weights:
        angle = weights.most_common(1)[0][0]
        cos, sin = round(math.cos(math.radians(angle))), round(math.sin(math.radians(angle)))
        turn = pymupdf.Matrix(cos, -sin, sin, cos, 0, 0)
    to_text = rotation * turn
    return Frame(to_text, ~turn, pdf_page.rect * turn)
