"""Tables as grids: HTML with spans, text, pipe tables, and HTML read back."""

from __future__ import annotations

from handler.engines.table_html import grid_html, grid_text, html_grid, pipe_table


def test_simple_grid_becomes_html_with_a_header_and_a_pipe_table() -> None:
    grid = [["Year", "Total"], ["2012", "1 | 2"], ["2013", "a<b"]]
    html = grid_html(grid, header_rows=1)
    assert html == (
        "<table><thead><tr><th>Year</th><th>Total</th></tr></thead>"
        "<tbody><tr><td>2012</td><td>1 | 2</td></tr><tr><td>2013</td><td>a&lt;b</td></tr>"
        "</tbody></table>"
    )
    assert pipe_table(grid) == (
        "| Year | Total |\n| --- | --- |\n| 2012 | 1 \\| 2 |\n| 2013 | a<b |"
    )
    assert grid_text(grid) == "Year Total\n2012 1 | 2\n2013 a<b"


def test_merged_cells_become_spans_and_no_pipe_table() -> None:
    # "Region" spans two rows; "Sales" spans two columns
    grid = [["Region", "Sales", None], [None, "Q1", "Q2"], ["North", "1", "2"]]
    html = grid_html(grid, header_rows=2)
    assert '<th rowspan="2">Region</th><th colspan="2">Sales</th>' in html
    assert "<tr><th>Q1</th><th>Q2</th></tr></thead>" in html
    assert pipe_table(grid, header_rows=2) is None


def test_html_reads_back_into_the_same_grid() -> None:
    grid = [["Region", "Sales", None], [None, "Q1", "Q2"], ["North", "1", "2"]]
    parsed = html_grid(grid_html(grid, header_rows=2))
    assert parsed == ([["Region", "Sales", None], [None, "Q1", "Q2"], ["North", "1", "2"]], 2)


def test_html_from_elsewhere_with_entities_breaks_and_ragged_rows() -> None:
    parsed = html_grid("<table><tr><td>a&amp;b</td><td>x<br>y</td></tr><tr><td>c</td></tr></table>")
    assert parsed == ([["a&b", "x y"], ["c", ""]], 0)
    assert pipe_table(parsed[0], header_rows=parsed[1]) == (
        "|  |  |\n| --- | --- |\n| a&b | x y |\n| c |  |"
    )


def test_not_a_table_or_broken_spans_give_none() -> None:
    assert html_grid("<p>no table</p>") is None
    assert html_grid('<table><tr><td colspan="x">a</td></tr></table>') is None
    assert html_grid("<table><tr><td><table><tr><td>1</td></tr></table></td></tr></table>") is None
