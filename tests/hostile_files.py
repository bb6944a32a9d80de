"""Hostile files made on the spot: PDFs whose page tree lies, images whose headers declare
gigapixels, a cut JPEG, random bytes. Small and deterministic (fixed seeds)."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pymupdf
from PIL import Image


def text_pdf(pages: int, label: str) -> bytes:
    """A born-digital PDF whose page N says "<label> page N." (one object after another)."""
    with pymupdf.open() as pdf:
        for number in range(1, pages + 1):
            page = pdf.new_page(width=400, height=300)
            text = f"{label} page {number}. " + "The quick brown fox jumps over the lazy dog. " * 6
            page.insert_textbox(pymupdf.Rect(36, 36, 364, 264), text)
        return pdf.tobytes()


def pdf_claiming_pages(count: int, *, table_entries: int) -> bytes:
    """A one-page PDF whose page tree says /Count ``count``, with an object table (a
    compressed cross-reference stream) of ``table_entries`` entries, all but a few of them
    free: a few hundred bytes (60 KB for millions of entries) that claim any number of
    pages, or make a reader allocate a table of millions of objects."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % count,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    out = b"%PDF-1.5\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    rows = [b"\x00\x00\x00\x00\xff\xff"]  # object 0: free
    rows += [b"\x01" + struct.pack(">I", offset) + b"\x00" for offset in [*offsets, xref_at]]
    compressor = zlib.compressobj(9)
    table = compressor.compress(b"".join(rows))
    free = table_entries - len(rows)
    chunk = 100_000
    while free > 0:  # the free entries, compressed as they are made (6 bytes each)
        table += compressor.compress(b"\x00" * 6 * min(free, chunk))
        free -= chunk
    table += compressor.flush()
    out += (
        b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 1] /Root 1 0 R /Filter /FlateDecode "
        b"/Length %d >>\nstream\n" % (len(objects) + 1, table_entries, len(table))
    )
    out += table + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return out


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` pixels, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def tiff_declaring(width: int, height: int) -> bytes:
    """A little-endian grey TIFF whose one IFD declares ``width`` x ``height`` pixels."""
    entries = [  # (tag, type, value): type 3 SHORT, 4 LONG
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),  # bits per sample
        (259, 3, 1),  # no compression
        (262, 3, 1),  # black is zero
        (273, 4, 8 + 2 + 12 * 9 + 4),  # strip offset: just after the IFD
        (277, 3, 1),  # samples per pixel
        (278, 4, height),  # rows per strip
        (279, 4, 16),  # strip byte count
    ]
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, 1) + packed
    return out + struct.pack("<I", 0) + b"\x00" * 16


def jpeg_cut_short() -> bytes:
    """A 600 x 400 JPEG of noise (so its data is long), cut in the middle of its scan."""
    noise = random.Random(3).randbytes(600 * 400 * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (600, 400), noise).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    return data[: len(data) // 2]


def random_bytes() -> bytes:
    data = random.Random(7).randbytes(64 * 1024)
    assert b"%PDF-" not in data and data[:2] != b"BM"  # fixed seed: checked once, stays true
    return data
