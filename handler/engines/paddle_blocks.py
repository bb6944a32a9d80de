"""One PaddleOCR-VL page result -> typed elements (DESIGN §3).

The ``paddleocr`` package's ``PaddleOCRVL`` pipeline (paddlex 3.7,
``paddlex/inference/pipelines/paddleocr_vl``) returns one result per page: a mapping with
the ``width``/``height`` of the image it read and ``parsing_res_list``, the page's blocks.
A block is a ``PaddleOCRVLBlock`` object (``label``, ``content``, ``bbox``) in the live
result, or a dict (``block_label``, ``block_content``, ``block_bbox``, ``block_id``,
``block_order``, ...) in the result's ``json["res"]`` and in what ``save_to_json`` writes;
both are read here.

Reading order is the list's order: the layout model (PP-DocLayoutV2) orders every block,
and the pipeline keeps that order. ``block_order`` is only the running number the result
gives the blocks its markdown shows (``None`` for images, tables, captions, headers,
footers, footnotes), always increasing along the list; sorting on it with ``None`` last
would move every table and figure to the page's end, so it is not used.

Labels (PP-DocLayoutV2's 25, plus the ones the pipeline adds) map to types as in
``_TYPES``; the decisions worth knowing:

- ``doc_title`` is a level-1 title; ``paragraph_title`` and the other section titles are
  level 2, one deeper per level of their numbering ("2.1 Methods" is level 3), unless the
  pipeline set ``title_level`` (``restructure_pages``).
- ``footnote`` and ``vision_footnote`` are ``NarrativeText``: they are content (the
  pipeline's own markdown keeps figure notes), unlike the page furniture that
  ``header``/``footer``/``number`` become (``Header``, ``Footer``, ``PageNumber``, kept out
  of the markdown body). ``aside_text`` (margin text: an arXiv stamp, a line number
  column) is furniture too, a ``Header``, as the pipeline leaves it out of its markdown
  like headers and footers. ``algorithm`` (code, pseudo-code) is ``UncategorizedText``
  (its lines are kept).
- ``table`` content is HTML (the pipeline turns the model's OTSL into it): normalised
  through the shared grid into ``text_as_html`` with the cells as ``text``. A ``chart``
  read by chart recognition (``col | col`` lines) becomes a ``Table`` too; unread, an
  ``Image``.
- ``display_formula`` (and an ``inline_formula`` standing alone) is a ``Formula`` with the
  LaTeX without its ``$$``. Inline math inside text is written ``$x$`` (the pipeline
  writes `` $ x $``; GitHub renders only the first). A ``formula_number`` is attached to
  the formula on its line as ``\\tag*{(n)}`` (as the pipeline's markdown does), or kept
  as text when none is there.
- A text block whose every line opens a list item becomes one ``ListItem`` per line, its
  box cut into equal bands.
- A page read without layout detection is one ``ocr`` block: its text is split like the
  vlm engine's plain text (:func:`~handler.engines.vlm.parse.text_blocks`), the blocks
  stacked over the page (approximate boxes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handler.engines.base import BBox, Element, ElementType
from handler.engines.table_html import grid_html, grid_text
from handler.engines.vlm.parse import (
    Block,
    list_items,
    place_blocks,
    stack_boxes,
    table_block,
    text_blocks,
)

MAX_TITLE_LEVEL = 6
SECTION_TITLE_LEVEL = 2  # an unnumbered section title, and "1 Introduction"

_TYPES: dict[str, ElementType] = {
    "doc_title": ElementType.TITLE,
    "paragraph_title": ElementType.TITLE,
    "abstract_title": ElementType.TITLE,
    "content_title": ElementType.TITLE,
    "reference_title": ElementType.TITLE,
    "text": ElementType.NARRATIVE_TEXT,
    "ocr": ElementType.NARRATIVE_TEXT,  # the whole page, read without layout detection
    "abstract": ElementType.NARRATIVE_TEXT,
    "content": ElementType.NARRATIVE_TEXT,  # a table of contents
    "reference": ElementType.NARRATIVE_TEXT,
    "reference_content": ElementType.NARRATIVE_TEXT,
    "vertical_text": ElementType.NARRATIVE_TEXT,
    "spotting": ElementType.NARRATIVE_TEXT,
    "footnote": ElementType.NARRATIVE_TEXT,
    "vision_footnote": ElementType.NARRATIVE_TEXT,
    "aside_text": ElementType.HEADER,  # margin text: furniture, as the pipeline treats it
    "algorithm": ElementType.UNCATEGORIZED_TEXT,
    "table": ElementType.TABLE,
    "display_formula": ElementType.FORMULA,
    "inline_formula": ElementType.FORMULA,
    "formula": ElementType.FORMULA,
    "image": ElementType.IMAGE,
    "chart": ElementType.IMAGE,
    "seal": ElementType.IMAGE,
    "figure_title": ElementType.FIGURE_CAPTION,
    "table_title": ElementType.FIGURE_CAPTION,
    "chart_title": ElementType.FIGURE_CAPTION,
    "header": ElementType.HEADER,
    "header_image": ElementType.HEADER,
    "footer": ElementType.FOOTER,
    "footer_image": ElementType.FOOTER,
    "number": ElementType.PAGE_NUMBER,
}
FORMULA_NUMBER = "formula_number"
WHOLE_PAGE = "ocr"  # the one block of a page read without layout detection
# Blocks that are kept without text: their position is the information.
_KEPT_EMPTY = frozenset({ElementType.IMAGE, ElementType.HEADER, ElementType.FOOTER})

_NUMBERING = re.compile(r"^\s*(\d+(?:\.\d+)*)\.?(?:\s|$)")
_LEADING_HASHES = re.compile(r"^#+\s+")
_DISPLAY_DELIMITERS = re.compile(r"^\s*\${1,2}|\${1,2}\s*$")
# The pipeline writes the model's \(x\) as " $ x $", having dropped every other "$" of that
# answer; a "$ 5 and $ 6" elsewhere would be read as math too (rare: "$5" has no space).
_SPACED_INLINE_MATH = re.compile(r"(?<![$\\])\$ +([^$\n]+?) +\$(?!\$)")


@dataclass(frozen=True, slots=True)
class PaddleBlock:
    """One block of a page result, whichever shape it came in."""

    label: str
    content: str
    bbox: BBox  # pixels of the image the pipeline read
    title_level: int | None = None
    group: int | None = None  # blocks merged into one read share it; the first has the text


def page_blocks(result: Mapping[str, Any]) -> list[PaddleBlock]:
    """The blocks of one page result in reading order (see the module docstring)."""
    if "parsing_res_list" not in result and isinstance(result.get("res"), Mapping):
        result = result["res"]  # what save_to_json writes
    blocks: list[PaddleBlock] = []
    for raw in result.get("parsing_res_list") or []:
        if isinstance(raw, Mapping):
            label, content, bbox = raw["block_label"], raw.get("block_content"), raw["block_bbox"]
            level, group = raw.get("title_level"), raw.get("group_id")
        else:  # PaddleOCRVLBlock
            label, content, bbox = raw.label, raw.content, raw.bbox
            level, group = getattr(raw, "title_level", None), getattr(raw, "group_id", None)
        x0, y0, x1, y1 = (float(v) for v in list(bbox)[:4])
        blocks.append(PaddleBlock(str(label), str(content or ""), (x0, y0, x1, y1), level, group))
    return blocks


def _group_boxes(blocks: Sequence[PaddleBlock]) -> dict[int, BBox]:
    """The union of each merged group's boxes, by group id.

    The pipeline's ``merge_blocks`` reads adjacent text blocks as one image: the group's
    first block gets the text of all, the others none. Only groups with such an empty
    member count (a block's own index stands in for its group id in the JSON shape).
    """
    members: dict[int, list[PaddleBlock]] = {}
    for block in blocks:
        if block.group is not None:
            members.setdefault(block.group, []).append(block)
    return {
        group: (
            min(b.bbox[0] for b in found),
            min(b.bbox[1] for b in found),
            max(b.bbox[2] for b in found),
            max(b.bbox[3] for b in found),
        )
        for group, found in members.items()
        if len(found) > 1 and any(not b.content.strip() for b in found)
    }


def blocks_to_elements(
    result: Mapping[str, Any], width: int, height: int, scale: float | None = None
) -> list[Element]:
    """The elements of one PaddleOCR-VL page result, in a ``width`` x ``height`` layout.

    ``scale`` is layout pixels per pixel of the image the pipeline read; None takes it from
    the result's own ``width``/``height`` (the two axes separately).
    """
    sx, sy = _scales(result, width, height, scale)
    elements: list[Element] = []
    numbers: list[tuple[str, BBox]] = []
    blocks = page_blocks(result)
    groups = _group_boxes(blocks)
    for block in blocks:
        merged = groups.get(block.group) if block.group is not None and block.content else None
        x0, y0, x1, y1 = merged or block.bbox
        box = (
            _clip(x0 * sx, width),
            _clip(y0 * sy, height),
            _clip(x1 * sx, width),
            _clip(y1 * sy, height),
        )
        if block.label == FORMULA_NUMBER:
            numbers.append((block.content.replace("$", "").strip(), box))
            continue
        elements += _block_elements(block, box)
    for number, box in numbers:
        _attach_formula_number(elements, number, box)
    return elements


def _block_elements(block: PaddleBlock, box: BBox) -> list[Element]:
    kind = _TYPES.get(block.label, ElementType.UNCATEGORIZED_TEXT)
    content = block.content.strip()
    if kind is ElementType.TABLE or (block.label == "chart" and content):
        table = table_block(content) if "<table" in content.lower() else _chart_table(content)
        if table is None:
            return [Element(ElementType.TABLE, content, box)] if content else []
        return [Element(ElementType.TABLE, table.text, box, text_as_html=table.html)]
    if kind is ElementType.FORMULA:
        latex = _DISPLAY_DELIMITERS.sub("", content).strip()
        return [Element(ElementType.FORMULA, latex, box)] if latex else []
    if not content and kind not in _KEPT_EMPTY:
        return []
    if block.label == WHOLE_PAGE:
        return place_blocks(text_blocks(content), box)
    if kind is ElementType.TITLE:
        title = _LEADING_HASHES.sub("", " ".join(content.split()))
        return [Element(kind, title, box, level=_title_level(block, title))]
    if kind is ElementType.NARRATIVE_TEXT and (items := list_items(content)):
        bands = stack_boxes(box, [1.0] * len(items))
        return [Element(ElementType.LIST_ITEM, t, b) for t, b in zip(items, bands, strict=True)]
    return [Element(kind, _running_text(content), box)]


def _running_text(content: str) -> str:
    """Text content with inline math as ``$x$`` and runs of spaces closed up, line by line."""
    if "$$" not in content:
        content = _SPACED_INLINE_MATH.sub(lambda m: f"${m.group(1)}$", content)
    return "\n".join(" ".join(line.split()) for line in content.split("\n"))


def _title_level(block: PaddleBlock, title: str) -> int:
    if block.label == "doc_title":
        return 1
    if block.title_level is not None:
        return max(1, min(MAX_TITLE_LEVEL, int(block.title_level)))
    numbering = _NUMBERING.match(title)
    depth = numbering.group(1).count(".") + 1 if numbering else 1
    return min(MAX_TITLE_LEVEL, SECTION_TITLE_LEVEL + depth - 1)


def _chart_table(content: str) -> Block | None:
    """Chart recognition's ``a | b`` lines as a table block (the first line the header)."""
    rows = [[cell.strip() for cell in line.split("|")] for line in content.split("\n") if line]
    if len(rows) < 2:
        return None
    width = max(len(r) for r in rows)
    grid: list[list[str | None]] = [[*r, *[""] * (width - len(r))] for r in rows]
    return Block(ElementType.TABLE, grid_text(grid), html=grid_html(grid, header_rows=1))


def _attach_formula_number(elements: list[Element], number: str, box: BBox) -> None:
    """Append ``\\tag*{number}`` to the formula sharing the number's line (the most
    vertical overlap); with none there, keep the number as text."""
    if not number:
        return
    best: tuple[float, Element] | None = None
    for element in elements:
        if element.type is not ElementType.FORMULA:
            continue
        overlap = min(element.bbox[3], box[3]) - max(element.bbox[1], box[1])
        if overlap > 0 and (best is None or overlap > best[0]):
            best = (overlap, element)
    if best is None:
        elements.append(Element(ElementType.UNCATEGORIZED_TEXT, number, box))
        return
    formula = best[1]
    formula.text = f"{formula.text} \\tag*{{{number}}}"
    formula.bbox = _union(formula.bbox, box)


def _scales(
    result: Mapping[str, Any], width: int, height: int, scale: float | None
) -> tuple[float, float]:
    if scale is not None:
        return scale, scale
    inner = result.get("res", result) if "width" not in result else result
    read_w, read_h = _first(inner.get("width")), _first(inner.get("height"))
    if not read_w or not read_h:
        return 1.0, 1.0
    return width / read_w, height / read_h


def _first(value: Any) -> float:
    """A size, which a multi-page result keeps as a list."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = value[0] if value else 0
    return float(value or 0)


def _clip(value: float, limit: int) -> float:
    return min(max(value, 0.0), float(limit))


def _union(a: BBox, b: BBox) -> BBox:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
