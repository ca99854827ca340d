"""A report's ``summary.md`` and ``summary.html`` have the same structure: the same headings at the
same levels, in order, and the same tables cell for cell, each HTML table with exactly one
header row (no extra row for the pandas index name, as ``DataFrame.to_html`` would draw).

``tests/test_report_rebuild.py`` checks the pages' text in order; this checks their shape, on
a comparison with every optional section (paired differences, per group / topic / priority).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from chatlab.cli import main
from chatlab.report.document import Document, Images, Links, Section, Table, Text, render_html, render_markdown


def markdown_structure(text: str) -> tuple[list[tuple[int, str]], list[list[list[str]]]]:
    """(level, title) of every heading and every table as rows of cells (header row first)."""
    headings, tables, current = [], [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if re.fullmatch(r"\|(---\|)+", line):
                continue
            cells = [c.replace("\\|", "|") for c in line[2:-2].split(" | ")]
            if current is None:
                current = []
                tables.append(current)
            current.append(cells)
            continue
        current = None
        if m := re.match(r"(#+) (.*)", line):
            headings.append((len(m.group(1)), m.group(2)))
    return headings, tables


class _HTMLStructure(HTMLParser):
    """Headings, and tables as rows of (tag, text) cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[tuple[int, str]] = []
        self.tables: list[list[list[tuple[str, str]]]] = []
        self._text: list[str] | None = None
        self._heading = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self._heading, self._text = int(tag[1]), []
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("th", "td"):
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append((self._heading, "".join(self._text or [])))
            self._text = None
        elif tag in ("th", "td"):
            self.tables[-1][-1].append((tag, "".join(self._text or [])))
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def assert_same_structure(md: str, page: str) -> int:
    """The pages' headings and tables agree; returns how many tables there were."""
    md_headings, md_tables = markdown_structure(md)
    parsed = _HTMLStructure()
    parsed.feed(page)
    assert md_headings == parsed.headings
    assert len(md_tables) == len(parsed.tables)
    for md_rows, html_rows in zip(md_tables, parsed.tables):
        assert [tag for tag, _ in html_rows[0]] == ["th"] * len(html_rows[0])  # one header row ...
        assert all(tag == "td" for row in html_rows[1:] for tag, _ in row)  # ... then only data rows
        assert [[text for _, text in row] for row in html_rows] == md_rows
    return len(md_tables)


def test_renderers_agree_on_headings_and_tables_with_awkward_cells() -> None:
    frame = pd.DataFrame({"a | b": [1.5, None], "<c>": ["x & y", "`z`"]},
                         index=pd.Index(["p|q", "r"], name="metric"))
    doc = Document("T <1>", (("k", "v"),), (
        Section("One & two", (Table(frame), Text("see `x`"))),
        Section("Sub", (Table(frame, index=False), Images(("a.png",)), Links(("d",))), level=3)))
    assert assert_same_structure(render_markdown(doc), render_html(doc)) == 2
    headings, (with_index, _) = markdown_structure(render_markdown(doc))
    assert headings == [(1, "T <1>"), (2, "One & two"), (3, "Sub")]
    assert with_index == [["metric", "a | b", "<c>"], ["p|q", "1.5", "x & y"], ["r", "-", "`z`"]]


def test_a_comparison_report_has_the_same_sections_and_tables_in_both_formats(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "c"
    assert main(["compare", "mixed_floor", "--duration", "600", "--policies", "legacy,exclude_last", "--seeds", "1-2",
                 "--baseline", "legacy", "--jobs", "1", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    md, page = (out / "summary.md").read_text(), (out / "summary.html").read_text()
    headings = [title for _, title in markdown_structure(md)[0]]
    for title in ("Paired differences vs legacy", "Key metrics", "Per group", "Per topic", "Per priority class",
                  "Runs", "Plots"):
        assert title in headings
    assert assert_same_structure(md, page) >= 5
    assert "<tr><th>metric</th>" in page
    sub = out / "legacy-seed1"  # a run report: per-operator table, no plots
    assert assert_same_structure((sub / "summary.md").read_text(), (sub / "summary.html").read_text()) >= 2
