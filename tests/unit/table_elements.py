"""Helpers for the tests of text-layer tables: the Table elements of a page and their grid."""

from __future__ import annotations

from handler.engines.base import Element, ElementType, PageResult
from handler.engines.table_html import html_grid


def tables(result: PageResult) -> list[Element]:
    return [e for e in result.elements if e.type is ElementType.TABLE]


def grid(table: Element) -> list[list[str | None]]:
    """The table's cells as its ``text_as_html`` gives them back."""
    assert table.text_as_html is not None
    parsed = html_grid(table.text_as_html)
    assert parsed is not None
    return parsed[0]
