"""Results tables for the chapters' pages: one helper, HTML in the built book and in Jupyter.

The book's build renders Markdown outputs as CommonMark, which has no tables, so a table
printed as Markdown would reach the page as a line of pipes. `show_table` displays an object
that offers HTML first (the page, Jupyter, Colab), then Markdown and plain text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

# Compact cells, so that a results table fits the page's text column.
STYLE = ("<style>.mi-table{font-size:0.8em;width:auto;max-width:100%}"
         ".mi-table th,.mi-table td{padding:0.2em 0.45em;vertical-align:top}</style>")


@dataclass(frozen=True)
class Table:
    """A header and rows of cells, shown as HTML, Markdown or plain text."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows
        )
        return f'{STYLE}<table class="table mi-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + " --- |" * len(self.header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in self.rows])

    def __repr__(self) -> str:
        widths = [max(len(c) for c in col) for col in zip(self.header, *self.rows, strict=True)]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        return "\n".join([line(self.header), line(tuple("-" * w for w in widths)), *map(line, self.rows)])


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    """A Table of `rows` under `header`; every cell becomes text. Each row must have one cell
    per column."""
    header = tuple(str(h) for h in header)
    if not header:
        raise ValueError("header must name at least one column, got an empty header")
    out = []
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] must have {len(header)} cells (one per column), got {len(row)}")
        out.append(tuple(str(c) for c in row))
    return Table(header, tuple(out))


def show_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Display a results table in the page (HTML); `table` builds the same object without
    showing it."""
    from IPython.display import display

    display(table(header, rows))
