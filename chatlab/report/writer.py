"""Report directories: one writer for every kind, each page a :class:`~chatlab.report.document.Document`.

Layout of a **run report** (``chatlab run``, ``chatlab report LOG``)::

    summary.md / summary.html   header, key metrics, per-operator table, the plots
    metrics.json                compute_metrics() of the run (keys: README / METRIC_DOCS)
    metrics.csv                 the same, flattened to one row (dotted column names)
    per_operator.csv            per_operator() table
    per_hour.csv                per_hour() table
    events.parquet, events.csv  the event log (sim/eventlog.py schema)
    run.json                    the log's attrs + the run's label (CSV cannot hold attrs)
    *.png                       plots.PLOT_FILES: lorenz, utilisation, operator_assignments, wait_cdf,
                                queue_length, state_occupancy, repeat_assignments, key_metrics

A **load-test report** (``chatlab loadtest``) is a run report whose directory also holds the
load test's ``loadtest.json`` and Locust's CSV files; its page gains the "Load test" section.

A **comparison report** (``chatlab compare``) has the same top-level files for all runs side
by side (``metrics.json`` is ``{"schema_version", "kind": "comparison", "labels", "subdirs",
"runs": {label: metrics}}``, CSVs gain a ``label`` column) and one run report per run in a
sub-directory named after its label (without plots, to keep compare fast).  With several
seeds per label (``compare --seeds``) the columns are means ± the half-width of their 95 %
confidence interval (Student t over the seeds), ``runs`` holds the means, ``std`` the
population std, ``ci95`` the half-widths, ``seeds`` and ``per_seed`` every seed's metrics, and the
sub-directories are ``<label>-seed<N>``.

A comparison with ``--baseline P`` also holds ``paired.json`` and the "Paired differences vs P"
section (:mod:`chatlab.report.paired`).

A **calibration report** (``chatlab calibrate --report``) is a comparison of the ``observed``
history and the ``calibrated`` scenario's seeds plus ``calibration.json`` and ``scenario.toml``
and the "Calibration" / "Observed vs calibrated" sections.

A **compare-real report** is a comparison of ``sim:<policy>`` and ``db:<policy>`` runs plus
``sim_vs_real.csv``/``.json`` and the "Simulation vs load test" sections; its ``metrics.json`` also
has ``agreement`` (:func:`chatlab.metrics.agreement`: per policy and key metric ``{sim, db,
rel_diff, within}``, each policy's and the overall ``all_within``); the Locust files of
each policy are in ``locust/<policy>/``.

Every kind is rebuilt from its directory alone by :func:`rebuild` (``chatlab report DIR``),
byte for byte: the pages are functions of the event logs and the saved results files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from chatlab.metrics import DEFAULT_SERVICE_LEVEL_T, Analysis, Pair, agreement, flatten_metrics, jsonable, pool
from chatlab.report import calibration, loadtest_section, paired, sections, sim_vs_db
from chatlab.report.document import Document, Section, write_document
from chatlab.report.files import LOG_NAMES, RUN_SIDECAR, ReportError, load_runs, save_log
from chatlab.report.plots import PLOT_FILES, write_plots
from chatlab.report.tables import slug


def _json_dump(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n")


def write_run_report(run: Analysis, out_dir: Path, *, plots: bool = True, title: str | None = None,
                     extra: Sequence[Section] = ()) -> Path:
    """Write a single-run report directory (layout in the module docstring); return it.

    ``extra`` sections (a load test's, ...) come right after the header.
    """
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
    write_document(Document(title, sections.run_facts([run]), sections.present(
        *extra, sections.key_metrics([run]), *sections.floor([run]), sections.per_operator(run),
        sections.plots(images))), out_dir)
    return out_dir


def loadtest_title(run: Analysis) -> str:
    info = run.metrics["run"]
    return f"Load test report: {info.get('scenario')} / {info.get('policy')}"


def write_loadtest_report(run: Analysis, out_dir: Path, results: dict[str, Any]) -> Path:
    """A run report of a load test's event log with its "Load test" section (``results`` = ``loadtest.json``)."""
    return write_run_report(run, out_dir, title=loadtest_title(run), extra=[loadtest_section.section(results)])


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
    """One analysis per label (seeds of a label pooled, see :mod:`chatlab.metrics.pooling`)."""
    return [pool(label, members) for label, members in group_by_label(runs).items()]


def write_comparison_report(runs: Sequence[Analysis], out_dir: Path, *, title: str | None = None,
                            sub_reports: bool = True, extra: Sequence[Section] = (),
                            meta_extra: dict[str, Any] | None = None) -> Path:
    """Write a side-by-side report of several runs (plus one sub-report each); return the dir.

    Runs sharing a label are seeds of one policy: the tables and plots show one column per
    label (mean ± 95 % CI over its seeds, see :mod:`chatlab.metrics.pooling`), ``metrics.json`` gains
    ``seeds``, ``std`` and ``per_seed``, and each seed gets its own sub-report.  ``extra``
    sections come right after the header; ``meta_extra`` keys are added to ``metrics.json``
    (compare-real's ``agreement``).
    """
    if not runs:
        raise ReportError("nothing to report: no runs")
    out_dir = Path(out_dir)
    groups = group_by_label(runs)
    multi = any(len(g) > 1 for g in groups.values())
    out_dir.mkdir(parents=True, exist_ok=True)
    subdirs = []
    if sub_reports:
        for run in runs:
            name = slug(f"{run.label}-seed{run.metrics['run']['seed']}" if multi else run.label)
            write_run_report(run, out_dir / name, plots=False)
            subdirs.append(name)
    shown = pooled_runs(runs)
    meta: dict[str, Any] = {"schema_version": runs[0].metrics["schema_version"], "kind": "comparison",
                            "labels": list(groups), "subdirs": subdirs, "runs": {r.label: r.metrics for r in shown}}
    if multi:
        meta["seeds"] = {label: [m.metrics["run"]["seed"] for m in g] for label, g in groups.items()}
        meta["std"] = {r.label: r.spread for r in shown if r.spread is not None}
        meta["ci95"] = {r.label: r.interval for r in shown if r.interval is not None}
        meta["per_seed"] = {label: {str(m.metrics["run"]["seed"]): m.metrics for m in g} for label, g in groups.items()}
    meta.update(meta_extra or {})
    _json_dump(meta, out_dir / "metrics.json")
    pd.DataFrame([{"label": r.label, **flatten_metrics(r.metrics)} for r in runs]).to_csv(out_dir / "metrics.csv", index=False)
    pd.concat([r.per_operator.assign(label=r.label) for r in shown], ignore_index=True).to_csv(
        out_dir / "per_operator.csv", index=False)
    images = [p.name for p in write_plots(shown, out_dir)]
    scenario = runs[0].metrics["run"].get("scenario")
    title = title or f"Policy comparison: {scenario or 'event logs'}"
    if multi:
        seeds = sorted({s for g in groups.values() for s in (m.metrics["run"]["seed"] for m in g) if s is not None})
        title += f" (mean ± 95 % CI over seeds {', '.join(map(str, seeds))})"
    write_document(Document(title, sections.run_facts(shown), sections.present(
        *extra, sections.key_metrics(shown), *sections.floor(shown), sections.run_links(subdirs),
        sections.plots(images))), out_dir)
    return out_dir


def write_sim_vs_db_report(pairs: Sequence[Pair], out_dir: Path, *, scenario: str, notes: Sequence[str] = (),
                           runs: Sequence[Analysis] | None = None) -> Path:
    """A comparison report of every pair's two runs (``runs``: every seed's, when the sides are pooled),
    led by the simulation-vs-load-test sections, plus ``sim_vs_real.csv`` / ``sim_vs_real.json``."""
    out_dir = Path(out_dir)
    runs = list(runs) if runs is not None else [run for p in pairs for run in (p.simulation, p.load_test)]
    write_comparison_report(runs, out_dir, title=f"Simulation vs load test: {scenario}",
                            extra=sim_vs_db.section(pairs, notes),
                            meta_extra={"agreement": jsonable(agreement(pairs))})
    sim_vs_db.write_files(pairs, out_dir, scenario=scenario, notes=notes)
    return out_dir


def write_calibration_report(runs: Sequence[Analysis], out_dir: Path, saved: dict[str, Any],
                             scenario_text: str) -> Path:
    """A comparison of the ``observed`` history and the ``calibrated`` scenario's seeds, led by the
    calibration sections, plus ``calibration.json`` and ``scenario.toml`` (:mod:`chatlab.report.calibration`)."""
    out_dir = Path(out_dir)
    write_comparison_report(runs, out_dir, title=f"Calibration: {saved['name']}", extra=calibration.sections(saved))
    calibration.write_files(saved, scenario_text, out_dir)
    return out_dir


def write_report(runs: Sequence[Analysis], out_dir: Path, *, title: str | None = None) -> Path:
    """A run report for one run, a comparison report for several."""
    if len(runs) == 1:
        return write_run_report(runs[0], out_dir, title=title)
    return write_comparison_report(runs, out_dir, title=title)


def rebuild(source: Path, out_dir: Path, *, service_level_t: float = DEFAULT_SERVICE_LEVEL_T,
            stuck_after: float | None = None) -> list[Analysis]:
    """Rebuild the report behind ``source`` (any kind, see the module docstring) into ``out_dir``.

    Returns the analysed runs (for the terminal table).
    """
    source = Path(source)
    runs = load_runs(source, service_level_t=service_level_t, stuck_after=stuck_after)
    home = source if source.is_dir() else source.parent
    saved = sim_vs_db.read_saved(home) if source.is_dir() else None
    results = loadtest_section.read_results(home)
    calibrated = calibration.read_saved(home) if source.is_dir() else None
    differences = paired.read_saved(home) if source.is_dir() else None
    if differences is not None:
        write_comparison_report(runs, out_dir, extra=[paired.section(differences)])
        paired.write_file(differences, out_dir)
    elif calibrated is not None:
        write_calibration_report(runs, out_dir, calibrated, (home / calibration.FILE_SCENARIO).read_text())
    elif saved is not None:
        write_sim_vs_db_report(sim_vs_db.pairs_of(runs), out_dir, scenario=str(saved.get("scenario")),
                               notes=list(saved.get("notes", [])), runs=runs)
    elif len(runs) == 1 and results is not None:
        write_loadtest_report(runs[0], out_dir, results)
    else:
        write_report(runs, out_dir)
    return runs


REPORT_FILES = ("summary.md", "summary.html", "metrics.json", "metrics.csv", "per_operator.csv",
                *PLOT_FILES.values())
RUN_REPORT_FILES = (*REPORT_FILES, "per_hour.csv", *LOG_NAMES, RUN_SIDECAR)
