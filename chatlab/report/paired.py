"""The "Paired differences" section and file of ``chatlab compare --baseline P``.

The numbers come from :func:`chatlab.metrics.paired.paired_differences` (each policy minus the
baseline, seed by seed); this module picks the metrics (the terminal's key rows), formats
them — ``+1.2 ± 0.4 *``: the mean difference, its 95 % half-width, ``*`` when the interval
excludes 0 — and writes ``paired.json``, from which ``chatlab report DIR`` rebuilds the section.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from chatlab.metrics import Analysis, jsonable
from chatlab.metrics.paired import paired_differences
from chatlab.report.document import Section, Table, Text
from chatlab.report.files import ReportError
from chatlab.report.tables import TERMINAL_ROWS, format_value

FILE_JSON = "paired.json"
#: the compared metrics: the terminal's key rows that can differ between policies
ROWS: tuple[tuple[str, str, str], ...] = tuple(r for r in TERMINAL_ROWS if r[0] not in ("counts.chats",))


def compute(runs: Sequence[Analysis], baseline: str) -> dict[str, Any]:
    rows = paired_differences(runs, baseline, [k for k, _, _ in ROWS])
    return {"baseline": baseline, "confidence": 0.95,
            "definition": "difference = metric(policy, seed) - metric(baseline, seed), mean over the shared seeds; "
                          "significant when the Student-t 95 % interval excludes 0",
            "rows": rows}


def _cell(row: dict[str, Any], fmt: str) -> str:
    if row["difference"] is None:
        return "-"
    unit = "%" if fmt == "%" else ("1" if fmt == "d" else fmt)
    sign = "+" if row["difference"] > 0 else ""
    text = sign + format_value(row["difference"], unit)
    if row["ci95_half_width"] is not None:
        text += f" ± {format_value(row['ci95_half_width'], unit)}"
    return text + (" *" if row["significant"] else "")


def display_table(saved: dict[str, Any]) -> pd.DataFrame:
    fmts = {k: (label, fmt) for k, label, fmt in ROWS}
    policies = list(dict.fromkeys(r["policy"] for r in saved["rows"]))
    data = {p: [_cell(r, fmts[r["key"]][1]) for r in saved["rows"] if r["policy"] == p] for p in policies}
    keys = [r["key"] for r in saved["rows"] if policies and r["policy"] == policies[0]]
    frame = pd.DataFrame(data, index=[fmts[k][0] for k in keys])
    frame.index.name = f"minus {saved['baseline']}"
    return frame


def section(saved: dict[str, Any]) -> Section:
    n = max((r["n"] for r in saved["rows"]), default=0)
    return Section(f"Paired differences vs {saved['baseline']}", (
        Text(f"Each policy minus `{saved['baseline']}` on the same seeds ({n} pairs; the seeds share their users), "
             "mean ± the half-width of its 95 % confidence interval (Student t); `*`: the interval excludes 0, "
             "the difference is real at that level."),
        Table(display_table(saved))))


def write_file(saved: dict[str, Any], out_dir: Path) -> None:
    (Path(out_dir) / FILE_JSON).write_text(json.dumps(jsonable(saved), indent=2, allow_nan=False) + "\n")


def read_saved(out_dir: Path) -> dict[str, Any] | None:
    path = Path(out_dir) / FILE_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot read ({exc})") from None
