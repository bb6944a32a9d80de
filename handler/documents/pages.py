"""What an engine gets: one page, with its PDF page (if any) and a way to render it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(slots=True)
class PageInput:
    """One page of a document, ready for an engine.

    ``layout_width``/``layout_height`` define the pixel space every element box is given
    in: for PDF pages the page at ``dpi`` (``scale`` pixels per PDF point), for images the
    image's own pixels (``scale`` 1.0, ``pdf_page`` None). A PDF page whose content a
    repair did not find (a truncated file) has no ``pdf_page`` either, and its ``render()``
    raises ``BadInput``: it is reported as a failed page, never as a blank one.
    """

    number: int  # 1-based
    layout_width: int
    layout_height: int
    dpi: int
    scale: float  # layout pixels per PDF point (1.0 for images)
    render: Callable[[], np.ndarray]  # RGB uint8, shape (layout_height, layout_width, 3)
    pdf_page: Any | None = None  # pymupdf.Page for PDF pages; None for images, lost pages
    filename: str = ""
    filetype: str = ""  # MIME type of the document
