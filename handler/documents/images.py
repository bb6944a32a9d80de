"""Image documents (PNG, JPEG, TIFF with several pages, BMP, WebP) through Pillow.

Sizes come from the headers (``Image.open`` is lazy); nothing is decoded until a page's
``render()`` runs. Each render opens the file again, so pages do not share a seek position.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

from handler.documents.detect import DocumentType
from handler.documents.limits import Limits
from handler.documents.messages import page_too_large, too_many_pages
from handler.documents.pages import PageInput
from handler.documents.raster import fit_rgb, image_to_rgb
from handler.errors import BadInput, ErrorCategory

DEFAULT_IMAGE_DPI = 300  # PageInput.dpi when the image states none (or a silly one)
MIN_IMAGE_DPI = 50
MAX_IMAGE_DPI = 4800

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bmp": "BMP", "webp": "WEBP"}
_MULTI_PAGE_KINDS = {"tiff"}  # other animated formats: the first frame only

# What Pillow raises on a broken file (DecompressionBombError is handled on its own).
_PIL_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes UnidentifiedImageError and "image file is truncated"
    ValueError,
    SyntaxError,
    EOFError,
    KeyError,
    IndexError,
    TypeError,
    ZeroDivisionError,
)

# EXIF orientation -> transpose, the same table as ``PIL.ImageOps.exif_transpose``.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {5, 6, 7, 8}


@dataclass(frozen=True, slots=True)
class _Frame:
    width: int  # as displayed (EXIF orientation applied)
    height: int
    dpi: int


class ImagePages:
    """The pages (frames) of one image file."""

    def __init__(
        self, path: Path, doc_type: DocumentType, frames: list[_Frame], *, filename: str
    ) -> None:
        self._path = path
        self._type = doc_type
        self._frames = frames
        self._filename = filename

    @property
    def page_count(self) -> int:
        return len(self._frames)

    def page(self, number: int) -> PageInput:
        frame = self._frames[number - 1]
        return PageInput(
            number=number,
            layout_width=frame.width,
            layout_height=frame.height,
            dpi=frame.dpi,
            scale=1.0,
            render=partial(_render, self._path, self._type, number, frame.width, frame.height),
            pdf_page=None,
            filename=self._filename,
            filetype=self._type.mime,
        )

    def close(self) -> None:
        """Nothing stays open between renders."""


def open_image(path: Path, doc_type: DocumentType, limits: Limits, *, filename: str) -> ImagePages:
    """Read an image's headers and check page count and pixels per page."""
    _raise_pillow_limit(limits.max_pixels_per_page)
    try:
        with Image.open(path, formats=[_PIL_FORMATS[doc_type.kind]]) as im:
            frames = _checked_frames(im, doc_type, limits)
    except Image.DecompressionBombError as exc:
        raise _bomb(exc) from exc
    except _PIL_ERRORS as exc:
        raise _damaged(doc_type) from exc
    return ImagePages(path, doc_type, frames, filename=filename)


def _checked_frames(im: Image.Image, doc_type: DocumentType, limits: Limits) -> list[_Frame]:
    count = getattr(im, "n_frames", 1) if doc_type.kind in _MULTI_PAGE_KINDS else 1
    if count > limits.max_pages:
        raise too_many_pages(count, limits.max_pages)
    frames = []
    for index in range(count):
        if index:
            im.seek(index)
        width, height = im.size
        if width <= 0 or height <= 0:
            raise _damaged(doc_type)
        if width * height > limits.max_pixels_per_page:
            raise page_too_large(index + 1, width, height, limits.max_pixels_per_page, dpi=None)
        if _orientation(im) in _SWAPS_AXES:
            width, height = height, width
        frames.append(_Frame(width, height, _dpi(im)))
    return frames


def _render(path: Path, doc_type: DocumentType, number: int, width: int, height: int) -> np.ndarray:
    try:
        with Image.open(path, formats=[_PIL_FORMATS[doc_type.kind]]) as im:
            if number > 1:
                im.seek(number - 1)
            orientation = _orientation(im)  # read before load, as when the file was opened
            im.load()
            method = _ORIENTATION.get(orientation)
            oriented = im.transpose(method) if method is not None else im
            arr = image_to_rgb(oriented)
    except Image.DecompressionBombError as exc:
        raise _bomb(exc) from exc
    except _PIL_ERRORS as exc:
        raise BadInput(
            ErrorCategory.CORRUPT,
            f"Page {number} of the {doc_type.kind.upper()} image cannot be decoded: "
            "the file is damaged or truncated.",
        ) from exc
    return fit_rgb(arr, width, height)


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except _PIL_ERRORS:
        return 1  # unreadable EXIF: keep the pixels as stored
    return value if isinstance(value, int) else 1


def _dpi(im: Image.Image) -> int:
    """The resolution the image states, else ``DEFAULT_IMAGE_DPI``.

    For JPEG, Pillow reports 72 when the file states nothing; read the JFIF header and the
    EXIF resolution ourselves instead.
    """
    value = _jpeg_dpi(im) if im.format == "JPEG" else im.info.get("dpi")
    if isinstance(value, tuple | list) and value:
        value = value[0]
    try:
        dpi = round(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):
        return DEFAULT_IMAGE_DPI
    return dpi if MIN_IMAGE_DPI <= dpi <= MAX_IMAGE_DPI else DEFAULT_IMAGE_DPI


def _jpeg_dpi(im: Image.Image) -> object:
    unit = im.info.get("jfif_unit")
    density = im.info.get("jfif_density")
    if unit in (1, 2) and density:
        return density[0] * (2.54 if unit == 2 else 1)
    try:
        exif = im.getexif()
    except _PIL_ERRORS:
        return None
    x_resolution = exif.get(ExifTags.Base.XResolution)
    exif_unit = exif.get(ExifTags.Base.ResolutionUnit, 2)
    if x_resolution is None or exif_unit not in (2, 3):
        return None
    return float(x_resolution) * (2.54 if exif_unit == 3 else 1)


def _raise_pillow_limit(max_pixels: int) -> None:
    """Pillow refuses images over 2 x ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb) on
    its own; keep that backstop, but never below our limit, so our limit is what decides."""
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _bomb(exc: Exception) -> BadInput:
    return BadInput(
        ErrorCategory.TOO_LARGE,
        "The image declares far more pixels than pagedrop will decode "
        "(it may be a decompression bomb).",
    )


def _damaged(doc_type: DocumentType) -> BadInput:
    return BadInput(
        ErrorCategory.CORRUPT,
        f"The {doc_type.kind.upper()} image is damaged and cannot be read.",
    )
