"""elements.json loads with ``unstructured`` (DESIGN §3): classes, pages, coordinates, parents.

Real pages go through the worker's own path (``convert_page`` then ``assemble_document``),
and the element list is read back with ``unstructured.staging.base.elements_from_json``,
the loader downstream tools use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from unstructured.documents import coordinates as ucoords
from unstructured.documents import elements as uel
from unstructured.staging.base import elements_from_json

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.engines.base import Element, ElementType, PageResult
from handler.engines.registry import EngineSet
from handler.outputs.document import assemble_document
from handler.outputs.elements import SourceContext, page_elements
from handler.settings import Settings
from handler.worker.convert import convert_page

DATA = Path(__file__).parent.parent / "data" / "born_digital"
LIMITS = Limits(max_bytes=50_000_000, max_pages=100, max_pixels_per_page=80_000_000)
DPI = 200
POINTS_PER_INCH = 72

# Our element types and the class each must load as (unstructured calls uncategorised
# text plain ``Text``).
EXPECTED_CLASS: dict[str, type[uel.Element]] = {
    ElementType.TITLE: uel.Title,
    ElementType.NARRATIVE_TEXT: uel.NarrativeText,
    ElementType.LIST_ITEM: uel.ListItem,
    ElementType.TABLE: uel.Table,
    ElementType.FORMULA: uel.Formula,
    ElementType.IMAGE: uel.Image,
    ElementType.FIGURE_CAPTION: uel.FigureCaption,
    ElementType.HEADER: uel.Header,
    ElementType.FOOTER: uel.Footer,
    ElementType.PAGE_NUMBER: uel.PageNumber,
    ElementType.UNCATEGORIZED_TEXT: uel.Text,
}

# (file, pages): an IBM Redbook's pages with tables, captions, lists, running footers and
# page numbers; an EU report page with a table, figures and a page number; an arXiv page
# with section titles.
REAL_PAGES = (
    ("docling__redp5110_sampled.pdf", [7, 8, 9]),
    ("icdar2013__eu-002.pdf", None),
    ("docling__2305.03393v1-pg9.pdf", None),
)


def _document(name: str, numbers: list[int] | None) -> tuple[list[dict[str, Any]], list[Any]]:
    """(elements.json's list, the PDF page sizes in points) for some pages of one file."""
    engines = EngineSet(Settings())
    path = DATA / name
    with open_document(path, LIMITS, dpi=DPI, filename=name) as doc:
        source = SourceContext(name, doc.type.mime, "test-version")
        pages = list(doc.pages(numbers))
        sizes = [(p.number, *_points(p.pdf_page)) for p in pages]
        outputs = [convert_page(page, engines, "auto", source) for page in pages]
    return assemble_document(outputs).elements, sizes


def _points(pdf_page: Any) -> tuple[float, float]:
    assert pdf_page is not None
    return pdf_page.rect.width, pdf_page.rect.height


@pytest.fixture(scope="module")
def converted() -> list[tuple[list[dict[str, Any]], list[Any]]]:
    return [_document(name, numbers) for name, numbers in REAL_PAGES]


def _loaded(dicts: list[dict[str, Any]]) -> list[uel.Element]:
    # Through JSON text, as a tool reading elements.json from S3 would.
    return elements_from_json(text=json.dumps(dicts))


def test_every_element_loads_as_the_class_of_its_type(converted) -> None:
    for dicts, _ in converted:
        loaded = _loaded(dicts)
        assert len(loaded) == len(dicts)  # nothing dropped as an unknown type
        for raw, element in zip(dicts, loaded, strict=True):
            assert type(element) is EXPECTED_CLASS[raw["type"]], raw["type"]
            assert element.id == raw["element_id"]
            assert element.text == raw["text"]


def test_the_real_pages_cover_the_element_types(converted) -> None:
    seen = {type(e) for dicts, _ in converted for e in _loaded(dicts)}
    expected = {
        uel.Title,
        uel.NarrativeText,
        uel.ListItem,
        uel.Table,
        uel.Image,
        uel.FigureCaption,
        uel.Footer,
        uel.PageNumber,
    }
    assert expected <= seen, f"missing: {sorted(c.__name__ for c in expected - seen)}"


def test_tables_carry_their_html(converted) -> None:
    tables = [e for dicts, _ in converted for e in _loaded(dicts) if isinstance(e, uel.Table)]
    assert tables
    for table in tables:
        html = table.metadata.text_as_html
        assert html and html.startswith("<table") and html.endswith("</table>")
        # the element's text is the table's cells, so every word of it is in the HTML
        assert all(word in html for word in table.text.split()[:20])


def test_page_numbers_and_coordinates_in_pixel_space(converted) -> None:
    for dicts, sizes in converted:
        size_of = {
            n: (round(w * DPI / POINTS_PER_INCH), round(h * DPI / POINTS_PER_INCH))
            for n, w, h in sizes
        }
        loaded = _loaded(dicts)
        assert {e.metadata.page_number for e in loaded} == set(size_of)
        for element in loaded:
            coords = element.metadata.coordinates
            assert coords is not None
            assert isinstance(coords.system, ucoords.PixelSpace)
            width, height = size_of[element.metadata.page_number]
            assert (coords.system.width, coords.system.height) == (width, height)
            assert coords.points is not None and len(coords.points) == 4
            (x0, y0), (x0b, y1), (x1, y1b), (x1b, y0b) = coords.points
            assert (x0, y0, x1, y1) == (x0b, y0b, x1b, y1b)  # a rectangle, corners in order
            assert 0 <= x0 <= x1 <= width + 1 and 0 <= y0 <= y1 <= height + 1


def test_parent_ids_link_to_an_earlier_title(converted) -> None:
    linked = 0
    for dicts, _ in converted:
        loaded = _loaded(dicts)
        position = {e.id: i for i, e in enumerate(loaded)}
        for i, element in enumerate(loaded):
            parent = element.metadata.parent_id
            if parent is None:
                continue
            linked += 1
            assert parent in position, "parent_id names an element of the document"
            assert isinstance(loaded[position[parent]], uel.Title)
            assert position[parent] < i
            if isinstance(element, (uel.Header, uel.Footer, uel.PageNumber)):
                pytest.fail("page furniture belongs to no section")
    assert linked


def test_each_of_our_types_maps_to_its_unstructured_class() -> None:
    # given one element of every type, as an engine would return them
    elements = [
        Element(kind, f"{kind.value} text", (10.0 * i, 20.0, 10.0 * i + 5, 30.0))
        for i, kind in enumerate(ElementType)
    ]
    for element in elements:
        if element.type is ElementType.TABLE:
            element.text_as_html = "<table><tr><td>a</td></tr></table>"
        if element.type is ElementType.TITLE:
            element.level = 2
    result = PageResult(3, 1700, 2200, "text-layer", elements, languages=("eng",))
    # when they become element dicts and are loaded back
    dicts = page_elements(result, SourceContext("r.pdf", "application/pdf", "v1"))
    loaded = _loaded(dicts)
    # then each has its class and the metadata survives the round trip
    assert [type(e) for e in loaded] == [EXPECTED_CLASS[e.type] for e in elements]
    for back in loaded:
        assert back.metadata.page_number == 3
        assert back.metadata.filename == "r.pdf"
        assert back.metadata.filetype == "application/pdf"
        assert back.metadata.languages == ["eng"]
    title = next(e for e in loaded if isinstance(e, uel.Title))
    assert title.metadata.category_depth == 1
    table = next(e for e in loaded if isinstance(e, uel.Table))
    assert table.metadata.text_as_html == "<table><tr><td>a</td></tr></table>"
