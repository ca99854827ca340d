"""Short real load tests: Locust users drive the real SQL functions on a loopback server.

Each run is a few wall seconds of a small, busy scenario at time scale 60 (a few scenario
minutes).  What must hold whatever the timing: the legacy function hands operators the
same chat again, the fix never does, and the history never shows a chat held by two
operators at once or an operator over its capacity.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.session import run_load_test
from loadtest.settings import LoadTestUsageError, plan

SCENARIO = """
name = "lt_smoke"
description = "small and busy: short think and handle times so a few wall seconds see many reassignments"
duration = 3600
seed = 5

[users]
think_time = { dist = "exponential", mean = 8 }
exchanges = 3
patience = { dist = "constant", value = 100000 }

[users.arrivals]
kind = "poisson"
rate = 0.12

[operators]
count = 3
max_chats = 2
handle_time = { dist = "exponential", mean = 4 }

[policy]
name = "exclude_last"
poll_interval = 2

[jobs]
idle_detection_interval = 30
idle_after = 120
stuck_check_interval = 60
stuck_after = 600
"""

RUN_TIME_S = 5.0
#: ~5 conversations are in progress at a time (Little's law); 15 real-user connections are plenty
USERS = 15


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lt") / "lt_smoke.toml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def runs(pg_uri: str, scenario_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One short load test per policy (shared by the tests below: each costs ~8 wall s)."""
    out = {}
    for policy in ("legacy", "exclude_last"):
        settings = plan(str(scenario_file), policy=policy, time_scale=60.0, run_time_s=RUN_TIME_S,
                        out_dir=tmp_path_factory.mktemp(policy), database_url=pg_uri, seed=11, users=USERS)
        out[policy] = run_load_test(settings)
    return out


def _count(log, event: str) -> int:
    return int((log["event"].astype(object) == event).sum())


def test_locust_drove_the_real_functions(runs: dict) -> None:
    for policy, outcome in runs.items():
        assert outcome.locust.returncode in (0, 1), outcome.locust.log_tail()
        assert outcome.locust.failures == 0, (policy, outcome.locust.table())
        assert outcome.locust.count("assign_chat_to_operator", "sql") >= 1
        assert outcome.run_info["wait_function"] != "wait_c"
        log = outcome.log
        assert _count(log, "assign") >= 1 and _count(log, "operator_reply") >= 1
        assert log.attrs["source"] == "loadtest" and log.attrs["policy"] == policy
        # scenario time: the window is RUN_TIME_S x K, and nothing lies outside it
        assert outcome.duration == pytest.approx(RUN_TIME_S * 60.0)
        assert log["time"].min() >= 0 and log["time"].max() <= outcome.duration
        # the real-user pool kept up: chats were opened within seconds of their arrival time
        assert outcome.run_info["arrival_lateness_max_s"] < 30, outcome.run_info


def test_history_has_no_double_assignment_and_respects_capacity(runs: dict) -> None:
    for policy, outcome in runs.items():
        checks = outcome.integrity
        # the history also holds what happened after the window closed (Locust's stop timeout)
        assert checks["assignments"] >= _count(outcome.log, "assign") >= 1, policy
        assert checks["double_assigned"] == 0, policy
        assert checks["over_capacity"] == 0, policy


def test_operators_are_in_at_t0_as_in_the_model(runs: dict) -> None:
    """Every operator (all on shift from 0) logs in before the scenario clock starts: the history's log-ins
    are at t = 0, not when Locust got round to spawning them."""
    for policy, outcome in runs.items():
        log = outcome.log
        logins = log.loc[log["event"].astype(object) == "operator_online"]
        assert sorted(logins["operator_id"].astype(int)) == [1, 2, 3], policy
        assert (logins["time"] == 0.0).all(), (policy, logins["time"].tolist())


def test_push_mode_under_locust_the_dispatcher_assigns_and_operators_never_ask(
        pg_uri: str, scenario_file: Path, tmp_path: Path) -> None:
    """policy.mode = "push": the dispatcher (021) runs in Locust's process, woken by NOTIFY (its safety net is
    30 scenario s); every assignment is its own, the operators' clients never call the assign function, and
    the history shows no chat held twice and nobody over capacity."""
    push = tmp_path / "lt_push.toml"
    push.write_text(SCENARIO.replace('name = "lt_smoke"', 'name = "lt_push"')
                    .replace("poll_interval = 2", 'mode = "push"\npoll_interval = 30'))
    outcome = run_load_test(plan(str(push), policy="exclude_last", time_scale=60.0, run_time_s=RUN_TIME_S,
                                 out_dir=tmp_path / "out", database_url=pg_uri, seed=11, users=USERS))
    lc, checks = outcome.locust, outcome.integrity
    assert lc.returncode in (0, 1) and lc.failures == 0, lc.log_tail()
    assert lc.count("assign_chat_to_operator") == 0
    assert lc.count("dispatch_waiting_chats") >= 1
    counters = outcome.run_info["counters"]
    assert _count(outcome.log, "assign") >= 5 and _count(outcome.log, "operator_reply") >= 1
    assert counters["dispatcher_assignments"] == checks["assignments"]  # nobody else assigned anything
    assert checks["double_assigned"] == 0 and checks["over_capacity"] == 0
    # woken by NOTIFY: far more dispatches than one per safety interval
    safety_dispatches = outcome.duration / 30.0 + 1
    assert counters["dispatcher_wakes"] >= 1 and counters["dispatcher_dispatches"] > 2 * safety_dispatches, counters
    saved = json.loads((tmp_path / "out" / "loadtest.json").read_text())
    assert saved["integrity"]["double_assigned"] == 0 == saved["integrity"]["over_capacity"]
    assert not any("played as pull" in note for note in outcome.notes)
    assert outcome.log.attrs["mode"] == "push"


def test_legacy_repeats_and_the_fix_does_not(runs: dict) -> None:
    from chatlab.metrics import compute_metrics

    legacy = compute_metrics(runs["legacy"].log)["assignment"]
    fixed = compute_metrics(runs["exclude_last"].log)["assignment"]
    assert legacy["repeat"] > 0 and legacy["premature"] > 0, legacy
    assert fixed["total"] > 0 and fixed["repeat"] == 0 and fixed["premature"] == 0, fixed


def test_report_files(runs: dict, tmp_path: Path) -> None:
    from chatlab.metrics import analyse
    from chatlab.report import rebuild, write_loadtest_report

    outcome = runs["exclude_last"]
    home = Path(outcome.settings.out_dir)
    data = json.loads((home / "loadtest.json").read_text())  # the session's results file
    assert data["locust"]["requests"] == outcome.locust.requests > 0
    assert data["integrity"]["double_assigned"] == 0
    assert Path(f"{outcome.locust.csv_prefix}_stats.csv").exists()
    write_loadtest_report(analyse(outcome.log, label="db:exclude_last"), home, outcome.results())
    for page in ("summary.md", "summary.html"):
        assert "Load test (Locust against PostgreSQL)" in (home / page).read_text()
    # chatlab report DIR of a load-test directory keeps the section (it comes from loadtest.json)
    before = {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()}
    rebuild(home, home)
    assert {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("opts, message", [
    (dict(time_scale=0), "--time-scale"),
    (dict(run_time_s=0.5), "--run-time"),
    (dict(users=0), "--users"),
    (dict(policy="nope"), "unknown policy"),
])
def test_bad_options_are_one_line_errors_before_anything_starts(scenario_file: Path, opts: dict, message: str) -> None:
    from sim.errors import ChatLabError

    with pytest.raises(ChatLabError, match=message):
        run_load_test(plan(str(scenario_file), database_url="postgresql:///never-used", **opts))


def test_unknown_scenario_is_a_user_error() -> None:
    from sim.errors import ChatLabError

    with pytest.raises(ChatLabError, match="scenario"):
        run_load_test(plan("no_such_scenario", database_url="postgresql:///never-used"))
    assert issubclass(LoadTestUsageError, ChatLabError)


def test_compare_real_cli_smoke(pg_uri: str, scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``chatlab compare-real``: both policies, both sides, one report; legacy repeats on the DB, the fix none.

    Run from a working directory outside the repository with a relative ``--out`` (Locust runs
    in the repository: a relative output path once went to the wrong place).
    """
    from chatlab.cli import main

    monkeypatch.chdir(tmp_path)
    out = Path("cr")
    code = main(["compare-real", str(scenario_file), "--run-time", "4", "--out", str(out), "--seed", "3",
                 "--users", str(USERS), "--database-url", pg_uri, "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "relative difference" in printed
    data = json.loads((out / "sim_vs_real.json").read_text())
    assert set(data["policies"]) == {"legacy", "exclude_last"}
    legacy, fixed = data["policies"]["legacy"], data["policies"]["exclude_last"]
    assert legacy["assignment.repeat"]["load_test"] > 0 and legacy["assignment.repeat"]["simulation"] > 0
    assert fixed["assignment.repeat"]["load_test"] == 0 == fixed["assignment.repeat"]["simulation"]
    assert fixed["counts.assignments"]["load_test"] > 0
    # the same users on both sides: the chats opened in the window agree (up to an arrival or
    # two at the very end, which the load test may open a moment after the window closes)
    assert abs(fixed["counts.chats"]["load_test"] - fixed["counts.chats"]["simulation"]) <= 2
    assert (out / "summary.md").read_text().count("### ") >= 2
    for policy in ("legacy", "exclude_last"):
        assert (out / "locust" / policy / "locust_stats.csv").exists()
        assert json.loads((out / "locust" / policy / "loadtest.json").read_text())["integrity"]["double_assigned"] == 0
    # chatlab report DIR of a compare-real directory: the same pages, sections and files, byte for byte
    import shutil

    shutil.copytree(out, Path("again"))
    for page in Path("again").rglob("summary.*"):
        page.unlink()
    assert main(["report", "again"]) == 0
    files = lambda d: {str(p.relative_to(d)): p.read_bytes() for p in Path(d).rglob("*") if p.is_file()}  # noqa: E731
    assert files("again") == files(out)
    assert "## Simulation vs load test" in Path("again", "summary.md").read_text()


def test_cli_user_mistake_is_one_line_exit_2(scenario_file: Path, capsys: pytest.CaptureFixture) -> None:
    from chatlab.cli import main

    assert main(["loadtest", str(scenario_file), "--time-scale", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chatlab loadtest: error:") and "--time-scale" in err and "\n" not in err


def test_compare_real_replicates_both_sides_over_seeds(pg_uri: str, scenario_file: Path, tmp_path: Path) -> None:
    """``--seeds 1-2``: a simulation and a load test per seed, each side pooled with its interval; ``--warmup``
    cuts the same first seconds on both sides."""
    from chatlab.cli import main

    out = tmp_path / "cr2"
    code = main(["compare-real", str(scenario_file), "--policies", "exclude_last", "--seeds", "1-2", "--run-time", "4",
                 "--out", str(out), "--users", str(USERS), "--database-url", pg_uri, "--no-progress",
                 "--warmup", "30"])
    assert code == 0
    assert "**warm-up cut**: the first 30 s" in (out / "summary.md").read_text()
    row = json.loads((out / "sim_vs_real.json").read_text())["policies"]["exclude_last"]["counts.assignments"]
    assert row["simulation_ci95"] is not None and row["load_test_ci95"] is not None and row["noise"] is not None
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["seeds"] == {"sim:exclude_last": [1, 2], "db:exclude_last": [1, 2]}
    # the agreement object: every key metric judged, with both means, the noise band and the verdict
    from chatlab.metrics import AGREEMENT_KEYS, within

    judged = meta["agreement"]["policies"]["exclude_last"]
    assert set(judged["metrics"]) == set(AGREEMENT_KEYS)
    for key, m in judged["metrics"].items():
        assert {"sim", "db", "rel_diff", "within", "noise"} <= set(m), key
        assert m["within"] == within(m["sim"], m["db"], m["noise"]), key
    assert judged["metrics"]["counts.assignments"]["noise"] is not None
    assert judged["all_within"] == all(m["within"] for m in judged["metrics"].values())
    assert meta["agreement"]["all_within"] == judged["all_within"]
    assert (out / "locust" / "exclude_last" / "seed2" / "loadtest.json").is_file()
    assert main(["compare-real", str(scenario_file), "--seeds", "1-2", "--seed", "3", "--out", str(tmp_path / "x")]) == 2
