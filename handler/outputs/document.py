"""A document's final outputs from its pages: ``document.md`` and ``elements.json``.

Pure: no S3. The worker writes what this returns (:class:`~handler.outputs.writer.OutputWriter`);
the quality benchmark calls it directly, so both measure the same thing.

Document-level structure is settled here, where all pages are known: running headers and
footers (:mod:`handler.outputs.furniture`) and each element's section (``parent_id``). The
per-page checkpoint files (``pages/NNNN.*``) are written before the document is complete, so
they keep the engine's per-page typing; ``document.md`` and ``elements.json`` carry the final one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from handler.outputs.elements import link_parents
from handler.outputs.furniture import mark_furniture
from handler.outputs.markdown import document_markdown, page_markdown
from handler.outputs.page import PageOutput


@dataclass(frozen=True, slots=True)
class DocumentOutputs:
    markdown: str
    elements: list[dict[str, Any]]


def assemble_document(pages: Iterable[PageOutput]) -> DocumentOutputs:
    """All pages in page order: one markdown (a marker per page) and one element list."""
    ordered = sorted(pages, key=lambda p: p.page_number)
    converted = [p for p in ordered if not p.error]
    marked = dict(
        zip(
            (p.page_number for p in converted),
            mark_furniture([p.elements for p in converted]),
            strict=True,
        )
    )
    elements = link_parents([e for p in ordered for e in marked.get(p.page_number, [])])
    markdown = document_markdown(
        [
            (p.page_number, p.markdown if p.error else page_markdown(marked[p.page_number]))
            for p in ordered
        ]
    )
    return DocumentOutputs(markdown, elements)
