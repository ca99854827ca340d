"""A table of user mistakes across the whole tool: each gets one clear line, exit 2, and changes nothing.

Database-level bad calls (45 of them, with full-table snapshots) are in ``test_db_errors.py``;
this table covers what a user types or writes: scenario files and command lines, plus a few
wrong types and huge values at the Python client.  For every case: exit status 2, exactly
one line on stderr that names the file/option/field and what was expected, no traceback, and
the output directory the command was given does not exist afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chatlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASELINE = (ROOT / "scenarios" / "baseline.toml").read_text()
FLOOR = (ROOT / "scenarios" / "mixed_floor.toml").read_text()
RULES = (ROOT / "scenarios" / "known_agents.toml").read_text()


def edit(old: str, new: str, *, count: int = 1) -> str:
    assert old in BASELINE, old
    return BASELINE.replace(old, new, count)


#: (id, scenario text or None, argv after the file (FILE = the scenario path), words the line must contain)
SCENARIO_CASES = [
    ("missing-duration", edit("duration = 14400", ""), ["duration", "required"]),
    ("negative-duration", edit("duration = 14400", "duration = -5"), ["duration", "> 0", "-5"]),
    ("duration-not-a-number", edit("duration = 14400", 'duration = "long"'), ["duration", "'long'"]),
    ("unknown-key", BASELINE + '\ncolour = "red"\n', ["colour", "valid keys"]),
    ("bad-toml-syntax", BASELINE + "\n[users\n", ["valid TOML"]),
    ("negative-rate", edit("rate = 0.04", "rate = -0.1"), ["users.arrivals.rate", ">= 0", "-0.1"]),
    ("unknown-policy", edit('name = "exclude_last"', 'name = "fastest"'), ["policy.name", "'fastest'", "legacy"]),
    ("probability-over-1", edit("unassign_probability = 0.02", "unassign_probability = 1.5"),
     ["operators.unassign_probability", "<= 1", "1.5"]),
    ("unknown-distribution", edit('dist = "lognormal"', 'dist = "zipf"'), ["dist", "'zipf'", "exponential"]),
    ("no-operators", edit("count = 6", "count = 0"), ["operators.count", ">= 1"]),
    ("fractional-capacity", edit("max_chats = 3", "max_chats = 1.5"), ["operators.max_chats", "integer"]),
    ("unknown-mode", edit('mode = "pull"', 'mode = "sideways"'), ["policy.mode", "pull", "push"]),
    ("shift-ends-before-start", BASELINE + "\n[[operators.shifts]]\nstart = 100\nend = 50\ncount = 2\n",
     ["operators.shifts[0].end", "after start"]),
    # floors: groups, topics, routing (issue 12)
    ("topic-with-unknown-skill", FLOOR.replace('skill = "tech"', 'skill = "legal"'),
     ["users.topics[1].skill", "billing, tech", "'legal'"]),
    ("group-of-zero", FLOOR.replace("count = 3", "count = 0"), ["operators.groups[0].count", ">= 1"]),
    ("shares-not-summing-to-1", FLOOR.replace("share = 0.4", "share = 0.3"), ["users.topics", "sum to 1", "0.9"]),
    ("priority-not-an-integer", FLOOR.replace("priority = 1", "priority = 1.5"),
     ["users.topics[2].priority", "integer", "1.5"]),
    ("priority-as-text", FLOOR.replace("priority = 1", 'priority = "high"'), ["users.topics[2].priority", "'high'"]),
    ("groups-and-count", FLOOR.replace("[operators]", "[operators]\ncount = 4"), ["operators.groups", "not both"]),
    ("group-name-with-a-dot", FLOOR.replace('name = "senior"', 'name = "sen.ior"'),
     ["operators.groups[0].name", "letters, digits"]),
    ("speed-and-handle-time", FLOOR.replace("speed = 2.0", "speed = 2.0\nhandle_time = 30"),
     ["operators.groups[0].speed", "not both"]),
    ("sla-without-targets", FLOOR.replace("relax_after = 240", 'relax_after = 240\norder = "sla"'),
     ["policy.sla_targets", "required"]),
    ("sla-target-missing-a-class", FLOOR.replace("relax_after = 240",
                                                 'relax_after = 240\norder = "sla"\nsla_targets = { 0 = 300 }'),
     ["policy.sla_targets", "missing [1]"]),
    ("negative-relax-after", FLOOR.replace("relax_after = 240", "relax_after = -1"), ["policy.relax_after", ">= 0"]),
    # routing rules (issue 13)
    ("weight-of-zero", RULES.replace("weight = 2", "weight = 0"), ["users.topics[1].weight", "1 to 100", "0"]),
    ("fractional-weight", RULES.replace("weight = 2", "weight = 1.5"), ["users.topics[1].weight", "integer"]),
    ("returning-over-1", RULES.replace("returning = 0.4", "returning = 1.4"), ["users.returning", "<= 1", "1.4"]),
    ("negative-sticky-for", RULES.replace("sticky_for = 600", "sticky_for = -5"), ["policy.sticky_for", ">= 0"]),
    ("fair-limit-of-zero", RULES.replace("fair_limit = 40", "fair_limit = 0"), ["policy.fair_limit", ">= 1"]),
    ("zero-fair-window", RULES.replace("fair_window = 1800", "fair_window = 0"), ["policy.fair_window", "> 0"]),
    ("zero-reassign-after", RULES.replace("reassign_after = 180", "reassign_after = 0"), ["jobs.reassign_after", "> 0"]),
    ("no-tabs", edit("max_chats = 3", "max_chats = 3\ntabs = 0"), ["operators.tabs", ">= 1"]),
    # issue 19: files that are not UTF-8, and values that would run silently wrong or without end
    ("not-utf8", BASELINE.encode() + b"\n# caf\xe9\n", ["UTF-8", "0xe9", "line 39"]),
    ("huge-duration", edit("duration = 14400", "duration = 1e300"), ["duration", "at most 31,536,000"]),
    ("billion-operators", edit("count = 6", "count = 1e9"), ["operators.count", "100,000", "1000000000"]),
    ("huge-group", FLOOR.replace("count = 3", "count = 1000000000"), ["operators.groups[0].count", "100,000"]),
    ("huge-rate", edit("rate = 0.04", "rate = 1e12"), ["users.arrivals.rate", "at most 1,000"]),
    ("huge-rate-by-scale", edit("rate = 0.04", "rate = 10\nscale = 1000"), ["users.arrivals.scale", "1,000"]),
    ("zero-exchanges", edit('exchanges = { dist = "uniform", low = 1, high = 5 }', "exchanges = 0"),
     ["users.exchanges", "mean >= 1"]),
    ("nanosecond-poll", edit("poll_interval = 5", "poll_interval = 1e-9"), ["policy.poll_interval", ">= 0.01"]),
    ("thousand-tabs", edit("max_chats = 3", "max_chats = 3\ntabs = 1000"), ["operators.tabs", "1 to 100"]),
    ("seed-too-big", edit("seed = 1", "seed = 99999999999"), ["seed", "4,294,967,295"]),
]

#: (id, trace CSV bytes, words): a trace-driven copy of baseline reading ``trace.csv``
TRACE_CASES = [
    ("header-only", b"time,exchanges\n", ["users.arrivals.path", "at least one arrival", "header only"]),
    ("unsorted", b"time\n5\n10\n3\n", ["users.arrivals.path", "increasing order", "line 4", "sort"]),
    ("not-utf8", b"time,note\n1,caf\xe9\n", ["users.arrivals.path", "UTF-8", "0xe9"]),
    ("no-time-column", b"\xef\xbb\xbfwhen\n1\n", ["users.arrivals.path", "'time'"]),
]

#: (id, argv, words the line must contain); OUT is replaced by the case's output directory
CLI_CASES = [
    ("unknown-scenario", ["run", "no_such_scenario", "--out", "OUT"], ["no_such_scenario", "baseline"]),
    ("unknown-policy-in-list", ["compare", "baseline", "--policies", "legacy,bogus", "--out", "OUT"],
     ["'bogus'", "exclude_last"]),
    ("empty-seed-range", ["compare", "baseline", "--policies", "legacy", "--seeds", "5-1", "--out", "OUT"],
     ["--seeds", "5-1"]),
    ("unreadable-seeds", ["compare", "baseline", "--policies", "legacy", "--seeds", "abc", "--out", "OUT"],
     ["--seeds", "'abc'"]),
    ("set-without-value", ["sweep", "baseline", "--set", "operators.count", "--out", "OUT"],
     ["--set", "FIELD=VALUE"]),
    ("set-unknown-field", ["sweep", "baseline", "--set", "operators.colour=1,2", "--out", "OUT"], ["colour"]),
    ("negative-duration-option", ["run", "baseline", "--duration", "-5", "--out", "OUT"], ["--duration", "-5"]),
    ("impossible-gate-bound", ["gate", "baseline", "--min-jain", "2"], ["--min-jain", "2"]),
    ("impossible-peak-share", ["gate", "baseline", "--max-peak-share", "0.5"], ["--max-peak-share", "0.5"]),
    ("unknown-bug-key", ["bugs", "--only", "cw-99", "--out", "OUT"], ["--only", "cw-99", "rc-13134"]),
    ("report-on-missing-dir", ["report", "MISSING"], ["no such file"]),
    ("replay-missing-log", ["replay", "MISSING"], ["no such file"]),
    ("gate-on-garbage-log", ["gate", "GARBAGE"], ["missing columns"]),
    ("loadtest-zero-time-scale", ["loadtest", "baseline", "--time-scale", "0", "--out", "OUT"],
     ["--time-scale", "> 0"]),
    ("db-hostile-schema-name", ["db", "migrate", "--schema", "bad name; DROP TABLE chats"], ["schema name"]),
    # issue 19: tracebacks and false successes before
    ("negative-seed-run", ["run", "baseline", "--seed", "-1", "--out", "OUT"], ["--seed", "'-1'", "0..4294967295"]),
    ("negative-seed-compare", ["compare", "baseline", "--seed=-1", "--out", "OUT"], ["--seed", "0..4294967295"]),
    ("huge-seed-gate", ["gate", "baseline", "--seed", "4294967296"], ["--seed", "'4294967296'"]),
    ("seeds-out-of-range", ["compare", "baseline", "--seeds", "4294967290-4294967299", "--out", "OUT"],
     ["--seeds", "0..4294967295"]),
    ("unknown-option", ["run", "baseline", "--sed", "3", "--out", "OUT"], ["--sed"]),
    ("option-not-a-number", ["run", "baseline", "--duration", "long", "--out", "OUT"], ["--duration", "'long'"]),
    ("scenario-is-a-directory", ["run", "HERE"], ["is a directory"]),
    ("out-is-a-file", ["run", "baseline", "--out", "GARBAGE"], ["--out", "events.csv", "is a file"]),
    ("out-under-a-file", ["compare", "baseline", "--out", "GARBAGE/sub"], ["--out", "is a file, not a directory"]),
    ("out-in-proc", ["run", "baseline", "--out", "/proc/chatlab-x"], ["--out", "/proc"]),
    ("gate-on-a-json-file", ["gate", "README"], ["README.md", "a scenario", "report directory", "event log"]),
    ("loadtest-url-not-a-url", ["loadtest", "baseline", "--database-url", "notaurl"], ["--database-url", "PostgreSQL URL"]),
    ("loadtest-closed-port", ["loadtest", "baseline", "--database-url", "postgresql://127.0.0.1:1/x", "--run-time", "2"],
     ["cannot connect", "port 1"]),
    ("compare-real-closed-port", ["compare-real", "baseline", "--database-url", "postgresql://127.0.0.1:1/x",
                                  "--run-time", "2"], ["cannot connect"]),
    ("set-a-list-on-run", ["run", "baseline", "--set", "operators.count=2,3", "--out", "OUT"], ["--set", "one value"]),
    ("set-unknown-field-on-compare", ["compare", "baseline", "--set", "operators.colour=1", "--out", "OUT"], ["colour"]),
    ("set-bad-value-on-staff", ["staff", "baseline", "--target-sl", "0.8", "--within", "60", "--set",
                                "operators.count=0", "--out", "OUT"], ["operators.count", ">= 1"]),
    ("set-bad-value-on-loadtest", ["loadtest", "baseline", "--set", "duration=-1", "--out", "OUT"], ["duration", "> 0"]),
]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def assert_one_clear_line(code: int, err: str, words: list[str]) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert "error:" in lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize("name,text,words", SCENARIO_CASES, ids=[c[0] for c in SCENARIO_CASES])
def test_malformed_scenario_file(name: str, text: str, words: list[str], tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / f"{name}.toml"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    out = tmp_path / "out"
    code, err = run_cli(["run", str(path), "--out", str(out), "--no-progress"], capsys)
    assert_one_clear_line(code, err, [f"{name}.toml", *words])
    assert not out.exists()


@pytest.mark.parametrize("name,argv,words", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_command_line_mistake(name: str, argv: list[str], words: list[str], tmp_path: Path, pg_uri: str,
                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may appear here (reports/, .chatlab/ ...)
    monkeypatch.setenv("DATABASE_URL", pg_uri)  # never start a server for a mistake
    (tmp_path / "events.csv").write_text("garbage,,,\n1,2\n")
    subst = {"OUT": str(tmp_path / "out"), "MISSING": str(tmp_path / "nope"), "GARBAGE": str(tmp_path / "events.csv"),
             "GARBAGE/sub": str(tmp_path / "events.csv" / "sub"), "HERE": str(tmp_path), "README": str(ROOT / "README.md")}
    argv = [subst.get(a, a) for a in argv]
    if argv[0] in {"run", "compare", "sweep", "gate", "loadtest", "compare-real"}:
        argv.append("--no-progress")
    code, err = run_cli(argv, capsys)
    assert_one_clear_line(code, err, words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv"], "a mistake wrote something"


@pytest.mark.parametrize("name,csv_bytes,words", TRACE_CASES, ids=[c[0] for c in TRACE_CASES])
def test_malformed_trace(name: str, csv_bytes: bytes, words: list[str], tmp_path: Path,
                         capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "trace.csv").write_bytes(csv_bytes)
    path = tmp_path / "traced.toml"
    path.write_text(edit('kind = "poisson"\nrate = 0.04', 'kind = "trace"\npath = "trace.csv"'))
    code, err = run_cli(["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"], capsys)
    assert_one_clear_line(code, err, ["traced.toml", *words])
    assert not (tmp_path / "out").exists()


def test_an_excel_trace_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    from sim.scenario import load_scenario

    (tmp_path / "trace.csv").write_bytes(b"\xef\xbb\xbftime,exchanges\r\n1.5,2\r\n4,\r\n9,1\r\n")
    path = tmp_path / "traced.toml"
    path.write_text(edit('kind = "poisson"\nrate = 0.04', 'kind = "trace"\npath = "trace.csv"'))
    arrivals = load_scenario(str(path)).users.arrivals
    assert arrivals.times == (1.5, 4.0, 9.0) and arrivals.trace_exchanges == (2, None, 1)


def test_db_commands_without_a_server_start_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    """verify / url / export say no server runs (and start none); a --data-dir that is a file is named."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CHATLAB_DATA_DIR", str(tmp_path / "lab"))
    for argv in (["db", "verify"], ["db", "url"], ["db", "export", str(tmp_path / "csv")]):
        code, err = run_cli(argv, capsys)
        assert_one_clear_line(code, err, ["no server is running", "chatlab db up"])
    (tmp_path / "afile").write_text("x")
    code, err = run_cli(["db", "up", "--data-dir", str(tmp_path / "afile")], capsys)
    assert_one_clear_line(code, err, ["--data-dir", "afile", "is a file"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"], "a mistake wrote or started something"


def test_a_closed_port_in_database_url_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/x?connect_timeout=2")
    code, err = run_cli(["db", "status"], capsys)
    assert_one_clear_line(code, err, ["cannot connect", "port 1"])


def test_a_busy_web_port_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_uri: str,
                                     capsys: pytest.CaptureFixture) -> None:
    import socket

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", pg_uri)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        if port < 1024:  # pragma: no cover - the kernel hands out ephemeral ports above 1024
            pytest.fail(f"ephemeral port {port} below --web-port's range")
        code, err = run_cli(["loadtest", "baseline", "--web", "--web-port", str(port), "--run-time", "2"], capsys)
    assert_one_clear_line(code, err, ["--web-port", str(port), "in use"])
    assert list(tmp_path.iterdir()) == []


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """``chatlab db status | head -1``: the reader is gone before chatlab writes; no traceback, exit 141."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "chatlab.cli", "db", "status", "--data-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    proc.stdout.close()  # type: ignore[union-attr]  # long before the interpreter has started
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert proc.wait(timeout=60) == 141, err
    assert err == ""


def test_set_changes_a_field_of_one_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    out = tmp_path / "out"
    code = main(["run", "baseline", "--set", "operators.count=2", "--set", "policy.poll_interval=3",
                 "--duration", "60", "--no-progress", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["operators"] == 2


def test_set_and_warmup_reach_the_load_test(tmp_path: Path) -> None:
    import argparse

    from chatlab.commands import common, loadtest

    parser = argparse.ArgumentParser()
    loadtest.add_arguments(parser)
    args = parser.parse_args(["baseline", "--set", "operators.count=3", "--warmup", "60", "--run-time", "5"])
    settings = common.loadtest_settings(args, policy=None, out=tmp_path / "lt")
    assert settings.overrides == {"operators.count": 3, "warmup": 60.0}
    assert len(settings.operators) == 3 and settings.load_scenario().operators.count == 3
    assert not (tmp_path / "lt").exists()


def test_big_seconds_print_without_an_exponent() -> None:
    from chatlab.report.document import cell, short_number

    assert short_number(14100.0) == "14,100" and cell(14100.0) == "14,100"
    assert short_number(31.94) == "31.9" and short_number(0.000123) == "0.000123"


def test_the_table_is_big_enough() -> None:
    assert len(SCENARIO_CASES) + len(CLI_CASES) >= 20


@pytest.mark.parametrize("case", ["megabyte-body", "string-operator-id", "float-chat-id", "null-user-id"])
def test_wrong_types_and_huge_values_at_the_client(db, case: str) -> None:
    """Typed error, and the database is unchanged (row counts and the chat's state)."""
    from sim.errors import ChatLabError

    op = db.create_operator("a")
    chat = db.real_user_message(1, "hello")
    assert db.assign_chat_to_operator(op) == chat
    before = (db.chats(), db.operators(), db.assignments(), len(db.events()))
    calls = {
        "megabyte-body": lambda: db.operator_message(op, chat, "x" * 1_000_000),
        "string-operator-id": lambda: db.operator_message("a", chat, "hi"),  # type: ignore[arg-type]
        "float-chat-id": lambda: db.unassign_chat(op, 1.5),  # type: ignore[arg-type]
        "null-user-id": lambda: db.real_user_message(None, "hi"),  # type: ignore[arg-type]
    }
    with pytest.raises(ChatLabError) as info:
        calls[case]()
    assert str(info.value).strip() and "\n" not in str(info.value).strip()
    assert (db.chats(), db.operators(), db.assignments(), len(db.events())) == before
