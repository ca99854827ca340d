"""The round trip on real history: load-test a known scenario on PostgreSQL, calibrate from the tables it
left (directly, and from a CSV export), and get the generating parameters back.

``steady_floor`` is run by Locust at K = 60 (an hour in a minute: each wall millisecond of
latency costs K ms of scenario time, so a small K keeps the harness out of the waits) against
the session's embedded server with ``--keep-schema``; ``chatlab calibrate --time-scale 60`` reads only the seed's
four tables.  The checks: arrival rate and mean think and handle times within 10 % of the
scenario's, the families right (gamma think times, lognormal handle times: clear cases),
exchanges and hand-backs close, one group of 16 one-chat operators, and the calibrated
scenario's simulated waits within the simulations' noise of the observed ones.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
K = 60
#: wall seconds: the first hour of the scenario (~700 chats, ~1,300 think and ~2,000 handle times)
RUN_TIME = 60


def chatlab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chatlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


@pytest.fixture(scope="module")
def history(pg_uri: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(schema, directory) of one load test of steady_floor whose schema is kept."""
    out = tmp_path_factory.mktemp("roundtrip")
    proc = chatlab("loadtest", "steady_floor", "--time-scale", str(K), "--run-time", str(RUN_TIME), "--database-url",
                   pg_uri, "--keep-schema", "--no-progress", "--out", str(out / "loadtest"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    schema = re.search(r"schema kept: (\w+)", proc.stdout).group(1)
    yield schema, out
    import psycopg
    from psycopg import sql

    with psycopg.connect(pg_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {s} CASCADE").format(s=sql.Identifier(schema)))


@pytest.fixture(scope="module")
def calibrated(history: tuple[str, Path], pg_uri: str) -> tuple[dict, Path]:
    schema, out = history
    proc = chatlab("calibrate", pg_uri, "--schema", schema, "--time-scale", str(K), "--out", str(out / "steady.toml"),
                   "--report", str(out / "report"), "--replications", "10", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tomllib.loads((out / "steady.toml").read_text()), out


def test_the_generating_parameters_come_back(calibrated: tuple[dict, Path]) -> None:
    got, out = calibrated
    truth = load_scenario("steady_floor")
    arrivals = got["users"]["arrivals"]
    rate = arrivals["rate"] if arrivals["kind"] == "poisson" else \
        json.loads((out / "report" / "calibration.json").read_text())["arrivals"]["mean_rate"]
    assert rate == pytest.approx(truth.users.arrivals.rate, rel=0.10)
    think, handle = got["users"]["think_time"], got["operators"]["handle_time"]
    assert think["dist"] == "gamma" and think["mean"] == pytest.approx(truth.users.think_time.mean, rel=0.10)
    assert handle["dist"] == "lognormal" and handle["mean"] == pytest.approx(truth.operators.handle_time.mean, rel=0.10)
    assert think["sd"] == pytest.approx(20, rel=0.2) and handle["sd"] == pytest.approx(30, rel=0.25)
    exchanges = got["users"]["exchanges"]
    mean_exchanges = sum(v * w for v, w in zip(exchanges["values"], exchanges["weights"])) / sum(exchanges["weights"])
    assert exchanges["values"] == [1, 2, 3, 4, 5] and mean_exchanges == pytest.approx(3.0, rel=0.1)
    [group] = got["operators"]["groups"]
    assert group["count"] == 16 and group["max_chats"] == 1 and "shifts" not in group
    assert group["unassign_probability"] == pytest.approx(0.02, abs=0.01)
    # the file is an ordinary scenario: it loads, and says where each value came from
    scenario = load_scenario(out / "steady.toml")
    assert scenario.operators.count == 16
    assert "think time (operator reply -> next user message): gamma by AIC" in (out / "steady.toml").read_text()


def test_the_calibrated_scenario_predicts_the_observed_waits_within_their_noise(calibrated: tuple[dict, Path]) -> None:
    _, out = calibrated
    saved = json.loads((out / "report" / "calibration.json").read_text())
    rows = {r["key"]: r for r in saved["comparison"]}
    for key in ("wait.mean_s", "wait.p90_s", "fairness.assignments.jain", "share.max", "rate.chats_per_hour"):
        assert rows[key]["within_noise"] is True, rows[key]
    assert rows["assignment.repeat_rate"]["observed"] == 0
    summary = (out / "report" / "summary.md").read_text()
    assert "## Observed vs calibrated" in summary and "| mean wait (s) |" in summary
    # the report is rebuilt from its directory, byte for byte
    again = chatlab("report", str(out / "report"), "--out", str(out / "rebuilt"))
    assert again.returncode == 0, again.stderr
    for name in ("summary.md", "summary.html", "calibration.json", "scenario.toml", "metrics.json"):
        assert (out / "rebuilt" / name).read_bytes() == (out / "report" / name).read_bytes(), name


def test_a_csv_export_calibrates_to_the_same_scenario(history: tuple[str, Path], calibrated: tuple[dict, Path],
                                                      pg_uri: str) -> None:
    schema, out = history
    proc = chatlab("db", "export", "--schema", schema, str(out / "csv"), env={"DATABASE_URL": pg_uri})
    assert proc.returncode == 0, proc.stderr
    assert "chat_assignments.csv" in proc.stdout
    proc = chatlab("calibrate", str(out / "csv"), "--time-scale", str(K), "--out", str(out / "from_csv.toml"))
    assert proc.returncode == 0, proc.stderr
    from_db, _ = calibrated
    from_csv = tomllib.loads((out / "from_csv.toml").read_text())
    for doc in (from_db, from_csv):
        doc.pop("name"), doc.pop("description")
    assert from_csv == from_db
