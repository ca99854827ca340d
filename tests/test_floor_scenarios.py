"""The floor scenarios (groups, skills, priorities) under every policy, simulated and load-tested on
the real database: each run routes by skill (a chat goes to an operator with its skill, or one
that waited ``relax_after``), keeps capacity, and the per-group, per-topic and per-class metrics
are all there.  Also the issue's defect: ``shift_change`` over its first hour gates clean.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from chatlab.cli import main
from chatlab.metrics import compute_metrics, documented_keys, flatten_metrics
from sim.model import run_simulation
from sim.policies import POLICY_NAMES
from sim.scenario import load_scenario

FLOORS = ("mixed_floor", "skills_gap", "vip_rush", "known_agents")


def skill_violations(log: pd.DataFrame) -> list[str]:
    """Assignments of a chat to an operator without its skill before the chat had waited
    ``relax_after`` (read from the log's attrs: operator skills, topic skills, routing)."""
    attrs = log.attrs
    skills = {int(op): set(s) for op, s in attrs["operator_skills"].items()}
    need = {name: spec["skill"] for name, spec in attrs["topics"].items()}
    relax = (attrs.get("routing") or {}).get("relax_after")
    bad, since = [], {}  # chat -> waiting_since: set when it is opened and when its user answers
    for row in log.itertuples(index=False):
        if pd.isna(row.chat_id):
            continue
        if row.event == "user_message" and (pd.isna(row.from_state) or row.from_state == "waiting_real_user_reply"):
            since[int(row.chat_id)] = row.time
        if row.event == "assign":
            skill = need.get(row.topic) if not pd.isna(row.topic) else None
            waited = row.time - since[int(row.chat_id)]
            if skill and skill not in skills[int(row.operator_id)] and not (relax is not None and waited >= relax - 1e-6):
                bad.append(f"t={row.time:.1f} chat {row.chat_id} ({row.topic}) to operator {row.operator_id}")
    return bad


def _floor_keys_documented(metrics: dict) -> None:
    keys = documented_keys(list(metrics["groups"]), list(metrics["topics"]), list(metrics["priorities"]))
    assert list(flatten_metrics(metrics)) == keys


@pytest.mark.parametrize("policy", POLICY_NAMES)
@pytest.mark.parametrize("name", FLOORS)
def test_every_policy_simulates_every_floor(name: str, policy: str) -> None:
    scenario = load_scenario(name).with_overrides({"duration": 3600})
    log = run_simulation(scenario, policy, seed=2)
    assert skill_violations(log) == []
    metrics = compute_metrics(log)
    _floor_keys_documented(metrics)
    assert list(metrics["groups"]) == [g.name for g in scenario.operators.groups]
    assert list(metrics["topics"]) == [t.name for t in scenario.users.topics]
    assert metrics["counts"]["assignments"] > 20
    assert sum(t["chats"] for t in metrics["topics"].values()) == metrics["counts"]["chats"]


def test_relaxation_is_what_lets_other_operators_help() -> None:
    """skills_gap: without relaxation only the bilingual operator answers Spanish chats (and many
    are abandoned); with it the others take those that waited, and fewer are abandoned."""
    gap = load_scenario("skills_gap").with_overrides({"duration": 5400})
    strict = compute_metrics(run_simulation(gap, "exclude_last", seed=1))
    relaxed_log = run_simulation(gap.with_overrides({"policy.relax_after": 60}), "exclude_last", seed=1)
    relaxed = compute_metrics(relaxed_log)
    assert strict["groups"]["english"]["assignments"] > 0
    spanish_by_english = relaxed_log.loc[(relaxed_log["event"].astype(object) == "assign")
                                         & (relaxed_log["topic"].astype(object) == "spanish")
                                         & relaxed_log["operator_id"].isin(relaxed_log.attrs["groups"]["english"])]
    assert len(spanish_by_english) > 0
    assert relaxed["topics"]["spanish"]["abandonment_rate"] < strict["topics"]["spanish"]["abandonment_rate"]


def test_priority_order_serves_the_higher_class_faster() -> None:
    rush = load_scenario("vip_rush").with_overrides({"policy.order": "priority"})
    m = compute_metrics(run_simulation(rush, "exclude_last", seed=1))
    assert m["priorities"]["1"]["mean_s"] < m["priorities"]["0"]["mean_s"]


def test_shift_change_first_hour_gates_clean(capsys: pytest.CaptureFixture) -> None:
    """Operators 4-6 start at 6,300 s: over the first hour they were never online, so they are
    not counted as online operators with no chats (Jain per online hour was 0.499)."""
    assert main(["gate", "shift_change", "--duration", "3600", "--min-jain", "0.9", "--no-progress"]) == 0
    assert "gate PASSED" in capsys.readouterr().out


@pytest.mark.parametrize("policy", POLICY_NAMES)
@pytest.mark.parametrize("name", FLOORS)
def test_every_policy_load_tests_every_floor(pg_uri: str, tmp_path: Path, name: str, policy: str) -> None:
    """Two wall seconds at K = 180 (six scenario minutes) of each floor under each policy on the
    real functions: skills and capacity hold under concurrency, and the floor metrics exist."""
    from loadtest.session import run_load_test
    from loadtest.settings import plan

    outcome = run_load_test(plan(name, policy=policy, time_scale=180.0, run_time_s=2.0, out_dir=tmp_path,
                                 database_url=pg_uri, users=30))
    assert outcome.locust.failures == 0, outcome.locust.table()
    assert outcome.integrity["double_assigned"] == 0 and outcome.integrity["over_capacity"] == 0
    log = outcome.log
    assert (log["event"].astype(object) == "assign").sum() > 0
    assert skill_violations(log) == []
    metrics = compute_metrics(log)
    _floor_keys_documented(metrics)
    assert metrics["counts"]["chats"] == sum(t["chats"] for t in metrics["topics"].values())
