"""A vision-language model's answer -> elements: the three output formats, boxes, and answers
cut short, looping or empty.

The answers are written in the shapes the models produce:

- ``NANONETS_PAGE`` follows Nanonets-OCR-s's own prompt (profiles.py): HTML tables, LaTeX
  display math, ``<img>`` descriptions, ``<watermark>``, ``<page_number>``, ☐/☑ boxes.
- ``DEEPSEEK_PAGE`` follows DeepSeek-OCR's grounding output as its repository's
  ``run_dpsk_ocr_image.py`` parses it (``<|ref|>label<|/ref|><|det|>[[x0, y0, x1, y1]]
  <|/det|>`` then the block's markdown, boxes in 0..999): labels, spacing, the
  ``<center>`` caption and the ``\\(..\\)`` math are as in published outputs of the model
  on its own paper.
- ``PADDLE_OCR_TEXT`` is plain text as PaddleOCR-VL's ``OCR:`` prompt answers.
"""

from __future__ import annotations

import itertools

import pytest

from handler.engines.base import Element, ElementType, PageResult
from handler.engines.vlm.parse import drop_repetition, parse_output, stack_boxes
from handler.outputs.elements import SourceContext, page_elements
from handler.outputs.markdown import page_markdown

W, H = 1240, 1754  # an A4 page at 150 DPI

NANONETS_PAGE = r"""# Annual Report 2024

## 1. Overview

Revenue grew by 12% in the third quarter, driven by the effect \(r = 0.12\) of new
contracts in the northern region.

- Higher volumes in all regions
- Lower costs of
  raw materials
1. Open two new offices
2. Hire 40 engineers

<table><thead><tr><th>Region</th><th>Q2</th><th>Q3</th></tr></thead><tbody><tr><td>North</td><td>1.2</td><td>1.5</td></tr><tr><td>South</td><td>0.9</td><td>1.0</td></tr></tbody></table>

Table 1: Revenue by region (EUR million).

$$
R_{t+1} = R_t (1 + g)
$$

<img>A line chart of monthly revenue rising from January to September.</img>

Figure 2: Monthly revenue.

☐ Draft ☑ Approved

<watermark>CONFIDENTIAL</watermark>

<page_number>7</page_number>"""

DEEPSEEK_PAGE = r"""<|ref|>title<|/ref|><|det|>[[205, 132, 790, 157]]<|/det|>
# DeepSeek-OCR: Contexts Optical Compression<2sp>

<|ref|>text<|/ref|><|det|>[[350, 187, 646, 203]]<|/det|>
Haoran Wei, Yaofeng Sun, Yukun Li<2sp>

<|ref|>sub_title<|/ref|><|det|>[[450, 263, 547, 283]]<|/det|>
## Abstract<2sp>

<|ref|>text<|/ref|><|det|>[[115, 306, 882, 565]]<|/det|>
When text tokens are within 10 times vision tokens (i.e., a compression ratio \(< 10\times\) ),
the model can achieve decoding (OCR) precision of \(97\%\) .<2sp>

<|ref|>image<|/ref|><|det|>[[130, 583, 866, 813]]<|/det|>
<|ref|>image_caption<|/ref|><|det|>[[115, 828, 881, 892]]<|/det|>
<center>Figure 1 | Figure (a) shows the compression ratio testing on Fox benchmark. </center>

<|ref|>equation<|/ref|><|det|>[[114, 900, 430, 922]]<|/det|>
\[y' = f(x, y) \text{ mit } f(x, y) = 1 - y^2.\]

<|ref|>text<|/ref|><|det|>[[115, 930, 880, 970]]<|/det|>
- Sie kennen die Begriffe Matrix und Einheitsmatrix.
- Sie können Matrizen addieren.

<|ref|>table<|/ref|><|det|>[[115, 975, 880, 995]]<|/det|>
<table><tr><td>Mode</td><td>Tokens</td></tr><tr><td>Tiny</td><td>64</td></tr></table>
""".replace("<2sp>", "  ")  # the model ends lines with two spaces

PADDLE_OCR_TEXT = """Dear Ms. Smith,
Thank you for your letter of 3 May.
We will reply within two weeks.
\\[ x = \\frac{a}{b} \\]"""


def kinds(elements: list[Element]) -> list[str]:
    return [e.type.value for e in elements]


def test_nanonets_markdown_becomes_typed_elements() -> None:
    elements = parse_output(NANONETS_PAGE, "markdown", W, H)

    assert kinds(elements) == [
        "Title", "Title", "NarrativeText", "ListItem", "ListItem", "ListItem", "ListItem",
        "Table", "FigureCaption", "Formula", "Image", "FigureCaption", "NarrativeText",
        "PageNumber",
    ]  # fmt: skip
    title, section, paragraph, bullet, wrapped, numbered = elements[:6]
    assert (title.text, title.level) == ("Annual Report 2024", 1)
    assert (section.text, section.level) == ("1. Overview", 2)
    assert "effect $r = 0.12$ of new" in paragraph.text
    assert bullet.text == "Higher volumes in all regions"
    assert wrapped.text == "Lower costs of raw materials"
    assert numbered.text == "1. Open two new offices"
    table = elements[7]
    assert table.text == "Region Q2 Q3\nNorth 1.2 1.5\nSouth 0.9 1.0"
    assert table.text_as_html is not None and "<th>Region</th>" in table.text_as_html
    assert elements[8].text == "Table 1: Revenue by region (EUR million)."
    assert elements[9].text == "R_{t+1} = R_t (1 + g)"
    assert elements[10].text.startswith("A line chart of monthly revenue")
    assert elements[12].text == "☐ Draft ☑ Approved"
    assert elements[13].text == "7"
    assert all("CONFIDENTIAL" not in e.text for e in elements)  # watermarks are left out


def test_unboxed_blocks_are_stacked_over_the_page_in_reading_order() -> None:
    elements = parse_output(NANONETS_PAGE, "markdown", W, H)

    assert elements[0].bbox[1] == 0.0 and elements[-1].bbox[3] == pytest.approx(H)
    for upper, lower in itertools.pairwise(elements):
        assert upper.bbox[3] == pytest.approx(lower.bbox[1])
        assert upper.bbox[0] == 0.0 and upper.bbox[2] == W
    heights = {e.type: e.bbox[3] - e.bbox[1] for e in elements}
    assert heights[ElementType.IMAGE] > heights[ElementType.NARRATIVE_TEXT]


def test_stack_boxes_shares_the_region_by_weight() -> None:
    boxes = stack_boxes((10.0, 100.0, 110.0, 400.0), [1.0, 2.0])

    assert boxes == [(10.0, 100.0, 110.0, 200.0), (10.0, 200.0, 110.0, 400.0)]


def test_deepseek_grounding_boxes_are_scaled_from_0_999_to_pixels() -> None:
    elements = parse_output(DEEPSEEK_PAGE, "deepseek-grounding", W, H)

    assert kinds(elements) == [
        "Title", "NarrativeText", "Title", "NarrativeText", "Image", "FigureCaption",
        "Formula", "ListItem", "ListItem", "Table",
    ]  # fmt: skip
    title = elements[0]
    assert title.text == "DeepSeek-OCR: Contexts Optical Compression" and title.level == 1
    assert title.bbox == pytest.approx((205 / 999 * W, 132 / 999 * H, 790 / 999 * W, 157 / 999 * H))
    assert (elements[2].text, elements[2].level) == ("Abstract", 2)
    assert "ratio $< 10\\times$ )" in elements[3].text and "$97\\%$" in elements[3].text
    assert elements[4].text == ""  # an image block has no text of its own
    assert elements[5].text.startswith("Figure 1 | Figure (a)")  # <center> dropped
    assert elements[6].text == "y' = f(x, y) \\text{ mit } f(x, y) = 1 - y^2."
    first_item, second_item = elements[7], elements[8]  # one box shared by two items
    assert first_item.bbox[1] == pytest.approx(930 / 999 * H)
    assert first_item.bbox[3] == pytest.approx(second_item.bbox[1])
    assert second_item.bbox[3] == pytest.approx(970 / 999 * H)
    assert elements[9].text_as_html is not None and "<td>Tiny</td>" in elements[9].text_as_html


def test_deepseek_box_lists_are_united_and_clamped() -> None:
    answer = "<|ref|>text<|/ref|><|det|>[[0, 0, 499, 100], [500, 50, 1200, 200]]<|/det|>\nHi"

    (element,) = parse_output(answer, "deepseek-grounding", 999, 999)

    assert element.bbox == pytest.approx((0.0, 0.0, 999.0, 200.0))


def test_deepseek_answer_without_boxes_is_read_as_markdown() -> None:
    elements = parse_output("# Title\n\nBody text.", "deepseek-grounding", W, H)

    assert kinds(elements) == ["Title", "NarrativeText"]


def test_plain_text_lines_and_display_math() -> None:
    elements = parse_output(PADDLE_OCR_TEXT, "text", W, H)

    assert kinds(elements) == ["NarrativeText"] * 3 + ["Formula"]
    assert elements[0].text == "Dear Ms. Smith,"
    assert elements[3].text == "x = \\frac{a}{b}"


def test_plain_text_paragraphs_split_at_blank_lines_and_keep_markup_literal() -> None:
    elements = parse_output("# not a heading\nsecond line\n\n- not a list", "text", W, H)

    assert kinds(elements) == ["NarrativeText", "NarrativeText"]
    assert elements[0].text == "# not a heading\nsecond line"


def test_pipe_table() -> None:
    answer = "| Name | Value |\n|---|---:|\n| a \\| b | 1 |\n| c | 2 |\n\nAfter."

    table, after = parse_output(answer, "markdown", W, H)

    assert table.type is ElementType.TABLE and table.text == "Name Value\na | b 1\nc 2"
    assert table.text_as_html is not None and table.text_as_html.startswith("<table><thead>")
    assert after.text == "After."


def test_answer_cut_inside_a_table_keeps_the_complete_rows() -> None:
    answer = "Intro.\n\n<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d"

    intro, table = parse_output(answer, "markdown", W, H)

    assert intro.text == "Intro."
    assert table.text == "a b\nc d"
    assert table.text_as_html == (
        "<table><tbody><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></tbody></table>"
    )


@pytest.mark.parametrize(
    ("answer", "kind", "text"),
    [
        ("$$\n\\frac{a}{b} + \\sum_{i", ElementType.FORMULA, "\\frac{a}{b} + \\sum_{i"),
        ("\\[ x^2 +", ElementType.FORMULA, "x^2 +"),
        ("<img>A photo of a bri", ElementType.IMAGE, "A photo of a bri"),
    ],
)
def test_answer_cut_inside_math_or_an_image_keeps_what_was_read(
    answer: str, kind: ElementType, text: str
) -> None:
    (element,) = parse_output(answer, "markdown", W, H)

    assert (element.type, element.text) == (kind, text)


def test_text_after_a_closing_delimiter_is_kept() -> None:
    elements = parse_output(
        "$$ a = b $$ (3)\n<table><tr><td>x</td></tr></table> after", "markdown", W, H
    )

    assert [(e.type.value, e.text) for e in elements] == [
        ("Formula", "a = b"),
        ("NarrativeText", "(3)"),
        ("Table", "x"),
        ("NarrativeText", "after"),
    ]


def test_a_generation_loop_is_cut_to_one_copy() -> None:
    looping_lines = "Real paragraph.\n\n" + "The same line again.\n" * 300
    looping_phrase = "Total amount due: " + "0.00 EUR " * 500
    looping_rows = "<table><tr><td>a</td></tr>" + "<tr><td></td></tr>" * 400

    assert kinds(parse_output(looping_lines, "markdown", W, H)) == ["NarrativeText"] * 2
    (phrase,) = parse_output(looping_phrase, "markdown", W, H)
    assert phrase.text == "Total amount due: 0.00 EUR"
    (table,) = parse_output(looping_rows, "markdown", W, H)
    assert table.text == "a" and table.text_as_html is not None
    assert table.text_as_html.count("<tr>") == 2


def test_identical_blocks_in_a_run_collapse_but_a_pair_stays() -> None:
    answer = "Note.\n\nNote.\n\nEnd.\n\n" + "Loop.\n\n" * 5

    assert [e.text for e in parse_output(answer, "markdown", W, H)] == [
        "Note.", "Note.", "End.", "Loop.",
    ]  # fmt: skip


def test_short_repetition_is_text() -> None:
    assert drop_repetition("He said: ha ha ha ha.") == "He said: ha ha ha ha."
    assert drop_repetition("Contents ........ 3") == "Contents ........ 3"


@pytest.mark.parametrize("fmt", ["text", "markdown", "deepseek-grounding"])
@pytest.mark.parametrize("answer", ["", "   \n\n ", "<|im_end|>", "</s>"])
def test_an_empty_answer_gives_no_elements(fmt: str, answer: str) -> None:
    assert parse_output(answer, fmt, W, H) == []  # type: ignore[arg-type]


def test_the_elements_carry_what_the_markdown_needs() -> None:
    result_elements = parse_output(NANONETS_PAGE, "markdown", W, H)
    result = PageResult(1, W, H, "vlm", result_elements)
    source = SourceContext("report.pdf", "application/pdf", "v1")

    markdown = page_markdown(page_elements(result, source))

    assert markdown.startswith("# Annual Report 2024\n\n## 1\\. Overview\n\n")
    assert "| Region | Q2 | Q3 |\n| --- | --- | --- |\n| North | 1.2 | 1.5 |" in markdown
    assert "$$\nR_{t+1} = R_t (1 + g)\n$$" in markdown
    assert "- Higher volumes in all regions" in markdown and "1. Open two new offices" in markdown
    assert "*Figure 2: Monthly revenue.*" in markdown
    assert "\n7\n" not in markdown  # the page number is furniture


def test_a_grounded_answer_cut_inside_a_tag_drops_the_partial_tag() -> None:
    answer = (
        "<|ref|>text<|/ref|><|det|>[[100, 100, 900, 200]]<|/det|>\nFirst paragraph.\n\n"
        "<|ref|>text<|/ref|><|det|>[[100, 2"
    )

    (element,) = parse_output(answer, "deepseek-grounding", W, H)

    assert element.text == "First paragraph."
