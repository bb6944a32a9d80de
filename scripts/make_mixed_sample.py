"""Build samples/mixed.pdf: a born-digital page followed by a scanned page (image only).

    python scripts/make_mixed_sample.py SHARED_CORPUS_DIR samples/mixed.pdf

The sources are from the development corpus (see samples/LICENSES.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pymupdf
from PIL import Image


def main(corpus: Path, out: Path) -> None:
    mixed = pymupdf.open()
    with pymupdf.open(corpus / "born_digital" / "docling__2305.03393v1-pg9.pdf") as digital:
        mixed.insert_pdf(digital, from_page=0, to_page=0)
    scan = corpus / "scanned" / "tess__phototest.tif"
    with Image.open(scan) as image:
        (pixels_x, pixels_y), (dpi_x, dpi_y) = image.size, map(float, image.info["dpi"])
    width, height = pixels_x * 72 / dpi_x, pixels_y * 72 / dpi_y
    page = mixed.new_page(width=width, height=height)
    page.insert_image(page.rect, filename=str(scan))
    mixed.save(out, garbage=4, deflate=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
