"""The text-layer engine: every word kept, reading order, titles, lists, boxes."""

from __future__ import annotations

import functools
import io
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.documents.pages import PageInput
from handler.engines.base import ElementType, PageResult
from handler.engines.paragraphs import join_lines
from handler.engines.reading_order import reading_order
from handler.engines.text_layer import TextLayerEngine
from handler.errors import BadInput, ErrorCategory

DATA = Path(__file__).parent.parent / "data"
BORN_DIGITAL = DATA / "born_digital"
LIMITS = Limits(max_bytes=50_000_000, max_pages=100, max_pixels_per_page=40_000_000)
ENGINE = TextLayerEngine()


def _convert(path: Path, dpi: int = 150) -> Iterator[tuple[PageInput, PageResult]]:
    with open_document(path, LIMITS, dpi=dpi, filename=path.name) as doc:
        for page in doc.pages():
            yield page, ENGINE.convert(page)


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _page_text(result: PageResult) -> str:
    return " ".join(element.text for element in result.elements)


def _of_type(result: PageResult, kind: ElementType) -> list[str]:
    return [e.text for e in result.elements if e.type is kind]


@pytest.mark.parametrize("name", ["docling__2305.03393v1-pg9.pdf", "pysf__multicolumn.pdf"])
def test_every_word_of_the_text_layer_is_kept(name: str) -> None:
    for page, result in _convert(BORN_DIGITAL / name):
        # given the words PyMuPDF finds on the page
        assert page.pdf_page is not None
        words = [_nfkc(w[4]) for w in page.pdf_page.get_text("words")]
        assert len(words) > 20
        # when the engine converts it / then each one is in the elements' text
        text = _nfkc(_page_text(result))
        for word in words:
            # a word hyphenated at a line end is joined with its second half
            stem = word[:-1] if word.endswith("-") and len(word) > 1 else word
            assert stem in text, f"page {page.number}: {word!r} is missing"
        # and nothing is lost twice over: as many characters come out as went in
        chars_in = sum(len(w.replace(" ", "")) for w in words)
        hyphens = sum(w.endswith("-") for w in words)
        assert len(text.replace(" ", "")) >= chars_in - hyphens


@pytest.mark.parametrize(
    "name",
    ["docling__2305.03393v1-pg9.pdf", "pysf__multicolumn.pdf", "docling__redp5110_sampled.pdf"],
)
def test_boxes_lie_inside_the_layout(name: str) -> None:
    for page, result in _convert(BORN_DIGITAL / name):
        assert (result.width, result.height) == (page.layout_width, page.layout_height)
        assert result.engine == "text-layer"
        for element in result.elements:
            x0, y0, x1, y1 = element.bbox
            assert 0 <= x0 <= x1 <= result.width, element
            assert 0 <= y0 <= y1 <= result.height, element
            assert element.type is ElementType.IMAGE or element.text.strip(), element


def test_two_columns_are_read_one_after_the_other() -> None:
    _, result = next(_convert(BORN_DIGITAL / "pysf__multicolumn.pdf"))
    text = _page_text(result)
    # column 1 ends with "Nulla malesuada porttitor diam"; column 2 starts with
    # "pellentesque ante", which sits higher on the page than column 1's last paragraphs
    end_of_column_1 = text.index("Nulla malesuada porttitor diam")
    start_of_column_2 = text.index("pellentesque ante. Phasellus")
    assert text.index("Two-Column Document with Lorem Ipsum") < end_of_column_1
    assert end_of_column_1 < start_of_column_2
    assert _of_type(result, ElementType.TITLE)[0] == "Two-Column Document with Lorem Ipsum"
    assert _of_type(result, ElementType.PAGE_NUMBER) == ["1"]
    assert result.elements[-1].type is ElementType.PAGE_NUMBER


def test_hyphenation_at_line_ends_is_repaired() -> None:
    _, result = next(_convert(BORN_DIGITAL / "pysf__multicolumn.pdf"))
    text = _page_text(result)
    assert "consectetuer adipiscing elit" in text  # "adip-" / "iscing" in the PDF
    assert "adip-" not in text


@functools.cache
def _report_pages() -> dict[int, PageResult]:
    """The 18-page report converted once for the tests that only read its results."""
    path = BORN_DIGITAL / "docling__redp5110_sampled.pdf"
    return {page.number: result for page, result in _convert(path)}


def test_titles_and_levels_of_a_report() -> None:
    pages = _report_pages()
    titles = {
        number: [(e.text, e.level) for e in result.elements if e.type is ElementType.TITLE]
        for number, result in pages.items()
    }
    assert ("Preface", 1) in titles[4]
    assert ("Authors", 2) in titles[4]
    assert ("2.2 Separation of duties", 1) in titles[8]
    assert ("2.1.6 Change Function Usage CL command", 2) in titles[8]
    assert all(level in (1, 2, 3) for page in titles.values() for _, level in page)
    # body text is not a title
    assert not any("Separation of duties helps" in text for text, _ in titles[8])


def test_lists_and_page_numbers_of_a_report() -> None:
    pages = _report_pages()
    items = _of_type(pages[8], ElementType.LIST_ITEM)
    assert "• Work Function Usage (WRKFCNUSG)" in items
    assert "• Display Function Usage (DSPFCNUSG)" in items
    assert _of_type(pages[4], ElementType.PAGE_NUMBER) == ["xi"]
    assert _of_type(pages[8], ElementType.PAGE_NUMBER) == ["10"]


def test_paragraph_lines_are_one_element() -> None:
    _, result = next(_convert(BORN_DIGITAL / "docling__2305.03393v1-pg9.pdf"))
    paragraphs = [t for t in _of_type(result, ElementType.NARRATIVE_TEXT) if len(t) > 300]
    assert paragraphs, "the page's body paragraphs come out whole"
    assert any(t.startswith("We have chosen the PubTabNet data set") for t in paragraphs)


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _generated(tmp_path: Path, rotation: int = 0) -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 80), "Results", fontsize=20)
    page.insert_textbox(
        pymupdf.Rect(72, 100, 540, 200),
        "The measured values agree with the model in every case we tried.",
        fontsize=10,
    )
    page.insert_text((72, 230), "- first point of the list", fontsize=10)
    page.insert_text((72, 245), "2) second point of the list", fontsize=10)
    page.insert_image(pymupdf.Rect(100, 300, 300, 450), stream=_png((40, 30)))
    page.set_rotation(rotation)
    path = tmp_path / f"generated-{rotation}.pdf"
    doc.save(path)
    doc.close()
    return path


def test_generated_page_elements(tmp_path: Path) -> None:
    ((page, result),) = list(_convert(_generated(tmp_path), dpi=144))
    kinds = [(e.type, e.text) for e in result.elements]
    assert kinds == [
        (ElementType.TITLE, "Results"),
        (
            ElementType.NARRATIVE_TEXT,
            "The measured values agree with the model in every case we tried.",
        ),
        (ElementType.LIST_ITEM, "- first point of the list"),
        (ElementType.LIST_ITEM, "2) second point of the list"),
        (ElementType.IMAGE, ""),
    ]
    assert result.elements[0].level == 1
    image = result.elements[-1]
    assert image.bbox == pytest.approx((200, 600, 600, 900), abs=1)  # points x 2 at 144 DPI
    assert page.scale == 2.0


def test_rotated_page_boxes_are_in_displayed_pixels(tmp_path: Path) -> None:
    ((_, result),) = list(_convert(_generated(tmp_path, rotation=90), dpi=72))
    assert (result.width, result.height) == (792, 612)
    title = result.elements[0]
    assert title.text == "Results"
    x0, y0, x1, y1 = title.bbox
    # turned 90 degrees clockwise, the title near the top-left ends up near the top-right,
    # running downwards
    assert x0 > 600 and y1 - y0 > x1 - x0
    for element in result.elements:
        assert 0 <= element.bbox[0] <= element.bbox[2] <= result.width
        assert 0 <= element.bbox[1] <= element.bbox[3] <= result.height


def test_conversion_is_deterministic() -> None:
    path = BORN_DIGITAL / "pysf__multicolumn.pdf"
    first = [(e.type, e.text, e.bbox) for _, r in _convert(path) for e in r.elements]
    second = [(e.type, e.text, e.bbox) for _, r in _convert(path) for e in r.elements]
    assert first == second


def test_image_page_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    path.write_bytes(_png((20, 20)))
    with open_document(path, LIMITS, dpi=72, filename=path.name) as doc:
        page = next(doc.pages())
    with pytest.raises(BadInput) as caught:
        ENGINE.convert(page)
    assert caught.value.category is ErrorCategory.UNSUPPORTED


@pytest.mark.parametrize(
    ("first", "second", "joined"),
    [
        ("consectetuer adip-", "iscing elit", "consectetuer adipiscing elit"),
        ("the COVID-", "19 pandemic", "the COVID-19 pandemic"),
        ("Jean-", "Pierre said", "Jean-Pierre said"),
        ("a dash -", "then more", "a dash - then more"),
        ("soft hyphen\u00ad", "ation", "soft hyphenation"),
        ("plain", "words", "plain words"),
        ("漢字", "かな", "漢字かな"),
    ],
)
def test_join_lines(first: str, second: str, joined: str) -> None:
    assert join_lines(first, second) == joined


def test_reading_order_prefers_columns_and_spanning_titles() -> None:
    title = (72, 50, 540, 70)
    left = [(72, 100, 290, 300), (72, 310, 290, 500)]
    right = [(310, 100, 540, 300), (310, 310, 540, 500)]  # paragraph breaks at the same height
    footer = (290, 740, 310, 750)
    boxes = [right[1], left[1], footer, right[0], title, left[0]]
    order = [boxes[i] for i in reading_order(boxes)]
    assert order == [title, left[0], left[1], right[0], right[1], footer]
    assert [boxes[i] for i in reading_order(boxes, rtl=True)][:3] == [title, right[0], right[1]]


def test_reading_order_reads_table_rows_across() -> None:
    # cells of different widths, level with each other: a table
    widths = [[40, 60, 90], [75, 30, 120], [55, 45, 60], [90, 35, 100]]
    boxes = [
        (72 + 150 * c, 100 + 20 * r, 72 + 150 * c + width, 112 + 20 * r)
        for r, row in enumerate(widths)
        for c, width in enumerate(row)
    ]
    assert [boxes[i] for i in reading_order(boxes)] == boxes


def test_reading_order_keeps_columns_of_one_line_boxes() -> None:
    # prose lines, one box each, level across the gutter, each filling its column
    left = [(72, 100 + 14 * r, 290, 111 + 14 * r) for r in range(10)]
    right = [(310, 100 + 14 * r, 540, 111 + 14 * r) for r in range(10)]
    boxes = [box for pair in zip(left, right, strict=True) for box in pair]
    assert [boxes[i] for i in reading_order(boxes)] == left + right


def _bold_page(tmp_path: Path) -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 72), "Annual report", fontsize=18)
    page.insert_text((72, 110), "1 Introduction", fontsize=14)
    page.insert_text((72, 140), "Background", fontsize=10, fontname="hebo")
    page.insert_textbox(
        pymupdf.Rect(72, 146, 400, 200),
        "The project started in spring. It has grown a lot since then and now has many users.",
        fontsize=10,
    )
    # a paragraph whose first line is bold and runs on into regular type
    page.insert_text(
        (72, 230),
        "This whole first line is set in bold type and runs to the edge",
        fontname="hebo",
        fontsize=10,
    )
    page.insert_text(
        (72, 242), "of the column, then the paragraph continues in the regular type.", fontsize=10
    )
    # a bold lead-in on a line of regular text
    page.insert_text((72, 272), "Note:", fontname="hebo", fontsize=10)
    lead = pymupdf.get_text_length("Note: ", fontname="hebo", fontsize=10)
    page.insert_text((72 + lead, 272), "remember to save your work.", fontsize=10)
    # a bold sentence, and a bold heading between two paragraphs of one block
    for y, text, font in [
        (300, "A bold sentence on its own.", "hebo"),
        (312, "Then a regular line follows it here.", "helv"),
        (324, "Methods", "hebo"),
        (336, "We measured everything twice.", "helv"),
    ]:
        page.insert_text((72, y), text, fontname=font, fontsize=10)
    path = tmp_path / "bold.pdf"
    doc.save(path)
    doc.close()
    return path


def test_bold_headings_in_the_body_size(tmp_path: Path) -> None:
    ((_, result),) = list(_convert(_bold_page(tmp_path), dpi=72))
    titles = [(e.text, e.level) for e in result.elements if e.type is ElementType.TITLE]
    # the bold lines standing alone are headings one level below the sized ones; bold
    # lead-ins and bold sentences are not
    assert titles == [
        ("Annual report", 1),
        ("1 Introduction", 2),
        ("Background", 3),
        ("Methods", 3),
    ]
    texts = _of_type(result, ElementType.NARRATIVE_TEXT)
    assert texts[1].startswith("This whole first line is set in bold type and runs to the edge of")
    assert "Note: remember to save your work." in texts
    assert "A bold sentence on its own. Then a regular line follows it here." in texts
    assert texts[-1] == "We measured everything twice."
