"""What an engine gets: one page, with its PDF page (if any) and a way to render it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from handler.documents.raster import resize_rgb, scaled_size


@dataclass(slots=True)
class PageInput:
    """One page of a document, ready for an engine.

    ``layout_width``/``layout_height`` define the pixel space every element box is given
    in: for PDF pages the page at ``dpi`` (``scale`` pixels per PDF point), for images the
    image's own pixels (``scale`` 1.0, ``pdf_page`` None). A PDF page whose content a
    repair did not find (a truncated file) has no ``pdf_page`` either, and its ``render()``
    raises ``BadInput``: it is reported as a failed page, never as a blank one.

    ``render()`` draws the page at the layout size; :meth:`render_scaled` draws it smaller
    (an OCR engine asks for the size it reads best), straight at that size where the reader
    can (PDF pages), else by resizing the layout-size render (images). Boxes stay in layout
    pixels whatever size was drawn. :meth:`source_dpi` says how fine the page's own pixels
    are where it is a scan placed in a PDF: drawing it finer than that adds nothing.
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
    # the page at ``factor`` times the layout size (see ``scaled_size``); None: resize render()
    render_at: Callable[[float], np.ndarray] | None = None
    # the resolution of the scan the page shows (PDF pages), None when it is not a scan
    scan_dpi: Callable[[], float | None] | None = None

    def render_scaled(self, factor: float) -> np.ndarray:
        """The page at ``factor`` (0 < factor <= 1) times the layout size, RGB uint8 of shape
        ``scaled_size(layout_width, layout_height, factor)``."""
        if not 0 < factor <= 1:
            raise ValueError(f"scale factor must be in (0, 1], not {factor}")
        if factor == 1.0:
            return self.render()
        if self.render_at is not None:
            return self.render_at(factor)
        width, height = scaled_size(self.layout_width, self.layout_height, factor)
        return resize_rgb(self.render(), width, height)

    def source_dpi(self) -> float | None:
        """Pixels per inch of the scan this PDF page shows; None for other pages (vector
        text and art have no resolution of their own; an image file is its own pixels)."""
        return self.scan_dpi() if self.scan_dpi is not None else None
