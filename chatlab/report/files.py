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

from chatlab.metrics import DEFAULT_SERVICE_LEVEL_T, Analysis, analyse
from chatlab.report.tables import slug
from sim.errors import InvalidEventLog
from sim.eventlog import LOG_NAMES, RUN_SIDECAR, load_log, save_log

__all__ = ["LOG_NAMES", "RUN_SIDECAR", "ReportError", "find_logs", "load_log", "load_runs", "save_log"]


class ReportError(InvalidEventLog):
    """A report source that cannot be read (no event log where one was expected)."""


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
    if order and any(p.name in order for p in subdirs):
        # a comparison names its runs: an older comparison's leftovers in the same directory are not its runs
        subdirs = [p for p in subdirs if p.name in order]
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
