"""A vision-language model's answer for one page -> typed elements (DESIGN §3).

Three answer formats (:data:`~handler.engines.vlm.profiles.OutputFormat`):

- ``"text"``: plain text (PaddleOCR-VL's ``OCR:`` prompt). Blocks are separated by blank
  lines (or, when the answer has none, each line is a block); ``$$..$$`` / ``\\[..\\]``
  blocks are formulas, everything else is ``NarrativeText``.
- ``"markdown"``: the Nanonets-OCR-s conventions: ``#`` headings, paragraphs, list items,
  HTML and pipe tables, ``$$..$$`` / ``\\[..\\]`` display math, ``<img>description</img>``,
  ``<page_number>..</page_number>``, ``<watermark>..</watermark>``, check boxes (kept as
  the characters ☐ / ☑ in the text).
- ``"deepseek-grounding"``: DeepSeek-OCR's ``<|ref|>label<|/ref|><|det|>[[x0, y0, x1, y1]]
  <|/det|>`` before each block's markdown, boxes normalised to 0..999 of the page
  (its ``run_dpsk_ocr_image.py`` scales them by ``/ 999 * width``).

Decisions:

- Watermarks are left out: they are page decoration, not content, and would otherwise put
  the same words into every page's markdown (DESIGN §3 has no type for them).
- Inline math ``\\(..\\)`` becomes ``$..$`` (the markdown contract of DESIGN §2); display
  math becomes a ``Formula`` whose text is the LaTeX without delimiters.
- Bullet markers (``-``, ``*``, ``+``) are dropped from list items; numbers and letters
  ("1.", "a)") are kept, as the OCR engines do.
- Boxes: where the model gives them (grounding) they are used. Where it gives none, the
  blocks are stacked top to bottom over the whole page in proportion to the lines each
  would take when printed (:func:`stack_boxes`). Those boxes are approximate: they keep the
  reading order and the relative sizes, not the real positions.
- Robustness: an answer cut at the token limit (an open table, formula or image tag) keeps
  what was read; a generation loop (the same text repeated to the end) is cut to one copy
  (:func:`drop_repetition`), and runs of identical blocks are collapsed; an empty answer
  gives no elements.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from html.parser import HTMLParser

from handler.engines.base import BBox, Element, ElementType
from handler.engines.captions import mark_captions
from handler.engines.table_html import grid_html, grid_text, html_grid
from handler.engines.text_lines import union
from handler.engines.vlm.profiles import OutputFormat

GROUNDING_SCALE = 999  # DeepSeek-OCR's boxes are in 0..999 of the page on both axes
CHARS_PER_LINE = 90  # a printed line, for the proportional stacking of unboxed blocks
IMAGE_LINES = 12.0  # the lines' worth of height given to an image without a box
FORMULA_LINES = 2.0
TITLE_LINE_WEIGHT = 1.5  # headings are set larger than body text
MAX_REPEAT_UNIT = 500  # characters: the longest repeated unit a loop is searched for
MIN_REPEATS = 4  # a unit must repeat this often at the end to count as a loop ...
MIN_LOOP_CHARS = 64  # ... and the repetition must be at least this long
MIN_BLOCK_RUN = 3  # identical consecutive blocks collapse to one from this run length

_SPECIAL_TOKENS = re.compile(
    r"<\|(?:im_start|im_end|endoftext|end▁of▁sentence)\|>|</s>|<--- Page Split --->"
)
_GROUNDED = re.compile(r"<\|ref\|>(.*?)<\|/ref\|>\s*<\|det\|>(.*?)<\|/det\|>", re.DOTALL)
_PARTIAL_GROUNDING = re.compile(r"<\|/?(?:ref|det)\|>.*", re.DOTALL)  # a tag cut off at the end
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^(?:([-*+•])|(\(?\d{1,3}[.)]|\(?[a-z][.)]))\s+(?=\S)")
_PIPE_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")
_RULE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,})$")
_MD_IMAGE = re.compile(r"^!\[([^\]]*)\]\([^)]*\)$")
_INLINE_MATH = re.compile(r"\\\((.+?)\\\)", re.DOTALL)
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_WRAPPER_TAGS = re.compile(r"</?(?:center|div|p|span)\b[^>]*>", re.IGNORECASE)
_TAGGED = re.compile(r"<(img|page_number|watermark)>(.*?)(?:</\1>|$)", re.DOTALL)
_TABLE_SPAN = re.compile(r"<table\b.*?(?:</table>|$)", re.DOTALL | re.IGNORECASE)

# DeepSeek-OCR block labels -> element type; unknown labels keep what their markdown says.
_GROUNDING_TYPES = {
    "title": ElementType.TITLE,
    "sub_title": ElementType.TITLE,
    "equation": ElementType.FORMULA,
    "image": ElementType.IMAGE,
    "figure": ElementType.IMAGE,
    "image_caption": ElementType.FIGURE_CAPTION,
    "table_caption": ElementType.FIGURE_CAPTION,
    "figure_caption": ElementType.FIGURE_CAPTION,
    "table": ElementType.TABLE,
    "header": ElementType.HEADER,
    "page_header": ElementType.HEADER,
    "footer": ElementType.FOOTER,
    "page_footer": ElementType.FOOTER,
    "page_number": ElementType.PAGE_NUMBER,
}
_GROUNDING_LEVELS = {"title": 1, "sub_title": 2}


@dataclass(slots=True)
class Block:
    """One element before it has a box."""

    type: ElementType
    text: str
    level: int | None = None
    html: str | None = None

    def weight(self) -> float:
        """The lines' worth of page height this block takes when printed."""
        if self.type is ElementType.IMAGE:
            return IMAGE_LINES
        if self.type is ElementType.FORMULA:
            return FORMULA_LINES
        if self.type is ElementType.TABLE:
            return float(max(1, self.text.count("\n") + 1))
        lines = sum(max(1, math.ceil(len(line) / CHARS_PER_LINE)) for line in self.text.split("\n"))
        return lines * (TITLE_LINE_WEIGHT if self.type is ElementType.TITLE else 1.0)


def parse_output(text: str, fmt: OutputFormat, width: int, height: int) -> list[Element]:
    """The elements of one page from the model's answer ``text``, boxes in a ``width`` x
    ``height`` pixel space, in reading order (see the module docstring)."""
    text = drop_repetition(_SPECIAL_TOKENS.sub("", text.replace("\r\n", "\n")))
    if not text.strip():
        return []
    page: BBox = (0.0, 0.0, float(width), float(height))
    if fmt == "deepseek-grounding":
        elements = _grounded_elements(text, width, height)
    else:
        blocks = markdown_blocks(text) if fmt == "markdown" else text_blocks(text)
        elements = place_blocks(blocks, page)
    mark_captions(elements, height)
    return elements


# -- blocks from text ------------------------------------------------------------------------


def text_blocks(text: str) -> list[Block]:
    """Plain OCR text: paragraphs (blank-line separated, else one per line) and formulas."""
    if not re.search(r"\n\s*\n", text.strip()):
        text = text.replace("\n", "\n\n")
    return _collapse_runs(_scan(text, markdown=False))


def markdown_blocks(text: str) -> list[Block]:
    """Markdown with the Nanonets-OCR-s tags, as blocks in reading order."""
    return _collapse_runs(_scan(_isolate_tags(text), markdown=True))


def _scan(text: str, *, markdown: bool) -> list[Block]:
    """Walk the lines once; a construct that ends mid-line hands the rest of that line back."""
    lines = text.split("\n")
    blocks: list[Block] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block(ElementType.NARRATIVE_TEXT, _inline("\n".join(paragraph))))
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            flush()
            i += 1
            continue
        starter = _block_start(line, lines[i + 1].strip() if i + 1 < len(lines) else "", markdown)
        if starter is None:
            paragraph.append(line)
            i += 1
            continue
        flush()
        block, i = starter(lines, i)
        if block is not None and (block.text or block.type is ElementType.IMAGE):
            blocks.append(block)
    flush()
    return blocks


# reads one block from lines[i]; returns it (None: nothing to keep) and the next line's index
Reader = Callable[[list[str], int], tuple["Block | None", int]]


def _block_start(line: str, next_line: str, markdown: bool) -> Reader | None:
    """The reader for the block ``line`` opens, or None when it continues a paragraph."""
    if line.startswith("$$"):
        return partial(_read_formula, opener="$$", closer="$$")
    if line.startswith("\\["):
        return partial(_read_formula, opener="\\[", closer="\\]")
    if not markdown:
        return None
    lowered = line.lower()
    if lowered.startswith("<table"):
        return _read_html_table
    if lowered.startswith(("<img>", "<page_number>", "<watermark>")):
        return _read_tagged
    if line.startswith("```"):
        return _read_code
    if _HEADING.match(line) or _RULE.match(line) or _MD_IMAGE.match(line):
        return _read_line
    if line.startswith("|") and _PIPE_SEPARATOR.match(next_line):
        return _read_pipe_table
    if _LIST_ITEM.match(line):
        return _read_list_item
    return None


def _read_line(lines: list[str], i: int) -> tuple[Block | None, int]:
    line = lines[i].strip()
    if heading := _HEADING.match(line):
        return Block(ElementType.TITLE, _inline(heading.group(2)), len(heading.group(1))), i + 1
    if image := _MD_IMAGE.match(line):
        return Block(ElementType.IMAGE, image.group(1).strip()), i + 1
    return None, i + 1  # a horizontal rule


def _read_formula(
    lines: list[str], i: int, *, opener: str, closer: str
) -> tuple[Block | None, int]:
    """Display math to its closing delimiter, or to the end when the answer was cut."""
    first = lines[i].strip()[len(opener) :]
    parts: list[str] = []
    j, rest = i, first
    while True:
        end = rest.find(closer)
        if end >= 0:
            parts.append(rest[:end])
            tail = rest[end + len(closer) :].strip()
            if tail:  # text after the closing delimiter is read again
                lines[j] = tail
                return Block(ElementType.FORMULA, "\n".join(parts).strip()), j
            return Block(ElementType.FORMULA, "\n".join(parts).strip()), j + 1
        parts.append(rest)
        j += 1
        if j >= len(lines):
            return Block(ElementType.FORMULA, "\n".join(parts).strip()), j
        rest = lines[j]


def _read_html_table(lines: list[str], i: int) -> tuple[Block | None, int]:
    """A ``<table>`` to its ``</table>``; an unclosed one (a cut answer) keeps its rows."""
    joined = "\n".join(lines[i:])
    match = re.search(r"</table\s*>", joined, re.IGNORECASE)
    if match is None:
        return table_block(joined), len(lines)
    html_text, tail = joined[: match.end()], joined[match.end() :]
    consumed = html_text.count("\n")
    j = i + consumed
    tail_line = tail.split("\n", 1)[0].strip()
    if tail_line:
        lines[j] = tail_line
    else:
        j += 1
    return table_block(html_text), j


def _read_tagged(lines: list[str], i: int) -> tuple[Block | None, int]:
    """``<img>``, ``<page_number>`` or ``<watermark>`` to the closing tag (or the end)."""
    joined = "\n".join(lines[i:])
    match = _TAGGED.match(joined.lstrip())
    if match is None:  # a tag name in another case: read as text
        return Block(ElementType.NARRATIVE_TEXT, _inline(lines[i].strip())), i + 1
    consumed = joined.lstrip()[: match.end()].count("\n")
    tag, body = match.group(1), _clean_text(match.group(2))
    j = i + consumed
    tail = joined.lstrip()[match.end() :].split("\n", 1)[0].strip()
    if tail:
        lines[j] = tail
    else:
        j += 1
    if tag == "watermark":
        return None, j
    if tag == "page_number":
        return Block(ElementType.PAGE_NUMBER, body), j
    return Block(ElementType.IMAGE, body), j


def _read_code(lines: list[str], i: int) -> tuple[Block | None, int]:
    body: list[str] = []
    j = i + 1
    while j < len(lines) and not lines[j].strip().startswith("```"):
        body.append(lines[j].rstrip())
        j += 1
    return Block(ElementType.UNCATEGORIZED_TEXT, "\n".join(body).strip("\n")), j + 1


def _read_pipe_table(lines: list[str], i: int) -> tuple[Block | None, int]:
    rows = [_pipe_cells(lines[i])]
    j = i + 2  # past the separator
    while j < len(lines) and lines[j].strip().startswith("|"):
        rows.append(_pipe_cells(lines[j]))
        j += 1
    width = max(len(r) for r in rows)
    grid: list[list[str | None]] = [[*r, *[""] * (width - len(r))] for r in rows]
    return Block(ElementType.TABLE, grid_text(grid), html=grid_html(grid, header_rows=1)), j


def _read_list_item(lines: list[str], i: int) -> tuple[Block | None, int]:
    """One item with its continuation lines (indented, not starting another block)."""
    first = lines[i].strip()
    match = _LIST_ITEM.match(first)
    assert match is not None
    text = first[match.end() :] if match.group(1) else first
    parts = [text]
    j = i + 1
    while j < len(lines) and lines[j][:1] in (" ", "\t") and lines[j].strip():
        follow = lines[j].strip()
        if _LIST_ITEM.match(follow) or _block_start(follow, "", True) is not None:
            break
        parts.append(follow)
        j += 1
    return Block(ElementType.LIST_ITEM, _inline(" ".join(parts))), j


def list_items(text: str) -> list[str] | None:
    """The items of ``text`` when every line of it opens a list item (bullets dropped,
    numbers kept), else None."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    matches = [_LIST_ITEM.match(line) for line in lines]
    if len(lines) < 2 or not all(matches):
        return None
    return [
        line[m.end() :] if m.group(1) else line
        for line, m in zip(lines, matches, strict=True)
        if m is not None
    ]


def table_block(table_html: str) -> Block | None:
    """A ``Table`` block from model-written HTML (normalised through the shared grid), or
    None when it holds no cell text."""
    fixed = _close_table(table_html)
    parsed = html_grid(fixed)
    if parsed is None:  # nested tables or no rows: the HTML as it is
        text = _clean_text(_strip_tags(fixed))
        return Block(ElementType.TABLE, text, html=fixed.strip()) if text else None
    grid, header_rows = parsed
    text = grid_text(grid)
    if not text:
        return None
    return Block(ElementType.TABLE, text, html=grid_html(grid, header_rows))


def _close_table(table_html: str) -> str:
    """Close what a cut answer left open, so that the last complete cells are kept."""
    lowered = table_html.lower()
    if "</table" in lowered:
        return table_html
    last_open = max(lowered.rfind("<td"), lowered.rfind("<th"))
    last_close = max(lowered.rfind("</td"), lowered.rfind("</th"))
    closing = "</td>" if last_open > last_close else ""
    return table_html + closing + "</tr></table>"


# -- grounded answers (DeepSeek-OCR) ---------------------------------------------------------


def _grounded_elements(text: str, width: int, height: int) -> list[Element]:
    """One element (or a few, when its markdown holds several blocks) per grounded block,
    in the order the model wrote them; text outside any block shares the box before it."""
    elements: list[Element] = []
    matches = list(_GROUNDED.finditer(text))
    if not matches:
        return place_blocks(markdown_blocks(text), (0.0, 0.0, float(width), float(height)))
    lead = text[: matches[0].start()]
    if lead.strip():  # before the first box: the band above it
        top = max(1.0, _grounded_box(matches[0].group(2), width, height)[1])
        elements += place_blocks(markdown_blocks(lead), (0.0, 0.0, float(width), top))
    previous: tuple[str, str, BBox] | None = None
    for n, match in enumerate(matches):
        end = matches[n + 1].start() if n + 1 < len(matches) else len(text)
        label = match.group(1).strip().lower()
        box = _grounded_box(match.group(2), width, height)
        content = _PARTIAL_GROUNDING.sub("", text[match.end() : end])
        key = (label, content.strip(), box)
        if previous is not None and key == previous:  # a loop that repeats whole blocks
            continue
        previous = key
        elements += place_blocks(_labelled_blocks(label, content), box)
    return elements


def _labelled_blocks(label: str, content: str) -> list[Block]:
    """The blocks of one grounded block's markdown, typed by its label where that says more."""
    kind = _GROUNDING_TYPES.get(label)
    blocks = markdown_blocks(content)
    if kind is ElementType.IMAGE:
        caption = " ".join(b.text for b in blocks if b.text)
        return [Block(ElementType.IMAGE, caption)]
    if kind is None or not blocks:
        return blocks
    if kind is ElementType.TITLE:
        return [
            replace(b, type=ElementType.TITLE, level=b.level or _GROUNDING_LEVELS.get(label, 2))
            if b.type in (ElementType.TITLE, ElementType.NARRATIVE_TEXT)
            else b
            for b in blocks
        ]
    if kind is ElementType.TABLE:
        return blocks
    if kind is ElementType.FORMULA:
        return [Block(ElementType.FORMULA, b.text) if b.type is not kind else b for b in blocks]
    return [Block(kind, "\n".join(b.text for b in blocks))]


def _grounded_box(det: str, width: int, height: int) -> BBox:
    """The union of the boxes in a ``<|det|>`` list, scaled from 0..999 to pixels."""
    numbers = [min(max(float(v), 0.0), GROUNDING_SCALE) for v in _NUMBER.findall(det)]
    boxes = [numbers[k : k + 4] for k in range(0, len(numbers) - 3, 4)]
    if not boxes:
        return (0.0, 0.0, float(width), float(height))
    x0, y0, x1, y1 = union([(b[0], b[1], b[2], b[3]) for b in boxes])
    sx, sy = width / GROUNDING_SCALE, height / GROUNDING_SCALE
    return (min(x0, x1) * sx, min(y0, y1) * sy, max(x0, x1) * sx, max(y0, y1) * sy)


# -- boxes -----------------------------------------------------------------------------------


def place_blocks(blocks: Sequence[Block], region: BBox) -> list[Element]:
    """Elements for ``blocks``, stacked top to bottom over ``region`` (approximate boxes)."""
    boxes = stack_boxes(region, [b.weight() for b in blocks])
    return [
        Element(b.type, b.text, box, level=b.level, text_as_html=b.html)
        for b, box in zip(blocks, boxes, strict=True)
    ]


def stack_boxes(region: BBox, weights: Sequence[float]) -> list[BBox]:
    """``region`` cut into horizontal bands, one per weight, each as tall as its share."""
    x0, y0, x1, y1 = region
    total = sum(weights)
    if total <= 0:
        return [region for _ in weights]
    boxes: list[BBox] = []
    top = y0
    for weight in weights:
        bottom = top + (y1 - y0) * weight / total
        boxes.append((x0, top, x1, bottom))
        top = bottom
    return boxes


# -- text clean-up ---------------------------------------------------------------------------


def drop_repetition(text: str) -> str:
    """``text`` with a generation loop at its end cut to one copy of the repeated unit.

    A loop is the same unit (up to ``MAX_REPEAT_UNIT`` characters) repeated at least
    ``MIN_REPEATS`` times up to the end, over at least ``MIN_LOOP_CHARS`` characters;
    shorter repetitions ("ha ha ha", a dotted leader) are text.
    """
    stripped = text.rstrip()
    n = len(stripped)
    for size in range(1, min(MAX_REPEAT_UNIT, n // MIN_REPEATS) + 1):
        count = _repeats_at_end(stripped, size)
        if count >= MIN_REPEATS and count * size >= MIN_LOOP_CHARS:
            return stripped[: n - (count - 1) * size]
    return text


def _repeats_at_end(text: str, size: int) -> int:
    """How many times the last ``size`` characters repeat back to back at the end."""
    n, unit, count = len(text), text[-size:], 1
    while (count + 1) * size <= n and text[n - (count + 1) * size : n - count * size] == unit:
        count += 1
    return count


def _collapse_runs(blocks: list[Block]) -> list[Block]:
    """Runs of ``MIN_BLOCK_RUN`` or more identical blocks (a loop) kept once."""
    out: list[Block] = []
    run = 0
    for block in blocks:
        same = bool(out) and (out[-1].type, out[-1].text) == (block.type, block.text)
        run = run + 1 if same else 1
        out.append(block)
        if run == MIN_BLOCK_RUN:
            del out[-(MIN_BLOCK_RUN - 1) :]
        elif run > MIN_BLOCK_RUN:
            out.pop()
    return out


def _isolate_tags(text: str) -> str:
    """Put each ``<img>``/``<page_number>``/``<watermark>`` outside tables on lines of its
    own, so that a tag inside a paragraph becomes a block of its own."""
    parts: list[str] = []
    last = 0
    for table in _TABLE_SPAN.finditer(text):
        parts.append(_TAGGED.sub(lambda m: f"\n\n{m.group(0)}\n\n", text[last : table.start()]))
        parts.append(table.group(0))
        last = table.end()
    parts.append(_TAGGED.sub(lambda m: f"\n\n{m.group(0)}\n\n", text[last:]))
    return "".join(parts)


def _inline(text: str) -> str:
    """Running text: inline math as ``$..$``, layout-only tags (``<center>``) dropped."""
    text = _INLINE_MATH.sub(lambda m: f"${m.group(1).strip()}$", text)
    return _clean_text(_WRAPPER_TAGS.sub("", _LINE_BREAK.sub("\n", text)))


def _clean_text(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().split("\n") if line.strip())


def _pipe_cells(line: str) -> list[str | None]:
    body = line.strip().removeprefix("|")
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    cells = re.split(r"(?<!\\)\|", body)
    return [_inline(cell.replace("\\|", "|")) for cell in cells]


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("tr", "br", "p", "div"):
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _strip_tags(markup: str) -> str:
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)
