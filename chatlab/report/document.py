"""A report as data: a title, facts and sections of blocks, rendered to Markdown and HTML alike.

Why data: every part of a report — the key metrics, a load test's Locust figures, the
simulation-vs-database table, anything added later — is a :class:`Section` handed to one
writer (:func:`write_document`), so nothing ever patches a written file, both formats carry
exactly the same content (one set of cells feeds both tables), and ``chatlab report DIR``
can rebuild any report from the files in its directory.

Inline text may use Markdown's ``code`` and **bold**; the HTML renderer turns those into
``<code>`` and ``<b>`` after escaping everything else.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import pandas as pd


@dataclass(frozen=True)
class Text:
    """A paragraph."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """A bulleted list."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A table; ``index`` shows the frame's index as the first column (headed by its name)."""

    frame: pd.DataFrame
    index: bool = True


@dataclass(frozen=True)
class Images:
    """Plots, by file name relative to the report directory."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class Links:
    """Links to sub-reports: each a directory holding its own ``summary.md`` / ``summary.html``."""

    dirs: tuple[str, ...]


Block = Union[Text, Bullets, Table, Images, Links]


@dataclass(frozen=True)
class Section:
    """A headed part of a report (``level`` 2 = ``##``, 3 = ``###``)."""

    title: str
    blocks: tuple[Block, ...] = ()
    level: int = 2


@dataclass(frozen=True)
class Document:
    """A whole report page: title, (key, value) facts shown as a list, then the sections."""

    title: str
    facts: tuple[tuple[str, str], ...] = ()
    sections: tuple[Section, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- cells


def short_number(value: float) -> str:
    """3 significant digits, but never an exponent for a big value: 14100 s is ``14,100``, not ``1.41e+04``."""
    value = float(value)
    if math.isfinite(value) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def cell(value: Any, floatfmt: str | None = None) -> str:
    """One table cell as text: ``-`` for missing, floats to 3 significant digits (:func:`short_number`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "-"
    if isinstance(value, float):
        return short_number(value) if floatfmt is None else floatfmt.format(value)
    return str(value)


def table_cells(frame: pd.DataFrame, *, index: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of a table, the same strings for both renderers."""
    header = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    body = [([cell(i)] if index else []) + [cell(v) for v in row]
            for i, row in zip(frame.index, frame.itertuples(index=False))]
    return header, body


def markdown_table(frame: pd.DataFrame, *, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency)."""
    header, body = table_cells(frame, index=index)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "|".join(["---"] * len(header)) + "|", *(line(r) for r in body)])


# --------------------------------------------------------------------------- renderers


def render_markdown(doc: Document) -> str:
    parts = [f"# {doc.title}", ""]
    if doc.facts:
        parts += [f"- **{k}**: {v}" for k, v in doc.facts] + [""]
    for section in doc.sections:
        parts += [f"{'#' * section.level} {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Text):
                parts += [block.text, ""]
            elif isinstance(block, Bullets):
                parts += [f"- {item}" for item in block.items] + [""]
            elif isinstance(block, Table):
                parts += [markdown_table(block.frame, index=block.index), ""]
            elif isinstance(block, Images):
                parts += [f"![{Path(p).stem}]({p})" for p in block.paths] + [""]
            elif isinstance(block, Links):
                parts += [f"- [`{d}/`]({d}/summary.md)" for d in block.dirs] + [""]
    return "\n".join(parts)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%;margin:1em 0;border:1px solid #eee}"""


def _inline(text: str) -> str:
    """Escape, then Markdown's ``code`` and **bold** as HTML."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def _html_table(frame: pd.DataFrame, index: bool) -> str:
    header, body = table_cells(frame, index=index)
    e = html.escape
    rows = ["<tr>" + "".join(f"<th>{e(c)}</th>" for c in header) + "</tr>"]
    rows += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in body]
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def render_html(doc: Document) -> str:
    e = html.escape
    body = [f"<h1>{e(doc.title)}</h1>"]
    if doc.facts:
        body += ["<ul>"] + [f"<li><b>{e(k)}</b>: {_inline(v)}</li>" for k, v in doc.facts] + ["</ul>"]
    for section in doc.sections:
        body.append(f"<h{section.level}>{e(section.title)}</h{section.level}>")
        for block in section.blocks:
            if isinstance(block, Text):
                body.append(f"<p>{_inline(block.text)}</p>")
            elif isinstance(block, Bullets):
                body += ["<ul>"] + [f"<li>{_inline(item)}</li>" for item in block.items] + ["</ul>"]
            elif isinstance(block, Table):
                body.append(_html_table(block.frame, block.index))
            elif isinstance(block, Images):
                body += [f'<img src="{e(p)}" alt="{e(Path(p).stem)}">' for p in block.paths]
            elif isinstance(block, Links):
                body += ["<ul>"] + [f'<li><a href="{e(d)}/summary.html"><code>{e(d)}/</code></a></li>'
                                    for d in block.dirs] + ["</ul>"]
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{e(doc.title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_document(doc: Document, out_dir: Path) -> None:
    """``summary.md`` and ``summary.html`` of ``doc`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.md").write_text(render_markdown(doc))
    (out_dir / "summary.html").write_text(render_html(doc))
