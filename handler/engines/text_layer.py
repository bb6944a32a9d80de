"""The ``text-layer`` engine: a PDF page's own text, with positions and fonts (PyMuPDF).

For born-digital pages (DESIGN §6). Every word of the text layer ends up in exactly one
element; nothing is dropped. The steps:

1. Tables. The page's line art is read once (:func:`handler.engines.pdf_tables.page_art`).
   Only where it could draw a grid, PyMuPDF's table finder looks for ruled tables
   (:mod:`handler.engines.pdf_tables`); those that look like tables take their
   characters out of the text (read again as ``rawdict``, with each character's box).
   Then tables ruled only horizontally (booktabs) or not at all are looked for among the
   remaining lines (:mod:`handler.engines.text_tables`, the OCR path's table finder on
   the text layer's lines); their lines leave the text whole. Other pages read
   ``get_text("dict")`` only.
2. Lines and blocks of the remaining text (:mod:`handler.engines.text_lines`), in text
   space (the displayed page turned so that most text runs left to right), each line
   classified as body text, title (by size, or bold, italic or a larger other font and
   standing alone; never inside a figure drawn with the line art:
   :mod:`handler.engines.text_figures`), list-item start, page number or code.
3. Images from ``get_image_info`` (no image data is extracted) become ``Image`` blocks:
   images that overlap or lie within ``IMAGE_MERGE_GAP`` points of each other are one
   figure (a figure is often drawn as many pieces); slivers under ``MIN_IMAGE_SIDE``
   points are left out, and so is, on a page with text, a background image covering
   ``BACKGROUND_IMAGE_SHARE`` of the page (a scan under its OCR layer).
4. Text blocks, tables and images are put in reading order
   (:mod:`handler.engines.reading_order`: columns are read one after another; right to
   left when most letters of the page are right-to-left).
5. Text blocks that continue each other are joined, and their lines grouped into elements
   (:mod:`handler.engines.paragraphs`): a title's lines one ``Title``, a list item with its
   continuation lines one ``ListItem``, a paragraph one ``NarrativeText``; line-end
   hyphenation is repaired; a code listing one ``UncategorizedText`` with its line
   breaks. Text keeps PyMuPDF's logical order (right-to-left text is not reversed). A
   table is one ``Table`` with ``text_as_html``.
6. The text right below or above an image or a table that starts like a caption becomes
   ``FigureCaption`` (:mod:`handler.engines.captions`).
7. Boxes go back to the displayed page, are scaled to its pixel space (``page.scale``)
   and clipped to it.
"""

from __future__ import annotations

import time
import unicodedata
from typing import TYPE_CHECKING, Any

import pymupdf

from handler.engines.base import BBox, Element, ElementType, PageResult
from handler.engines.captions import mark_captions
from handler.engines.paragraphs import Placed, Run, code_text, join_blocks, join_lines, runs
from handler.engines.pdf_tables import (
    FoundTable,
    PageArt,
    fill_tables,
    find_tables,
    is_table,
    page_art,
    ruled_regions,
)
from handler.engines.reading_order import reading_order
from handler.engines.table_html import grid_html, grid_text
from handler.engines.text_figures import FigureAreas
from handler.engines.text_lines import Block, LineKind, classify, page_blocks, read_text, union
from handler.engines.text_space import Frame, text_frame
from handler.engines.text_tables import LineTable, find_line_tables
from handler.errors import BadInput, ErrorCategory

if TYPE_CHECKING:
    from handler.documents.pages import PageInput

MIN_IMAGE_SIDE = 4.0  # points
IMAGE_MERGE_GAP = 3.0  # points
BACKGROUND_IMAGE_SHARE = 0.85
RTL_SHARE = 0.5  # share of right-to-left letters that makes a page right-to-left


class TextLayerEngine:
    """Converts a PDF page from its text layer; see the module docstring."""

    name = "text-layer"

    def convert(self, page: PageInput) -> PageResult:
        started = time.perf_counter()
        pdf_page = page.pdf_page
        if pdf_page is None:
            raise BadInput(
                ErrorCategory.UNSUPPORTED,
                f"Page {page.number} is an image; the text-layer engine reads PDF pages only.",
            )
        raw_blocks = read_text(pdf_page)
        frame = text_frame(pdf_page, raw_blocks)
        images = _image_boxes(pdf_page, frame, has_text=_has_text(raw_blocks))
        art = page_art(pdf_page)
        raw_blocks, tables, line_tables = _text_and_tables(pdf_page, raw_blocks, frame, art, images)
        blocks, sizes = page_blocks(raw_blocks, frame)  # in text space
        classify(blocks, sizes, frame.rect, FigureAreas(art, frame).holds)
        items = [Placed(block.bbox, block) for block in blocks]
        items += [Placed(_in_text_space(t.outer_bbox(), frame), table=t) for t in tables]
        items += [Placed(t.bbox, table=t) for t in line_tables]
        items += [Placed(box) for box in images]
        rtl = _is_rtl(blocks)
        order = reading_order([item.bbox for item in items], rtl=rtl)
        elements: list[Element] = []  # boxes in text space until the captions are found
        for item in join_blocks([items[i] for i in order], rtl, frame):
            if item.table is not None:
                elements.append(_table_element(item.table, item.bbox))
            elif item.block is None:
                elements.append(Element(ElementType.IMAGE, "", item.bbox))
            else:
                elements += [_element(run) for run in runs(item.block, rtl)]
        mark_captions(elements, frame.rect.height)
        for element in elements:
            element.bbox = _to_pixels(element.bbox, page, frame)
        return PageResult(
            page_number=page.number,
            width=page.layout_width,
            height=page.layout_height,
            engine=self.name,
            elements=elements,
            seconds=time.perf_counter() - started,
        )


def _text_and_tables(
    pdf_page: Any,
    raw_blocks: list[dict[str, Any]],
    frame: Frame,
    art: PageArt,
    images: list[tuple[float, float, float, float]],
) -> tuple[list[dict[str, Any]], list[FoundTable], list[LineTable]]:
    """The page's text blocks outside its tables (``dict`` form), its ruled tables and
    its tables without vertical rules.

    PyMuPDF's finder runs only where ruling lines could form a grid, and only when the
    text runs along the displayed page (a sideways table would be read down its columns);
    the characters (``rawdict``, slower than ``dict``) are read only when it finds one.
    The rest of the text is then searched for booktabs and unruled tables
    (:mod:`handler.engines.text_tables`).
    """
    regions = ruled_regions(art)
    tables: list[FoundTable] = []
    if regions and _upright(pdf_page, frame):
        found = find_tables(pdf_page, regions, raw_blocks)
        if found:
            char_blocks = read_text(pdf_page, chars=True)
            tables = [t for t in found if _fill_one(t, char_blocks)]
            if tables:
                raw_blocks = fill_tables(tables, char_blocks)
    raw_blocks, line_tables = find_line_tables(raw_blocks, art, frame, images)
    return raw_blocks, tables, line_tables


def _fill_one(table: FoundTable, char_blocks: list[dict[str, Any]]) -> bool:
    """Fill one table on its own to judge it; the kept ones are filled together after."""
    fill_tables([table], char_blocks)
    return is_table(table)


def _upright(pdf_page: Any, frame: Frame) -> bool:
    """The text runs along the displayed page, as the table finder reads it; a table
    printed sideways is left as text (the finder would read it down its columns)."""
    a, b = tuple(frame.to_text), tuple(pdf_page.rotation_matrix)
    return all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))


def _has_text(raw_blocks: list[dict[str, Any]]) -> bool:
    return any(
        span["text"].strip()
        for block in raw_blocks
        for line in block.get("lines", ())
        for span in line["spans"]
    )


def _table_element(
    table: FoundTable | LineTable, box: tuple[float, float, float, float]
) -> Element:
    grid = table.grid()
    return Element(
        ElementType.TABLE,
        grid_text(grid),
        box,
        text_as_html=grid_html(grid, table.header_rows),
    )


def _in_text_space(
    box: tuple[float, float, float, float], frame: Frame
) -> tuple[float, float, float, float]:
    rect = (pymupdf.Rect(box) * frame.to_text) & frame.rect
    return (rect.x0, rect.y0, rect.x1, rect.y1)


def _element(run: Run) -> Element:
    if run.lines[0].kind is LineKind.CODE:
        text = code_text(run.lines)
    else:
        text = run.lines[0].text
        for line in run.lines[1:]:
            text = join_lines(text, line.text)
    box = union([line.bbox for line in run.lines])
    return Element(run.type, text, box, level=run.level)


def _is_rtl(blocks: list[Block]) -> bool:
    rtl = letters = 0
    for block in blocks:
        for line in block.lines:
            for char in line.text:
                if char.isalpha():
                    letters += 1
                    rtl += unicodedata.bidirectional(char) in ("R", "AL")
    return letters > 0 and rtl > RTL_SHARE * letters


def _image_boxes(
    pdf_page: Any, frame: Frame, *, has_text: bool
) -> list[tuple[float, float, float, float]]:
    rect = frame.rect
    page_area = max(rect.width * rect.height, 1e-9)
    boxes = []
    for info in pdf_page.get_image_info():
        box = (pymupdf.Rect(info["bbox"]) * frame.to_text) & rect
        if box.is_empty or box.width < MIN_IMAGE_SIDE or box.height < MIN_IMAGE_SIDE:
            continue
        if has_text and box.width * box.height >= BACKGROUND_IMAGE_SHARE * page_area:
            continue
        boxes.append((box.x0, box.y0, box.x1, box.y1))
    return _merge_touching(boxes)


def _merge_touching(
    boxes: list[tuple[float, float, float, float]],
) -> list[tuple[float, float, float, float]]:
    """Union the boxes that overlap or touch (within ``IMAGE_MERGE_GAP``), repeatedly."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        out: list[tuple[float, float, float, float]] = []
        for box in merged:
            for k, other in enumerate(out):
                if _near(box, other):
                    out[k] = union([box, other])
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return merged


def _near(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    gap = IMAGE_MERGE_GAP
    return a[0] <= b[2] + gap and b[0] <= a[2] + gap and a[1] <= b[3] + gap and b[1] <= a[3] + gap


def _to_pixels(box: tuple[float, float, float, float], page: PageInput, frame: Frame) -> BBox:
    """A text-space box in points -> the displayed page's pixels, clipped to the page."""
    s = page.scale
    w, h = page.layout_width, page.layout_height
    shown = pymupdf.Rect(box) * frame.to_display
    x0, y0, x1, y1 = shown.x0, shown.y0, shown.x1, shown.y1
    return (
        min(max(x0 * s, 0.0), w),
        min(max(y0 * s, 0.0), h),
        min(max(x1 * s, 0.0), w),
        min(max(y1 * s, 0.0), h),
    )
