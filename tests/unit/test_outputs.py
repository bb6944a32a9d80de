"""Element dicts and markdown (DESIGN §2, §3)."""

from __future__ import annotations

from handler.engines.base import Element, ElementType, PageResult
from handler.outputs.elements import SourceContext, link_parents, page_elements
from handler.outputs.markdown import document_markdown, escape, page_markdown

SOURCE = SourceContext(filename="a.pdf", filetype="application/pdf", version="etag-1")


def _result(*elements: Element, engine: str = "text-layer") -> PageResult:
    return PageResult(
        page_number=2, width=1700, height=2200, engine=engine, elements=list(elements)
    )


def _el(kind: ElementType, text: str, y: float = 0, level: int | None = None) -> Element:
    return Element(kind, text, (10.0, y, 500.0, y + 20), level=level)


def test_element_dicts_carry_the_contract_metadata() -> None:
    table = Element(ElementType.TABLE, "a b", (1, 2, 3, 4), text_as_html="<table></table>")
    [element] = page_elements(_result(table), SOURCE)
    assert element["type"] == "Table"
    meta = element["metadata"]
    assert meta["page_number"] == 2
    assert meta["coordinates"] == {
        "points": [[1, 2], [1, 4], [3, 4], [3, 2]],
        "system": "PixelSpace",
        "layout_width": 1700,
        "layout_height": 2200,
    }
    assert meta["text_as_html"] == "<table></table>"
    assert meta["engine"] == "text-layer"
    assert (meta["filename"], meta["filetype"]) == ("a.pdf", "application/pdf")


def test_element_ids_are_deterministic_and_distinct() -> None:
    page = _result(_el(ElementType.NARRATIVE_TEXT, "same"), _el(ElementType.NARRATIVE_TEXT, "same"))
    first = [e["element_id"] for e in page_elements(page, SOURCE)]
    again = [e["element_id"] for e in page_elements(page, SOURCE)]
    other = SourceContext("a.pdf", "application/pdf", "etag-2")
    assert first == again
    assert len(set(first)) == 2
    assert first != [e["element_id"] for e in page_elements(page, other)]


def test_parents_follow_the_heading_hierarchy() -> None:
    elements = page_elements(
        _result(
            _el(ElementType.TITLE, "Chapter", 0, level=1),
            _el(ElementType.TITLE, "Section", 30, level=2),
            _el(ElementType.NARRATIVE_TEXT, "body", 60),
            _el(ElementType.PAGE_NUMBER, "7", 90),
            _el(ElementType.TITLE, "Next chapter", 120, level=1),
        ),
        SOURCE,
    )
    chapter, section, body, number, following = link_parents(elements)
    assert "parent_id" not in chapter["metadata"]
    assert section["metadata"]["parent_id"] == chapter["element_id"]
    assert body["metadata"]["parent_id"] == section["element_id"]
    assert "parent_id" not in number["metadata"]
    assert "parent_id" not in following["metadata"]


def test_markdown_has_headings_lists_and_no_page_furniture() -> None:
    elements = page_elements(
        _result(
            _el(ElementType.HEADER, "Annual report", 0),
            _el(ElementType.TITLE, "Results", 10, level=2),
            _el(ElementType.LIST_ITEM, "\u2022 first point", 20),
            _el(ElementType.LIST_ITEM, "2) second point", 30),
            _el(ElementType.NARRATIVE_TEXT, "# not a heading", 40),
            _el(ElementType.PAGE_NUMBER, "12", 50),
        ),
        SOURCE,
    )
    markdown = page_markdown(elements)
    assert markdown.splitlines() == [
        "## Results",
        "",
        "- first point",
        "",
        "2. second point",
        "",
        "\\# not a heading",
    ]


def test_escape_leaves_plain_text_alone() -> None:
    assert escape("snake_case and 3 * 4 and a<b") == "snake_case and 3 * 4 and a<b"
    assert escape("<script>") == "&lt;script>"


def test_document_markdown_marks_each_page() -> None:
    assert document_markdown([(1, "one\n"), (2, ""), (5, "five\n")]) == (
        "<!-- page 1 -->\n\none\n\n<!-- page 2 -->\n\n<!-- page 5 -->\n\nfive\n"
    )


def test_a_code_listing_is_a_fenced_block_kept_as_it_is() -> None:
    code = "SELECT *\n  FROM t -- `x`\n# not a heading"
    elements = page_elements(
        _result(
            _el(ElementType.UNCATEGORIZED_TEXT, code), _el(ElementType.UNCATEGORIZED_TEXT, "1 2")
        ),
        SOURCE,
    )
    assert page_markdown(elements) == f"```\n{code}\n```\n\n1 2\n"
    fenced = page_markdown(
        page_elements(_result(_el(ElementType.UNCATEGORIZED_TEXT, "a\n```b")), SOURCE)
    )
    assert fenced.startswith("````\na\n```b\n````")
