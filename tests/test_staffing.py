"""Erlang A against theory and the simulation, and ``chatlab staff`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chatlab.replications import Replication, run_replications
from chatlab.staffing import erlang_staff
from sim.erlang import MMc, MMcM, QueueingError
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def chatlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chatlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_erlang_a_becomes_erlang_c_when_nobody_gives_up() -> None:
    c, a = MMc(0.05, 1 / 60, 4), MMcM(0.05, 1 / 60, 4, 1e-9)
    for t in (0.0, 20.0, 60.0, 300.0):
        assert a.service_level(t) == pytest.approx(c.service_level(t), abs=1e-6)
    assert a.p_wait == pytest.approx(c.p_wait, abs=1e-6) and a.p_abandon < 1e-6
    # stable at any load: 2 servers for 3 Erlangs still has an answer, with many giving up
    over = MMcM(0.05, 1 / 60, 2, 1 / 120)
    assert 0.2 < over.p_abandon < 0.9 and 0 < over.service_level(60) < 1
    with pytest.raises(QueueingError):
        MMcM(0.05, 1 / 60, 4, 0.0)


def test_erlang_a_agrees_with_the_simulation_of_an_impatient_m_m_c_floor() -> None:
    """8 replications of 40,000 s (~2,000 chats each): abandonment within 0.6 points, service level within 1.5."""
    sc = load_scenario("mm_c").with_overrides({"duration": 40_000.0,
                                               "users.patience": {"dist": "exponential", "mean": 300}})
    runs = run_replications([Replication(sc, None, s, "mm_c+M") for s in range(1, 9)], jobs=2)
    theory = MMcM(0.05, 1 / 60, 4, 1 / 300)
    abandoned = np.mean([r.metrics["wait"]["abandonment_rate"] for r in runs])
    served_in_60 = np.mean([r.metrics["wait"]["service_level"] for r in runs])
    assert abandoned == pytest.approx(theory.p_abandon, abs=0.006)
    assert served_in_60 == pytest.approx(theory.service_level(60), abs=0.015)


def test_erlang_staff_is_the_fewest_that_meet_the_target() -> None:
    lam, mu, theta = 0.2, 1 / 30, 1 / 600
    c, sl, ab = erlang_staff(lam, mu, theta, 0.8, 20, None)
    assert sl >= 0.8 and MMcM(lam, mu, c - 1, theta).service_level(20) < 0.8
    c2, _, ab2 = erlang_staff(lam, mu, theta, 0.8, 20, 0.001)
    assert c2 >= c and ab2 <= 0.001
    assert erlang_staff(0.0, mu, theta, 0.8, 20, None)[0] == 0


def test_staff_plans_peak_hour_and_every_interval_meets_the_target_in_simulation(tmp_path: Path) -> None:
    proc = chatlab("staff", "peak_hour", "--target-sl", "0.8", "--within", "60", "--no-progress",
                   "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((tmp_path / "staff.json").read_text())
    assert plan["met"] and len(plan["intervals"]) == 3
    for iv in plan["intervals"]:
        assert iv["sim_sl"] >= 0.8 and iv["staff"] >= 1 and iv["erlang_sl"] >= 0.8
    peak = plan["intervals"][1]
    assert peak["staff"] > plan["intervals"][0]["staff"]  # the peak needs more
    for name in ("staff.csv", "staff.png", "summary.md", "summary.html"):
        assert (tmp_path / name).is_file()
    assert "Erlang staff" in proc.stdout and "operator-hours" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (("peak_hour", "--target-sl", "1.5", "--within", "60"), "--target-sl: expected a share between 0 and 1"),
    (("peak_hour", "--target-sl", "0.8", "--within", "0"), "--within: expected seconds > 0"),
    (("peak_hour", "--target-sl", "0.8", "--within", "60", "--interval", "10"), "--interval: expected 60 s"),
    (("mixed_floor", "--target-sl", "0.8", "--within", "60"), "has [[operators.groups]]"),
    (("peak_hour", "--target-sl", "0.8", "--within", "60", "--max-abandonment", "2"), "--max-abandonment"),
])
def test_staff_refuses_bad_input_in_one_line(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    proc = chatlab("staff", *args, "--no-progress", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
