"""Captions: text beside an image or a table that starts like a caption, and only that."""

from __future__ import annotations

import io
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.engines.base import Element, ElementType
from handler.engines.captions import mark_captions, starts_like_caption
from handler.engines.text_layer import TextLayerEngine

LIMITS = Limits(max_bytes=50_000_000, max_pages=100, max_pixels_per_page=40_000_000)
PAGE_HEIGHT = 792.0


@pytest.mark.parametrize(
    "text",
    [
        "Figure 3",
        "Figure 3. Results of the survey",
        "Fig. 2: The pipeline",
        "FIG. 2 THE PIPELINE",
        "Table 1. HPO performed in OTSL",
        "Table 2-2 Comparison of the different function usage IDs",
        "Table 3 - European ABCP issuance",
        "TABLE IV",
        "Chart 5",
        "Abbildung 4: Aufbau der Anlage",
        "Tableau 2 \u2013 Résultats",
        "Figura 1. Mapa",
        "图 1 系统结构",
        "Figure A.1 Appendix plot",
    ],
)
def test_caption_starts(text: str) -> None:
    assert starts_like_caption(text)


@pytest.mark.parametrize(
    "text",
    [
        "Figure 3 shows the results of the survey.",  # a sentence about the figure
        "figure 3. lowercase is running text",
        "Tables are useful.",
        "Table of contents",
        "The Figure 3 above",
        "Fig 2 shows",  # no period after the abbreviation
        "Figures 3 and 4",
        "See Table 1.",
    ],
)
def test_not_caption_starts(text: str) -> None:
    assert not starts_like_caption(text)


def _text(text: str, box: tuple[float, float, float, float]) -> Element:
    return Element(ElementType.NARRATIVE_TEXT, text, box)


def test_a_caption_right_below_an_image_is_marked() -> None:
    image = Element(ElementType.IMAGE, "", (100, 100, 400, 300))
    caption = _text("Figure 1. The set-up", (100, 308, 380, 320))
    below = _text("Figure 2 below is another one.", (100, 330, 500, 360))
    elements = [image, caption, below]
    mark_captions(elements, PAGE_HEIGHT)
    assert [e.type for e in elements] == [
        ElementType.IMAGE,
        ElementType.FIGURE_CAPTION,
        ElementType.NARRATIVE_TEXT,
    ]


def test_a_caption_above_a_table_is_marked() -> None:
    caption = _text("Table 3 - Issuance", (70, 190, 230, 200))
    table = Element(ElementType.TABLE, "a b", (100, 207, 530, 350))
    elements = [caption, table]
    mark_captions(elements, PAGE_HEIGHT)
    assert caption.type is ElementType.FIGURE_CAPTION


def test_a_caption_must_be_the_nearest_text() -> None:
    # a paragraph sits between the image and a caption-like line: the line is not taken
    image = Element(ElementType.IMAGE, "", (100, 100, 400, 300))
    paragraph = _text("The image above shows the machine.", (100, 305, 400, 315))
    later = _text("Figure 4. Another figure", (100, 318, 400, 328))
    elements = [image, paragraph, later]
    mark_captions(elements, PAGE_HEIGHT)
    assert later.type is ElementType.NARRATIVE_TEXT


def test_a_caption_must_be_close_and_aligned() -> None:
    image = Element(ElementType.IMAGE, "", (100, 100, 300, 300))
    far = _text("Figure 1. Far below", (100, 400, 300, 410))  # 100 pt below
    beside = _text("Figure 2. Beside", (320, 305, 500, 315))  # not under the image
    elements = [image, far, beside]
    mark_captions(elements, PAGE_HEIGHT)
    assert far.type is beside.type is ElementType.NARRATIVE_TEXT


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 60, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_caption_on_a_generated_page(tmp_path: Path) -> None:
    # given a page with an image, its caption below, and a paragraph mentioning it
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_image(pymupdf.Rect(100, 100, 400, 300), stream=_png())
    page.insert_text((100, 318), "Figure 1: A red square", fontsize=10)
    page.insert_textbox(
        pymupdf.Rect(72, 360, 540, 420),
        "As Figure 1 shows, the square is red. The text goes on for a while here.",
        fontsize=10,
    )
    path = tmp_path / "figure.pdf"
    doc.save(path)
    doc.close()
    with open_document(path, LIMITS, dpi=72, filename=path.name) as opened:
        result = TextLayerEngine().convert(next(opened.pages()))
    kinds = [(e.type, e.text[:22]) for e in result.elements]
    assert kinds == [
        (ElementType.IMAGE, ""),
        (ElementType.FIGURE_CAPTION, "Figure 1: A red square"),
        (ElementType.NARRATIVE_TEXT, "As Figure 1 shows, the"),
    ]
