"""Report directories: tables, ``metrics.json``, the event log and the plots of one or more runs.

Layout of a **run report** (``chatlab run``, ``chatlab report LOG``)::

    summary.md / summary.html   key metrics table, per-operator table, the plots
    metrics.json                compute_metrics() of the run (keys: README / METRIC_DOCS)
    metrics.csv                 the same, flattened to one row (dotted column names)
    per_operator.csv            per_operator() table
    per_hour.csv                per_hour() table
    events.parquet, events.csv  the event log (sim/eventlog.py schema)
    run.json                    the log's attrs + the run's label (CSV cannot hold attrs)
    *.png                       lorenz, operator_assignments, wait_cdf, queue_length,
                                state_occupancy, repeat_assignments

A **comparison report** (``chatlab compare``) has the same top-level files for all runs
side by side (``metrics.json`` is ``{"schema_version", "kind": "comparison", "labels",
"subdirs", "runs": {label: metrics}}``, CSVs gain a ``label`` column) and one run report per
run in a sub-directory named after its label (without plots, to keep compare fast).  With
several seeds per label (``compare --seeds``) the columns are means ± std over seeds,
``runs`` holds the means, ``std`` the spreads, ``seeds`` and ``per_seed`` every seed's
metrics, and the sub-directories are ``<label>-seed<N>``.  Every report can be rebuilt from
its event logs with ``chatlab report DIR``.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from chatlab.metrics import (
    DEFAULT_SERVICE_LEVEL_T,
    Analysis,
    jsonable,
    analyse,
    flatten_metrics,
    get_metric,
)
from chatlab.plots import PLOT_FILES, write_plots
from sim.errors import InvalidEventLog
from sim.eventlog import read_log, write_log

LOG_NAMES = ("events.parquet", "events.csv")
RUN_SIDECAR = "run.json"

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


#: The shorter table ``chatlab compare`` prints in the terminal (the full one is in summary.md).
TERMINAL_ROWS: tuple[tuple[str, str, str], ...] = tuple(
    r for r in SUMMARY_ROWS if r[0] in (
        "counts.chats", "counts.assignments", "assignment.repeat", "assignment.repeat_rate",
        "assignment.premature_rate", "fairness.assignments.gini", "fairness.assignments_per_online_hour.jain",
        "wait.mean_s", "wait.p90_s", "wait.p99_s", "wait.service_level", "wait.abandonment_rate",
        "health.stuck_chats", "health.idle_false_positives", "health.queue_mean",
    )
)


class ReportError(InvalidEventLog):
    """A report source that cannot be read (no event log where one was expected)."""


# --------------------------------------------------------------------------- formatting


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
    """A cell of a multi-seed table: ``mean ± std`` (counts get one decimal when not whole)."""
    if fmt == "d" and mean is not None and float(mean) != int(float(mean)):
        fmt = "1"
    text = format_value(mean, fmt)
    if std is None or text == "-" or fmt == "s":
        return text
    return f"{text} ± {format_value(std, '1' if fmt == 'd' else fmt)}"


def summary_table(runs: Sequence[Analysis], rows: Sequence[tuple[str, str, str]] = SUMMARY_ROWS) -> pd.DataFrame:
    """Key metrics as formatted strings: one row per metric, one column per run.

    A run pooled over seeds (``run.spread`` set) shows ``mean ± std`` and its seeds.
    """
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
            elif run.spread is not None:
                try:
                    std = get_metric(run.spread, key)
                except KeyError:
                    std = None
                col.append(format_spread(value, std, fmt))
            else:
                col.append(format_value(value, fmt))
        data[run.label] = col
    frame = pd.DataFrame(data, index=[label for _, label, _ in rows])
    frame.index.name = "metric"
    return frame


def text_table(frame: pd.DataFrame) -> str:
    """A plain aligned table for the terminal (index as the first column)."""
    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    body = [[str(i)] + [str(v) for v in row] for i, row in zip(frame.index, frame.itertuples(index=False))]
    widths = [max(len(r[k]) for r in [header, *body]) for k in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in body)])


def markdown_table(frame: pd.DataFrame, *, index: bool = True, floatfmt: str = "{:.3g}") -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency)."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "-" if math.isnan(v) else floatfmt.format(v)
        return str(v).replace("|", "\\|")

    cols = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    for idx, row in zip(frame.index, frame.itertuples(index=False)):
        cells = ([cell(idx)] if index else []) + [cell(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def slug(label: str) -> str:
    """A file-system-safe directory name for a run label."""
    return re.sub(r"[^A-Za-z0-9._=,-]+", "_", label).strip("_") or "run"


# --------------------------------------------------------------------------- logs on disk


def save_log(log: pd.DataFrame, out_dir: Path, *, label: str | None = None) -> None:
    """Write ``events.parquet``, ``events.csv`` and ``run.json`` (attrs + label) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    attrs = jsonable(dict(log.attrs))
    frame = log.copy()
    frame.attrs = attrs  # parquet stores attrs as JSON: keep them JSON-safe
    write_log(frame, out_dir / "events.parquet")
    write_log(frame, out_dir / "events.csv")
    (out_dir / RUN_SIDECAR).write_text(json.dumps({"label": label, "attrs": attrs}, indent=2, allow_nan=False) + "\n")


def load_log(path: Path) -> tuple[pd.DataFrame, str | None]:
    """Read one event log; attrs come from the file (parquet) or a ``run.json`` beside it.

    Returns the log and the label recorded in ``run.json`` (or ``None``).
    """
    path = Path(path)
    log = read_log(path)
    sidecar = path.parent / RUN_SIDECAR
    label = None
    if sidecar.exists():
        try:
            info = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            raise ReportError(f"{sidecar}: cannot read run attributes ({exc})") from None
        label = info.get("label")
        for key, value in (info.get("attrs") or {}).items():
            log.attrs.setdefault(key, value)
    return log, label


def find_logs(path: Path) -> list[Path]:
    """The event logs behind a report source: a log file, a run report dir, or a comparison dir."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: no such file or directory (expected an event log or a report directory)")
    if path.is_file():
        return [path]
    for name in LOG_NAMES:
        if (path / name).is_file():
            return [path / name]
    order: list[str] = []
    meta = path / "metrics.json"
    if meta.is_file():
        try:
            info = json.loads(meta.read_text())
            order = list(info.get("subdirs") or [slug(label) for label in info.get("labels", [])])
        except (OSError, ValueError, AttributeError):
            order = []
    found: list[Path] = []
    subdirs = sorted((p for p in path.iterdir() if p.is_dir()), key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))
    for sub in subdirs:
        for name in LOG_NAMES:
            if (sub / name).is_file():
                found.append(sub / name)
                break
    if not found:
        raise ReportError(f"{path}: no events.parquet or events.csv in it or its sub-directories")
    return found


def load_runs(path: Path, *, service_level_t: float = DEFAULT_SERVICE_LEVEL_T,
              stuck_after: float | None = None) -> list[Analysis]:
    """Analyse every event log behind ``path`` (see :func:`find_logs`); labels are made unique."""
    runs: list[Analysis] = []
    seen: set[tuple[str, Any]] = set()
    for log_path in find_logs(path):
        log, label = load_log(log_path)
        run = analyse(log, label=label, service_level_t=service_level_t, stuck_after=stuck_after)
        key = (run.label, run.metrics["run"]["seed"])
        if key in seen:  # same label and seed twice (e.g. two load tests): keep both, apart
            run = dataclasses.replace(run, label=f"{run.label} [{log_path.parent.name}]")
            key = (run.label, key[1])
        seen.add(key)
        runs.append(run)
    return runs


# --------------------------------------------------------------------------- writing


def _json_dump(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")


def _run_header(runs: Sequence[Analysis]) -> list[tuple[str, str]]:
    info = runs[0].metrics["run"]

    def every(key: str) -> str | None:
        """All distinct values over the runs (a sim-vs-load-test report has two sources)."""
        values = [str(v) for v in dict.fromkeys(r.metrics["run"].get(key) for r in runs) if v is not None]
        return ", ".join(values) or None

    items = [("scenario", every("scenario")), ("source", every("source")), ("mode", every("mode")),
             ("duration", f"{info['duration_s']:g} s"), ("service level T", f"{runs[0].metrics['params']['service_level_t_s']:g} s"),
             ("stuck after", f"{runs[0].metrics['params']['stuck_after_s']:g} s")]
    if len(runs) == 1:
        items[1:1] = [("policy", info.get("policy")), ("seed", info.get("seed"))]
    return [(k, str(v)) for k, v in items if v not in (None, "None")]


def _markdown(title: str, runs: Sequence[Analysis], plots: Sequence[str], per_op: pd.DataFrame | None,
              subdirs: Sequence[str] = ()) -> str:
    parts = [f"# {title}", ""]
    parts += [f"- **{k}**: {v}" for k, v in _run_header(runs)]
    parts += ["", "## Key metrics", "", markdown_table(summary_table(runs)), ""]
    parts += ["Definitions of every metric: `metrics.json` keys are documented in the README "
              "(\"Metrics and reports\"). Waits exclude censored waits (abandoned or still open).", ""]
    if per_op is not None:
        parts += ["## Per operator", "", markdown_table(per_op.set_index("operator_id")), ""]
    if subdirs:
        parts += ["## Runs", ""] + [f"- [`{d}/`]({d}/summary.md)" for d in subdirs] + [""]
    if plots:
        parts += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    return "\n".join(parts)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}tbody th{text-align:left}img{max-width:100%;margin:1em 0;border:1px solid #eee}"""


def _html(title: str, runs: Sequence[Analysis], plots: Sequence[str], per_op: pd.DataFrame | None,
          subdirs: Sequence[str] = ()) -> str:
    e = html.escape
    body = [f"<h1>{e(title)}</h1>", "<ul>"] + [f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in _run_header(runs)] + ["</ul>"]
    body += ["<h2>Key metrics</h2>", summary_table(runs).to_html(escape=True)]
    if per_op is not None:
        body += ["<h2>Per operator</h2>", per_op.to_html(index=False, escape=True, float_format=lambda v: f"{v:.3g}", na_rep="-")]
    if subdirs:
        body += ["<h2>Runs</h2>", "<ul>"] + [f'<li><a href="{e(d)}/summary.html">{e(d)}/</a></li>' for d in subdirs] + ["</ul>"]
    if plots:
        body += ["<h2>Plots</h2>"] + [f'<img src="{e(p)}" alt="{e(Path(p).stem)}">' for p in plots]
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_run_report(run: Analysis, out_dir: Path, *, plots: bool = True, title: str | None = None) -> Path:
    """Write a single-run report directory (layout in the module docstring); return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_log(run.log, out_dir, label=run.label)
    _json_dump(run.metrics, out_dir / "metrics.json")
    pd.DataFrame([{"label": run.label, **flatten_metrics(run.metrics)}]).to_csv(out_dir / "metrics.csv", index=False)
    run.per_operator.to_csv(out_dir / "per_operator.csv", index=False)
    run.per_hour.to_csv(out_dir / "per_hour.csv", index=False)
    images = [p.name for p in write_plots([run], out_dir)] if plots else []
    scenario = run.metrics["run"].get("scenario")
    title = title or f"Run report: {scenario or 'event log'} / {run.label}"
    (out_dir / "summary.md").write_text(_markdown(title, [run], images, run.per_operator))
    (out_dir / "summary.html").write_text(_html(title, [run], images, run.per_operator))
    return out_dir


def group_by_label(runs: Sequence[Analysis]) -> dict[str, list[Analysis]]:
    """Runs grouped by label in first-seen order; a repeated label must have distinct seeds."""
    groups: dict[str, list[Analysis]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    for label, members in groups.items():
        seeds = [m.metrics["run"]["seed"] for m in members]
        if len(members) > 1 and (None in seeds or len(set(seeds)) != len(seeds)):
            raise ReportError(f"run labels must be unique in a comparison (or differ by seed), "
                              f"got {len(members)} runs labelled {label!r} with seeds {seeds}")
    return groups


def pooled_runs(runs: Sequence[Analysis]) -> list[Analysis]:
    """One analysis per label (seeds of a label pooled, see :mod:`chatlab.pooling`)."""
    from chatlab.pooling import pool

    return [pool(label, members) for label, members in group_by_label(runs).items()]


def write_comparison_report(runs: Sequence[Analysis], out_dir: Path, *, title: str | None = None,
                            sub_reports: bool = True) -> Path:
    """Write a side-by-side report of several runs (plus one sub-report each); return the dir.

    Runs sharing a label are seeds of one policy: the tables and plots show one column per
    label (mean ± std over its seeds, see :mod:`chatlab.pooling`), ``metrics.json`` gains
    ``seeds``, ``std`` and ``per_seed``, and each seed gets its own sub-report.
    """
    if not runs:
        raise ReportError("nothing to report: no runs")
    out_dir = Path(out_dir)
    groups = group_by_label(runs)
    multi = any(len(g) > 1 for g in groups.values())
    labels = list(groups)
    out_dir.mkdir(parents=True, exist_ok=True)
    subdirs = []
    if sub_reports:
        for run in runs:
            name = slug(f"{run.label}-seed{run.metrics['run']['seed']}" if multi else run.label)
            write_run_report(run, out_dir / name, plots=False)
            subdirs.append(name)
    shown = pooled_runs(runs)
    meta: dict[str, Any] = {"schema_version": runs[0].metrics["schema_version"], "kind": "comparison",
                            "labels": labels, "subdirs": subdirs, "runs": {r.label: r.metrics for r in shown}}
    if multi:
        meta["seeds"] = {label: [m.metrics["run"]["seed"] for m in g] for label, g in groups.items()}
        meta["std"] = {r.label: r.spread for r in shown if r.spread is not None}
        meta["per_seed"] = {label: {str(m.metrics["run"]["seed"]): m.metrics for m in g} for label, g in groups.items()}
    _json_dump(meta, out_dir / "metrics.json")
    pd.DataFrame([{"label": r.label, **flatten_metrics(r.metrics)} for r in runs]).to_csv(out_dir / "metrics.csv", index=False)
    pd.concat([r.per_operator.assign(label=r.label) for r in shown], ignore_index=True).to_csv(
        out_dir / "per_operator.csv", index=False)
    images = [p.name for p in write_plots(shown, out_dir)]
    scenario = runs[0].metrics["run"].get("scenario")
    title = title or f"Policy comparison: {scenario or 'event logs'}"
    if multi:
        seeds = sorted({s for g in groups.values() for s in (m.metrics["run"]["seed"] for m in g) if s is not None})
        title += f" (mean ± std over seeds {', '.join(map(str, seeds))})"
    (out_dir / "summary.md").write_text(_markdown(title, shown, images, None, subdirs))
    (out_dir / "summary.html").write_text(_html(title, shown, images, None, subdirs))
    return out_dir


def write_report(runs: Sequence[Analysis], out_dir: Path, *, title: str | None = None) -> Path:
    """A run report for one run, a comparison report for several."""
    if len(runs) == 1:
        return write_run_report(runs[0], out_dir, title=title)
    return write_comparison_report(runs, out_dir, title=title)


REPORT_FILES = ("summary.md", "summary.html", "metrics.json", "metrics.csv", "per_operator.csv",
                *PLOT_FILES.values())
RUN_REPORT_FILES = (*REPORT_FILES, "per_hour.csv", *LOG_NAMES, RUN_SIDECAR)
