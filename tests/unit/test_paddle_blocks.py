"""PaddleOCR-VL page results -> elements: labels to types, order, boxes, the two result
shapes (tests/data/paddleocr_vl/README.md says where the recorded results come from)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handler.engines.base import Element, ElementType, PageResult
from handler.engines.paddle_blocks import blocks_to_elements, page_blocks
from handler.outputs.elements import SourceContext, page_elements
from handler.outputs.markdown import page_markdown

DATA = Path(__file__).parent.parent / "data" / "paddleocr_vl"


def recorded(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


def by_text(elements: list[Element], start: str) -> Element:
    return next(e for e in elements if e.text.startswith(start))


class FakeBlock:
    """The attributes of paddlex's ``PaddleOCRVLBlock`` (the live result's blocks)."""

    def __init__(self, label: str, bbox: list[int], content: str = "") -> None:
        self.label, self.bbox, self.content = label, bbox, content
        self.image = None
        self.group_id = None


def test_labels_become_element_types_in_the_pages_order() -> None:
    elements = blocks_to_elements(recorded("article_page.json"), 1240, 1600)

    assert [(e.type.value, e.level) for e in elements] == [
        ("Header", None),
        ("Header", None),  # aside_text: the arXiv stamp in the margin
        ("Title", 1),  # doc_title
        ("NarrativeText", None),
        ("Title", 2),  # "Abstract"
        ("NarrativeText", None),  # abstract
        ("Title", 2),  # "1 Introduction"
        ("NarrativeText", None),  # two merged text blocks
        ("Title", 3),  # "2.1 Layout analysis": one level deeper per numbering level
        ("ListItem", None),
        ("ListItem", None),
        ("Formula", None),  # with its formula_number
        ("Image", None),
        ("FigureCaption", None),
        ("FigureCaption", None),  # "Table 1: ..." above the table
        ("Table", None),
        ("NarrativeText", None),  # vision_footnote
        ("NarrativeText", None),  # footnote
        ("Footer", None),
        ("PageNumber", None),
    ]


def test_contents_are_cleaned_for_the_element_json() -> None:
    elements = blocks_to_elements(recorded("article_page.json"), 1240, 1600)

    title = elements[2]
    assert title.text == (
        "PaddleOCR-VL: Boosting Multilingual Document Parsing via a 0.9B Vision-Language Model"
    )
    assert by_text(elements, "Documents combine").text == (
        "Documents combine text, tables and formulas; a page of $n$ blocks costs $O(n^2)$ "
        "comparisons."
    )
    assert [e.text for e in elements if e.type is ElementType.LIST_ITEM] == [
        "It detects 25 kinds of blocks",
        "It predicts their reading order",
    ]
    formula = next(e for e in elements if e.type is ElementType.FORMULA)
    assert formula.text == "L = \\sum_{i=1}^{N} \\ell(y_i, \\hat{y}_i) \\tag*{(1)}"
    assert next(e for e in elements if e.type is ElementType.IMAGE).text == ""


def test_table_html_goes_through_the_shared_grid() -> None:
    elements = blocks_to_elements(recorded("article_page.json"), 1240, 1600)

    table = next(e for e in elements if e.type is ElementType.TABLE)

    assert table.text == "Model Params Edit distance\nPaddleOCR-VL 0.9B 0.115\nMinerU2.5 1.2B 0.128"
    assert table.text_as_html == (
        "<table><tbody><tr><td>Model</td><td>Params</td><td>Edit distance</td></tr>"
        "<tr><td>PaddleOCR-VL</td><td>0.9B</td><td>0.115</td></tr>"
        "<tr><td>MinerU2.5</td><td>1.2B</td><td>0.128</td></tr></tbody></table>"
    )


def test_boxes_are_scaled_from_the_image_read_to_the_layout() -> None:
    result = recorded("article_page.json")  # read at 1240 x 1600

    same = blocks_to_elements(result, 1240, 1600)
    doubled = blocks_to_elements(result, 2480, 3200)
    given = blocks_to_elements(result, 620, 800, scale=0.5)

    assert same[0].bbox == (96.0, 40.0, 700.0, 62.0)
    assert doubled[0].bbox == (192.0, 80.0, 1400.0, 124.0)
    assert given[0].bbox == (48.0, 20.0, 350.0, 31.0)


def test_a_merged_group_gets_the_box_of_all_its_blocks() -> None:
    elements = blocks_to_elements(recorded("article_page.json"), 1240, 1600)

    merged = by_text(elements, "Documents combine")

    assert merged.bbox == (120.0, 540.0, 1120.0, 700.0)  # blocks 7 and 8 of the result


def test_list_items_share_their_blocks_box_in_bands() -> None:
    elements = blocks_to_elements(recorded("article_page.json"), 1240, 1600)

    first, second = (e for e in elements if e.type is ElementType.LIST_ITEM)

    assert first.bbox == (140.0, 760.0, 1100.0, 795.0)
    assert second.bbox == (140.0, 795.0, 1100.0, 830.0)


def test_formula_number_joins_the_formula_box() -> None:
    elements = blocks_to_elements(recorded("article_page.json"), 1240, 1600)

    formula = next(e for e in elements if e.type is ElementType.FORMULA)

    assert formula.bbox == (400.0, 850.0, 1110.0, 900.0)


def test_a_formula_number_without_a_formula_on_its_line_stays_text() -> None:
    result = {
        "width": 100,
        "height": 100,
        "parsing_res_list": [FakeBlock("formula_number", [80, 10, 95, 20], "(2)")],
    }

    (element,) = blocks_to_elements(result, 100, 100)

    assert (element.type, element.text) == (ElementType.UNCATEGORIZED_TEXT, "(2)")


def test_the_live_result_shape_reads_like_the_json_shape() -> None:
    json_shape = recorded("article_page.json")
    live = {
        "width": json_shape["width"],
        "height": json_shape["height"],
        "parsing_res_list": [
            FakeBlock(b["block_label"], b["block_bbox"], b["block_content"])
            for b in json_shape["parsing_res_list"]
        ],
    }
    for block in live["parsing_res_list"]:
        block.group_id = 7 if block.bbox[1] in (540, 645) else None

    assert blocks_to_elements(live, 1240, 1600) == blocks_to_elements(json_shape, 1240, 1600)


def test_the_saved_file_and_the_json_property_read_alike() -> None:
    saved = recorded("article_page.json")  # what save_to_json writes
    wrapped = {"res": saved}  # what result.json returns

    assert page_blocks(wrapped) == page_blocks(saved)
    assert blocks_to_elements(wrapped, 1240, 1600) == blocks_to_elements(saved, 1240, 1600)


def test_a_page_without_layout_detection_is_split_into_paragraphs() -> None:
    elements = blocks_to_elements(recorded("no_layout_page.json"), 1000, 1400)

    assert [e.text for e in elements] == [
        "Dear Ms. Smith,",
        "Thank you for your letter of 3 May.",
        "We will reply within two weeks.",
    ]
    assert elements[0].bbox[1] == 0.0 and elements[-1].bbox[3] == 1400.0


@pytest.mark.parametrize(
    ("label", "content", "kind"),
    [
        ("chart", "", ElementType.IMAGE),
        ("seal", "Approved", ElementType.IMAGE),
        ("header_image", "", ElementType.HEADER),
        ("footer_image", "", ElementType.FOOTER),
        ("algorithm", "for i in range(3):\n    print(i)", ElementType.UNCATEGORIZED_TEXT),
        ("reference_content", "[1] A. Author. A paper. 2024.", ElementType.NARRATIVE_TEXT),
        ("inline_formula", " $ x^2 $ ", ElementType.FORMULA),
        ("some_new_label", "text", ElementType.UNCATEGORIZED_TEXT),
    ],
)
def test_other_labels(label: str, content: str, kind: ElementType) -> None:
    result = {
        "width": 10,
        "height": 10,
        "parsing_res_list": [FakeBlock(label, [1, 1, 9, 9], content)],
    }

    (element,) = blocks_to_elements(result, 10, 10)

    assert element.type is kind


def test_a_read_chart_becomes_a_table() -> None:
    chart = "Year | Sales\n2023 | 10\n2024 | 12"
    result = {
        "width": 10,
        "height": 10,
        "parsing_res_list": [FakeBlock("chart", [1, 1, 9, 9], chart)],
    }

    (table,) = blocks_to_elements(result, 10, 10)

    assert table.type is ElementType.TABLE and table.text == "Year Sales\n2023 10\n2024 12"
    assert table.text_as_html is not None and "<th>Year</th>" in table.text_as_html


def test_empty_text_blocks_and_empty_pages_give_no_elements() -> None:
    empty_block = {"width": 10, "height": 10, "parsing_res_list": [FakeBlock("text", [1, 1, 9, 9])]}

    assert blocks_to_elements(empty_block, 10, 10) == []
    assert blocks_to_elements({"width": 10, "height": 10, "parsing_res_list": []}, 10, 10) == []


def test_the_elements_carry_what_the_markdown_needs() -> None:
    elements = blocks_to_elements(recorded("article_page.json"), 1240, 1600)
    result = PageResult(1, 1240, 1600, "paddleocr-vl", elements)

    markdown = page_markdown(page_elements(result, SourceContext("p.pdf", "application/pdf", "v")))

    assert markdown.startswith("# PaddleOCR-VL: Boosting Multilingual")
    assert "\n\n## 1 Introduction\n\n" in markdown and "\n\n### 2.1 Layout analysis\n\n" in markdown
    assert "$$\nL = \\sum_{i=1}^{N} \\ell(y_i, \\hat{y}_i) \\tag*{(1)}\n$$" in markdown
    assert "| Model | Params | Edit distance |" in markdown
    assert "Preprint. Under review." not in markdown  # the header is furniture


def test_a_result_recorded_from_the_real_pipeline() -> None:
    result = recorded("tiny_model_page.json")  # paddleocr 3.7, tiny random recogniser

    (element,) = blocks_to_elements(result, 1280, 960)

    assert element.type is ElementType.NARRATIVE_TEXT
    assert element.text == result["parsing_res_list"][0]["block_content"]
    assert element.bbox == (0.0, 0.0, 1280.0, 960.0)  # read at 640 x 480
