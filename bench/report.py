"""The benchmark's table: one row per document and system, then overall rows per set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (key, header, format): rates as percentages, seconds as seconds
    ("cer", "CER", "pct2"),
    ("cer_hyphens_joined", "CER joined", "pct2"),
    ("word_recall", "word R", "pct"),
    ("word_precision", "word P", "pct"),
    ("table_cells", "cells@pos", "pct"),
    ("table_cells_anywhere", "cells any", "pct"),
    ("heading_recall", "head R", "pct"),
    ("heading_precision", "head P", "pct"),
    ("heading_level", "head lvl", "pct"),
    ("order", "order", "pct"),
    ("s_per_page", "s/page", "sec"),
)


@dataclass(frozen=True, slots=True)
class Row:
    label: str  # document name or "overall <set>"
    system: str
    pages: int
    values: dict[str, float | None]
    note: str = ""


def format_value(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct2":
        return f"{100 * value:.2f}%"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    return f"{value:.2f}"


def text_table(rows: Sequence[Row]) -> str:
    """A fixed-width table for the terminal; a document's name only on its first row."""
    headers = ["document", "system", "pages", *(h for _, h, _ in COLUMNS)]
    body: list[list[str]] = []
    previous = None
    for row in rows:
        label = row.label if row.label != previous else ""
        previous = row.label
        cells = [format_value(row.values.get(k), f) for k, _, f in COLUMNS]
        body.append([label, row.system, str(row.pages), *cells])
    widths = [max(len(r[i]) for r in [headers, *body]) for i in range(len(headers))]
    lines = [_fixed(headers, widths)]
    lines.append(_fixed(["-" * w for w in widths], widths))
    for row, cells in zip(rows, body, strict=True):
        lines.append(_fixed(cells, widths) + (f"  {row.note}" if row.note else ""))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row]) -> str:
    """The same rows as a GitHub table (for docs/quality.md)."""
    headers = ["document", "system", "pages", *(h for _, h, _ in COLUMNS)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    previous = None
    for row in rows:
        label = row.label if row.label != previous else ""
        previous = row.label
        label = f"**{label}**" if label.startswith("overall") else (f"`{label}`" if label else "")
        cells = [format_value(row.values.get(k), f) for k, _, f in COLUMNS]
        lines.append("| " + " | ".join([label, row.system, str(row.pages), *cells]) + " |")
    return "\n".join(lines)


def _fixed(cells: Sequence[str], widths: Sequence[int]) -> str:
    left = 2  # document and system names are left-aligned, numbers right-aligned
    parts = [
        c.ljust(w) if i < left else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ]
    return "  ".join(parts).rstrip()
