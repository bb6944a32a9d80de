"""Paragraphs for the text-layer engine: which lines and blocks make one element.

- A text block whose first line continues the previous block's last line (in reading
  order) is joined to it: on the same row beside it, or with the same font size, at most
  ``PARAGRAPH_GAP`` line heights below it, overlapping it horizontally, the previous line
  running to the right edge (``WRAP_SLACK``). PDF writers often put every line, or every
  piece of a line, in a block of its own.
- Consecutive lines of one kind form one element: a title's lines one ``Title``, a list
  item and its continuation lines (indented ``LIST_INDENT`` past the bullet) one
  ``ListItem``, body lines one ``NarrativeText`` until a paragraph ends (the next line is
  indented by ``PARAGRAPH_INDENT`` font sizes, or the line before is ``SHORT_LINE`` font
  sizes short of the edge and ends a sentence). Right-to-left text measures from the right.
- Code lines (:class:`LineKind` ``CODE``) of consecutive blocks close below each other
  (``CODE_GAP``) form one listing, an ``UncategorizedText`` element whose lines keep
  their breaks and their indentation (:func:`code_text`).
- The lines of one title block are one ``Title``, also when the later lines are set a
  little smaller (within ``TITLE_WRAP_SIZE_RATIO``, same font and weight).
- Lines are joined with spaces (:func:`join_lines`): a hyphen at a line end before a
  lowercase letter is removed and the word joined (so is a soft hyphen); before a capital
  or a digit the hyphen stays and the words are joined ("COVID-19"); CJK lines are joined
  without a space.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from handler.engines.base import ElementType
from handler.engines.text_lines import (
    PARAGRAPH_INDENT,
    Block,
    Line,
    LineKind,
    join_row,
    same_row,
)
from handler.engines.text_space import Frame

if TYPE_CHECKING:
    from handler.engines.pdf_tables import FoundTable
    from handler.engines.text_tables import LineTable

LIST_INDENT = 2.0  # points a list item's continuation line is indented past its bullet
PARAGRAPH_GAP = 0.7  # line heights between two blocks of one paragraph, at most
SHORT_LINE = 3.0  # font sizes short of the right edge that end a paragraph (after . ! ? :)
WRAP_SLACK = 2.0  # font sizes short of the right edge a wrapped line may end
CODE_GAP = 1.6  # line heights between two lines of one code listing (one blank line)
# Lines of one title block within this size ratio are one title (a long title set a point
# smaller on its second line); further apart they are a title and a subtitle.
TITLE_WRAP_SIZE_RATIO = 0.9
MONO_CHAR_WIDTH = 0.6  # a monospaced character's advance, in font sizes (Courier)


@dataclass(slots=True)
class Placed:
    """A block to place in reading order: text lines, a table, or an image."""

    bbox: tuple[float, float, float, float]
    block: Block | None = None  # None for an image or a table
    table: FoundTable | LineTable | None = None


@dataclass(slots=True)
class Run:
    """Consecutive lines that become one element."""

    type: ElementType
    lines: list[Line] = field(default_factory=list)
    level: int | None = None


KIND_TYPE = {
    LineKind.BODY: ElementType.NARRATIVE_TEXT,
    LineKind.TITLE: ElementType.TITLE,
    LineKind.BULLET: ElementType.LIST_ITEM,
    LineKind.PAGE_NUMBER: ElementType.PAGE_NUMBER,
    LineKind.CODE: ElementType.UNCATEGORIZED_TEXT,
}


def join_blocks(items: list[Placed], rtl: bool, frame: Frame) -> list[Placed]:
    """Join text blocks (in reading order) that continue each other; images and tables
    stay apart."""
    out: list[Placed] = []
    for item in items:
        last = out[-1] if out else None
        if last is None or last.block is None or item.block is None:
            out.append(item)
            continue
        a, b = last.block.lines[-1], item.block.lines[0]
        if same_row(a, b, frame.rect) and a.kind is b.kind is LineKind.BODY:
            lines = [*last.block.lines[:-1], join_row(a, b), *item.block.lines[1:]]
        elif _flows_on(a, b, rtl):
            lines = last.block.lines + item.block.lines
        else:
            out.append(item)
            continue
        block = Block(lines)
        out[-1] = Placed(block.bbox, block)
    return out


def _flows_on(a: Line, b: Line, rtl: bool) -> bool:
    if a.kind is b.kind is LineKind.CODE:
        return _code_goes_on(a, b)
    if a.kind not in (LineKind.BODY, LineKind.BULLET) or b.kind is not LineKind.BODY:
        return False
    if abs(a.size - b.size) > 0.5:
        return False
    height = a.bbox[3] - a.bbox[1]
    gap = b.bbox[1] - a.bbox[3]
    if not -0.3 * height <= gap <= PARAGRAPH_GAP * height:
        return False
    overlap = min(a.bbox[2], b.bbox[2]) - max(a.bbox[0], b.bbox[0])
    narrower = min(a.bbox[2] - a.bbox[0], b.bbox[2] - b.bbox[0])
    if overlap < 0.5 * narrower:
        return False
    slack = WRAP_SLACK * a.size
    return a.bbox[0] <= b.bbox[0] + slack if rtl else a.bbox[2] >= b.bbox[2] - slack


def _code_goes_on(a: Line, b: Line) -> bool:
    """Code lines of one listing: close below each other (a blank line between them at
    most), overlapping across."""
    height = a.bbox[3] - a.bbox[1]
    gap = b.bbox[1] - a.bbox[3]
    overlap = min(a.bbox[2], b.bbox[2]) - max(a.bbox[0], b.bbox[0])
    return -0.3 * height <= gap <= CODE_GAP * height and overlap > 0


def runs(block: Block, rtl: bool = False) -> list[Run]:
    """The lines of a block grouped into elements."""
    runs: list[Run] = []
    for line in block.lines:
        current = runs[-1] if runs else None
        if current is not None and _continues(current, line, rtl):
            current.lines.append(line)
        else:
            runs.append(Run(KIND_TYPE[line.kind], [line], line.level))
    return runs


def _continues(run: Run, line: Line, rtl: bool) -> bool:
    first = run.lines[0]
    if run.type is ElementType.LIST_ITEM and len(run.lines) == 1 and len(first.text) <= 2:
        return line.kind is not LineKind.BULLET  # a bullet alone takes the next line
    if line.kind is LineKind.TITLE:
        return run.type is ElementType.TITLE and (
            run.level == line.level or _wrapped_title(run.lines[-1], line)
        )
    if line.kind is LineKind.CODE:
        return run.lines[-1].kind is LineKind.CODE
    if line.kind is not LineKind.BODY:
        return False
    if run.type is ElementType.LIST_ITEM:
        if rtl:
            return line.bbox[2] <= first.bbox[2] - LIST_INDENT
        return line.bbox[0] >= first.bbox[0] + LIST_INDENT
    if run.type is not ElementType.NARRATIVE_TEXT:
        return False
    return not _new_paragraph(run, line, rtl)


def _wrapped_title(a: Line, b: Line) -> bool:
    """``b`` goes on with the title ``a`` (the next line of its block) though set a
    little smaller: same font and weight, within ``TITLE_WRAP_SIZE_RATIO``, and ``a``
    does not end a sentence."""
    small, large = sorted((a.size, b.size))
    return (
        a.font == b.font
        and a.bold == b.bold
        and small >= TITLE_WRAP_SIZE_RATIO * large
        and not a.text.endswith((".", "!", "?", ":"))
    )


def code_text(lines: list[Line]) -> str:
    """A listing's lines, one a line, indented as printed (in spaces of the font's width,
    estimated from its longer lines)."""
    widths = [(ln.bbox[2] - ln.bbox[0]) / len(ln.text) for ln in lines if len(ln.text) >= 4]
    size = max(lines[0].size, 1.0)
    char = sorted(widths)[len(widths) // 2] if widths else MONO_CHAR_WIDTH * size
    left = min(ln.bbox[0] for ln in lines)
    return "\n".join(" " * round((ln.bbox[0] - left) / char) + ln.text for ln in lines)


def _new_paragraph(run: Run, line: Line, rtl: bool) -> bool:
    last = run.lines[-1]
    size = max(last.size, 1.0)
    if rtl:
        indented = line.bbox[2] < last.bbox[2] - PARAGRAPH_INDENT * size
        edge = min(min(x.bbox[0] for x in run.lines), line.bbox[0])
        short = last.bbox[0] > edge + SHORT_LINE * size
    else:
        indented = line.bbox[0] > last.bbox[0] + PARAGRAPH_INDENT * size
        edge = max(max(x.bbox[2] for x in run.lines), line.bbox[2])
        short = last.bbox[2] < edge - SHORT_LINE * size
    return indented or (short and last.text.endswith((".", "!", "?", ":")))


# Marks a line may end with when a word was broken across the line break: the hyphen, the
# Unicode hyphen U+2010 and the "¬" of older print and its transcriptions.
LINE_END_HYPHENS = ("-", "\u2010", "\u00ac")


def join_lines(first: str, second: str) -> str:
    """Join two lines of one paragraph: a space, or a repaired hyphenation.

    "adip-" + "iscing" is one word; "COVID-" + "19" and "Jean-" + "Pierre" keep their
    hyphen (and no space); a soft hyphen always joins; CJK lines join without a space.
    """
    if not first or not second:
        return first or second
    if first.endswith("\u00ad"):
        return first[:-1] + second
    if first.endswith(LINE_END_HYPHENS) and len(first) >= 2 and first[-2].isalpha():
        return first[:-1] + second if second[0].islower() else first[:-1] + "-" + second
    if _is_cjk(first[-1]) and _is_cjk(second[0]):
        return first + second
    return f"{first} {second}"


def _is_cjk(char: str) -> bool:
    name = unicodedata.name(char, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA"))
