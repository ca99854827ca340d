"""The SimPy model (sim/model.py): reproducibility, the seed's bug, the jobs, shifts, arrivals."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from chatlab import metrics as M
from sim.eventlog import validate
from sim.model import run_simulation
from sim.policies import POLICY_NAMES, make_policy
from sim.scenario import load_scenario
from sim.statemachine import is_legal


def _chat_rows_are_legal(log: pd.DataFrame, legacy: bool) -> None:
    rows = log.loc[log["chat_id"].notna()]
    created = rows["from_state"].isna()
    assert (rows.loc[created, "event"] == "user_message").all()
    for frm, ev in set(zip(rows.loc[~created, "from_state"].astype(str), rows.loc[~created, "event"].astype(str))):
        assert is_legal(frm, ev, legacy=legacy), (frm, ev)


def test_same_seed_same_log_and_another_seed_differs() -> None:
    scenario = load_scenario("baseline").with_overrides({"duration": 1800})
    a = run_simulation(scenario, "random", seed=7)
    b = run_simulation(scenario, "random", seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs == b.attrs
    c = run_simulation(scenario, "random", seed=8)
    assert not a.equals(c)


def test_policies_see_the_same_users_for_the_same_seed() -> None:
    """Common random numbers: arrivals do not depend on the policy."""
    scenario = load_scenario("baseline").with_overrides({"duration": 1800})
    firsts = []
    for policy in ("legacy", "exclude_last"):
        log = run_simulation(scenario, policy, seed=3)
        new = log.loc[(log["event"] == "user_message") & log["from_state"].isna()]
        firsts.append(new["time"].to_numpy())
    assert len(firsts[0]) > 20 and (firsts[0] == firsts[1]).all()


def test_legacy_repeats_on_baseline_and_the_fix_does_not() -> None:
    scenario = load_scenario("baseline")
    legacy = M.compute_metrics(run_simulation(scenario, "legacy", seed=1))["assignment"]
    fixed_log = run_simulation(scenario, "exclude_last", seed=1)
    fixed = M.compute_metrics(fixed_log)["assignment"]
    assert legacy["repeat"] > 0.2 * legacy["total"] and legacy["premature"] > 0.2 * legacy["total"]
    assert fixed["total"] > 500 and fixed["repeat"] == 0 and fixed["premature"] == 0


@pytest.mark.parametrize("mode", ["pull", "push"])
@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_every_policy_in_both_modes_gives_a_valid_legal_log(policy: str, mode: str) -> None:
    scenario = load_scenario("baseline").with_overrides({"duration": 1200, "policy.mode": mode})
    log = validate(run_simulation(scenario, policy, seed=2))
    _chat_rows_are_legal(log, legacy=policy == "legacy")
    assert log.attrs["policy"] == policy and log.attrs["mode"] == mode and log.attrs["source"] == "sim"
    assert log.attrs["operators"] == [1, 2, 3, 4, 5, 6] and log.attrs["duration"] == 1200.0
    asg = M.assignments(log)
    assert len(asg) > 50
    if policy != "legacy":
        assert not asg["repeat"].any() or policy == "exclude_last_fallback"
        assert not asg["premature"].any()


def test_single_operator_starves_under_exclude_last_and_fallback_rescues() -> None:
    scenario = load_scenario("single_operator")
    strict = M.compute_metrics(run_simulation(scenario, "exclude_last", seed=1))
    fallback_log = run_simulation(scenario, "exclude_last_fallback", seed=1)
    fallback = M.compute_metrics(fallback_log)
    assert strict["counts"]["resolved"] == 0 and strict["counts"]["abandoned"] > 10
    assert fallback["counts"]["resolved"] > 10 and fallback["assignment"]["repeat"] > 0
    assert fallback_log.attrs["policy_params"] == {"fallback_after": 120.0}
    # the fallback wait: a repeat assignment happens only after fallback_after seconds of waiting
    waits = M.wait_episodes(fallback_log)
    repeats = M.assignments(fallback_log).query("repeat")
    served = waits.loc[waits["outcome"] == "served"].set_index(["chat_id", "end"])["wait_s"]
    for chat, t in zip(repeats["chat_id"], repeats["time"]):
        assert served.loc[(chat, t)] >= 120.0


def test_idle_operators_are_released_without_false_positives() -> None:
    log = run_simulation("idle_operators", "exclude_last", seed=1)
    m = M.compute_metrics(log)["health"]
    assert m["idle_ground_truth"] and m["idle_releases"] > 3 and m["idle_false_positives"] == 0
    # the job logged idle operators out; when one came back (operator_active) it logged in again
    offline = log.loc[(log["event"] == "operator_offline") & (log["reason"] == "idle")]
    assert len(offline) > 0
    came_back = 0
    for op, t in zip(offline["operator_id"], offline["time"]):
        later = log.loc[(log["operator_id"] == op) & (log["time"] >= t) & log["chat_id"].isna()]
        events = later["event"].astype(str).tolist()
        if "operator_active" in events:
            came_back += 1
            assert events[events.index("operator_active") + 1] == "operator_online"
    assert came_back > 0


def test_shift_change_logs_operators_in_and_out_on_their_windows() -> None:
    scenario = load_scenario("shift_change")
    assert scenario.operator_shifts(0) == [(0.0, 7200.0)] and scenario.operator_shifts(5) == [(6300.0, 14400.0)]
    log = run_simulation(scenario, "exclude_last", seed=1)
    ops = log.loc[log["event"].isin(["operator_online", "operator_offline"]) & log["reason"].isna()]
    got = {(int(op), str(ev), t) for op, ev, t in zip(ops["operator_id"], ops["event"], ops["time"])}
    assert {(1, "operator_online", 0.0), (1, "operator_offline", 7200.0), (6, "operator_online", 6300.0)} <= got
    assert not any(op == 6 and t < 6300.0 for op, _, t in got)
    released = log.loc[(log["event"] == "unassign") & (log["reason"] == "operator_offline")]
    assert (released["time"] == 7200.0).all()
    online = M.online_intervals(log)
    assert online[4] == [(6300.0, 14400.0)] and online[1] == [(0.0, 7200.0)]


def test_stuck_release_job_frees_long_held_chats() -> None:
    # legacy holds chats waiting for slow users; a short stuck threshold releases them
    scenario = load_scenario("slow_users").with_overrides(
        {"duration": 3600, "jobs.stuck_after": 300, "jobs.stuck_check_interval": 60})
    log = run_simulation(scenario, "legacy", seed=1)
    stuck = log.loc[log["event"] == "stuck_release"]
    assert len(stuck) > 0 and (stuck["reason"] == "stuck_timeout").all()
    assigned_at = log.loc[log["event"] == "assign"].groupby("chat_id")["time"]
    for chat, t in zip(stuck["chat_id"], stuck["time"]):
        last = assigned_at.get_group(chat)
        assert t - last[last < t].max() > 300.0


def test_rate_curve_arrivals_follow_the_integral_of_the_curve() -> None:
    scenario = load_scenario("peak_hour").with_overrides({"users.arrivals.scale": 3.0})
    log = run_simulation(scenario, "exclude_last", seed=4)
    created = log.loc[(log["event"] == "user_message") & log["from_state"].isna(), "time"].to_numpy()
    pts = scenario.users.arrivals.points
    expected = 3.0 * sum((t1 - t0) * (r0 + r1) / 2 for (t0, r0), (t1, r1) in zip(pts, pts[1:]))
    assert abs(len(created) - expected) < 4 * math.sqrt(expected)  # Poisson: 4 standard deviations
    busy = ((created > 4500) & (created < 6300)).sum() / 1800
    quiet = (created < 1800).sum() / 1800
    assert busy > 2.5 * quiet  # the peak is visible


def test_trace_arrivals_replay_the_csv(tmp_path) -> None:
    (tmp_path / "trace.csv").write_text("time,exchanges,note\n5,1,a\n17.5,2,b\n17.5,,c\n300,1,d\n")
    base = load_scenario("baseline").to_dict()
    base["users"]["arrivals"] = {"kind": "trace", "path": "trace.csv"}
    base["duration"] = 200
    path = tmp_path / "t.toml"
    path.write_text(_toml(base))
    log = run_simulation(str(path), "exclude_last", seed=1)
    created = log.loc[(log["event"] == "user_message") & log["from_state"].isna(), "time"].tolist()
    assert created == [5.0, 17.5, 17.5]  # 300 is after the end


def test_progress_bar_and_policy_objects(capsys) -> None:
    scenario = load_scenario("baseline").with_overrides({"duration": 300})
    log = run_simulation(scenario, make_policy("exclude_last_fallback", fallback_after=42), seed=1, progress=True)
    assert log.attrs["policy_params"] == {"fallback_after": 42}
    assert "baseline" in capsys.readouterr().err


def _toml(data: dict, prefix: str = "") -> str:
    """A tiny TOML writer for test fixtures (tables and scalars/arrays only)."""
    import json

    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict) and "dist" not in value:
            tables.append((key, value))
        elif isinstance(value, dict):
            lines.append(f"{key} = {{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }")
        elif isinstance(value, float) and math.isinf(value):
            lines.append(f"{key} = inf")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                tables.append((f"[{key}]", item))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    out = "\n".join(lines) + "\n"
    for key, value in tables:
        if key.startswith("["):
            out += f"\n[[{prefix}{key[1:-1]}]]\n" + _toml(value, f"{prefix}{key[1:-1]}.")
        else:
            out += f"\n[{prefix}{key}]\n" + _toml(value, f"{prefix}{key}.")
    return out


@pytest.mark.parametrize("policy", ["legacy", "random", "exclude_last_fallback"])
def test_recorded_calls_replay_to_the_same_log_and_decisions(policy: str) -> None:
    """The calls a run records are complete: replayed on a fresh ChatSystem they give the same
    decisions and the identical event log (the database replay does the same with SQL)."""
    from sim.model import ChatModel, resolve_policy
    from sim.calls import replay_calls

    scenario = load_scenario("idle_operators").with_overrides({"duration": 1800})
    model = ChatModel(scenario, resolve_policy(scenario, policy), seed=5, record_calls=True)
    log = model.run()
    calls = model.system.calls
    names = {c.name for c in calls}
    assert {"assign", "operator_message", "real_user_message", "release_idle_operator_chats"} <= names
    replayed, differences = replay_calls(calls)
    assert differences == []
    pd.testing.assert_frame_equal(replayed.log.to_frame(log.attrs), log)
