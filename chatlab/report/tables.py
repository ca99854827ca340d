"""The key-metrics table of one or more runs: which metrics, in which order, formatted how.

One row per metric (:data:`SUMMARY_ROWS`; the terminal shows :data:`TERMINAL_ROWS`), one
column per run; a run pooled over seeds shows ``mean ± 95 % CI half-width``.  The cells are strings, so the
same table goes to the terminal (:func:`text_table`), Markdown and HTML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from chatlab.metrics import Analysis, get_metric

#: (dotted metric key, row label, format) of the summary tables, in order.
SUMMARY_ROWS: tuple[tuple[str, str, str], ...] = (
    ("run.policy", "policy", "s"),
    ("run.seed", "seed", "s"),
    ("run.duration_s", "duration (h)", "h"),
    ("run.operators", "operators", "d"),
    ("counts.chats", "chats", "d"),
    ("counts.assignments", "assignments", "d"),
    ("counts.replies", "handled messages (replies)", "d"),
    ("assignment.repeat", "repeat assignments", "d"),
    ("assignment.repeat_rate", "repeat rate", "%"),
    ("assignment.premature", "premature assignments", "d"),
    ("assignment.premature_rate", "premature rate", "%"),
    ("fairness.assignments.gini", "Gini (assignments)", "3"),
    ("fairness.assignments.jain", "Jain (assignments)", "3"),
    ("fairness.assignments.cv", "CV (assignments)", "3"),
    ("fairness.assignments.max_min_ratio", "max/min (assignments)", "2"),
    ("fairness.assignments_per_online_hour.gini", "Gini (assignments per online h)", "3"),
    ("fairness.assignments_per_online_hour.jain", "Jain (assignments per online h)", "3"),
    ("fairness.replies.jain", "Jain (replies)", "3"),
    ("fairness.utilisation.mean", "mean utilisation", "%"),
    ("fairness.utilisation.gini", "Gini (utilisation)", "3"),
    ("fairness.utilisation.jain", "Jain (utilisation)", "3"),
    ("wait.served", "waits served", "d"),
    ("wait.mean_s", "mean wait (s)", "1"),
    ("wait.p50_s", "p50 wait (s)", "1"),
    ("wait.p90_s", "p90 wait (s)", "1"),
    ("wait.p99_s", "p99 wait (s)", "1"),
    ("wait.max_s", "max wait (s)", "1"),
    ("wait.service_level", "service level (≤ T)", "%"),
    ("wait.censored", "censored waits", "d"),
    ("wait.abandonment_rate", "abandonment rate", "%"),
    ("health.stuck_chats", "stuck chats", "d"),
    ("health.idle_releases", "idle releases", "d"),
    ("health.idle_false_positives", "idle false positives", "d"),
    ("health.queue_mean", "mean queue length", "2"),
    ("health.queue_max", "max queue length", "d"),
    ("occupancy.waiting_assignment.share", "time share waiting_assignment", "%"),
    ("occupancy.assigned.share", "time share assigned", "%"),
    ("occupancy.waiting_real_user_reply.share", "time share waiting_real_user_reply", "%"),
)


#: The row a table gets when any of its runs left a warm-up out of its metrics.
WARMUP_ROW = ("run.warmup_s", "warm-up cut (s)", "0")

#: The shorter table ``chatlab compare`` prints in the terminal (the full one is in summary.md).
TERMINAL_ROWS: tuple[tuple[str, str, str], ...] = tuple(
    r for r in SUMMARY_ROWS if r[0] in (
        "counts.chats", "counts.assignments", "assignment.repeat", "assignment.repeat_rate",
        "assignment.premature_rate", "fairness.assignments.gini", "fairness.assignments_per_online_hour.jain",
        "fairness.utilisation.jain",
        "wait.mean_s", "wait.p90_s", "wait.p99_s", "wait.service_level", "wait.abandonment_rate",
        "health.stuck_chats", "health.idle_false_positives", "health.queue_mean",
    )
)


def format_value(value: Any, fmt: str) -> str:
    """One table cell: ``-`` for missing, percentages with one decimal, counts as integers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if fmt == "s":
        return str(value)
    if fmt == "d":
        return f"{int(value):d}"
    if fmt == "%":
        return f"{100 * float(value):.1f}%"
    if fmt == "h":
        return f"{float(value) / 3600:.2f}"
    return f"{float(value):.{int(fmt)}f}"


def format_spread(mean: Any, std: Any, fmt: str) -> str:
    """A cell of a multi-seed table: ``mean ± half-width`` (counts get one decimal when not whole)."""
    if fmt == "d" and mean is not None and float(mean) != int(float(mean)):
        fmt = "1"
    text = format_value(mean, fmt)
    if std is None or text == "-" or fmt == "s":
        return text
    return f"{text} ± {format_value(std, '1' if fmt == 'd' else fmt)}"


def summary_table(runs: Sequence[Analysis], rows: Sequence[tuple[str, str, str]] = SUMMARY_ROWS) -> pd.DataFrame:
    """Key metrics as formatted strings: one row per metric, one column per run.

    A run pooled over seeds (``run.interval`` set) shows ``mean ± the 95 % confidence interval's
    half-width`` (Student t over the seeds) and its seeds.
    """
    if any((r.metrics["run"].get("warmup_s") or 0) > 0 for r in runs) and WARMUP_ROW not in rows:
        at = next((i + 1 for i, r in enumerate(rows) if r[0] == "run.duration_s"), 0)
        rows = (*rows[:at], WARMUP_ROW, *rows[at:])  # a cut is shown wherever it applies
    data = {}
    for run in runs:
        col = []
        for key, _, fmt in rows:
            try:
                value = get_metric(run.metrics, key)
            except KeyError:
                col.append("-")
                continue
            if key == "run.seed" and run.seeds:
                col.append(",".join(map(str, run.seeds)))
            elif run.interval is not None:
                try:
                    half = get_metric(run.interval, key)
                except KeyError:
                    half = None
                col.append(format_spread(value, half, fmt))
            else:
                col.append(format_value(value, fmt))
        data[run.label] = col
    frame = pd.DataFrame(data, index=[label for _, label, _ in rows])
    frame.index.name = "metric"
    return frame


def _rows_as(pairs: Sequence[tuple[str, str]]) -> tuple[tuple[str, str, str], ...]:
    """Rows of a floor section labelled and formatted as the key-metrics row they mirror:
    (key in the section, key of :data:`SUMMARY_ROWS`) -> (key in the section, label, format)."""
    known = {key: (label, fmt) for key, label, fmt in SUMMARY_ROWS}
    return tuple((mine, *known[theirs]) for mine, theirs in pairs)


#: Per-group rows: (key under groups.<name>, label, format).
GROUP_ROWS = _rows_as((("operators", "run.operators"), ("assignments", "counts.assignments"),
                       ("utilisation_mean", "fairness.utilisation.mean"),
                       ("utilisation.jain", "fairness.utilisation.jain"),
                       ("assignments_per_online_hour.jain", "fairness.assignments_per_online_hour.jain")))
#: Per-topic and per-class rows: (key under topics.<name> / priorities.<class>, label, format).
CLASS_ROWS = _rows_as((("chats", "counts.chats"), ("mean_s", "wait.mean_s"), ("p90_s", "wait.p90_s"),
                       ("service_level", "wait.service_level"), ("abandonment_rate", "wait.abandonment_rate")))


def section_rows(runs: Sequence[Analysis], section: str, rows: Sequence[tuple[str, str, str]],
                 prefix: str = "") -> list[tuple[str, str, str]]:
    """Summary-table rows for every name of a floor section (``groups``, ``topics``,
    ``priorities``) over the runs: ``(section.<name>.<key>, "<prefix><name>: <label>", fmt)``."""
    names = list(dict.fromkeys(n for r in runs for n in (r.metrics.get(section) or {})))
    return [(f"{section}.{name}.{key}", f"{prefix}{name}: {label}", fmt) for name in names for key, label, fmt in rows]


def text_table(frame: pd.DataFrame) -> str:
    """A plain aligned table for the terminal (index as the first column)."""
    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    body = [[str(i)] + [str(v) for v in row] for i, row in zip(frame.index, frame.itertuples(index=False))]
    widths = [max(len(r[k]) for r in [header, *body]) for k in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in body)])


def slug(label: str) -> str:
    """A file-system-safe directory name for a run label."""
    return re.sub(r"[^A-Za-z0-9._=,-]+", "_", label).strip("_") or "run"
