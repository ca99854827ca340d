"""``chatlab bugs``: every reported bug is reproduced by its variant and absent under the lab,
in the simulation and (for the rows that run there) on PostgreSQL under Locust.

The whole suite runs here once, database rows included (a few minutes): it is the
feature's promise.  The row logic is checked to be able to fail, and bad input to change
nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatlab.bugs import BUGS, Bug, Outcome, Row, bug_scenarios
from chatlab.metrics import METRIC_DOCS
from sim.policies import KNOWN_NAMES
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def chatlab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chatlab.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_the_catalog_is_consistent() -> None:
    keys = [b.key for b in BUGS]
    assert len(keys) == len(set(keys))
    for name in bug_scenarios():
        load_scenario(name)
    for bug in BUGS:
        assert bug.variant in KNOWN_NAMES and bug.lab in KNOWN_NAMES
        assert bug.metric in METRIC_DOCS, bug.metric
        assert set(bug.where) <= {"sim", "db"} and bug.where
    # the list: every reported bug has a row
    sources = " ".join(b.source for b in BUGS)
    for report in ("#13134", "#11034", "#18217", "#6802", "#10583", "#4158", "#7204", "#14508"):
        assert report in sources
    assert any("burst" in b.key for b in BUGS)
    assert {"db"} <= {w for b in BUGS if b.key == "cw-11034" for w in b.where}  # the race runs on the database


def test_a_row_passes_only_when_the_variant_breaks_and_the_lab_keeps_the_bound() -> None:
    bug = Bug("x", "nowhere", "t", "baseline", "exclude_last", "exclude_last", "guarantees.peak_share", 2.0)
    assert Row(bug, "sim", Outcome(3.0), Outcome(1.0)).passed
    assert not Row(bug, "sim", Outcome(1.0), Outcome(1.0)).passed      # the variant did not reproduce it
    assert not Row(bug, "sim", Outcome(3.0), Outcome(3.0)).passed      # the lab has the bug too
    assert not Row(bug, "sim", Outcome(None), Outcome(1.0)).reproduced  # no evidence is no reproduction
    assert not Row(bug, "sim", Outcome(3.0), Outcome(None)).absent      # nor a pass


def test_a_variant_that_is_the_lab_fails_its_row() -> None:
    from chatlab.bugs import run_sim

    real = next(b for b in BUGS if b.key == "rc-6802")
    fake = Bug(real.key, real.source, real.title, real.scenario, real.lab, real.lab, real.metric, real.limit)
    row = run_sim(fake)
    assert not row.reproduced and row.absent and not row.passed


def test_unknown_bug_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    res = chatlab("bugs", "--only", "cw-1,rc-6802", "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "cw-1" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_db_jobs_below_one_is_one_line_and_exit_2(tmp_path: Path) -> None:
    res = chatlab("bugs", "--only", "cw-11034", "--db-jobs", "0", "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "--db-jobs" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("bugs")
    return chatlab("bugs", "--out", str(out), "--no-progress"), out


def test_every_bug_is_reproduced_and_absent_under_the_lab(suite: tuple[subprocess.CompletedProcess, Path]) -> None:
    res, out = suite
    print(res.stdout)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = json.loads((out / "bugs.json").read_text())
    expected = {(b.key, w) for b in BUGS for w in b.where}
    assert {(r["key"], r["where"]) for r in rows} == expected
    for r in rows:
        assert r["reproduced"] and r["absent"] and r["passed"], r
        assert r["variant_value"] > r["limit"] >= r["lab_value"], r
    md = (out / "summary.md").read_text()
    assert f"{len(rows)} of {len(rows)} rows pass" in md and "Rocket.Chat #13134" in md
    assert "database load tests at once" in md  # the database rows ran side by side (--db-jobs 2)
    assert (out / "summary.html").read_text().count("<tr>") >= len(rows)


def test_the_race_is_read_from_the_database_history(suite: tuple[subprocess.CompletedProcess, Path]) -> None:
    """The capacity race's db rows: Locust ran both functions, the overshoot is in their history."""
    _, out = suite
    rows = {(r["key"], r["where"]): r for r in json.loads((out / "bugs.json").read_text())}
    for key in ("cw-11034", "login-burst"):
        row = rows[(key, "db")]
        assert row["variant_value"] >= 1 and row["lab_value"] == 0
        for side in ("variant", "lab"):
            results = json.loads((out / "runs" / f"{key}-{side}" / "loadtest.json").read_text())
            assert results["locust"]["requests"] > 100  # a real load test ran
            # the integrity query of the history (chat_assignments) says the same as the event log
            assert (results["integrity"]["over_capacity"] > 0) == (side == "variant")


def test_sim_only_skips_the_database_rows(tmp_path: Path) -> None:
    res = chatlab("bugs", "--sim-only", "--out", str(tmp_path), "--no-progress")
    assert res.returncode == 0, res.stdout + res.stderr
    rows = json.loads((tmp_path / "bugs.json").read_text())
    assert rows and {r["where"] for r in rows} == {"sim"}
