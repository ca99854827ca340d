"""``chatlab report DIR`` rebuilds every kind of report directory byte for byte, and a page's
Markdown and HTML carry the same content (one document, two renderers).

What a rebuild reads: each run's ``events.parquet`` and ``run.json``, and the JSON files
that say what kind of report it is and in which order its runs go (``metrics.json``'s
``subdirs``, a load test's ``loadtest.json``, compare-real's ``sim_vs_real.json``).

The load-test and compare-real kinds need a real database; their rebuilds are checked in
``tests/test_loadtest_flows.py`` next to the runs that make them.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

from chatlab.cli import main


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _rebuilt_identically(tmp_path: Path, original: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    for path in copy.rglob("*"):  # pages, tables and plots are all written again from the sources
        if path.is_file() and path.suffix in (".md", ".html", ".png", ".csv") and not path.name.startswith("locust"):
            path.unlink()
    assert main(["report", str(copy)]) == 0
    before, after = _files(original), _files(copy)
    assert sorted(before) == sorted(after)
    assert [name for name in before if before[name] != after[name]] == []


@pytest.mark.parametrize("command", [
    ["run", "baseline", "--duration", "1800", "--seed", "3"],
    ["compare", "baseline", "--duration", "1800", "--policies", "legacy,exclude_last,round_robin"],
    ["compare", "peak_hour", "--duration", "1200", "--policies", "legacy,least_loaded", "--seeds", "1-2"],
], ids=["run", "comparison", "multi-seed"])
def test_rebuild_is_byte_identical(tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "original"
    assert main([*command, "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    _rebuilt_identically(tmp_path, out)


def _markdown_content(text: str) -> list[str]:
    """Headings, table cells, list items and paragraphs of a page, in order, as plain text."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or re.fullmatch(r"\|(---\|)+", line):
            continue
        if line.startswith("|"):
            out += [c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
        elif line.startswith("!["):
            out.append(re.sub(r"!\[[^]]*\]\(([^)]+)\)", r"\1", line))
        else:
            line = re.sub(r"^(#+|-) ", "", line)
            line = re.sub(r"\[`([^`]+)`\]\([^)]+\)", r"\1", line)
            out.append(line.replace("**", "").replace("`", ""))
    return out


def _html_content(text: str) -> list[str]:
    body = text.split("<body>", 1)[1]
    out = []
    for chunk in re.findall(r'<(?:h\d|li|p|th|td)>(.*?)</(?:h\d|li|p|th|td)>|<img src="([^"]+)"', body, re.S):
        raw = chunk[0] or chunk[1]
        out.append(html.unescape(re.sub(r"<[^>]+>", "", raw)).strip())
    return out


def test_markdown_and_html_carry_the_same_content(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "c"
    assert main(["compare", "baseline", "--duration", "900", "--policies", "legacy,exclude_last", "--out", str(out),
                 "--no-progress"]) == 0
    capsys.readouterr()
    for page in (out, out / "legacy"):
        md = _markdown_content((page / "summary.md").read_text())
        hml = _html_content((page / "summary.html").read_text())
        assert md == hml
        assert "Key metrics" in md and len(md) > 50
