"""The load test's pure pieces: arrivals, the scaled clock, the settings file, pool sizing.

No Locust and no database here (those are in ``test_loadtest.py``); these run in
milliseconds and pin down the arithmetic the Locust process relies on.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.population import Population, share
from loadtest.clock import ScaledClock
from loadtest.plan import POOL_CAP, concurrent_conversations, conversation_estimate, pool_limit
from loadtest.settings import CONFIG_ENV, BadLoadTestConfig, LoadTestSettings, LoadTestUsageError, SeededOperator, plan


# ----------------------------------------------------------------------------- arrivals
@pytest.mark.parametrize("name", ["baseline", "peak_hour"])  # Poisson, and a rate curve (thinning)
def test_arrivals_are_exactly_the_simulations_users(name: str) -> None:
    """Same (scenario, seed): the population the load test plays is the chats and user draws
    the simulation produced (both take their users from sim.population)."""
    from sim.model import run_simulation
    from sim.scenario import load_scenario

    scenario = load_scenario(name).with_overrides({"duration": 1200.0})
    seed = 4
    log = run_simulation(scenario, "exclude_last", seed=seed)
    opened = log.loc[(log["event"].astype(object) == "user_message") & log["from_state"].isna()]
    arrivals = Population(scenario, seed).arrivals(1200.0)
    assert len(arrivals) == len(opened) > 5
    assert np.allclose([a.time for a in arrivals], opened["time"].to_numpy())
    # the users' draws: a resolved chat has exactly `exchanges` user messages
    msgs = log.loc[log["event"].astype(object) == "user_message"].groupby("chat_id").size()
    ended = log.loc[(log["event"].astype(object) == "end") & (log["reason"].astype(object) == "resolved")]
    by_chat = {int(c): i for i, c in enumerate(opened["chat_id"])}
    for chat in ended["chat_id"]:
        assert msgs[chat] == arrivals[by_chat[int(chat)]].exchanges
    assert all(len(a.thinks) == a.exchanges >= 1 for a in arrivals)


def test_arrivals_split_over_workers_and_respect_the_window() -> None:
    from sim.scenario import load_scenario

    scenario = load_scenario("baseline")
    full = Population(scenario, 1).arrivals(900.0)
    assert full and all(0 <= a.time < 900.0 for a in full)
    parts = [share(full, 3, k) for k in range(3)]
    assert sorted(a.index for p in parts for a in p) == [a.index for a in full]
    assert Population(scenario, 1).arrivals(0.0) == []


# ----------------------------------------------------------------------------- clock
def test_scaled_clock_converts_both_ways() -> None:
    clock = ScaledClock(60.0)
    assert clock.wall(3600.0) == pytest.approx(60.0)
    assert clock.scenario(1.0) == pytest.approx(60.0)
    clock.start -= 2.0  # pretend two wall seconds passed
    assert clock.now() == pytest.approx(120.0, abs=1.0)
    with pytest.raises(ValueError):
        ScaledClock(0.0)


# ----------------------------------------------------------------------------- settings
def _settings(**over: object) -> LoadTestSettings:
    base = dict(dsn="postgresql:///x", schema="lt_1", scenario="baseline", policy="legacy",
                time_scale=60.0, seed=3, run_time_wall_s=30.0, duration=1800.0,
                operators=(SeededOperator(1, "op-1", 2, ((0.0, 600.0),)), SeededOperator(2, "op-2")))
    base.update(over)
    return LoadTestSettings(**base)  # type: ignore[arg-type]


def test_settings_round_trip_through_their_file(tmp_path, monkeypatch) -> None:
    settings = _settings(policy_params={"fallback_after": 120.0}, users=7, expect_workers=2)
    path = settings.write(tmp_path / "lt.json")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    again = LoadTestSettings.from_env()
    assert again == settings and again.workers == 2
    assert "x" not in again.redacted().dsn


def test_settings_errors_are_one_line_user_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises(BadLoadTestConfig, match=CONFIG_ENV):
        LoadTestSettings.from_env()
    with pytest.raises(BadLoadTestConfig, match="cannot read"):
        LoadTestSettings.read(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"dsn": "x", "operators": [], "surprise": 1}')
    with pytest.raises(BadLoadTestConfig, match="invalid"):
        LoadTestSettings.read(bad)


def test_plan_works_out_the_window_and_the_operators() -> None:
    settings = plan("baseline", time_scale=60.0, run_time_s=30.0)
    assert settings.run_time_wall_s == 30.0 and settings.duration == 1800.0  # 30 wall s at K = 60
    assert settings.policy == "exclude_last" and settings.seed == 1 and len(settings.operators) == 6
    assert plan("baseline").run_time_wall_s == 240.0  # the whole 4 h scenario at K = 60
    with pytest.raises(LoadTestUsageError, match="wall hours"):
        plan("baseline", time_scale=0.5)


# ----------------------------------------------------------------------------- sizing
def _steady(rate: float, handle: float) -> object:
    """A scenario whose conversation estimate is 1 exchange x (120 s wait + handle + 0 think)."""
    from sim.scenario import load_scenario

    return load_scenario("baseline").with_overrides({
        "users.arrivals.rate": rate, "users.exchanges": 1, "users.think_time": 0, "users.patience": float("inf"),
        "operators.handle_time": handle})


def test_pool_follows_littles_law_and_is_capped() -> None:
    assert concurrent_conversations(0.1, 300.0) == pytest.approx(30.0)
    assert conversation_estimate(_steady(0.01, 30.0)) == pytest.approx(150.0)
    small = pool_limit(_steady(0.01, 30.0), 3600.0)  # 1.5 conversations in progress
    bigger = pool_limit(_steady(0.05, 30.0), 3600.0)  # 7.5
    assert 2 <= small < bigger
    assert pool_limit(_steady(10.0, 900.0), 3600.0) == POOL_CAP
    # the pool is the total over all workers: a second worker only adds its spare users
    assert pool_limit(_steady(0.2, 30.0), 3600.0, workers=2) == pool_limit(_steady(0.2, 30.0), 3600.0) + 2


# ----------------------------------------------------------------------------- time mapping
def test_history_time_is_mapped_to_scenario_time_and_cut_to_the_window() -> None:
    """Database seconds since 2026-01-01 -> (wall s since the run's t = 0) x K, rows after the window dropped."""
    from loadtest.session import to_scenario_time
    from sim.eventlog import from_records

    origin = 86400.0 * 10  # the run started 2026-01-11T00:00:00Z on the database clock
    raw = from_records([
        (origin - 0.5, None, 1, "operator_online", None, None, None),  # seeding, just before t = 0
        (origin + 1.0, 1, None, "user_message", None, "waiting_assignment", None),
        (origin + 1.5, 1, 1, "assign", "waiting_assignment", "assigned", None),
        (origin + 11.0, 1, 1, "operator_reply", "assigned", "waiting_real_user_reply", None),  # after the window
    ], {"source": "database"})
    log = to_scenario_time(raw, started_at_db="2026-01-11T00:00:00+00:00", time_scale=60.0, duration=600.0)
    assert list(log["time"]) == pytest.approx([0.0, 60.0, 90.0])
    assert list(log["event"].astype(object)) == ["operator_online", "user_message", "assign"]
    assert log.attrs["source"] == "database"


# ----------------------------------------------------------------------------- crashes and lost workers
def test_acknowledgement_log_round_trip_and_every_kind_of_loss_is_found(tmp_path, monkeypatch) -> None:
    """The durability test's check can fail: each kind of acknowledged write, missing, is reported."""
    from loadtest import acklog

    path = tmp_path / "acks.jsonl"
    monkeypatch.setenv(acklog.ACKLOG_ENV, str(path))
    for kind, ids in [("chat", {"chat": 1}), ("user_message", {"chat": 1}), ("reply", {"chat": 1, "message": 7}),
                      ("end", {"chat": 1}), ("chat", {"chat": 2})]:
        acklog.ack(kind, **ids)
    with path.open("a") as fh:
        fh.write('{"ack": "chat", "ch')  # a process killed mid-line
    acks = acklog.read(path)
    assert [a["ack"] for a in acks] == ["chat", "user_message", "reply", "end", "chat"]
    kept = {"chats": {1: False, 2: True}, "replies": {(1, 7)}, "user_messages": {1: 2, 2: 1}}
    assert acklog.lost(acks, **kept) == []
    for change, kind in [({"chats": {1: False}}, "chat"), ({"replies": set()}, "reply"),
                         ({"chats": {1: True, 2: True}}, "end"), ({"user_messages": {1: 1, 2: 1}}, "user_message")]:
        found = acklog.lost(acks, **{**kept, **change})
        assert [a["ack"] for a in found] == [kind], (change, found)


def test_a_lost_worker_counts_unless_it_came_back() -> None:
    from loadtest.session import lost_workers_note, workers_lost

    info = {"workers_lost": [{"worker_index": 1, "scenario_time": 812.4},
                             {"worker_index": 0, "scenario_time": 300.0, "healed_at": 420.0}]}
    assert [w["worker_index"] for w in workers_lost(info)] == [1]
    assert workers_lost({}) == []
    note = lost_workers_note(workers_lost(info), all_lost=False)
    assert "lost 1 Locust worker (worker 1 at scenario t = 812 s)" in note and "not the scenario's" in note
    assert "ended it at the last loss" in lost_workers_note(workers_lost(info), all_lost=True)
