"""The results-table helper: HTML for the page, Markdown and text elsewhere, checked input."""

import pytest

from mi_lib.metrics import rate
from mi_lib.tables import table


def test_table_renders_html_with_escaped_cells():
    t = table(["a", "b <c>"], [[1, "x & y"], [2.5, "z"]])
    h = t._repr_html_()
    assert "<table" in h and h.count("<tr>") == 3 and "<th>b &lt;c&gt;</th>" in h
    assert "<td>x &amp; y</td>" in h and "|" not in h


def test_table_markdown_and_text_keep_every_cell():
    t = table(["n", "rate"], [[10, "1%"], [200, "2%"]])
    assert t._repr_markdown_().splitlines()[1] == "| --- | --- |"
    assert repr(t).splitlines()[-1].split() == ["200", "2%"]


@pytest.mark.parametrize("header,rows,match", [
    ([], [], "header must name"),
    (["a", "b"], [[1]], r"rows\[0\] must have 2 cells"),
])
def test_table_rejects_bad_shapes(header, rows, match):
    with pytest.raises(ValueError, match=match):
        table(header, rows)


def test_rate_format_digits():
    import torch

    r = rate(torch.tensor([True, False, False, False]))
    assert r.format(1).startswith("25.0% (1 of 4; 95% CI ") and str(r) == r.format(4)
