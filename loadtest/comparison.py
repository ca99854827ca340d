"""Simulation vs. load test on one scenario: the side-by-side table and its report files.

Both runs are analysed by the same :func:`chatlab.metrics.analyse` from the same event-log
schema, so any difference in this table is a difference in *behaviour* (the model versus
the real SQL functions under real concurrency), not in bookkeeping.

The relative difference of a metric is ``(load_test - simulation) / |simulation|``.  It is
0 when both are 0 (e.g. the fix's repeat rate), and undefined (``None``, shown as ``-``)
when only the simulation's value is 0 or either side has no value (no served wait).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from chatlab.metrics import Analysis, get_metric, jsonable
from chatlab.report import format_value, markdown_table, text_table, write_comparison_report

#: (dotted metric key, row label, format for chatlab.report.format_value)
COMPARED: tuple[tuple[str, str, str], ...] = (
    ("counts.chats", "chats", "d"),
    ("counts.assignments", "assignments", "d"),
    ("counts.replies", "replies", "d"),
    ("assignment.repeat", "repeat assignments", "d"),
    ("assignment.repeat_rate", "repeat rate", "%"),
    ("assignment.premature", "premature assignments", "d"),
    ("assignment.premature_rate", "premature rate", "%"),
    ("fairness.assignments.jain", "Jain (assignments)", "3"),
    ("fairness.assignments.gini", "Gini (assignments)", "3"),
    ("wait.mean_s", "mean wait (s)", "1"),
    ("wait.p50_s", "p50 wait (s)", "1"),
    ("wait.p90_s", "p90 wait (s)", "1"),
    ("wait.p99_s", "p99 wait (s)", "1"),
    ("wait.abandonment_rate", "abandonment rate", "%"),
    ("health.idle_releases", "idle releases", "d"),
    ("health.queue_mean", "mean queue length", "2"),
)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def relative_difference(simulation: Any, load_test: Any) -> float | None:
    """``(load_test - simulation) / |simulation|``; 0 when both are 0; None when undefined."""
    sim, real = _number(simulation), _number(load_test)
    if sim is None or real is None:
        return None
    if sim == 0:
        return 0.0 if real == 0 else None
    return (real - sim) / abs(sim)


def _metric(run: Analysis, key: str) -> Any:
    try:
        return get_metric(run.metrics, key)
    except KeyError:
        return None


@dataclass(frozen=True)
class Pair:
    """One policy run both ways on the same scenario."""

    policy: str
    simulation: Analysis
    load_test: Analysis

    def rows(self) -> list[dict[str, Any]]:
        """Raw values: one dict per compared metric."""
        out = []
        for key, label, fmt in COMPARED:
            sim, real = _metric(self.simulation, key), _metric(self.load_test, key)
            out.append({"policy": self.policy, "metric": label, "key": key, "format": fmt,
                        "simulation": sim, "load_test": real, "relative_difference": relative_difference(sim, real)})
        return out


def raw_table(pairs: Sequence[Pair]) -> pd.DataFrame:
    """All pairs' rows (numbers, not strings) — what ``sim_vs_real.csv`` holds."""
    return pd.DataFrame([r for p in pairs for r in p.rows()]).drop(columns=["format"])


def display_table(pair: Pair) -> pd.DataFrame:
    """One pair formatted for humans: metric | simulation | load test | relative difference."""
    rows = pair.rows()
    frame = pd.DataFrame({
        "simulation": [format_value(r["simulation"], r["format"]) for r in rows],
        "load test": [format_value(r["load_test"], r["format"]) for r in rows],
        "relative difference": [
            "-" if r["relative_difference"] is None else f"{100 * r['relative_difference']:+.1f}%" for r in rows
        ],
    }, index=[r["metric"] for r in rows])
    frame.index.name = f"{pair.policy}"
    return frame


def text_summary(pairs: Sequence[Pair]) -> str:
    """The terminal version of the table (one block per policy)."""
    return "\n\n".join(text_table(display_table(p)) for p in pairs)


def write_sim_vs_real_report(pairs: Sequence[Pair], out_dir: Path, *, scenario: str,
                             notes: Sequence[str] = ()) -> Path:
    """A comparison report of every run plus the sim-vs-real table (md, html, csv, json).

    The runs' own files come from :func:`chatlab.report.write_comparison_report` (one
    sub-report per run, plots side by side); this adds ``sim_vs_real.csv`` /
    ``sim_vs_real.json`` and a "Simulation vs load test" section at the top of
    ``summary.md`` and ``summary.html``.
    """
    out_dir = Path(out_dir)
    runs = [run for p in pairs for run in (p.simulation, p.load_test)]
    write_comparison_report(runs, out_dir, title=f"Simulation vs load test: {scenario}")
    raw = raw_table(pairs)
    raw.to_csv(out_dir / "sim_vs_real.csv", index=False)
    (out_dir / "sim_vs_real.json").write_text(json.dumps(
        {"scenario": scenario, "definition": "relative_difference = (load_test - simulation) / |simulation|",
         "notes": list(notes),
         "policies": {p.policy: {r["key"]: {k: jsonable(r[k]) for k in ("simulation", "load_test", "relative_difference")}
                                 for r in p.rows()} for p in pairs}},
        indent=2, allow_nan=False) + "\n")

    section = ["## Simulation vs load test", "",
               "Same scenario and duration; the load test ran the real SQL functions under Locust. "
               "Relative difference = (load test - simulation) / |simulation|; `-` where undefined.", ""]
    section += [f"- {n}" for n in notes]
    for pair in pairs:
        section += ["", f"### {pair.policy}", "", markdown_table(display_table(pair)), ""]
    summary = out_dir / "summary.md"
    lines = summary.read_text().split("\n")
    insert_at = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    summary.write_text("\n".join([*lines[:insert_at], *section, "", *lines[insert_at:]]))

    e = html.escape
    block = ["<h2>Simulation vs load test</h2>",
             "<p>Relative difference = (load test - simulation) / |simulation|.</p>"]
    if notes:
        block += ["<ul>"] + [f"<li>{e(n)}</li>" for n in notes] + ["</ul>"]
    for pair in pairs:
        block += [f"<h3>{e(pair.policy)}</h3>", display_table(pair).to_html(escape=True)]
    page = out_dir / "summary.html"
    text = page.read_text()
    marker = "<h2>"
    pos = text.find(marker)
    pos = pos if pos >= 0 else text.rfind("</body>")
    page.write_text(text[:pos] + "\n".join(block) + "\n" + text[pos:])
    return out_dir
