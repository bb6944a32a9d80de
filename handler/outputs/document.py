"""A document's final outputs from its pages: ``document.md`` and ``elements.json``.

Pure: no S3. The worker writes what this returns (:class:`~handler.outputs.writer.OutputWriter`);
the quality benchmark calls it directly, so both measure the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from handler.outputs.elements import link_parents
from handler.outputs.markdown import document_markdown, page_markdown
from handler.outputs.page import PageOutput


@dataclass(frozen=True, slots=True)
class DocumentOutputs:
    markdown: str
    elements: list[dict[str, Any]]


def assemble_document(pages: Iterable[PageOutput]) -> DocumentOutputs:
    """All pages in page order: one markdown (a marker per page) and one element list."""
    ordered = sorted(pages, key=lambda p: p.page_number)
    elements = link_parents([e for p in ordered for e in p.elements])
    markdown = document_markdown(
        [(p.page_number, p.markdown if p.error else page_markdown(p.elements)) for p in ordered]
    )
    return DocumentOutputs(markdown, elements)
