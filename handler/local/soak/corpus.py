"""The soak test's documents: small, distinct, generated from a seed.

Mostly born-digital PDFs of one to three pages (the text-layer engine: milliseconds a page),
with a small share of tiny image scans so that the OCR path and its engine start-up are
exercised too without making the run slow on two cores.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

import pymupdf

PDF_PAGES = (1, 3)  # inclusive range of pages per born-digital PDF
LETTER_PT = (612, 792)  # US Letter in points
SCAN_PT = (320, 60)  # a scan is one short line of text...
SCAN_DPI = 150  # ...rendered at this resolution: about 670 x 125 pixels
WORDS_PER_PAGE = (40, 90)
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "ve", "so", "di", "pa", "gor", "lin", "tes")
WORD_SYLLABLES = (1, 4)


class DocumentKind(StrEnum):
    PDF = "pdf"  # born-digital: the text layer
    SCAN = "scan"  # a PNG: OCR


@dataclass(frozen=True, slots=True)
class SoakDocument:
    """One generated document: where it goes under the input prefix, its bytes, its pages."""

    relative: str
    data: bytes
    pages: int
    kind: DocumentKind


def make_corpus(count: int, rng: random.Random, *, scan_share: float) -> list[SoakDocument]:
    """``count`` distinct documents; about ``scan_share`` of them are image scans."""
    documents = []
    for number in range(count):
        folder = f"soak/{number % 10}"
        if rng.random() < scan_share:
            data = _scan_png(f"Soak scan {number:04d} {_word(rng)}")
            documents.append(
                SoakDocument(f"{folder}/scan-{number:04d}.png", data, 1, DocumentKind.SCAN)
            )
        else:
            pages = rng.randint(*PDF_PAGES)
            data = _born_digital_pdf(number, pages, rng)
            documents.append(
                SoakDocument(f"{folder}/doc-{number:04d}.pdf", data, pages, DocumentKind.PDF)
            )
    return documents


def _born_digital_pdf(number: int, pages: int, rng: random.Random) -> bytes:
    with pymupdf.open() as pdf:
        for page_number in range(1, pages + 1):
            page = pdf.new_page(width=LETTER_PT[0], height=LETTER_PT[1])
            page.insert_text((72, 90), f"Soak document {number} page {page_number}", fontsize=16)
            words = [_word(rng) for _ in range(rng.randint(*WORDS_PER_PAGE))]
            body = pymupdf.Rect(72, 120, LETTER_PT[0] - 72, LETTER_PT[1] - 72)
            page.insert_textbox(body, " ".join(words).capitalize() + ".", fontsize=11)
        return bytes(pdf.tobytes(garbage=3, deflate=True))


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(*WORD_SYLLABLES)))


def _scan_png(text: str) -> bytes:
    """One line of text as pixels only: no text layer, so it goes to OCR."""
    with pymupdf.open() as pdf:
        page = pdf.new_page(width=SCAN_PT[0], height=SCAN_PT[1])
        page.insert_text((12, 38), text, fontsize=18)
        return bytes(page.get_pixmap(dpi=SCAN_DPI).tobytes("png"))
