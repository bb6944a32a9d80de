"""Sentences for the limits, shared by the PDF and image readers (DESIGN §5: a message a
person understands)."""

from __future__ import annotations

from handler.documents.detect import EMPTY_MESSAGE
from handler.errors import BadInput, ErrorCategory


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def too_many_pages(count: int, limit: int) -> BadInput:
    return BadInput(
        ErrorCategory.TOO_LARGE,
        f"The document has {count} pages; the limit is {limit} pages.",
    )


def page_too_large(
    number: int, width: int, height: int, limit: int, *, dpi: int | None
) -> BadInput:
    at = f" at {dpi} DPI" if dpi else ""
    return BadInput(
        ErrorCategory.TOO_LARGE,
        f"Page {number} is {width} x {height} pixels{at} "
        f"({width * height / 1e6:.1f} megapixels); "
        f"the limit is {limit / 1e6:.1f} megapixels per page.",
    )


def check_size(size: int, max_bytes: int) -> None:
    """Refuse an empty file or one over the byte limit (before it is even downloaded)."""
    if size == 0:
        raise BadInput(ErrorCategory.CORRUPT, EMPTY_MESSAGE)
    if size > max_bytes:
        raise BadInput(
            ErrorCategory.TOO_LARGE,
            f"The file is {human_bytes(size)}; the limit is {human_bytes(max_bytes)}.",
        )
