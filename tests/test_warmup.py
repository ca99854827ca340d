"""The warm-up cut: every metric counts only the window [W, duration], MSER-5 chooses W, and the
report says what was cut.

Windowing is checked against the raw event log (counts at t >= W, waits that start at or
after W, online time and stays clipped to the window), MSER-5 against series whose
transient is known, and the command line end to end (scenario field, ``--warmup``, a
rebuilt report, bad values refused in one line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chatlab.metrics import (
    analyse,
    assignments,
    compute_metrics,
    mser5_warmup,
    mser_cut,
    online_intervals,
    per_operator,
    queue_length_series,
    state_intervals,
    wait_episodes,
)
from sim.errors import ScenarioError
from sim.model import run_simulation
from sim.scenario import load_scenario, parse_scenario
from sim.statemachine import Event

ROOT = Path(__file__).resolve().parents[1]
_RUN = load_scenario("baseline").with_overrides({"duration": 7200.0})
_LOG = run_simulation(_RUN, "legacy", seed=3)
_WAITS = wait_episodes(_LOG)
#: the cut falls in the middle of a wait (so one wait is in progress across it)
W = float(next(s + w / 2 for s, w in zip(_WAITS["start"], _WAITS["wait_s"]) if s > 1800 and w > 2))


@pytest.fixture(scope="module")
def log():  # noqa: ANN201
    return _LOG


def _cut(log, seconds):  # noqa: ANN001, ANN202
    out = log.copy(deep=False)
    out.attrs = {**log.attrs, "warmup": seconds}
    return out


def test_no_warmup_and_a_zero_warmup_give_the_same_metrics(log) -> None:  # noqa: ANN001
    assert compute_metrics(_cut(log, 0.0)) == compute_metrics(log)
    assert compute_metrics(log)["run"]["warmup_s"] == 0.0 and compute_metrics(log)["run"]["warmup_method"] is None


def test_every_count_is_of_the_window_and_a_repeat_still_looks_back(log) -> None:  # noqa: ANN001
    cut = _cut(log, W)
    m = compute_metrics(cut)
    late = log.loc[log["time"] >= W]
    ev = late["event"].astype(object)
    assert m["run"]["warmup_s"] == W and m["run"]["warmup_method"] == "fixed"
    assert m["counts"]["assignments"] == int((ev == Event.ASSIGN.value).sum())
    assert m["counts"]["replies"] == int((ev == Event.OPERATOR_REPLY.value).sum())
    assert m["counts"]["ended"] == int((ev == Event.END.value).sum())
    opened = log.loc[log["chat_id"].notna()].groupby("chat_id")["time"].min()
    assert m["counts"]["chats"] == int((opened >= W).sum())
    # repeats after W are judged against the chat's previous operator, even one before W
    full = assignments(log)
    assert m["assignment"]["repeat"] == int(full.loc[full["time"] >= W, "repeat"].sum()) > 0
    assert m["counts"]["assignments"] < compute_metrics(log)["counts"]["assignments"]


def test_waits_are_those_begun_in_the_window_and_stays_are_clipped_to_it(log) -> None:  # noqa: ANN001
    cut = _cut(log, W)
    full_waits, waits = wait_episodes(log), wait_episodes(cut)
    assert len(waits) == int((full_waits["start"] >= W).sum()) and (waits["start"] >= W).all()
    # a chat waiting across W is not a new wait, but one that entered the queue after W is
    assert ((full_waits["start"] < W) & (full_waits["end"] > W)).any()
    stays = state_intervals(cut)
    assert (stays["start"] >= W).all()
    across = state_intervals(log)
    across = across.loc[(across["start"] < W) & (across["end"] > W) & (across["state"] != "completed")]
    assert len(across) and len(stays.loc[stays["start"] == W]) >= len(across)  # in progress at W: counted from W
    for spans in online_intervals(cut).values():
        assert all(a >= W for a, _ in spans)
    po = per_operator(cut)
    assert (po["online_s"] <= 7200.0 - W + 1e-9).all() and (po["utilisation"].dropna() <= 1.0).all()
    q = queue_length_series(cut)
    assert q["time"].iloc[0] == W
    m = compute_metrics(cut)
    assert sum(m["occupancy"][s]["seconds"] for s in m["occupancy"]) == pytest.approx(
        float((stays.loc[stays["state"] != "completed", "end"] - stays.loc[stays["state"] != "completed", "start"]).sum()))


def test_per_hour_starts_at_the_cut(log) -> None:  # noqa: ANN001
    hours = analyse(_cut(log, W)).per_hour
    assert W < 3600 and hours["start_s"].iloc[0] == W and list(hours["hour"]) == [0, 1]
    assert int(hours["assignments"].sum()) == compute_metrics(_cut(log, W))["counts"]["assignments"]


def test_mser_cuts_a_known_transient_and_leaves_a_stationary_series_alone() -> None:
    rng = np.random.default_rng(7)
    ramp = np.concatenate([np.linspace(0, 10, 300), np.full(2700, 10.0)]) + rng.normal(0, 1, 3000)
    assert 200 <= mser_cut(ramp) <= 400 and mser_cut(ramp) % 5 == 0
    assert mser_cut(rng.normal(10, 1, 3000)) <= 300
    assert mser_cut(ramp[:45]) == 0  # fewer than 10 batches of 5: too short to choose
    rising = np.concatenate([rng.normal(0, 1, 1000), np.linspace(0, 50, 1000)])
    assert mser_cut(rising) == 0  # the minimum is in the second half: the run is too short to tell


def test_auto_is_mser5_on_the_served_waits_and_is_recorded(log) -> None:  # noqa: ANN001
    m = compute_metrics(_cut(log, "auto"))
    expected = mser5_warmup(log)
    assert m["run"]["warmup_s"] == expected and m["run"]["warmup_method"] == "mser5"
    served = wait_episodes(log)
    served = served.loc[served["outcome"] == "served"]
    assert expected == 0.0 or expected in set(served["start"])


def test_the_scenario_field_is_validated_and_overridable() -> None:
    base = {"duration": 600, "users": {"arrivals": {"rate": 0.1}}, "operators": {"count": 2}}
    assert parse_scenario({**base, "warmup": 60}).warmup == 60.0
    assert parse_scenario({**base, "warmup": "auto"}).warmup == "auto"
    assert parse_scenario(base).warmup == 0.0
    for bad in (600, -1, "soon", True):
        with pytest.raises(ScenarioError, match="warmup: expected a number of seconds >= 0 and < duration"):
            parse_scenario({**base, "warmup": bad})
    sc = parse_scenario(base).with_overrides({"warmup": 120.0})
    assert sc.warmup == 120.0 and run_simulation(sc, seed=1).attrs["warmup"] == 120.0


def chatlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chatlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_compare_with_auto_warmup_reports_the_cut_and_rebuilds_it(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = chatlab("compare", "baseline", "--policies", "legacy,exclude_last", "--seeds", "1-2", "--duration", "3600",
                   "--warmup", "auto", "--jobs", "1", "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "warm-up cut (s)" in proc.stdout
    md = (out / "summary.md").read_text()
    assert "**warm-up cut**" in md and "chosen per run by MSER-5" in md
    metrics = json.loads((out / "metrics.json").read_text())
    runs = metrics["runs"] if "runs" in metrics else metrics
    assert "mser5" in json.dumps(runs)
    again = chatlab("report", str(out), "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    for name in ("summary.md", "metrics.json"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name


@pytest.mark.parametrize("args, message", [
    (("--warmup", "-5"), "--warmup: expected a number of seconds >= 0 or 'auto', got '-5'"),
    (("--warmup", "soon"), "--warmup: expected a number of seconds >= 0 or 'auto', got 'soon'"),
    (("--warmup", "nan"), "--warmup: expected a number of seconds >= 0 or 'auto', got 'nan'"),
    (("--warmup", "3600"), "warmup: expected a number of seconds >= 0 and < duration (3600)"),
])
def test_a_bad_warmup_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, args, message) -> None:  # noqa: ANN001
    proc = chatlab("run", "baseline", "--duration", "3600", *args, "--no-progress", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()
