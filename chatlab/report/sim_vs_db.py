"""The "Simulation vs load test" section and files of ``chatlab compare-real``.

The numbers come from :class:`chatlab.metrics.Pair` (both sides analysed by the same metrics;
relative difference ``(load test - simulation) / |simulation|``); this module chooses the
compared metrics, formats them, and writes ``sim_vs_real.csv`` / ``sim_vs_real.json``.  On a
rebuild the pairs are found again among the runs by their labels (``sim:<policy>``,
``db:<policy>``) and the notes come back from ``sim_vs_real.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from chatlab.metrics import AGREEMENT_KEYS, TOLERANCE, Analysis, Pair, agreement, jsonable, within
from chatlab.report.document import Bullets, Section, Table, Text
from chatlab.report.files import ReportError
from chatlab.report.tables import SUMMARY_ROWS, format_spread, format_value, text_table

FILE_JSON, FILE_CSV = "sim_vs_real.json", "sim_vs_real.csv"
SIM_PREFIX, DB_PREFIX = "sim:", "db:"

#: The metrics compared, in order; labels and formats are the key-metrics table's (SUMMARY_ROWS).
COMPARED_KEYS: tuple[str, ...] = (
    "counts.chats", "counts.assignments", "counts.replies", "assignment.repeat", "assignment.repeat_rate",
    "assignment.premature", "assignment.premature_rate", "fairness.assignments.jain", "fairness.assignments.gini",
    "wait.mean_s", "wait.p50_s", "wait.p90_s", "wait.p99_s", "wait.service_level", "wait.abandonment_rate",
    "health.idle_releases",
    "health.queue_mean",
)
#: (dotted metric key, row label, format for chatlab.report.tables.format_value)
COMPARED: tuple[tuple[str, str, str], ...] = tuple(row for key in COMPARED_KEYS for row in SUMMARY_ROWS if row[0] == key)
assert len(COMPARED) == len(COMPARED_KEYS), "every compared metric is a row of the key-metrics table"
_KEYS = tuple(k for k, _, _ in COMPARED)
assert set(AGREEMENT_KEYS) <= set(_KEYS), "every judged metric is shown"


def raw_table(pairs: Sequence[Pair]) -> pd.DataFrame:
    """All pairs' rows (numbers, not strings) — what ``sim_vs_real.csv`` holds."""
    labels = {k: label for k, label, _ in COMPARED}
    rows = [{"policy": r["policy"], "metric": labels[r["key"]], **{k: v for k, v in r.items() if k != "policy"}}
            for p in pairs for r in p.rows(_KEYS)]
    return pd.DataFrame(rows, columns=["policy", "metric", "key", "simulation", "load_test", "relative_difference",
                                       "simulation_ci95", "load_test_ci95", "noise", "beyond_noise"])


def display_table(pair: Pair) -> pd.DataFrame:
    """One pair formatted for humans: metric | simulation | load test | relative difference."""
    rows = pair.rows(_KEYS)

    def side(r: dict, which: str, fmt: str) -> str:
        return format_spread(r[which], r[f"{which}_ci95"], fmt) if r[f"{which}_ci95"] is not None \
            else format_value(r[which], fmt)

    def rel(r: dict) -> str:
        if r["relative_difference"] is None:
            return "-"
        return f"{100 * r['relative_difference']:+.1f}%" + (" *" if r["beyond_noise"] else "")

    def agrees(r: dict) -> str:
        if r["key"] not in AGREEMENT_KEYS:
            return ""
        return "yes" if within(r["simulation"], r["load_test"], r["noise"]) else "no"

    frame = pd.DataFrame({
        "simulation": [side(r, "simulation", fmt) for r, (_, _, fmt) in zip(rows, COMPARED)],
        "load test": [side(r, "load_test", fmt) for r, (_, _, fmt) in zip(rows, COMPARED)],
        "relative difference": [rel(r) for r in rows],
        "agrees": [agrees(r) for r in rows],
    }, index=[label for _, label, _ in COMPARED])
    frame.index.name = pair.policy
    return frame


def agreement_line(pairs: Sequence[Pair]) -> str:
    """One line: do both sides agree on every key metric (``metrics.json``'s ``agreement.all_within``)?"""
    judged = agreement(pairs)
    off = [f"{policy}: {', '.join(k for k, m in p['metrics'].items() if not m['within'])}"
           for policy, p in judged["policies"].items() if not p["all_within"]]
    return (f"agreement (within {100 * TOLERANCE:g} % or the noise) on every key metric: "
            f"{'yes' if judged['all_within'] else 'no'}" + (f" (not: {'; '.join(off)})" if off else ""))


def text_summary(pairs: Sequence[Pair]) -> str:
    """The terminal version of the table (one block per policy) and the agreement line."""
    return "\n\n".join([*(text_table(display_table(p)) for p in pairs), agreement_line(pairs)])


def section(pairs: Sequence[Pair], notes: Sequence[str]) -> list[Section]:
    """The overview section and one sub-section per policy."""
    replicated = any(r["noise"] is not None for p in pairs for r in p.rows(_KEYS))
    noise = (" Both sides were replicated over seeds: each value is the mean ± its 95 % confidence interval, and "
             "`*` marks a difference beyond the noise (larger than the two half-widths combined, "
             "sqrt(h_sim² + h_db²))." if replicated else
             " One seed per side: no noise band (run with `--seeds 1-3` to replicate both sides).")
    head = Section("Simulation vs load test", (
        Text("Same scenario and duration; the load test ran the real SQL functions under Locust. "
             "Relative difference = (load test - simulation) / |simulation|; `-` where undefined." + noise +
             f" A key metric *agrees* when the relative difference is at most {100 * TOLERANCE:g} % or the difference "
             "is inside the noise band (`metrics.json`: `agreement`)."),
        Text(agreement_line(pairs) + "."),
        *((Bullets(tuple(notes)),) if notes else ())))
    return [head] + [Section(p.policy, (Table(display_table(p)),), level=3) for p in pairs]


def write_files(pairs: Sequence[Pair], out_dir: Path, *, scenario: str, notes: Sequence[str]) -> None:
    """``sim_vs_real.csv`` (every number) and ``sim_vs_real.json`` (the same, plus the notes)."""
    raw_table(pairs).to_csv(out_dir / FILE_CSV, index=False)
    (out_dir / FILE_JSON).write_text(json.dumps(
        {"scenario": scenario, "definition": "relative_difference = (load_test - simulation) / |simulation|",
         "notes": list(notes),
         "policies": {p.policy: {r["key"]: {k: jsonable(r[k]) for k in ("simulation", "load_test", "relative_difference",
                                                                       "simulation_ci95", "load_test_ci95", "noise",
                                                                       "beyond_noise")}
                                 for r in p.rows(_KEYS)} for p in pairs}},
        indent=2, allow_nan=False) + "\n")


def pairs_of(runs: Sequence[Analysis]) -> list[Pair]:
    """The (simulation, load test) pairs among runs labelled ``sim:<policy>`` / ``db:<policy>`` (several
    seeds of a label pooled, with their intervals)."""
    from chatlab.metrics import pool

    grouped: dict[str, list[Analysis]] = {}
    for r in runs:
        grouped.setdefault(r.label, []).append(r)
    runs = [pool(label, members) for label, members in grouped.items()]
    by_label = {r.label: r for r in runs}
    pairs = []
    for run in runs:
        if run.label.startswith(SIM_PREFIX):
            policy = run.label[len(SIM_PREFIX):]
            db = by_label.get(DB_PREFIX + policy)
            if db is None:
                raise ReportError(f"run {run.label!r} has no load-test partner labelled {DB_PREFIX + policy!r}")
            pairs.append(Pair(policy, run, db))
    return pairs


def read_saved(out_dir: Path) -> dict[str, Any] | None:
    """``sim_vs_real.json`` of a compare-real directory, or None."""
    path = Path(out_dir) / FILE_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot read ({exc})") from None
