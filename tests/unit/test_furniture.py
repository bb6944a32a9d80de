"""Running headers and footers recognised by repetition across pages."""

from __future__ import annotations

from typing import Any

from handler.documents.limits import Limits
from handler.documents.open import open_document
from handler.engines.registry import EngineSet
from handler.outputs.document import assemble_document
from handler.outputs.elements import SourceContext
from handler.outputs.furniture import mark_furniture
from handler.outputs.page import PageOutput
from handler.settings import Settings
from handler.worker.convert import convert_page
from tests.conftest import DATA

HEIGHT = 1000


def element(kind: str, text: str, y0: float, y1: float, depth: int | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "page_number": 1,
        "coordinates": {
            "points": [[100, y0], [100, y1], [700, y1], [700, y0]],
            "system": "PixelSpace",
            "layout_width": 800,
            "layout_height": HEIGHT,
        },
    }
    if depth is not None:
        metadata["category_depth"] = depth
    return {"type": kind, "element_id": f"{text}@{y0}", "text": text, "metadata": metadata}


def body(n: int) -> dict[str, Any]:
    return element("NarrativeText", f"Body paragraph number {n} with its own words.", 300, 700)


def types(pages: list[list[dict[str, Any]]]) -> list[list[str]]:
    return [[e["type"] for e in page] for page in pages]


def test_a_repeated_top_line_becomes_header_and_a_numbered_footer_a_page_number() -> None:
    # Given six pages with the same title-like line at the top and "Page n of 6" at the bottom
    pages = [
        [
            element("Title", "Annual Report 2024", 40, 60, depth=0),
            body(n),
            element("NarrativeText", f"Page {n} of 6", 950, 965),
        ]
        for n in range(1, 7)
    ]
    # When furniture is marked
    marked = mark_furniture(pages)
    # Then the running title is a Header (its heading depth dropped), the counter a PageNumber,
    # the body untouched (the same objects), and the input pages not modified
    assert types(marked) == [["Header", "NarrativeText", "PageNumber"]] * 6
    assert "category_depth" not in marked[0][0]["metadata"]
    assert all(marked[i][1] is pages[i][1] for i in range(6))
    assert pages[0][0]["type"] == "Title"


def test_lines_that_do_not_repeat_enough_or_move_or_are_long_stay_body() -> None:
    long_line = "A long line " * 20  # over the length limit even though it repeats
    pages = [
        [
            element("Title", f"Chapter {'ABCDEFG'[n]}", 40, 60, depth=0),  # differs per page
            element("NarrativeText", "Moving note", 40 + 60 * n, 55 + 60 * n),  # drifts down
            element("NarrativeText", long_line, 900, 990),
            body(n),
        ]
        for n in range(7)
    ]
    assert types(mark_furniture(pages)) == types(pages)


def test_a_line_on_two_of_seven_pages_is_not_enough_but_on_two_of_three_it_is() -> None:
    def doc(n_pages: int) -> list[list[dict[str, Any]]]:
        return [
            [body(n)] + ([element("NarrativeText", "CONFIDENTIAL", 20, 35)] if n < 2 else [])
            for n in range(n_pages)
        ]

    assert types(mark_furniture(doc(7)))[0] == ["NarrativeText", "NarrativeText"]
    assert types(mark_furniture(doc(3)))[0] == ["NarrativeText", "Header"]


def test_one_page_documents_are_left_as_the_engine_typed_them() -> None:
    page = [element("NarrativeText", "Page 1", 950, 965), body(1)]
    assert mark_furniture([page]) == [page]


def test_roman_front_matter_numbers_are_page_numbers() -> None:
    pages = [
        [body(n), element("NarrativeText", r, 950, 965)]
        for n, r in enumerate(["ii", "iii", "iv", "v"])
    ]
    assert [t[-1] for t in types(mark_furniture(pages))] == ["PageNumber"] * 4


def test_a_changing_chapter_footer_in_the_slot_of_a_repeated_footer_is_a_footer() -> None:
    # Given a footer repeated on three pages and, in the same place on a fourth, a chapter title
    footer = [element("NarrativeText", "Company handbook", 950, 962) for _ in range(3)]
    pages = [[body(n), footer[n]] for n in range(3)]
    pages.append([body(3), element("NarrativeText", "Chapter 7. Travel", 950, 962)])
    pages.append([body(4), element("NarrativeText", "Chapter 7. Travel", 920, 932)])  # too high
    pages.append([body(5)])
    marked = types(mark_furniture(pages))
    assert marked[3] == ["NarrativeText", "Footer"]
    assert marked[4] == ["NarrativeText", "NarrativeText"]


def test_furniture_stays_in_elements_but_leaves_the_markdown_of_a_real_report() -> None:
    # Given the 18 sampled pages of an IBM Redbook through the text-layer engine
    path = DATA / "born_digital" / "docling__redp5110_sampled.pdf"
    engines = EngineSet(Settings())
    limits = Limits(max_bytes=10**9, max_pages=100, max_pixels_per_page=10**9)
    with open_document(path, limits, dpi=72, filename=path.name) as document:
        source = SourceContext(path.name, document.type.mime, "v1")
        numbers = list(range(1, document.page_count + 1))
        pages: list[PageOutput] = [
            convert_page(p, engines, "text-layer", source) for p in document.pages(numbers)
        ]
    # When the document is assembled
    outputs = assemble_document(pages)
    # Then its running footers are Footer elements and not in document.md's body
    footer = "Row and Column Access Control Support in IBM DB2 for i"
    copyright_line = "© Copyright IBM Corp. 2014. All rights reserved."
    typed = {(e["text"], e["type"]) for e in outputs.elements}
    assert (footer, "Footer") in typed and (copyright_line, "Footer") in typed
    assert (footer, "NarrativeText") not in typed
    lines = outputs.markdown.splitlines()
    assert footer not in lines and copyright_line not in lines  # (the cover's title has it)
    # and the page checkpoints' own markdown still has them (they are per-page results)
    assert any(footer in p.markdown for p in pages)
    # and the headings that are not furniture still are headings
    assert "# Contents" in outputs.markdown
