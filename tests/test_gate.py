"""The CI gate: bounds, PASS/FAIL lines with margins, and exit codes 0 / 1 / 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatlab import metrics as M
from chatlab.gate import Bound, Check, GateError, evaluate, make_bounds
from chatlab.report import write_comparison_report, write_run_report
from test_report import fixed_like, legacy_like

ROOT = Path(__file__).resolve().parents[1]
CHATLAB = [sys.executable, "-m", "chatlab.cli"]


def chatlab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHATLAB, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


# ----------------------------------------------------------------- bounds


def test_max_bound_pass_fail_and_margin() -> None:
    bound = Bound("repeat_rate", "assignment.repeat_rate", "max", 0.0, "%")
    ok, bad = Check("a", bound, 0.0), Check("b", bound, 0.25)
    assert ok.passed and ok.excess == 0.0 and ok.line().startswith("PASS")
    assert not bad.passed and bad.excess == pytest.approx(0.25)
    assert bad.line() == "FAIL  b: repeat_rate = 25% (bound <= 0%): 25% over the bound"


def test_min_bound_and_unmeasurable_value() -> None:
    bound = Bound("jain", "fairness.assignments_per_online_hour.jain", "min", 0.9)
    low = Check("r", bound, 0.85)
    assert not low.passed and low.excess == pytest.approx(0.05) and "0.05 under the bound" in low.line()
    assert Check("r", bound, 0.95).passed
    missing = Check("r", bound, None)
    assert not missing.passed and "not measurable" in missing.line()


def test_make_bounds_validates_ranges() -> None:
    bounds = make_bounds({"max_repeat_rate": 0.0, "max_p99_wait": 120.0, "min_jain": None})
    assert [(b.key, b.kind, b.limit) for b in bounds] == [("assignment.repeat_rate", "max", 0.0), ("wait.p99_s", "max", 120.0)]
    with pytest.raises(GateError, match="--min-jain must be between 0 and 1"):
        make_bounds({"min_jain": 1.5})
    with pytest.raises(GateError, match="--max-repeat-rate"):
        make_bounds({"max_repeat_rate": -0.1})
    with pytest.raises(GateError, match="no bound"):
        evaluate([M.analyse(fixed_like())], [])


def test_evaluate_on_hand_built_runs() -> None:
    bounds = make_bounds({"max_repeat_rate": 0.0, "max_premature_rate": 0.0})
    assert evaluate([M.analyse(fixed_like())], bounds).exit_code == 0
    result = evaluate([M.analyse(fixed_like()), M.analyse(legacy_like())], bounds)
    assert result.exit_code == 1
    assert [c.passed for c in result.checks] == [True, True, False, False]
    assert result.lines()[-1] == "gate FAILED: 2 of 4 checks"


# ----------------------------------------------------------------- the command on saved logs


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate")
    write_run_report(M.analyse(legacy_like()), root / "legacy", plots=False)
    write_run_report(M.analyse(fixed_like()), root / "fixed", plots=False)
    write_comparison_report([M.analyse(legacy_like()), M.analyse(fixed_like())], root / "both", sub_reports=True)
    return {"legacy": root / "legacy", "fixed": root / "fixed", "both": root / "both"}


def test_gate_exit_0_on_fixed_log(saved: dict[str, Path]) -> None:
    res = chatlab("gate", str(saved["fixed"] / "events.parquet"), "--max-premature-rate", "0", "--min-jain", "0.9")
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines[:-1]] == ["PASS", "PASS", "PASS", "PASS"]  # + capacity (on by default)
    assert lines[-1] == "gate PASSED"


def test_gate_exit_1_on_legacy_log_with_value_bound_and_margin(saved: dict[str, Path]) -> None:
    res = chatlab("gate", str(saved["legacy"] / "events.csv"))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAIL" in res.stdout and "repeat_rate = 50% (bound <= 0%): 50% over the bound" in res.stdout


def test_gate_checks_every_run_of_a_comparison_dir(saved: dict[str, Path]) -> None:
    res = chatlab("gate", str(saved["both"]), str(saved["fixed"]))
    assert res.returncode == 1
    # repeat, premature and capacity bounds are on by default: legacy fails the first two, the fixed
    # run (twice) passes all three
    assert res.stdout.count("PASS") == 7 and res.stdout.count("FAIL ") == 2
    assert "[legacy, seed 7]: repeat_rate = 50%" in res.stdout


def test_gate_bound_can_be_switched_off(saved: dict[str, Path]) -> None:
    res = chatlab("gate", str(saved["legacy"]), "--max-repeat-rate", "off", "--max-premature-rate", "off",
                  "--max-capacity-overshoot", "off", "--min-jain", "0.1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("PASS ") == 1 and "repeat_rate" not in res.stdout and "capacity" not in res.stdout
    res = chatlab("gate", str(saved["legacy"]), "--max-premature-rate", "off")
    assert res.returncode == 1 and "premature_rate" not in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["no_such_scenario_xyz"], "no_such_scenario_xyz"),
        (["/nonexistent/events.parquet"], "/nonexistent/events.parquet"),
        (["FIXED", "--min-jain", "2"], "--min-jain must be between 0 and 1"),
    ],
)
def test_gate_bad_input_exit_2_one_line(saved: dict[str, Path], args: list[str], message: str) -> None:
    args = [str(saved["fixed"]) if a == "FIXED" else a for a in args]
    res = chatlab("gate", *args)
    assert res.returncode == 2, res.stdout + res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chatlab gate: error:") and message in err[0], res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_gate_unreadable_log_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "events.parquet"
    bad.write_bytes(b"this is not parquet")
    res = chatlab("gate", str(bad))
    assert res.returncode == 2 and "cannot read event log" in res.stderr and "Traceback" not in res.stderr


# ----------------------------------------------------------------- the command on simulated scenarios


def test_gate_fails_legacy_and_passes_exclude_last_on_baseline() -> None:
    common = ["--seeds", "1-2", "--duration", "3600", "--no-progress"]  # repeat, premature, capacity: defaults (0)
    legacy = chatlab("gate", "baseline", "--policy", "legacy", *common)
    assert legacy.returncode == 1, legacy.stdout + legacy.stderr
    for seed in (1, 2):
        line = next(ln for ln in legacy.stdout.splitlines() if f"seed {seed}]: repeat_rate" in ln)
        assert line.startswith("FAIL") and "over the bound" in line
    assert legacy.stdout.strip().endswith("gate FAILED: 4 of 6 checks")  # capacity holds even under legacy
    fixed = chatlab("gate", "baseline", "--policy", "exclude_last", *common, "--min-jain", "0.5")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert fixed.stdout.count("PASS ") == 8 and fixed.stdout.strip().endswith("gate PASSED")


# ----------------------------------------------------------------- the command on a log from PostgreSQL


def seed_flow_on_the_database(db, policy: str) -> None:  # noqa: ANN001 (ChatDB, imported lazily)
    """The seed's manual test flow on the real functions: user writes, A answers, A asks again,
    the user answers, A and then B ask."""
    a, b = db.create_operator("A", 1), db.create_operator("B", 1)
    db.set_clock(0.0)
    chat = db.real_user_message(1, "hello")
    db.set_clock(10.0)
    assert db.assign_chat_to_operator(a, policy) == chat
    db.set_clock(20.0)
    db.operator_message(a, chat, "hi, how can I help?")
    db.set_clock(30.0)
    again = db.assign_chat_to_operator(a, policy)  # legacy: the same chat again (the bug)
    if again is not None:
        db.operator_message(a, chat, "...")
    db.set_clock(40.0)
    db.real_user_message(1, "my order is late", chat)
    db.set_clock(50.0)
    if db.assign_chat_to_operator(a, policy) is None:  # the fix: excluded for A ...
        assert db.assign_chat_to_operator(b, policy) == chat  # ... and B gets it


@pytest.mark.parametrize("policy, code", [("legacy", 1), ("exclude_last", 0)])
def test_gate_on_an_event_log_read_from_postgresql(db, tmp_path: Path, policy: str, code: int) -> None:  # noqa: ANN001
    seed_flow_on_the_database(db, policy)
    log = db.events()
    log.attrs.update({"policy": policy, "duration": 60.0, "operators": [1, 2]})
    write_run_report(M.analyse(log), tmp_path / policy, plots=False)  # what `chatlab loadtest` writes too
    res = chatlab("gate", str(tmp_path / policy))
    assert res.returncode == code, res.stdout + res.stderr
    if code:
        # assigns at 10, 30 (A again, from waiting_real_user_reply) and 50 (A again): 2 repeats, 1 premature
        assert "repeat_rate = 66.67%" in res.stdout and "premature_rate = 33.33%" in res.stdout
    else:
        assert res.stdout.count("PASS ") == 3 and res.stdout.strip().endswith("gate PASSED")


def test_a_comparison_written_over_an_older_one_is_gated_on_its_own_runs_only(tmp_path: Path) -> None:
    """The older comparison's run directories stay on disk, but metrics.json names this one's runs."""
    write_comparison_report([M.analyse(legacy_like()), M.analyse(fixed_like())], tmp_path / "c")
    write_comparison_report([M.analyse(fixed_like())], tmp_path / "c")
    assert (tmp_path / "c" / "legacy").is_dir()  # the leftover
    proc = chatlab("gate", str(tmp_path / "c"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "legacy" not in proc.stdout and "exclude_last" in proc.stdout
