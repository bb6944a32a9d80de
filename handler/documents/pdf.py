"""PDF documents through PyMuPDF: open, check limits, hand out pages, render to RGB."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf

from handler.documents.limits import Limits
from handler.documents.messages import page_too_large, too_many_pages
from handler.documents.pages import PageInput
from handler.documents.raster import fit_rgb, scaled_size
from handler.errors import BadInput, ErrorCategory

POINTS_PER_INCH = 72
# A page that fits the pixel limit only below this resolution is refused: too large.
MIN_DPI = 36
# A page is a scan when one image covers at least this share of it (a page of text with a
# photo is not): its resolution is then the image's.
SCAN_COVERAGE = 0.5

# What PyMuPDF raises on a broken file: its own FileDataError/EmptyFileError are
# RuntimeErrors, MuPDF's errors derive from FzErrorBase, some checks raise ValueError.
_PDF_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)

ENCRYPTED_MESSAGE = "The PDF is password-protected; pagedrop cannot open it without the password."
CORRUPT_MESSAGE = "The PDF is damaged and cannot be read."
NO_PAGES_MESSAGE = "The PDF is damaged: it has no pages."
MISSING_CONTENT_MESSAGE = (
    "Page {number} of the PDF is damaged: its content is missing (the file may be truncated)."
)


def layout_size(rect: Any, dpi: int) -> tuple[int, int]:
    """Pixel size of a page rectangle (PDF points, as displayed) at ``dpi``."""
    scale = dpi / POINTS_PER_INCH
    return max(1, round(rect.width * scale)), max(1, round(rect.height * scale))


class PdfPages:
    """The pages of one open PDF. Sizes (and each page's resolution) are known when it is
    opened."""

    def __init__(
        self,
        doc: Any,
        sizes: list[tuple[int, int, int]],
        *,
        filename: str,
        mime: str,
        lost: frozenset[int] = frozenset(),
    ) -> None:
        self._doc = doc
        self._sizes = sizes  # (width, height, dpi) per page
        self._filename = filename
        self._mime = mime
        self._lost = lost  # 1-based numbers of pages whose content a repair did not find

    @property
    def page_count(self) -> int:
        return len(self._sizes)

    def page(self, number: int) -> PageInput:
        try:
            pdf_page = self._doc.load_page(number - 1)
        except _PDF_ERRORS as exc:
            raise BadInput(
                ErrorCategory.CORRUPT, f"Page {number} of the PDF is damaged and cannot be read."
            ) from exc
        width, height, dpi = self._sizes[number - 1]
        scale = dpi / POINTS_PER_INCH
        lost = number in self._lost
        return PageInput(
            number=number,
            layout_width=width,
            layout_height=height,
            dpi=dpi,
            scale=scale,
            render=partial(_render, pdf_page, number, scale, width, height, lost=lost),
            render_at=partial(_render_scaled, pdf_page, number, scale, width, height, lost=lost),
            scan_dpi=partial(scan_dpi, pdf_page),
            # A lost page offers no text layer (routing would take it for a blank page and
            # the text layer would return nothing): every engine then renders it, and
            # rendering reports the loss, so the page is marked failed.
            pdf_page=None if lost else pdf_page,
            filename=self._filename,
            filetype=self._mime,
        )

    def close(self) -> None:
        self._doc.close()


def open_pdf(path: Path, limits: Limits, *, dpi: int, filename: str, mime: str) -> PdfPages:
    """Open a PDF and check it: password, page count, pixels per page at ``dpi``."""
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except _PDF_ERRORS as exc:
        raise BadInput(ErrorCategory.CORRUPT, CORRUPT_MESSAGE) from exc
    try:
        sizes = _checked_sizes(doc, limits, dpi)
        lost = _lost_pages(doc)
    except _PDF_ERRORS as exc:
        doc.close()
        raise BadInput(ErrorCategory.CORRUPT, CORRUPT_MESSAGE) from exc
    except BaseException:
        doc.close()
        raise
    return PdfPages(doc, sizes, filename=filename, mime=mime, lost=lost)


def _checked_sizes(doc: Any, limits: Limits, dpi: int) -> list[tuple[int, int, int]]:
    """Each page's pixel size and resolution. A page too large for ``max_pixels_per_page``
    at ``dpi`` (a poster, a drawing) gets a lower resolution of its own instead of failing:
    its text layer needs no pixels, and OCR reads it as well as the pixels allow."""
    if doc.needs_pass:
        raise BadInput(ErrorCategory.ENCRYPTED, ENCRYPTED_MESSAGE)
    count = doc.page_count
    if count == 0:
        raise BadInput(ErrorCategory.CORRUPT, NO_PAGES_MESSAGE)
    if count > limits.max_pages:
        raise too_many_pages(count, limits.max_pages)
    sizes = []
    for index in range(count):
        rect = doc.load_page(index).rect  # as displayed: rotation applied
        page_dpi = dpi
        width, height = layout_size(rect, page_dpi)
        if width * height > limits.max_pixels_per_page:
            page_dpi = math.floor(dpi * math.sqrt(limits.max_pixels_per_page / (width * height)))
            if page_dpi < MIN_DPI:
                raise page_too_large(index + 1, width, height, limits.max_pixels_per_page, dpi=dpi)
            width, height = layout_size(rect, page_dpi)
        sizes.append((width, height, page_dpi))
    return sizes


def _lost_pages(doc: Any) -> frozenset[int]:
    """Pages (1-based) whose own object or content MuPDF's repair did not find.

    A truncated file (a cut-off upload) is repaired silently, and a page past the cut then
    draws as a blank page: its content is lost, not empty, and must not pass for an empty
    page. Lost: the page object is missing, or one of its content streams is missing or cut
    so short that nothing of it decodes. Only repaired files are checked; in an intact file
    a reference to a missing object is a legal empty page.
    """
    if not doc.is_repaired:
        return frozenset()
    objects = doc.xref_length()

    def missing(xref: int) -> bool:
        try:
            if not 0 < xref < objects or not doc.xref_is_stream(xref):
                return True
            return bool(doc.xref_stream_raw(xref)) and not doc.xref_stream(xref)
        except _PDF_ERRORS:
            return True

    lost = set()
    for index in range(doc.page_count):
        page = doc.load_page(index)
        if not 0 < page.xref < objects or any(missing(x) for x in page.get_contents()):
            lost.add(index + 1)
    return frozenset(lost)


def scan_dpi(page: Any) -> float | None:
    """Pixels per inch of the image that covers most of a page with no text (at least
    ``SCAN_COVERAGE`` of it), the finer of its two axes; None when no image does, when the
    page has text (drawn over a background picture, text may be finer than the picture) or
    when the document was closed (drawing the page then fails on its own)."""
    if page.parent is None:
        return None
    try:
        if page.get_text("text").strip():
            return None
        infos = page.get_image_info()
        page_area = abs(page.rect)
    except _PDF_ERRORS:
        return None
    best: tuple[float, float] | None = None  # (area covered, dpi)
    for info in infos:
        covered = abs(pymupdf.Rect(info["bbox"]))
        if page_area <= 0 or covered < SCAN_COVERAGE * page_area:
            continue
        a, b, c, d = info["transform"][:4]
        x_inches = math.hypot(a, b) / POINTS_PER_INCH  # the image's own axes, turned or not
        y_inches = math.hypot(c, d) / POINTS_PER_INCH
        if x_inches <= 0 or y_inches <= 0 or info["width"] <= 0 or info["height"] <= 0:
            continue
        dpi = max(info["width"] / x_inches, info["height"] / y_inches)
        if best is None or covered > best[0]:
            best = (covered, dpi)
    return best[1] if best is not None else None


def _render_scaled(
    page: Any,
    number: int,
    scale: float,
    width: int,
    height: int,
    factor: float,
    *,
    lost: bool = False,
) -> np.ndarray:
    """The page drawn at ``factor`` times its layout size, in one pass (never drawn large
    and then shrunk)."""
    out_w, out_h = scaled_size(width, height, factor)
    return _render(page, number, scale * factor, out_w, out_h, lost=lost)


def _render(
    page: Any, number: int, scale: float, width: int, height: int, *, lost: bool = False
) -> np.ndarray:
    """Render one page as displayed (rotation applied) straight to an RGB array."""
    if page.parent is None:
        raise RuntimeError("The document was closed before its page was rendered.")
    if lost:
        raise BadInput(ErrorCategory.CORRUPT, MISSING_CONTENT_MESSAGE.format(number=number))
    try:
        pix = page.get_pixmap(
            matrix=pymupdf.Matrix(scale, scale), colorspace=pymupdf.csRGB, alpha=False
        )
    except _PDF_ERRORS as exc:
        raise BadInput(
            ErrorCategory.CORRUPT, f"Page {number} of the PDF is damaged and cannot be drawn."
        ) from exc
    rows = np.frombuffer(pix.samples_mv, dtype=np.uint8).reshape(pix.height, pix.stride)
    arr = rows[:, : pix.width * 3].reshape(pix.height, pix.width, 3).copy()
    return fit_rgb(arr, width, height)
