"""Engine elements -> ``unstructured``-compatible element dicts (DESIGN §3)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from handler.engines.base import Element, ElementType, PageResult

ELEMENT_ID_HEX_CHARS = 32


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What every element of one document shares."""

    filename: str
    filetype: str
    version: str  # the source version token: element ids depend on it
    languages: tuple[str, ...] = ()  # declared by the user (settings or object metadata)


def element_id(version: str, page: int, element: Element) -> str:
    """Deterministic id: the same source version, page, position and text give the same id."""
    x0, y0, x1, y1 = (round(v, 1) for v in element.bbox)
    seed = f"{version}\x1f{page}\x1f{x0},{y0},{x1},{y1}\x1f{element.type}\x1f{element.text}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:ELEMENT_ID_HEX_CHARS]


def page_elements(result: PageResult, source: SourceContext) -> list[dict[str, Any]]:
    """One page's elements as dicts, in reading order."""
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for element in result.elements:
        eid = element_id(source.version, result.page_number, element)
        # Two identical elements at one place (rare, but PDFs do it) still get distinct ids.
        seen[eid] = seen.get(eid, 0) + 1
        if seen[eid] > 1:
            eid = hashlib.sha256(f"{eid}/{seen[eid]}".encode()).hexdigest()[:ELEMENT_ID_HEX_CHARS]
        out.append(_element_dict(eid, element, result, source))
    return out


def _element_dict(
    eid: str, element: Element, result: PageResult, source: SourceContext
) -> dict[str, Any]:
    x0, y0, x1, y1 = (round(v, 2) for v in element.bbox)
    metadata: dict[str, Any] = {
        "page_number": result.page_number,
        "filename": source.filename,
        "filetype": source.filetype,
        "coordinates": {
            "points": [[x0, y0], [x0, y1], [x1, y1], [x1, y0]],
            "system": "PixelSpace",
            "layout_width": result.width,
            "layout_height": result.height,
        },
        "engine": result.engine,
    }
    languages = result.languages or source.languages
    if languages:
        metadata["languages"] = list(languages)
    if element.type is ElementType.TITLE and element.level is not None:
        metadata["category_depth"] = max(0, element.level - 1)
    if element.text_as_html:
        metadata["text_as_html"] = element.text_as_html
    if element.prob is not None:
        metadata["detection_class_prob"] = round(float(element.prob), 4)
    return {
        "type": element.type.value,
        "element_id": eid,
        "text": element.text,
        "metadata": metadata,
    }


def link_parents(elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set ``parent_id`` across the whole document: each element belongs to the nearest
    title above it of a lower depth (a section heading owns its paragraphs)."""
    open_titles: list[tuple[int, str]] = []  # (depth, element_id), outermost first
    for element in elements:
        metadata = element["metadata"]
        if element["type"] == ElementType.TITLE.value:
            depth = int(metadata.get("category_depth", 0))
            while open_titles and open_titles[-1][0] >= depth:
                open_titles.pop()
            if open_titles:
                metadata["parent_id"] = open_titles[-1][1]
            open_titles.append((depth, element["element_id"]))
        elif open_titles and element["type"] not in _PAGE_FURNITURE:
            metadata["parent_id"] = open_titles[-1][1]
    return elements


_PAGE_FURNITURE = frozenset(
    {ElementType.HEADER.value, ElementType.FOOTER.value, ElementType.PAGE_NUMBER.value}
)
