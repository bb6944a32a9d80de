"""Ground truth next to a document, by the corpus naming convention.

For a document ``DIR/<stem>.<ext>`` the benchmark looks in ``DIR/gt/`` for:

| file | what it gives |
| --- | --- |
| ``<stem>.txt`` or ``<stem>.derived.normalized.txt`` | the text the page prints (CER) |
| ``<stem>.html`` | the text of the HTML the PDF was printed from (CER) |
| ``<stem>.reference.md`` | another tool's markdown: words, headings, reading order |
| ``<stem>-str.xml`` | ICDAR 2013 table structure: cells with row and column |
| ``<stem>.tex`` | the LaTeX source: its ``tabular`` environments as tables |

A LaTeX source is not used for CER: what LaTeX prints is more than its source holds
(packages expand macros into text, e.g. ``\\lipsum``; ``\\today``; numbering).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

TEXT_SUFFIXES = (".txt", ".derived.normalized.txt")


@dataclass(frozen=True, slots=True)
class GtCell:
    row: int
    col: int
    text: str


GtTable = list[GtCell]


@dataclass(slots=True)
class GroundTruth:
    text: str | None = None  # what the document prints, for CER
    text_lines: list[str] | None = None  # the same, as the ground truth breaks it
    reference_md: str | None = None
    tables: list[GtTable] | None = None
    sources: list[str] = field(default_factory=list)  # the files used
    notes: list[str] = field(default_factory=list)  # what could not be used, and why

    @property
    def empty(self) -> bool:
        return self.text is None and self.reference_md is None and self.tables is None


def find_ground_truth(document: Path) -> GroundTruth:
    """Everything the ``gt/`` folder beside ``document`` holds for it."""
    gt_dir = document.parent / "gt"
    stem = document.stem
    truth = GroundTruth()
    for suffix in TEXT_SUFFIXES:
        path = gt_dir / f"{stem}{suffix}"
        if path.is_file():
            truth.text = path.read_text(encoding="utf-8")
            truth.text_lines = truth.text.splitlines()
            truth.sources.append(path.name)
            break
    html_path = gt_dir / f"{stem}.html"
    if truth.text is None and html_path.is_file():
        lines = html_text_lines(html_path.read_text(encoding="utf-8"))
        truth.text, truth.text_lines = "\n".join(lines), lines
        truth.sources.append(html_path.name)
    reference = gt_dir / f"{stem}.reference.md"
    if reference.is_file():
        truth.reference_md = reference.read_text(encoding="utf-8")
        truth.sources.append(reference.name)
    structure = gt_dir / f"{stem}-str.xml"
    tex = gt_dir / f"{stem}.tex"
    if structure.is_file():
        truth.tables = icdar_tables(structure.read_text(encoding="utf-8"))
        truth.sources.append(structure.name)
    elif tex.is_file():
        truth.tables = latex_tables(tex.read_text(encoding="utf-8")) or None
        truth.sources.append(tex.name)
        if truth.text is None:
            truth.notes.append(f"no CER: {tex.name} is LaTeX source, not the text it prints")
    return truth


# -- ICDAR 2013 table structure ------------------------------------------------------------


def icdar_tables(xml_text: str) -> list[GtTable]:
    """The tables of an ICDAR 2013 ``-str.xml``: each cell at its start row and column."""
    root = ET.fromstring(xml_text)
    out: list[GtTable] = []
    for table in root.iter("table"):
        cells: GtTable = []
        for region in table.iter("region"):
            row_offset = int(region.get("row-increment") or 0)
            col_offset = int(region.get("col-increment") or 0)
            for cell in region.iter("cell"):
                content = cell.findtext("content") or ""
                cells.append(
                    GtCell(
                        int(cell.get("start-row") or 0) + row_offset,
                        int(cell.get("start-col") or 0) + col_offset,
                        " ".join(content.split()),
                    )
                )
        if cells:
            out.append(cells)
    return out


# -- text of an HTML page ------------------------------------------------------------------


_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
    | {"section", "article", "header", "footer", "blockquote", "pre"}
)
_SKIPPED_TAGS = frozenset({"head", "script", "style", "title"})


def html_text_lines(page: str) -> list[str]:
    """The visible text of an HTML page, one line per block element."""
    parser = _TextParser()
    parser.feed(page)
    parser.close()
    return [" ".join(line.split()) for line in "".join(parser.parts).splitlines() if line.strip()]


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


# -- LaTeX tabular environments ------------------------------------------------------------


_TABULAR = re.compile(r"\\begin\{(tabular\*?|tabularx|longtable)\}(.*?)\\end\{\1\}", re.DOTALL)
_LATEX_COMMENT = re.compile(r"(?<!\\)%.*")
_RULES = re.compile(
    r"\\(?:toprule|midrule|bottomrule|hline|endhead|endfirsthead|endfoot|endlastfoot)\b"
    r"(?:\[[^\]]*\])?|\\c(?:mid)?rule(?:\([^)]*\))?\{[^}]*\}|\\cline\{[^}]*\}"
)
_ROW_BREAK = re.compile(r"\\\\(?:\s*\[[^\]]*\])?")
_AMPERSAND = re.compile(r"(?<!\\)&")
_MULTICOLUMN = re.compile(r"^\s*\\multicolumn\{(\d+)\}\{[^}]*\}\{(.*)\}\s*$", re.DOTALL)
_COMMAND_WITH_ARG = re.compile(r"\\[A-Za-z]+\*?(?:\[[^\]]*\])?\{([^{}]*)\}")
_BARE_COMMAND = re.compile(r"\\[A-Za-z]+\*?")
_LATEX_SYMBOLS = {r"\&": "&", r"\%": "%", r"\$": "$", r"\#": "#", r"\_": "_", "~": " "}


def latex_tables(source: str) -> list[GtTable]:
    """The cells of every ``tabular`` in a LaTeX source, with formatting commands removed."""
    source = _LATEX_COMMENT.sub("", source)
    out: list[GtTable] = []
    for match in _TABULAR.finditer(source):
        body = _RULES.sub("", _skip_arguments(match.group(1), match.group(2)))
        cells: GtTable = []
        row = 0
        for line in _ROW_BREAK.split(body):
            if not line.strip():
                continue
            col = 0
            for raw in _AMPERSAND.split(line):
                span = 1
                multi = _MULTICOLUMN.match(raw)
                if multi:
                    span, raw = int(multi.group(1)), multi.group(2)
                text = latex_text(raw)
                if text:
                    cells.append(GtCell(row, col, text))
                col += span
            row += 1
        if cells:
            out.append(cells)
    return out


def latex_text(fragment: str) -> str:
    """A LaTeX fragment's printed text, near enough for a table cell."""
    text = fragment
    for _ in range(5):  # nested commands: \textbf{\emph{x}}
        text, n = _COMMAND_WITH_ARG.subn(r"\1", text)
        if not n:
            break
    for symbol, printed in _LATEX_SYMBOLS.items():
        text = text.replace(symbol, printed)
    text = _BARE_COMMAND.sub("", text).replace("{", "").replace("}", "")
    text = text.replace("---", "\u2014").replace("--", "\u2013")
    return " ".join(text.split())


def _skip_arguments(env: str, text: str) -> str:
    """The body of a tabular: its position and column-spec arguments removed."""
    wanted = 2 if env in ("tabular*", "tabularx") else 1  # width first, then the spec
    text = text.lstrip()
    if text.startswith("["):
        text = text[text.index("]") + 1 :].lstrip()
    for _ in range(wanted):
        if not text.startswith("{"):
            break
        depth = 0
        for i, ch in enumerate(text):
            depth += {"{": 1, "}": -1}.get(ch, 0)
            if depth == 0:
                text = text[i + 1 :].lstrip()
                break
    return text
