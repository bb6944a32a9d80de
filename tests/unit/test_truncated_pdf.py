"""A truncated PDF: pages whose content the repair did not find are lost, not blank."""

from __future__ import annotations

from pathlib import Path

import pytest

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.errors import BadInput, ErrorCategory
from tests.hostile_files import text_pdf

LIMITS = Limits(max_bytes=50_000_000, max_pages=100, max_pixels_per_page=40_000_000)
PAGES = 8


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return path


def test_pages_past_the_cut_of_a_truncated_pdf_fail_to_render_as_lost(tmp_path: Path) -> None:
    # Given a PDF cut in half (its objects page by page, the object table at the end)
    data = text_pdf(PAGES, "Cut")
    path = _write(tmp_path, data[: len(data) // 2])
    # When it is opened
    with open_document(path, LIMITS, dpi=72, filename="doc.pdf") as doc:
        pages = list(doc.pages())
        # Then the pages before the cut keep their text layer and render
        kept = [p for p in pages if p.pdf_page is not None]
        assert [p.number for p in kept] == [1, 2, 3, 4]
        for page in kept:
            assert f"Cut page {page.number}." in page.pdf_page.get_text()
            page.render()
        # ... and each page after it offers no text layer, and rendering says it is lost
        for page in pages[len(kept) :]:
            with pytest.raises(BadInput) as caught:
                page.render()
            assert caught.value.category is ErrorCategory.CORRUPT
            assert caught.value.message == (
                f"Page {page.number} of the PDF is damaged: its content is missing "
                "(the file may be truncated)."
            )


def test_an_intact_pdf_has_no_lost_pages(tmp_path: Path) -> None:
    path = _write(tmp_path, text_pdf(PAGES, "Whole"))
    with open_document(path, LIMITS, dpi=72, filename="doc.pdf") as doc:
        assert all(page.pdf_page is not None for page in doc.pages())


def test_a_pdf_cut_only_in_its_object_table_loses_nothing(tmp_path: Path) -> None:
    data = text_pdf(PAGES, "Table")
    path = _write(tmp_path, data[: data.rindex(b"xref") + 20])
    with open_document(path, LIMITS, dpi=72, filename="doc.pdf") as doc:
        assert [p.pdf_page is not None for p in doc.pages()] == [True] * PAGES
