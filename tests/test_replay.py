"""`chatlab replay`: a simulation's own log replays on the SQL functions with no disagreement
(exclude_last and legacy are exact), a tampered decision is found and named, bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from chatlab.cli import main as cli
from chatlab.report import load_log, save_log

DURATION = "900"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One short baseline run per exact policy (`chatlab run`, as a user would)."""
    root = tmp_path_factory.mktemp("replay-runs")
    out = {}
    for policy in ("exclude_last", "legacy"):
        out[policy] = root / policy
        assert cli(["run", "baseline", "--policy", policy, "--duration", DURATION, "--no-progress",
                    "--out", str(out[policy])]) == 0
    return out


def _summary_counts(text: str) -> tuple[int, int, int]:
    """(events applied, decisions compared, disagreements) from the summary's first line."""
    first = text.splitlines()[0]
    applied = int(first.split(": ", 1)[1].split("/")[0])
    decisions = int(first.split(" decisions compared")[0].rsplit(", ", 1)[1])
    disagreements = int(first.split(" disagreement")[0].rsplit(", ", 1)[1])
    return applied, decisions, disagreements


@pytest.mark.parametrize("policy", ["exclude_last", "legacy"])
def test_own_log_replays_without_disagreement(runs, policy, pg_uri, capsys):
    log, _ = load_log(runs[policy] / "events.parquet")
    assert cli(["replay", str(runs[policy]), "--database-url", pg_uri, "--no-progress"]) == 0
    applied, decisions, disagreements = _summary_counts(capsys.readouterr().out)
    assert applied == len(log)
    assert decisions == int((log["event"] == "assign").sum()) > 0
    assert disagreements == 0


def test_csv_log_on_temporary_server(runs, capsys):
    """The CSV copy (attrs from run.json) on the default temporary embedded server."""
    assert cli(["replay", str(runs["legacy"] / "events.csv"), "--no-progress"]) == 0
    assert " 0 disagreement(s)" in capsys.readouterr().out


def _waiting_at(log: pd.DataFrame, upto: int) -> set[int]:
    """Chats in waiting_assignment just before row ``upto``."""
    state: dict[int, str] = {}
    for row in log.iloc[:upto].itertuples(index=False):
        if not pd.isna(row.chat_id):
            state[int(row.chat_id)] = str(row.to_state)
    return {c for c, s in state.items() if s == "waiting_assignment"}


def test_tampered_assign_is_reported(runs, pg_uri, tmp_path, capsys):
    log, _ = load_log(runs["exclude_last"] / "events.parquet")
    for i in (log.index[log["event"] == "assign"]):
        others = _waiting_at(log, i) - {int(log.at[i, "chat_id"])}
        if others:
            break
    else:
        pytest.skip("no assign with a second waiting chat in this run")
    sim_chat, other = int(log.at[i, "chat_id"]), min(others)
    tampered = log.copy()
    tampered.at[i, "chat_id"] = other
    save_log(tampered, tmp_path / "t")
    capsys.readouterr()
    assert cli(["replay", str(tmp_path / "t"), "--database-url", pg_uri, "--no-progress"]) == 1
    out = capsys.readouterr().out
    op, t = int(log.at[i, "operator_id"]), float(log.at[i, "time"])
    assert f"disagreement: t={t:.3f}s operator {op}: simulation chose chat {other}, database chose {sim_chat}" in out
    assert _summary_counts(out)[2] == 1


@pytest.mark.parametrize("content", [None, "garbage\n1,2\n", b"\x00\x01PAR1nonsense"])
def test_bad_log_is_one_line_exit_2(tmp_path, content, capsys):
    path = tmp_path / ("events.parquet" if isinstance(content, bytes) else "events.csv")
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert cli(["replay", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chatlab replay: error:") and "\n" not in err and "Traceback" not in err


def test_random_without_fixed_salt_is_refused(runs, capsys):
    assert cli(["replay", str(runs["legacy"]), "--policy", "random", "--no-progress"]) == 2
    assert "fixed salt" in capsys.readouterr().err


def test_idle_and_stuck_releases_replay_exactly(tmp_path, pg_uri, capsys):
    """idle_operators with a short stuck threshold: the log has idle and stuck releases (the
    replay's log-out mapping and release_and_reassign_chat are exercised), still 0 disagreements."""
    text = (Path(__file__).resolve().parents[1] / "scenarios" / "idle_operators.toml").read_text()
    scenario = tmp_path / "idle_stuck.toml"
    for old, new in (("stuck_after = 1800", "stuck_after = 150"), ("stuck_check_interval = 300", "stuck_check_interval = 60"),
                     ("idle_probability = 0.02", "idle_probability = 0.05")):
        assert old in text
        text = text.replace(old, new)
    scenario.write_text(text)
    for policy in ("exclude_last", "legacy"):
        out = tmp_path / policy
        assert cli(["run", str(scenario), "--policy", policy, "--duration", "1800", "--no-progress",
                    "--out", str(out)]) == 0
        log, _ = load_log(out / "events.parquet")
        counts = log["event"].value_counts()
        assert counts["idle_release"] > 0 and counts["stuck_release"] > 0
        capsys.readouterr()
        assert cli(["replay", str(out), "--database-url", pg_uri, "--no-progress"]) == 0
        applied, decisions, disagreements = _summary_counts(capsys.readouterr().out)
        assert (applied, disagreements) == (len(log), 0) and decisions == counts["assign"]


def test_random_with_fixed_salt_replays_exactly(tmp_path, pg_uri, capsys):
    """random is exact when the run used a fixed salt and replay is told it; a wrong salt disagrees."""
    text = (Path(__file__).resolve().parents[1] / "scenarios" / "baseline.toml").read_text()
    assert 'name = "exclude_last"' in text
    scenario = tmp_path / "random_salt.toml"
    scenario.write_text(text.replace('name = "exclude_last"', 'name = "random"\nsalt = 4242'))
    out = tmp_path / "random"
    assert cli(["run", str(scenario), "--duration", DURATION, "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli(["replay", str(out), "--salt", "4242", "--database-url", pg_uri, "--no-progress"]) == 0
    assert _summary_counts(capsys.readouterr().out)[1:] == (
        int((load_log(out / "events.parquet")[0]["event"] == "assign").sum()), 0)
    assert cli(["replay", str(out), "--salt", "1", "--database-url", pg_uri, "--no-progress"]) == 1
    assert "disagreement: t=" in capsys.readouterr().out


@pytest.mark.parametrize(("scenario", "policy"), [("mixed_floor", "exclude_last"), ("mixed_floor", "round_robin"),
                                                  ("skills_gap", "least_loaded"), ("vip_rush", "exclude_last")])
def test_floor_logs_replay_exactly(tmp_path, pg_uri, capsys, scenario, policy):
    """Groups, skills, topics, relaxation and SLA order: the database, set up from the log's attrs,
    takes every decision the simulation took."""
    out = tmp_path / f"{scenario}-{policy}"
    assert cli(["run", scenario, "--policy", policy, "--duration", "2700", "--no-progress", "--out", str(out)]) == 0
    log, _ = load_log(out / "events.parquet")
    capsys.readouterr()
    assert cli(["replay", str(out), "--database-url", pg_uri, "--no-progress"]) == 0
    applied, decisions, disagreements = _summary_counts(capsys.readouterr().out)
    assert (applied, disagreements) == (len(log), 0)
    assert decisions == int((log["event"] == "assign").sum()) > 50
