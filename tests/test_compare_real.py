"""The simulation-vs-load-test table: relative differences and the report files.

Hand-built event logs with known answers (a legacy-style log with one repeat/premature
assignment against a clean one); the end-to-end ``chatlab compare-real`` smoke run lives
in ``tests/test_loadtest_flows.py`` with the other real-database runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from chatlab.metrics import Pair, analyse, relative_difference
from chatlab.report import write_sim_vs_db_report
from chatlab.report.sim_vs_db import display_table, raw_table
from sim.eventlog import from_records

WA, AS, WR, CO = "waiting_assignment", "assigned", "waiting_real_user_reply", "completed"


def _log(*, repeat: bool, source: str, wait: float) -> pd.DataFrame:
    rows = [
        (0.0, 1, None, "user_message", None, WA, None),
        (wait, 1, 1, "assign", WA, AS, None),
        (wait + 10, 1, 1, "operator_reply", AS, WR, None),
        (20.0, 2, None, "user_message", None, WA, None),
        (20.0 + wait, 2, 2, "assign", WA, AS, None),
        (30.0 + wait, 2, 2, "operator_reply", AS, WR, None),
    ]
    if repeat:  # legacy: operator 1 takes chat 1 back before the user wrote again
        rows.append((40.0 + wait, 1, 1, "assign", WR, AS, None))
    return from_records(rows, {"source": source, "policy": "legacy" if repeat else "exclude_last",
                               "scenario": "hand", "duration": 100.0, "operators": [1, 2]})


def test_relative_difference_definition() -> None:
    assert relative_difference(10, 15) == pytest.approx(0.5)
    assert relative_difference(-4, -2) == pytest.approx(0.5)
    assert relative_difference(0, 0) == 0.0
    assert relative_difference(0, 3) is None
    assert relative_difference(None, 3) is None
    assert relative_difference(2, float("nan")) is None


def test_table_and_report_files(tmp_path: Path) -> None:
    sim = analyse(_log(repeat=True, source="sim", wait=5.0), label="sim:legacy")
    real = analyse(_log(repeat=True, source="loadtest", wait=10.0), label="db:legacy")
    pair = Pair("legacy", sim, real)
    raw = raw_table([pair]).set_index("key")
    assert raw.at["assignment.repeat", "simulation"] == 1 and raw.at["assignment.repeat", "load_test"] == 1
    assert raw.at["assignment.repeat_rate", "relative_difference"] == 0.0
    # waits doubled from 5 s to 10 s: +100 %
    assert raw.at["wait.p50_s", "relative_difference"] == pytest.approx(1.0)
    shown = display_table(pair)
    assert shown.loc["p50 wait (s)", "relative difference"] == "+100.0%"

    clean = Pair("exclude_last", analyse(_log(repeat=False, source="sim", wait=5.0), label="sim:exclude_last"),
                 analyse(_log(repeat=False, source="loadtest", wait=5.0), label="db:exclude_last"))
    out = write_sim_vs_db_report([pair, clean], tmp_path / "rep", scenario="hand", notes=["a note"])
    summary = (out / "summary.md").read_text()
    assert summary.index("## Simulation vs load test") < summary.index("## Key metrics")
    assert "### legacy" in summary and "### exclude_last" in summary and "a note" in summary
    assert "Simulation vs load test" in (out / "summary.html").read_text()
    data = json.loads((out / "sim_vs_real.json").read_text())
    assert data["policies"]["exclude_last"]["assignment.repeat"]["load_test"] == 0
    assert data["policies"]["legacy"]["assignment.repeat"]["load_test"] == 1
    assert len(pd.read_csv(out / "sim_vs_real.csv")) == 2 * len(raw)
    # the per-run sub-reports of chatlab.report are there too
    assert (out / "metrics.json").exists() and len([p for p in out.iterdir() if p.is_dir()]) == 4


def test_replicated_sides_get_noise_bands_and_only_real_differences_are_flagged(tmp_path: Path) -> None:
    """Seeds of each side pooled: the p50 wait differs by far more than the noise (5 s vs 10 s, spreads of
    0.1 s): flagged; the repeat rate is equal on both sides: not flagged."""
    from chatlab.metrics import pool

    def side(source: str, base: float, label: str) -> object:
        runs = []
        for k, jitter in enumerate((-0.1, 0.0, 0.1)):
            log = _log(repeat=True, source=source, wait=base + jitter)
            log.attrs["seed"] = k + 1
            runs.append(analyse(log, label=label))
        return runs

    sims, dbs = side("sim", 5.0, "sim:legacy"), side("loadtest", 10.0, "db:legacy")
    pair = Pair("legacy", pool("sim:legacy", sims), pool("db:legacy", dbs))
    rows = {r["key"]: r for r in pair.rows(["wait.p50_s", "assignment.repeat_rate"])}
    assert rows["wait.p50_s"]["beyond_noise"] is True and rows["wait.p50_s"]["noise"] > 0
    assert rows["assignment.repeat_rate"]["beyond_noise"] is False
    shown = display_table(pair)
    assert shown.loc["p50 wait (s)", "relative difference"].endswith(" *")
    assert " ± " in shown.loc["p50 wait (s)", "simulation"]
    out = write_sim_vs_db_report([pair], tmp_path / "rep", scenario="hand", runs=[*sims, *dbs])
    assert "beyond the noise" in (out / "summary.md").read_text()
    saved = json.loads((out / "sim_vs_real.json").read_text())
    assert saved["policies"]["legacy"]["wait.p50_s"]["beyond_noise"] is True
    from chatlab.report import rebuild

    rebuild(out, tmp_path / "again")
    assert (tmp_path / "again" / "summary.md").read_bytes() == (out / "summary.md").read_bytes()


def test_within_five_percent_or_inside_the_noise() -> None:
    from chatlab.metrics import within

    assert within(100.0, 104.9) and within(100.0, 95.1) and within(-100.0, -104.0)
    assert not within(100.0, 106.0) and not within(100.0, 94.0)
    assert within(100.0, 120.0, noise=25.0)  # 20 % apart, but the replications cannot tell it from chance
    assert not within(100.0, 130.0, noise=25.0)
    assert within(0.0, 0.0) and not within(0.0, 0.01) and within(0.0, 0.01, noise=0.02)
    assert within(None, None)  # neither side measured it (e.g. no served wait)
    assert not within(None, 3.0) and not within(3.0, None, noise=100.0)


def test_agreement_object_of_compare_real_metrics_json(tmp_path: Path) -> None:
    """Known inputs: a legacy pair whose waits differ by 100 % (one seed: no noise band) does not agree; a
    clean pair with identical logs agrees on every key metric; metrics.json carries both and all_within."""
    from chatlab.metrics import AGREEMENT_KEYS, agreement

    bad = Pair("legacy", analyse(_log(repeat=True, source="sim", wait=5.0), label="sim:legacy"),
               analyse(_log(repeat=True, source="loadtest", wait=10.0), label="db:legacy"))
    good = Pair("exclude_last", analyse(_log(repeat=False, source="sim", wait=5.0), label="sim:exclude_last"),
                analyse(_log(repeat=False, source="loadtest", wait=5.0), label="db:exclude_last"))
    judged = agreement([bad, good])
    assert set(judged["policies"]["legacy"]["metrics"]) == set(AGREEMENT_KEYS)
    p50 = judged["policies"]["legacy"]["metrics"]["wait.p50_s"]
    assert (p50["sim"], p50["db"], p50["rel_diff"], p50["within"]) == (5.0, 10.0, pytest.approx(1.0), False)
    assert judged["policies"]["legacy"]["metrics"]["assignment.repeat_rate"]["within"] is True
    assert judged["policies"]["legacy"]["all_within"] is False
    assert judged["policies"]["exclude_last"]["all_within"] is True
    assert judged["all_within"] is False
    assert agreement([good])["all_within"] is True

    out = write_sim_vs_db_report([bad, good], tmp_path / "rep", scenario="hand")
    saved = json.loads((out / "metrics.json").read_text())["agreement"]
    assert saved["all_within"] is False and saved["policies"]["exclude_last"]["all_within"] is True
    assert saved["policies"]["legacy"]["metrics"]["wait.p50_s"]["within"] is False
    summary = (out / "summary.md").read_text()
    assert "on every key metric: no (not: legacy: " in summary and "wait.p50_s" in summary
    assert display_table(bad).loc["p50 wait (s)", "agrees"] == "no"
    assert display_table(good).loc["p50 wait (s)", "agrees"] == "yes"
