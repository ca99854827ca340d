"""Reports on disk: the event log of a run (Parquet, CSV and ``run.json``), found and analysed again.

A report directory always keeps its event logs, so every number in it can be recomputed
(``chatlab report DIR``): a run report holds ``events.parquet``/``events.csv`` and
``run.json`` (the log's attrs and the run's label, which CSV cannot hold); a comparison
holds one run report per run in a sub-directory, in the order ``metrics.json`` lists them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from chatlab.metrics import DEFAULT_SERVICE_LEVEL_T, Analysis, analyse, jsonable
from chatlab.report.tables import slug
from sim.errors import InvalidEventLog
from sim.eventlog import read_log, write_log

LOG_NAMES = ("events.parquet", "events.csv")
RUN_SIDECAR = "run.json"


class ReportError(InvalidEventLog):
    """A report source that cannot be read (no event log where one was expected)."""


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
