"""The "Load test" section of a report, built from a load test's ``loadtest.json``.

``loadtest/session.py`` leaves that file (Locust's totals and per-request statistics, the
history checks, the notes, the run's counters) beside Locust's CSV files; this module only
presents it, so ``chatlab report DIR`` rebuilds the section from the directory alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from chatlab.report.document import Bullets, Section, Table, Text
from chatlab.report.files import ReportError
from loadtest.session import RESULTS_FILE

STATS_COLUMNS = ["type", "name", "requests", "failures", "mean_ms", "max_ms"]


def read_results(directory: Path) -> dict[str, Any] | None:
    """The ``loadtest.json`` of a directory, or None when it is not a load test's."""
    path = Path(directory) / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot read load-test results ({exc})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object of load-test results")
    return data


def stats_table(results: Mapping[str, Any]) -> pd.DataFrame:
    """Locust's final statistics, one row per (type, name)."""
    return pd.DataFrame(results.get("locust", {}).get("stats", []), columns=STATS_COLUMNS)


def section(results: Mapping[str, Any], title: str = "Load test (Locust against PostgreSQL)") -> Section:
    lc, checks, info = results.get("locust", {}), results.get("integrity", {}), results.get("run_info", {})
    rps = lc.get("requests_per_s")
    items = [f"note: {n}" for n in results.get("notes", [])]
    if info.get("arrival_lateness_max_s") is not None:
        items.append(f"arrivals released late by the Locust clock: median {info['arrival_lateness_p50_s']:.2f}, "
                     f"max {info['arrival_lateness_max_s']:.2f} scenario s")
    items += [
        f"{lc.get('requests')} requests, {lc.get('failures')} failures, "
        f"{'-' if rps is None else f'{rps:.0f}'} req/s over {results.get('run_time_wall_s', 0):g} wall s "
        f"(time scale {results.get('time_scale', 0):g}: scenario window {results.get('scenario_duration_s', 0):g} s)",
        f"history checks: {checks.get('assignments', '?')} holds, {checks.get('double_assigned', '?')} chats held "
        f"by two operators at once, {checks.get('over_capacity', '?')} holds over an operator's capacity",
    ]
    return Section(title, (
        Bullets(tuple(items)),
        Text("Locust's CSV statistics: `locust_stats.csv`, `locust_stats_history.csv`, `locust_failures.csv`; "
             "rows typed `sql:<label>` are expected outcomes (`empty` = nothing to assign, a SQLSTATE = a race "
             "the real system has too), not failures."),
        Table(stats_table(results), index=False),
    ))
