"""The ``text-layer`` engine: a PDF page's own text, with positions and fonts (PyMuPDF).

For born-digital pages (DESIGN §6). Every word of the text layer ends up in exactly one
element; nothing is dropped. The steps:

1. Lines and blocks from ``get_text("dict")`` (:mod:`handler.engines.text_lines`), in
   text space (the displayed page turned so that most text runs left to right), each
   line classified as body text, title, list-item start or page number.
2. Images from ``get_image_info`` (no image data is extracted) become ``Image`` blocks:
   images that overlap or lie within ``IMAGE_MERGE_GAP`` points of each other are one
   figure (a figure is often drawn as many pieces); slivers under ``MIN_IMAGE_SIDE``
   points are left out, and so is, on a page with text, a background image covering
   ``BACKGROUND_IMAGE_SHARE`` of the page (a scan under its OCR layer).
3. Blocks are put in reading order (:mod:`handler.engines.reading_order`: columns are read
   one after another; right to left when most letters of the page are right-to-left).
4. Text blocks that continue each other are joined, and their lines grouped into elements
   (:mod:`handler.engines.paragraphs`): a title's lines one ``Title``, a list item with its
   continuation lines one ``ListItem``, a paragraph one ``NarrativeText``; line-end
   hyphenation is repaired. Text keeps PyMuPDF's logical order (right-to-left text is
   not reversed).
5. Boxes go back to the displayed page, are scaled to its pixel space (``page.scale``)
   and clipped to it.
"""

from __future__ import annotations

import time
import unicodedata
from typing import TYPE_CHECKING, Any

import pymupdf

from handler.engines.base import BBox, Element, ElementType, PageResult
from handler.engines.paragraphs import Placed, Run, join_blocks, join_lines, runs
from handler.engines.reading_order import reading_order
from handler.engines.text_lines import Block, classify, page_blocks, union
from handler.engines.text_space import Frame
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
        blocks, sizes, frame = page_blocks(pdf_page)  # in text space
        classify(blocks, sizes, frame.rect)
        items = [Placed(block.bbox, block) for block in blocks]
        items += [Placed(box) for box in _image_boxes(pdf_page, frame, has_text=bool(blocks))]
        rtl = _is_rtl(blocks)
        order = reading_order([item.bbox for item in items], rtl=rtl)
        elements: list[Element] = []
        for item in join_blocks([items[i] for i in order], rtl, frame):
            if item.block is None:
                box = _to_pixels(item.bbox, page, frame)
                elements.append(Element(ElementType.IMAGE, "", box))
            else:
                elements += [_element(run, page, frame) for run in runs(item.block, rtl)]
        return PageResult(
            page_number=page.number,
            width=page.layout_width,
            height=page.layout_height,
            engine=self.name,
            elements=elements,
            seconds=time.perf_counter() - started,
        )


def _element(run: Run, page: PageInput, frame: Frame) -> Element:
    text = run.lines[0].text
    for line in run.lines[1:]:
        text = join_lines(text, line.text)
    box = union([line.bbox for line in run.lines])
    return Element(run.type, text, _to_pixels(box, page, frame), level=run.level)


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
