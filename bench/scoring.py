"""One system's output on one document, scored against its ground truth; overall means."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.ground_truth import GroundTruth
from bench.markdown_text import Grid, headings, html_table_grid, plain_text, tables
from bench.quality_metrics import (
    HeadingScore,
    OrderScore,
    TableScore,
    TextScore,
    WordScore,
    heading_score,
    join_hyphenated,
    order_score,
    reference_blocks,
    table_score,
    text_score,
    word_score,
)
from bench.systems import SystemOutput


@dataclass(slots=True)
class DocumentScores:
    pages: int
    seconds: float
    text: TextScore | None
    text_joined: TextScore | None  # the same with line-end hyphenation joined on both sides
    words: WordScore | None
    tables: TableScore | None
    headings: HeadingScore | None
    order: OrderScore | None
    engines: list[str]
    error: str | None

    def rates(self) -> dict[str, float | None]:
        """Every column's value for this document (None: no ground truth of that kind)."""
        return {
            "cer": self.text.cer if self.text else None,
            "cer_hyphens_joined": self.text_joined.cer if self.text_joined else None,
            "word_recall": self.words.recall if self.words else None,
            "word_precision": self.words.precision if self.words else None,
            "table_cells": self.tables.accuracy if self.tables else None,
            "table_cells_anywhere": self.tables.found if self.tables else None,
            "heading_recall": self.headings.recall if self.headings else None,
            "heading_precision": self.headings.precision if self.headings else None,
            "heading_level": self.headings.level_agreement if self.headings else None,
            "order": self.order.score if self.order else None,
            "s_per_page": self.seconds / self.pages if self.pages else None,
        }

    def to_json(self) -> dict[str, Any]:
        counts = {
            name: asdict(score) if score is not None else None
            for name, score in (
                ("text", self.text),
                ("text_hyphens_joined", self.text_joined),
                ("words", self.words),
                ("tables", self.tables),
                ("headings", self.headings),
                ("order", self.order),
            )
        }
        return {
            "pages": self.pages,
            "seconds": round(self.seconds, 4),
            "engines": self.engines,
            "error": self.error,
            "rates": self.rates(),
            "counts": counts,
        }


def score_document(output: SystemOutput, truth: GroundTruth) -> DocumentScores:
    """Every measure the ground truth allows, on the output's markdown (and, for tables,
    the HTML tables the system reports beside it)."""
    text = plain_text(output.markdown)
    word_reference = plain_text(truth.reference_md) if truth.reference_md else truth.text
    blocks = reference_blocks(truth.reference_md, truth.text_lines)
    return DocumentScores(
        pages=output.pages,
        seconds=output.seconds,
        text=text_score(text, truth.text) if truth.text is not None else None,
        text_joined=(
            text_score(join_hyphenated(text), join_hyphenated(truth.text))
            if truth.text is not None
            else None
        ),
        # A word the typesetter split at a line end is one word, in the output and the truth.
        words=(
            word_score(join_hyphenated(text), join_hyphenated(word_reference))
            if word_reference is not None
            else None
        ),
        tables=table_score(truth.tables, output_tables(output)) if truth.tables else None,
        headings=(
            heading_score(headings(output.markdown), headings(truth.reference_md))
            if truth.reference_md and headings(truth.reference_md)
            else None
        ),
        order=order_score(text, blocks) if blocks else None,
        engines=output.engines,
        error=output.error,
    )


def output_tables(output: SystemOutput) -> list[Grid]:
    """The tables in the markdown and those reported beside it, each grid once."""
    grids = tables(output.markdown)
    for table_html in output.extra_tables_html:
        grid = html_table_grid(table_html)
        if grid and grid not in grids:
            grids.append(grid)
    return grids


# -- overall -------------------------------------------------------------------------------

#: Columns whose overall value is a page-weighted mean of the documents' values.
PAGE_WEIGHTED = (
    "word_recall",
    "word_precision",
    "table_cells",
    "table_cells_anywhere",
    "heading_recall",
    "heading_precision",
    "heading_level",
    "order",
)


def overall(scores: Sequence[DocumentScores]) -> dict[str, float | None]:
    """Overall values: CER weighted by ground-truth characters (total errors / total
    characters), seconds per page as total seconds / total pages, every other column the
    page-weighted mean over the documents that have a value for it."""
    out: dict[str, float | None] = {}
    for column, texts in (
        ("cer", [s.text for s in scores if s.text is not None]),
        ("cer_hyphens_joined", [s.text_joined for s in scores if s.text_joined is not None]),
    ):
        chars = sum(t.ref_chars for t in texts)
        out[column] = sum(t.errors for t in texts) / chars if chars else None
    for column in PAGE_WEIGHTED:
        pairs = [(r, max(1, s.pages)) for s in scores if (r := s.rates()[column]) is not None]
        weight = sum(w for _, w in pairs)
        out[column] = sum(r * w for r, w in pairs) / weight if weight else None
    pages = sum(s.pages for s in scores)
    out["s_per_page"] = sum(s.seconds for s in scores) / pages if pages else None
    return out


def documents_with(scores: Iterable[DocumentScores], column: str) -> int:
    return sum(1 for s in scores if s.rates()[column] is not None)
