"""Which kind of document a file is, from its first bytes (magic numbers), never its name.

DESIGN §1 step 5: the type comes from the bytes. A PDF may carry up to 1024 bytes of junk
before its ``%PDF-`` header (readers accept that, so do we); every image type must start
at byte 0.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from handler.errors import BadInput, ErrorCategory

PDF_HEADER_WINDOW = 1024  # junk bytes allowed before "%PDF-"
HEAD_BYTES = PDF_HEADER_WINDOW + 8  # how much of a file detect_type needs to see

# Sizes of the BMP info headers Pillow reads (core, v2..v5, OS/2 2.x).
_BMP_INFO_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


@dataclass(frozen=True, slots=True)
class DocumentType:
    """A supported document type: ``kind`` is a short name, ``mime`` its MIME type."""

    kind: str
    mime: str

    @property
    def is_pdf(self) -> bool:
        return self.kind == "pdf"


PDF = DocumentType("pdf", "application/pdf")
PNG = DocumentType("png", "image/png")
JPEG = DocumentType("jpeg", "image/jpeg")
TIFF = DocumentType("tiff", "image/tiff")
BMP = DocumentType("bmp", "image/bmp")
WEBP = DocumentType("webp", "image/webp")

SUPPORTED_TYPES = (PDF, PNG, JPEG, TIFF, BMP, WEBP)

UNSUPPORTED_MESSAGE = (
    "The file is not a PDF or a supported image (PNG, JPEG, TIFF, BMP, WebP); "
    "its type was read from its content, not from its name."
)
EMPTY_MESSAGE = "The file is empty (0 bytes)."


def detect_type(head: bytes) -> DocumentType:
    """Return the type of a file from its first bytes (at least ``HEAD_BYTES`` of them
    when the file is that long).

    Raises ``BadInput`` ``CORRUPT`` for zero bytes and ``UNSUPPORTED`` for anything else
    that is not a PDF, PNG, JPEG, TIFF, BMP or WebP.
    """
    if not head:
        raise BadInput(ErrorCategory.CORRUPT, EMPTY_MESSAGE)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP
    if _looks_like_bmp(head):
        return BMP
    if b"%PDF-" in head[: PDF_HEADER_WINDOW + 5]:
        return PDF
    raise BadInput(ErrorCategory.UNSUPPORTED, UNSUPPORTED_MESSAGE)


def detect_file(path: Path) -> DocumentType:
    """``detect_type`` on the first bytes of a file."""
    with path.open("rb") as f:
        return detect_type(f.read(HEAD_BYTES))


def _looks_like_bmp(head: bytes) -> bool:
    # "BM" alone is too weak (any text starting with "BM"): check the info header size too.
    if not head.startswith(b"BM") or len(head) < 18:
        return False
    (info_size,) = struct.unpack_from("<I", head, 14)
    return info_size in _BMP_INFO_SIZES
