"""Scenario files (sim/scenario/): every shipped scenario loads and runs; bad files are named."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from sim.eventlog import validate
from sim.model import run_simulation
from sim.errors import ScenarioError
from sim.scenario import FIELD_DOCS, Scenario, available_scenarios, load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (ROOT / "scenarios").glob("*.toml"))
REQUIRED = {"baseline", "peak_hour", "single_operator", "shift_change", "idle_operators", "slow_users",
            "flash_crowd", "mm_c"}

GOOD = """
name = "tiny"
description = "a test"
duration = 600

[users.arrivals]
rate = 0.05

[operators]
count = 2
"""


def test_the_required_scenarios_ship() -> None:
    assert REQUIRED <= set(SHIPPED)
    assert set(SHIPPED) <= set(available_scenarios())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_scenario_loads_round_trips_and_runs_briefly(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name and len(scenario.description) > 40
    assert parse_scenario(scenario.to_dict(), source="roundtrip") == scenario
    assert scenario.rate_at(0.0) >= 0
    short = scenario.with_overrides({"duration": 900})
    log = validate(run_simulation(short, seed=1))
    assert log.attrs["scenario"] == name and (log["event"] == "user_message").any()
    assert log["time"].max() < 900


def test_load_by_path_and_from_another_directory(tmp_path, monkeypatch) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(GOOD)
    assert load_scenario(str(path)).name == "tiny"
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "tiny2.toml").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    assert load_scenario("tiny2").name == "tiny"  # a bare name: ./scenarios/<name>.toml first
    assert load_scenario("baseline").name == "baseline"  # then the scenarios next to the package


def test_defaults_and_attribute_names_used_by_the_load_test(tmp_path) -> None:
    from loadtest.settings import seeded_operators

    path = tmp_path / "tiny.toml"
    path.write_text(GOOD)
    sc = load_scenario(path)
    assert sc.seed == 0 and sc.policy.name == "exclude_last" and sc.policy.mode == "pull"
    assert math.isinf(sc.users.patience.mean) and sc.operators.max_chats == 1
    assert sc.operator_shifts(1) == [(0.0, 600.0)]
    shift_change = load_scenario("shift_change")
    ops = seeded_operators(shift_change, 3600.0)  # a shift ending at or after the window never ends there
    assert ops[0].shifts == ((0.0, math.inf),) and ops[3].shifts == ((6300.0, math.inf),)
    assert seeded_operators(shift_change, 14400.0)[0].shifts == ((0.0, 7200.0),)
    assert len(ops) == 6 and [o.operator_id for o in ops] == [1, 2, 3, 4, 5, 6]
    assert shift_change.rate_at(10) == pytest.approx(0.02)


def test_rate_curve_is_piecewise_linear_and_flat_outside() -> None:
    sc = load_scenario("peak_hour")
    assert sc.rate_at(-5) == pytest.approx(0.02) and sc.rate_at(1800) == pytest.approx(0.03)
    assert sc.rate_at(5400) == pytest.approx(0.08) and sc.rate_at(99999) == pytest.approx(0.02)
    assert sc.with_overrides({"users.arrivals.scale": 2}).rate_at(5400) == pytest.approx(0.16)


def test_overrides_are_validated_and_leave_the_original_alone() -> None:
    base = load_scenario("baseline")
    changed = base.with_overrides({"operators.count": 4, "duration": 600, "operators.handle_time.mean": 50})
    assert (changed.operators.count, changed.duration, changed.operators.handle_time.mean) == (4, 600.0, 50.0)
    assert base.operators.count == 6 and isinstance(changed, Scenario)
    assert base.with_overrides({"users.arrivals.rate": 0.1}).users.arrivals.kind == "poisson"
    assert load_scenario("peak_hour").with_overrides({"users.arrivals.rate": 0.1}).rate_at(5400) == 0.1
    with pytest.raises(ScenarioError, match=r"operators\.count: expected an integer >= 1, got 0"):
        base.with_overrides({"operators.count": 0})
    with pytest.raises(ScenarioError, match=r"operators\.cout: expected no such key; valid keys in \[operators\]: count"):
        base.with_overrides({"operators.cout": 3})
    with pytest.raises(ScenarioError, match="overrides"):
        base.with_overrides({"policy.mode": "shove"})


BAD_CASES = [
    # (file text, dotted field, what the message must say)
    ("foo = 1\n" + GOOD, "foo", "no such key; valid keys: name, description, duration"),
    (GOOD.replace("count = 2", "count = \"two\""), "operators.count", "expected an integer >= 1, got 'two'"),
    (GOOD.replace("count = 2", "count = 2\ncout = 3"), "operators.cout", "valid keys in [operators]: count, max_chats"),
    (GOOD.replace("duration = 600", ""), "duration", "expected a number > 0 (required)"),
    (GOOD.replace("duration = 600", "duration = -5"), "duration", "expected a number > 0, got -5.0"),
    (GOOD + "handle_time = { dist = \"lognormal\", mean = 30 }\n", "operators.handle_time.sd",
     "a number (required for dist = 'lognormal')"),
    (GOOD + "handle_time = { dist = \"weibull\", mean = 30 }\n", "operators.handle_time.dist",
     "one of constant, exponential, uniform, lognormal, gamma, normal"),
    (GOOD + "unassign_probability = 1.5\n", "operators.unassign_probability", "<= 1"),
    (GOOD.replace("rate = 0.05", "points = [[0, 0.1], [0, 0.2]]"), "users.arrivals.points[1]", "times must increase"),
    (GOOD.replace("rate = 0.05", "rate = 0.05\npoints = [[0, 1], [5, 1]]"), "users.arrivals.kind",
     "one of poisson (with rate), curve (with points), trace (with path)"),
    (GOOD.replace("rate = 0.05", "kind = \"poisson\"\npoints = [[0, 1], [5, 1]]"), "users.arrivals.points",
     "valid keys in [users.arrivals]: kind, rate, scale"),
    (GOOD.replace("rate = 0.05", "path = \"missing.csv\""), "users.arrivals.path", "does not exist"),
    (GOOD + "\n[policy]\nname = \"fifo\"\n", "policy.name", "one of legacy, exclude_last"),
    (GOOD + "\n[policy]\npoll_interval = 0\n", "policy.poll_interval", "a number > 0"),
    (GOOD + "\n[[operators.shifts]]\nstart = 0\nend = 60\ncount = 2\n[[operators.shifts]]\nstart = 60\ncount = 1\n",
     "operators.shifts[1].count", "at most 0"),
    (GOOD + "\n[[operators.shifts]]\nstart = 100\nend = 50\n", "operators.shifts[0].end", "a time after start"),
    (GOOD + "\n[[operators.shifts]]\noperators = [0, 7]\n", "operators.shifts[0].operators", "indexes in 0..1"),
    (GOOD.replace("[operators]\ncount = 2", ""), "operators", "a table [operators] with keys count"),
    (GOOD + "\n[jobs]\nidle_after = \"5m\"\n", "jobs.idle_after", "a number > 0, got '5m'"),
]


@pytest.mark.parametrize("text, field, expected", BAD_CASES, ids=[c[1] for c in BAD_CASES])
def test_malformed_files_name_file_field_and_expectation(tmp_path, text: str, field: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    err = info.value
    assert err.file == str(path) and err.field == field, str(err)
    assert str(err).startswith(f"{path}: {field}: expected ") and expected in str(err), str(err)


def test_invalid_toml_and_unknown_names(tmp_path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("duration = = 3\n")
    with pytest.raises(ScenarioError, match=r"broken\.toml: expected valid TOML \(.*line 1"):
        load_scenario(str(path))
    with pytest.raises(ScenarioError, match=r"expected a scenario name \(baseline, .*mm_c.*\) or a path"):
        load_scenario("no_such_scenario")
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(str(tmp_path / "nope.toml"))


def test_the_cli_turns_a_bad_scenario_into_one_line_and_exit_2(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace("count = 2", "count = -1"))
    res = subprocess.run([sys.executable, "-m", "chatlab.cli", "run", str(path), "--no-progress",
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and "operators.count: expected an integer >= 1" in res.stderr


@pytest.mark.parametrize("name", ["baseline", "mixed_floor", "vip_rush", "shift_change"])
def test_field_docs_cover_every_field(name: str) -> None:
    documented = set(FIELD_DOCS)
    data = load_scenario(name).to_dict()

    def leaves(d, prefix=""):
        for k, v in d.items():
            key = f"{prefix}{k}"
            if key in ("operators.groups", "users.topics"):
                yield key
                for item in v:
                    yield from leaves(item, key + "[].")
            elif isinstance(v, dict) and "dist" not in v and key not in ("users.arrivals", "policy.sla_targets"):
                yield from leaves(v, key + ".")
            elif key == "users.arrivals":
                yield from (f"{key}.{kk}" for kk in v)
            else:
                yield key

    assert set(leaves(data)) <= documented
