"""The quality benchmark's measures (bench/), and a fast run of pagedrop on a few test files.

Each measure is shown to drop when the output is wrong in the way it measures; the run on
real pages keeps thresholds a little below the numbers measured when this was written
(docs/quality.md has the full table).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.ground_truth import (
    GtCell,
    find_ground_truth,
    html_text_lines,
    icdar_tables,
    latex_tables,
)
from bench.markdown_text import headings, plain_text, tables
from bench.quality_metrics import (
    TextScore,
    WordScore,
    heading_score,
    join_hyphenated,
    order_score,
    reference_blocks,
    table_score,
    text_score,
    word_score,
    words,
)
from bench.report import Row, markdown_table, text_table
from bench.scoring import DocumentScores, overall, score_document
from bench.systems import PagedropSystem

DATA = Path(__file__).parent.parent / "data"

# -- markdown to text ----------------------------------------------------------------------


def test_plain_text_removes_markdown_syntax() -> None:
    markdown = (
        "<!-- page 1 -->\n\n# **5.1 Hyper** Parameter\n\n- item one\n> quoted\n\n"
        "A _2x speed up_ and QIBM_DB_SECADM \\# kept, ![a figure]() [link](http://x) `code`\n\n"
        "| h1 | h2 |\n|---|:-:|\n| a \\| b | c |\n\n<table><tr><td>x</td><td>y</td></tr></table>\n"
        "---\n$$\nE = mc^2\n$$\n&amp;"
    )
    text = plain_text(markdown)
    expected = (
        "5.1 Hyper Parameter item one quoted A 2x speed up and QIBM_DB_SECADM # kept, "
        "a figure link code h1 h2 a | b c x y E = mc^2 &"
    )
    assert text.split() == expected.split()


def test_plain_text_keeps_code_blocks_as_they_are() -> None:
    assert plain_text("```python\n# not a heading\nx = 1\n```") == "# not a heading\nx = 1"


def test_headings_with_levels_outside_code() -> None:
    markdown = "# One\ntext\n### **Three**\n```\n# code\n```\n#no space\n## Two ##"
    assert headings(markdown) == [(1, "One"), (3, "Three"), (2, "Two")]


def test_tables_from_pipe_and_html() -> None:
    markdown = (
        "text | not a table\n\n| a | b |\n|---|---|\n| 1 | **2** |\n\n"
        '<table><tr><th colspan="2">wide</th></tr><tr><td>x</td><td>y</td></tr></table>'
    )
    assert tables(markdown) == [[["wide", ""], ["x", "y"]], [["a", "b"], ["1", "2"]]]


def test_pipe_rows_without_a_delimiter_row_are_not_a_table() -> None:
    assert tables("| just | text |\n| more | text |") == []


# -- ground truth files --------------------------------------------------------------------


def test_icdar_structure_cells() -> None:
    xml = (
        '<document><table id="1"><region id="1" page="1">'
        '<cell id="1" start-col="1" start-row="0"><content>Q1</content></cell>'
        '<cell id="2" start-col="0" start-row="1" end-col="0"><content> 2004 </content></cell>'
        "</region></table></document>"
    )
    assert icdar_tables(xml) == [[GtCell(0, 1, "Q1"), GtCell(1, 0, "2004")]]


def test_latex_tabular_cells() -> None:
    tex = r"""
    \begin{table}\caption{x}
    \begin{tabular}{lcc} % columns
        \toprule
        \textbf{Country} & \multicolumn{2}{c}{\textbf{Area (km\textsuperscript{2})}} \\
        \midrule
        Austria & 83,879 & 8.9\% \\
        \bottomrule
    \end{tabular}\end{table}"""
    assert latex_tables(tex) == [
        [
            GtCell(0, 0, "Country"),
            GtCell(0, 1, "Area (km2)"),
            GtCell(1, 0, "Austria"),
            GtCell(1, 1, "83,879"),
            GtCell(1, 2, "8.9%"),
        ]
    ]


def test_html_text_lines_skip_the_head() -> None:
    page = "<html><head><title>t</title></head><body><div>a  b</div><p>c</p></body></html>"
    assert html_text_lines(page) == ["a b", "c"]


def test_find_ground_truth_by_the_naming_convention() -> None:
    truth = find_ground_truth(DATA / "born_digital" / "icdar2013__eu-002.pdf")
    assert truth.sources == ["icdar2013__eu-002-str.xml"]
    assert truth.tables and len(truth.tables[0]) == 33
    scan = find_ground_truth(DATA / "scanned" / "tess__phototest.tif")
    assert scan.text and scan.text.startswith("This is a lot of 12 point text")


# -- measures ------------------------------------------------------------------------------


def test_cer_counts_character_errors_and_ignores_line_breaks() -> None:
    assert text_score("hello\nworld", "hello world").cer == 0.0
    assert text_score("hellO world", "hello world").errors == 1
    assert text_score("", "hello").cer == 1.0


def test_joining_line_end_hyphens_on_both_sides() -> None:
    assert join_hyphenated("ent-\nfalten Garten- und Obst-\nZucht") == (
        "entfalten Garten- und Obst-\nZucht"
    )
    # a repaired word and a kept hyphen compare equal once both sides are joined
    repaired, printed = "Blüthen entfalten.", "Blüthen ent-\nfalten."
    assert text_score(repaired, printed).errors == 2
    assert text_score(join_hyphenated(repaired), join_hyphenated(printed)).errors == 0


def test_words_keep_combining_marks_and_fold_case() -> None:
    assert words("Ünïcode, ДА! \u062d\u064e\u0628\u064a\u0628\u064a x_y") == [
        "ünïcode",
        "да",
        "\u062d\u064e\u0628\u064a\u0628\u064a",
        "x",
        "y",
    ]


def test_word_recall_and_precision() -> None:
    reference = "the cat sat on the mat"
    assert word_score("the cat sat on the mat", reference).recall == 1.0
    missing = word_score("the cat sat", reference)
    assert missing.recall == pytest.approx(3 / 6) and missing.precision == 1.0
    # emitting everything twice keeps recall but halves precision
    doubled = word_score(reference + " " + reference, reference)
    assert doubled.recall == 1.0 and doubled.precision == pytest.approx(0.5)


GT_TABLE = [
    GtCell(0, 1, "Q1"),
    GtCell(0, 2, "Q2"),
    GtCell(1, 0, "2004"),
    GtCell(1, 1, "34.7"),
    GtCell(1, 2, "36.2"),
]


def test_table_cells_at_position_allow_a_consistent_offset() -> None:
    exact = [["", "Q1", "Q2"], ["2004", "34.7", "36.2"]]
    assert table_score([GT_TABLE], [exact]).accuracy == 1.0
    # the same grid shifted by an extra title row and an index column
    shifted = [["Table 3", "", "", ""], ["", "", "Q1", "Q2"], ["", "2004", "34.7", "36.2"]]
    assert table_score([GT_TABLE], [shifted]).accuracy == 1.0


def test_a_missing_or_misplaced_cell_lowers_table_accuracy() -> None:
    missing = [["", "Q1", "Q2"], ["2004", "34.7", ""]]
    score = table_score([GT_TABLE], [missing])
    assert score.accuracy == pytest.approx(4 / 5) and score.found == pytest.approx(4 / 5)
    # columns swapped: every value found somewhere, at most two at their place (shifting
    # the grid by a column lines up Q1 and 34.7, and nothing else)
    swapped = [["", "Q2", "Q1"], ["2004", "36.2", "34.7"]]
    score = table_score([GT_TABLE], [swapped])
    assert score.found == 1.0 and score.accuracy == pytest.approx(2 / 5)
    assert table_score([GT_TABLE], []).accuracy == 0.0  # no table at all


def test_table_cells_compare_without_markup_or_case() -> None:
    assert table_score([[GtCell(0, 0, "Area (km2)")]], [[["**AREA** (km<sup>2</sup>)"]]]).found == 1


def test_headings_recall_precision_and_levels() -> None:
    reference = [(1, "Introduction"), (2, "1.1 Scope"), (2, "1.2 Terms")]
    perfect = heading_score(reference, reference)
    assert (perfect.recall, perfect.precision, perfect.level_agreement) == (1.0, 1.0, 1.0)
    # a heading output as a paragraph is missed; a paragraph output as a heading is extra
    partial = heading_score([(1, "introduction"), (2, "1.1 scope"), (2, "Some text")], reference)
    assert partial.recall == pytest.approx(2 / 3) and partial.precision == pytest.approx(2 / 3)
    flat = heading_score([(3, t) for _, t in reference], reference)
    assert flat.recall == 1.0 and flat.level_agreement == 0.0
    # a reference with a single level says nothing about levels
    assert heading_score([(1, "A")], [(2, "A")]).level_agreement is None
    assert heading_score([], reference).precision == 0.0


PARAGRAPHS = [
    "first paragraph with several words in it",
    "second paragraph is about something else entirely",
    "third one closes the short page of text",
    "fourth paragraph with its own distinct wording here",
]


def test_reading_order_in_and_out_of_order() -> None:
    assert order_score("\n\n".join(PARAGRAPHS), PARAGRAPHS).score == 1.0
    swapped = [PARAGRAPHS[0], PARAGRAPHS[2], PARAGRAPHS[1], PARAGRAPHS[3]]
    score = order_score("\n\n".join(swapped), PARAGRAPHS)
    assert score.found == 4 and score.pairs == 3 and score.in_order == 2
    reversed_order = order_score("\n\n".join(reversed(PARAGRAPHS)), PARAGRAPHS)
    assert reversed_order.score == 0.0


def test_reading_order_skips_missing_and_repeated_blocks() -> None:
    repeated = "the same boilerplate line again"
    reference = [PARAGRAPHS[0], repeated, PARAGRAPHS[1], repeated]
    output = f"{PARAGRAPHS[0]} {repeated} {PARAGRAPHS[1]}"
    score = order_score(output, reference)
    assert score.found == 2 and score.score == 1.0  # the repeated line places nothing


def test_reference_blocks_prefer_text_lines_and_leave_tables_out() -> None:
    assert reference_blocks("# a\n\npara", ["line one", "", "line two"]) == ["line one", "line two"]
    assert reference_blocks("## Title\n\n| a | b |\n| - | - |\n\nbody text", None) == [
        "Title",
        "body text",
    ]


def test_overall_weights_cer_by_characters_and_rates_by_pages() -> None:
    def doc(pages: int, errors: int, chars: int, matched: int) -> DocumentScores:
        return DocumentScores(
            pages=pages,
            seconds=float(pages),
            text=TextScore(errors, chars),
            text_joined=None,
            words=WordScore(matched, 10, 10),
            tables=None,
            headings=None,
            order=None,
            engines=[],
            error=None,
        )

    result = overall([doc(1, 10, 100, 10), doc(3, 0, 900, 0)])
    assert result["cer"] == pytest.approx(10 / 1000)  # not the mean of 10% and 0%
    assert result["word_recall"] == pytest.approx((1 * 1.0 + 3 * 0.0) / 4)
    assert result["table_cells"] is None  # no document has a table ground truth
    assert result["s_per_page"] == pytest.approx(1.0)


def test_tables_print_dashes_where_nothing_was_measured() -> None:
    rows = [Row("a.pdf", "pagedrop", 1, {"cer": 0.0123, "order": None})]
    assert "1.23%" in text_table(rows) and " - " in text_table(rows)
    assert markdown_table(rows).splitlines()[2].startswith("| `a.pdf` | pagedrop | 1 | 1.23% | -")


# -- pagedrop on test files ----------------------------------------------------------------


@pytest.fixture(scope="module")
def pagedrop() -> PagedropSystem:
    return PagedropSystem()


def _rates(system: PagedropSystem, path: Path) -> dict[str, float]:
    """The measured columns of one document (those without ground truth left out)."""
    rates = score_document(system.run(path), find_ground_truth(path)).rates()
    return {k: v for k, v in rates.items() if v is not None}


def test_pagedrop_on_an_arxiv_page(pagedrop: PagedropSystem) -> None:
    # measured: words 97.0% / 98.1%, headings 2 of 2, order 6 of 6 pairs
    rates = _rates(pagedrop, DATA / "born_digital" / "docling__2305.03393v1-pg9.pdf")
    assert rates["word_recall"] >= 0.94 and rates["word_precision"] >= 0.94
    assert rates["heading_recall"] == 1.0 and rates["heading_precision"] == 1.0
    assert rates["order"] == 1.0


def test_pagedrop_on_a_table_page(pagedrop: PagedropSystem) -> None:
    # measured: 33 of 33 ground-truth cells at their place
    rates = _rates(pagedrop, DATA / "born_digital" / "icdar2013__eu-002.pdf")
    assert rates["table_cells"] >= 0.9


@pytest.mark.slow
def test_pagedrop_on_scans(pagedrop: PagedropSystem) -> None:
    # measured: CER 0.00% (phototest), 0.49% (eurotext); every placed line in order
    phototest = _rates(pagedrop, DATA / "scanned" / "tess__phototest.tif")
    eurotext = _rates(pagedrop, DATA / "scanned" / "tess__eurotext.tif")
    assert phototest["cer"] <= 0.005
    assert eurotext["cer"] <= 0.01
    assert eurotext["order"] == 1.0
